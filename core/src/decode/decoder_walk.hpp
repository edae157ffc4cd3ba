// Internal to the decoder's files: Decoder::Impl, the record walker, and PathNode, one level of
// its tree of the schema's paths under "data". decoder_paths.cpp builds the tree from the
// schema; decoder.cpp walks each record (kept in one file: the walk's calls inline there).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "decode/decoder.hpp"
#include "decode/json_tokens.hpp"
#include "decode/record_validation.hpp"

namespace iotstream {

// One object level of the schema under "data": its keys lead to columns or to deeper objects.
struct PathNode {
    json_tokens::KeyMatcher key;     // this level's key ("location"); "data" for the root
    std::string label;               // full path for messages ("data.location")
    int field = -1;                  // column index for a leaf, -1 for an object
    std::vector<uint32_t> children;  // node indices
};

struct Decoder::Impl {
    explicit Impl(const DecoderSchema &schema);

    void decode_one(const RawRecord &record, uint32_t input_index, DecodedBatch &out);

private:
    // Walkers return a simdjson error only for malformed JSON; problems with well-formed
    // values are noted with note() and the walk goes on, so malformed JSON later in the
    // record still wins (it is the more fundamental fault).
    const PathNode *find_child(const PathNode &node, json_tokens::od::field &field, uint32_t &hint,
                               simdjson::error_code &err);
    simdjson::error_code read_sensor_id(json_tokens::od::value &value);
    simdjson::error_code read_timestamp(json_tokens::od::value &value);
    simdjson::error_code read_object(const PathNode &node, json_tokens::od::value &value);
    simdjson::error_code read_number(const PathNode &leaf, json_tokens::od::value &value);
    enum class RootKey { sensor_id, timestamp, data, other };
    static const char *root_key_name(RootKey key) {
        return key == RootKey::sensor_id ? "\"sensor_id\""
               : key == RootKey::timestamp ? "\"timestamp\""
                                           : "\"data\"";
    }
    simdjson::error_code find_root_key(json_tokens::od::field &field, RootKey &key);
    void note(std::string_view reason, std::string detail);
    void reject(DecodedBatch &out, uint32_t input_index, std::string_view reason,
                std::string detail);

    size_t max_record_bytes_;
    size_t max_sensor_id_bytes_;
    size_t buffer_capacity_;
    std::unique_ptr<char[]> buffer_;  // one record plus SIMDJSON_PADDING, reused
    json_tokens::od::parser parser_;
    json_tokens::KeyMatcher sensor_id_key_{"sensor_id"};
    json_tokens::KeyMatcher timestamp_key_{"timestamp"};
    json_tokens::KeyMatcher data_key_{"data"};
    std::vector<PathNode> nodes_;  // nodes_[0] is "data"
    std::vector<uint32_t> required_fields_;
    std::vector<std::string> labels_;  // "data.<path>" per field, for messages

    // Per-record: which schema nodes and root keys were seen, to refuse a duplicated key.
    std::vector<uint8_t> node_seen_;
    bool seen_root_key_[3] = {};  // indexed by RootKey (sensor_id, timestamp, data)

    // Per-record state.
    std::vector<double> values_;
    std::string_view sensor_id_;
    bool sensor_id_unescaped_ = false;
    bool have_sensor_id_ = false;
    int64_t event_time_ms_ = 0;
    bool have_timestamp_ = false;
    FirstProblem problem_;
};

}  // namespace iotstream
