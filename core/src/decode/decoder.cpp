// The record walk: one pass over each record's root keys and the schema's paths under "data",
// filling a batch row or noting the first problem for a Rejection.
#include "decode/decoder.hpp"

#include <cmath>
#include <cstring>
#include <limits>

#include "decode/decoder_walk.hpp"
#include "decode/timestamp.hpp"

namespace iotstream {

using namespace json_tokens;
using simdjson::error_code;

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

// The schema child named by `field`'s key, or nullptr. Tries the child after the last match
// first: producers write keys in one order, so this is usually a single comparison. Any
// order still works.
const PathNode *Decoder::Impl::find_child(const PathNode &node, od::field &field,
                                          uint32_t &hint, error_code &err) {
    const size_t child_count = node.children.size();
    const char *raw = field.key().raw();
    for (size_t k = 0; k < child_count; ++k) {
        size_t c = hint + k < child_count ? hint + k : hint + k - child_count;
        const PathNode &child = nodes_[node.children[c]];
        if (child.key.matches(raw)) {
            hint = static_cast<uint32_t>(c + 1 < child_count ? c + 1 : 0);
            return &child;
        }
    }
    if (!raw_key_has_escape(raw)) return nullptr;
    std::string_view key;
    if ((err = field.unescaped_key().get(key))) return nullptr;
    for (uint32_t c : node.children)
        if (nodes_[c].key.matches_unescaped(key)) return &nodes_[c];
    return nullptr;
}

error_code Decoder::Impl::read_sensor_id(od::value &value) {
    Kind kind = classify(value);
    if (kind == Kind::string) {
        std::string_view text;
        bool unescaped;
        if (auto err = read_json_string(value, text, unescaped)) return err;
        if (text.empty()) {
            have_sensor_id_ = false;
            note(reject_reason::missing_sensor_id, "sensor_id is an empty string");
            return simdjson::SUCCESS;
        }
        if (text.size() > max_sensor_id_bytes_) {
            have_sensor_id_ = false;
            note(reject_reason::sensor_id_too_long,
                 "sensor_id is " + std::to_string(text.size()) + " bytes, over decoder.max_sensor_id_bytes (" +
                     std::to_string(max_sensor_id_bytes_) + ")");
            return simdjson::SUCCESS;
        }
        sensor_id_ = text;
        sensor_id_unescaped_ = unescaped;
        have_sensor_id_ = true;
        return simdjson::SUCCESS;
    }
    if (kind == Kind::null) {
        have_sensor_id_ = false;  // null is how Python writes "none": treat as absent
        return simdjson::SUCCESS;
    }
    if (kind == Kind::invalid) return simdjson::TAPE_ERROR;
    note(reject_reason::wrong_type,
         std::string("sensor_id is ") + kind_name(kind) + " " + quoted(raw_token(value)) +
             ", expected a non-empty string");
    return validate_value_of_kind(value, kind, 1, problem_);
}

error_code Decoder::Impl::read_timestamp(od::value &value) {
    Kind kind = classify(value);
    if (kind == Kind::string) {
        std::string_view text;
        bool unescaped;
        if (auto err = read_json_string(value, text, unescaped)) return err;
        TimestampParse parsed = parse_iso8601_ms(text);
        if (parsed.error != nullptr) {
            note(reject_reason::bad_timestamp,
                 "timestamp " + quoted(text) + ": " + parsed.error);
            return simdjson::SUCCESS;
        }
        event_time_ms_ = parsed.epoch_ms;
        have_timestamp_ = true;
        return simdjson::SUCCESS;
    }
    if (kind == Kind::number) {
        int64_t epoch_ms;
        if (value.get_int64().get(epoch_ms) != simdjson::SUCCESS) {
            note(reject_reason::bad_timestamp,
                 "timestamp " + quoted(raw_token(value)) +
                     ": a numeric timestamp must be integer epoch milliseconds");
        } else if (epoch_ms < kMinTimestampMs || epoch_ms > kMaxTimestampMs) {
            note(reject_reason::bad_timestamp,
                 "timestamp " + std::to_string(epoch_ms) +
                     ": epoch milliseconds outside years 0000-9999");
        } else {
            event_time_ms_ = epoch_ms;
            have_timestamp_ = true;
        }
        return simdjson::SUCCESS;
    }
    if (kind == Kind::null) {
        have_timestamp_ = false;
        return simdjson::SUCCESS;
    }
    if (kind == Kind::non_finite_literal) {
        note(reject_reason::bad_timestamp, "timestamp is " + std::string(raw_token(value)));
        return simdjson::SUCCESS;
    }
    if (kind == Kind::invalid) return simdjson::TAPE_ERROR;
    note(reject_reason::wrong_type,
         std::string("timestamp is ") + kind_name(kind) +
             ", expected an ISO-8601 string or integer epoch milliseconds");
    return validate_value_of_kind(value, kind, 1, problem_);
}

error_code Decoder::Impl::read_number(const PathNode &leaf, od::value &value) {
    double number;
    if (value.get_double().get(number) == simdjson::SUCCESS) {
        // simdjson refuses numbers that overflow, so this is finite; keep the check cheap
        // and explicit anyway, the rules downstream rely on it.
        if (std::isfinite(number)) {
            values_[static_cast<size_t>(leaf.field)] = number;
            return simdjson::SUCCESS;
        }
    }
    Kind kind = classify(value);
    switch (kind) {
    case Kind::number:  // well-formed, yet not a double: it overflows to infinity
        note(reject_reason::non_finite,
             leaf.label + " is " + quoted(raw_token(value)) + ", which overflows a double");
        return simdjson::SUCCESS;
    case Kind::non_finite_literal:
        note(reject_reason::non_finite, leaf.label + " is " + std::string(raw_token(value)));
        return simdjson::SUCCESS;
    case Kind::null:
        values_[static_cast<size_t>(leaf.field)] = std::numeric_limits<double>::quiet_NaN();
        return simdjson::SUCCESS;
    case Kind::invalid: return simdjson::NUMBER_ERROR;
    default:
        note(reject_reason::wrong_type,
             leaf.label + " is " + kind_name(kind) + ", expected a number");
        return validate_value_of_kind(value, kind, 1, problem_);
    }
}

error_code Decoder::Impl::read_object(const PathNode &node, od::value &value) {
    od::object object;
    if (value.get_object().get(object) != simdjson::SUCCESS) {
        Kind kind = classify(value);
        if (kind == Kind::null) return simdjson::SUCCESS;  // absent: its fields stay NaN
        if (kind == Kind::invalid) return simdjson::TAPE_ERROR;
        note(reject_reason::wrong_type,
             node.label + " is " + kind_name(kind) + ", expected an object");
        return validate_value_of_kind(value, kind, 1, problem_);
    }
    uint32_t hint = 0;
    for (auto field_result : object) {
        // Use the field in place: copying it out costs a store-forwarding stall per key.
        if (auto err = field_result.error()) return err;
        od::field &field = field_result.value_unsafe();
        error_code err = simdjson::SUCCESS;
        const PathNode *match = find_child(node, field, hint, err);
        if (err) return err;
        if (match != nullptr && node_seen_[static_cast<size_t>(match - nodes_.data())]++ != 0)
            note(reject_reason::duplicate_key, "key " + json_tokens::quoted(match->label) + " appears twice");
        if (match == nullptr)
            err = validate_value(field.value(), 1, problem_);
        else if (match->field >= 0)
            err = read_number(*match, field.value());
        else
            err = read_object(*match, field.value());
        if (err) return err;
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
