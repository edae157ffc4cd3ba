// Building the decoder: the schema's field paths under "data" compiled into the walker's tree
// of object levels (Decoder::Impl, decoder_walk.hpp), with the checks a hand-built schema
// needs. The walk itself, per record, is in decoder.cpp.
#include "decode/decoder.hpp"

#include "decode/decoder_walk.hpp"

namespace iotstream {

using namespace json_tokens;

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

Decoder::Decoder(std::shared_ptr<const DecoderSchema> schema)
    : schema_(std::move(schema)), impl_(std::make_unique<Impl>(*schema_)) {}

Decoder::Decoder(DecoderSchema schema)
    : Decoder(std::make_shared<const DecoderSchema>(std::move(schema))) {}

Decoder::~Decoder() = default;

}  // namespace iotstream
