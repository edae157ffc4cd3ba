// The record walk: one pass over each record's root keys and the schema's paths under "data",
// filling a batch row or noting the first problem for a Rejection.
#include "decode/decoder.hpp"

#include <cmath>
#include <cstring>
#include <limits>

#include "decode/decoder_walk.hpp"

namespace iotstream {

using namespace json_tokens;
using simdjson::error_code;

Decoder::Impl::Impl(const DecoderSchema &schema)
    : max_record_bytes_(schema.max_record_bytes),
      max_sensor_id_bytes_(schema.max_sensor_id_bytes),
      buffer_capacity_(schema.max_record_bytes + simdjson::SIMDJSON_PADDING),
      buffer_(new char[buffer_capacity_]()),
      parser_(schema.max_record_bytes) {
    // A schema built by hand (not by from_json) gets the same checks that matter for safety.
    if (schema.required.size() != schema.fields.size())
        throw Error(IOTS_ERR_INVALID_ARG, "decoder schema: 'required' must have one flag per field");
    if (schema.max_record_bytes == 0)
        throw Error(IOTS_ERR_INVALID_ARG, "decoder schema: max_record_bytes must be positive");
    if (schema.max_sensor_id_bytes == 0)
        throw Error(IOTS_ERR_INVALID_ARG, "decoder schema: max_sensor_id_bytes must be positive");
    for (const auto &path : schema.fields)
        if (!DecoderSchema::valid_path(path))
            throw Error(IOTS_ERR_INVALID_ARG, "decoder schema: invalid field path \"" + path + "\"");
    if (parser_.allocate(schema.max_record_bytes) != simdjson::SUCCESS) throw std::bad_alloc();
    nodes_.push_back(PathNode{KeyMatcher("data"), "data", -1, {}});
    for (size_t f = 0; f < schema.fields.size(); ++f) {
        const std::string &path = schema.fields[f];
        uint32_t node = 0;
        size_t start = 0;
        while (true) {
            size_t dot = path.find('.', start);
            std::string key = path.substr(start, dot == std::string::npos ? std::string::npos
                                                                         : dot - start);
            uint32_t child = 0;
            bool found = false;
            for (uint32_t c : nodes_[node].children)
                if (nodes_[c].key.matches_unescaped(key)) {
                    child = c;
                    found = true;
                }
            if (!found) {
                child = static_cast<uint32_t>(nodes_.size());
                std::string label = nodes_[node].label + "." + key;
                nodes_.push_back(PathNode{KeyMatcher(key), std::move(label), -1, {}});
                nodes_[node].children.push_back(child);
            }
            node = child;
            if (dot == std::string::npos) break;
            start = dot + 1;
        }
        nodes_[node].field = static_cast<int>(f);
        labels_.push_back("data." + path);
        if (schema.required[f]) required_fields_.push_back(static_cast<uint32_t>(f));
    }
    values_.resize(schema.fields.size());
    node_seen_.resize(nodes_.size());
}
void Decoder::Impl::note(std::string_view reason, std::string detail) {
    problem_.note(reason, std::move(detail));
}

void Decoder::Impl::reject(DecodedBatch &out, uint32_t input_index, std::string_view reason,
                           std::string detail) {
    out.rejections_.push_back(Rejection{input_index, reason, std::move(detail)});
}

error_code Decoder::Impl::find_root_key(od::field &field, RootKey &key) {
    const char *raw = field.key().raw();
    if (sensor_id_key_.matches(raw)) {
        key = RootKey::sensor_id;
    } else if (timestamp_key_.matches(raw)) {
        key = RootKey::timestamp;
    } else if (data_key_.matches(raw)) {
        key = RootKey::data;
    } else {
        key = RootKey::other;
        if (raw_key_has_escape(raw)) {
            std::string_view text;
            if (auto err = field.unescaped_key().get(text)) return err;
            if (sensor_id_key_.matches_unescaped(text)) key = RootKey::sensor_id;
            else if (timestamp_key_.matches_unescaped(text)) key = RootKey::timestamp;
            else if (data_key_.matches_unescaped(text)) key = RootKey::data;
        }
    }
    return simdjson::SUCCESS;
}

void Decoder::Impl::decode_one(const RawRecord &record, uint32_t input_index, DecodedBatch &out) {
    if (record.len > max_record_bytes_) {
        reject(out, input_index, reject_reason::too_large,
               "record is " + std::to_string(record.len) + " bytes; max_record_bytes is " +
                   std::to_string(max_record_bytes_));
        return;
    }
    if (record.len == 0 || record.data == nullptr) {
        reject(out, input_index, reject_reason::not_json, "empty record");
        return;
    }
    // librdkafka's buffers have no padding: simdjson reads past the end, so copy.
    std::memcpy(buffer_.get(), record.data, record.len);
    std::memset(buffer_.get() + record.len, 0, simdjson::SIMDJSON_PADDING);

    od::document document;
    error_code err = parser_.iterate(buffer_.get(), record.len, buffer_capacity_).get(document);
    od::object root;
    if (!err) err = document.get_object().get(root);
    if (err == simdjson::INCORRECT_TYPE) {
        // Valid JSON that is not an object is the wrong type; anything else is not JSON.
        const char *kind = nullptr;
        if (valid_non_object_document(document, std::string_view(buffer_.get(), record.len), kind, problem_))
            reject(out, input_index, reject_reason::wrong_type,
                   std::string("record is ") + kind + ", expected a JSON object");
        else
            reject(out, input_index, reject_reason::not_json, "invalid JSON: not an object");
        return;
    }

    std::fill(values_.begin(), values_.end(), std::numeric_limits<double>::quiet_NaN());
    have_sensor_id_ = false;
    have_timestamp_ = false;
    problem_.clear();
    std::fill(node_seen_.begin(), node_seen_.end(), uint8_t{0});
    std::fill(std::begin(seen_root_key_), std::end(seen_root_key_), false);

    if (!err) {
        RootKey key;
        for (auto field_result : root) {
            if ((err = field_result.error())) break;
            od::field &field = field_result.value_unsafe();
            if ((err = find_root_key(field, key))) break;
            if (key != RootKey::other) {
                bool &seen = seen_root_key_[static_cast<size_t>(key)];
                if (seen)
                    note(reject_reason::duplicate_key,
                         std::string("key ") + root_key_name(key) + " appears twice");
                seen = true;
            }
            if (key == RootKey::sensor_id)
                err = read_sensor_id(field.value());
            else if (key == RootKey::timestamp)
                err = read_timestamp(field.value());
            else if (key == RootKey::data)
                err = read_object(nodes_[0], field.value());
            else
                err = validate_value(field.value(), 1, problem_);
            if (err) break;
        }
    }
    if (!err) {
        const char *trailing;
        if (document.current_location().get(trailing) == simdjson::SUCCESS)
            err = simdjson::TRAILING_CONTENT;
    }
    if (err) {
        reject(out, input_index, reject_reason::not_json,
               std::string("invalid JSON: ") + simdjson::error_message(err));
        return;
    }
    if (!problem_.reason.empty()) {
        reject(out, input_index, problem_.reason, std::move(problem_.detail));
        return;
    }
    if (!have_sensor_id_) {
        reject(out, input_index, reject_reason::missing_sensor_id, "no \"sensor_id\" key");
        return;
    }
    if (!have_timestamp_) {
        reject(out, input_index, reject_reason::missing_timestamp, "no \"timestamp\" key");
        return;
    }
    for (uint32_t f : required_fields_) {
        if (std::isnan(values_[f])) {
            reject(out, input_index, reject_reason::missing_field,
                   labels_[f] + " is required and absent");
            return;
        }
    }

    const uint32_t row = out.view_.count;
    for (size_t f = 0; f < values_.size(); ++f) out.field_columns_[f][row] = values_[f];
    if (sensor_id_unescaped_) {
        // The unescaped text lives in the parser, which the next record reuses: copy it, and
        // keep its offset until publish_view() (the vector may still move).
        size_t offset = out.unescaped_ids_.size();
        out.unescaped_ids_.insert(out.unescaped_ids_.end(), sensor_id_.begin(), sensor_id_.end());
        out.sensor_ids_[row] = iots_str_t{nullptr, sensor_id_.size()};
        out.rows_with_unescaped_id_.push_back(DecodedBatch::UnescapedId{row, offset});
    } else {
        // Zero-copy: the same bytes sit at the same offset in the caller's record.
        out.sensor_ids_[row] =
            iots_str_t{record.data + (sensor_id_.data() - buffer_.get()), sensor_id_.size()};
    }
    out.event_time_ms_[row] = event_time_ms_;
    out.streams_[row] = record.stream;
    out.offsets_[row] = record.offset;
    out.payloads_[row] = iots_str_t{record.data, record.len};
    out.input_indices_[row] = input_index;
    out.view_.count = row + 1;
}

Decoder::Decoder(std::shared_ptr<const DecoderSchema> schema)
    : schema_(std::move(schema)), impl_(std::make_unique<Impl>(*schema_)) {}

Decoder::Decoder(DecoderSchema schema)
    : Decoder(std::make_shared<const DecoderSchema>(std::move(schema))) {}

Decoder::~Decoder() = default;

void Decoder::decode(std::span<const RawRecord> in, DecodedBatch &out) {
    if (in.size() > std::numeric_limits<uint32_t>::max())
        throw Error(IOTS_ERR_INVALID_ARG, "decode: more than UINT32_MAX records in one batch");
    out.clear();
    if (out.schema_ != schema_) {
        out.schema_ = schema_;
        out.field_names_.clear();
        for (const auto &name : schema_->fields) out.field_names_.push_back(name.c_str());
        out.field_pointers_.reserve(schema_->fields.size());
    }
    out.reserve_rows(in.size(), schema_->fields.size());
    out.input_count_ = in.size();
    for (size_t i = 0; i < in.size(); ++i) impl_->decode_one(in[i], static_cast<uint32_t>(i), out);
    out.publish_view();
}

}  // namespace iotstream
