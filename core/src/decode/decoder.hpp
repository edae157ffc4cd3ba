// The reading decoder: turns one poll's Kafka record values (the seed's JSON envelope) into
// the columnar iots_batch_view_t that plugins see, and says why every other record was refused.
//
//   {"sensor_id": "sensor_3_17", "timestamp": "2026-11-26T23:34:43.123456",
//    "data": {"temperature": 27.31, ..., "location": {"lat": 37.51, "lon": -121.5}},
//    "message_id": "<uuid4>"}
//
// Every input record becomes exactly one batch row or one Rejection (decoded + rejected ==
// input). Keys may come in any order; unknown keys are skipped but still validated, so a
// record is accepted only if it is entirely valid JSON.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/config.hpp"
#include "iotstream/plugin.h"

namespace iotstream {

// Which numeric fields under "data" become columns. Immutable once built; share it.
struct DecoderSchema {
    std::vector<std::string> fields;  // dotted paths under "data", e.g. "location.lat"
    std::vector<bool> required;       // required[f]: absence of fields[f] rejects the record
    // Defaults of both: the decoder.* keys' (common/config_keys.cpp), also for a schema built
    // by hand.
    size_t max_record_bytes = default_max_record_bytes();
    // A longer sensor_id (in bytes, after unescaping) is refused as sensor_id_too_long: stages
    // keep state per sensor, so unbounded ids would let input exhaust memory.
    size_t max_sensor_id_bytes = default_max_sensor_id_bytes();

    // The seed's readings (the defaults of the decoder.* keys): temperature, humidity, pressure
    // (required), battery_level, location.lat, location.lon.
    static DecoderSchema defaults();
    static size_t default_max_record_bytes();
    static size_t default_max_sensor_id_bytes();
    // Reads {"fields": [...], "required": [...], "max_record_bytes": n, "max_sensor_id_bytes":
    // n}; unknown keys, bad
    // paths, duplicates, a path that is also another's prefix, or a required name that is not
    // a field throw Error(IOTS_ERR_CONFIG) naming the key. When "fields" is given without
    // "required", the default required fields that are among "fields" stay required.
    static DecoderSchema from_json(const Json &object, const std::string &what = "decoder");

    // Index of a field path, or -1.
    int field_index(std::string_view path) const noexcept;

    // A path is dot-separated non-empty segments: "temperature", "location.lat". Quotes,
    // backslashes and control characters are refused: keys are matched against the raw JSON
    // text, where those would be escaped.
    static bool valid_path(const std::string &path);
};

// Reason codes of a Rejection (static storage; compare by value or by pointer).
namespace reject_reason {
inline constexpr std::string_view not_json = "not_json";
inline constexpr std::string_view missing_sensor_id = "missing_sensor_id";
inline constexpr std::string_view missing_timestamp = "missing_timestamp";
inline constexpr std::string_view bad_timestamp = "bad_timestamp";
inline constexpr std::string_view missing_field = "missing_field";
inline constexpr std::string_view wrong_type = "wrong_type";
inline constexpr std::string_view non_finite = "non_finite";
inline constexpr std::string_view too_large = "too_large";
// A key the decoder reads (sensor_id, timestamp, data or a schema field) appears twice in one
// object: JSON leaves the meaning open and parsers disagree (first wins, last wins), so the
// record is refused rather than read one way here and another way by a consumer.
inline constexpr std::string_view duplicate_key = "duplicate_key";
inline constexpr std::string_view sensor_id_too_long = "sensor_id_too_long";
inline constexpr std::array<std::string_view, 10> all = {
    not_json, missing_sensor_id, missing_timestamp, bad_timestamp,
    missing_field, wrong_type, non_finite, too_large, duplicate_key, sensor_id_too_long};
}  // namespace reject_reason

// One consumed record. `data` is borrowed: it must stay valid as long as the DecodedBatch
// it is decoded into is used (sensor_ids and payloads point into it).
struct RawRecord {
    const char *data;
    size_t len;
    uint32_t stream;  // input stream id: one per (topic, partition)
    int64_t offset;   // Kafka offset within the stream
};

struct Rejection {
    uint32_t input_index;     // position in the decoded span
    std::string_view reason;  // one of reject_reason::*
    std::string detail;       // names the field and what was wrong with it
};

// A decoded batch: columns plus rejections. Reuse one per pipeline thread: decode() clears it
// and keeps every buffer's capacity.
class DecodedBatch {
public:
    DecodedBatch();
    DecodedBatch(const DecodedBatch &) = delete;
    DecodedBatch &operator=(const DecodedBatch &) = delete;

    // Forgets rows and rejections, keeps capacity. view() stays valid (count 0).
    void clear() noexcept;

    uint32_t size() const noexcept { return view_.count; }
    // Records given to the last decode(): size() + rejections().size().
    size_t input_count() const noexcept { return input_count_; }

    // The plugin-facing view. Every column pointer is valid (non-null) even when count is 0;
    // valid until the next decode()/clear() or destruction. Field names live as long as the
    // schema of the decoder that filled the batch (the batch holds a reference to it).
    const iots_batch_view_t &view() const noexcept { return view_; }
    // The same memory as view().anomaly_bits, zeroed by decode(), for the host to set bits in.
    uint64_t *anomaly_bits() noexcept { return anomaly_bits_.data(); }
    // input_indices()[row]: the position in decode()'s input of batch row `row`.
    std::span<const uint32_t> input_indices() const noexcept {
        return {input_indices_.data(), view_.count};
    }
    std::span<const Rejection> rejections() const noexcept { return rejections_; }

    // Checks made after decoding (the pipeline's open-sensor limit): moves the given rows out of
    // the batch into rejections() (input index, reason, detail), keeping the other rows in
    // order; input_count() is unchanged. `rows` must be ascending, each a row of this batch.
    // Call before anything set anomaly bits.
    struct RowRefusal {
        uint32_t row;
        std::string_view reason;  // static storage
        std::string detail;
    };
    void refuse_rows(std::vector<RowRefusal> &&rows);

private:
    friend class Decoder;
    // Grows every column to hold `rows` rows (never shrinks: no per-batch zeroing or freeing).
    void reserve_rows(size_t rows, size_t field_count);
    void publish_view() noexcept;

    std::shared_ptr<const DecoderSchema> schema_;
    std::vector<const char *> field_names_;
    std::vector<std::vector<double>> field_columns_;
    std::vector<const double *> field_pointers_;
    std::vector<iots_str_t> sensor_ids_;
    std::vector<int64_t> event_time_ms_;
    std::vector<uint32_t> streams_;
    std::vector<int64_t> offsets_;
    std::vector<iots_str_t> payloads_;
    std::vector<uint64_t> anomaly_bits_;
    std::vector<uint32_t> input_indices_;
    std::vector<Rejection> rejections_;
    // Unescaped sensor ids (those written with backslash escapes), referenced by offset until
    // publish_view() turns offsets into pointers (the vector may move while it grows).
    struct UnescapedId {
        uint32_t row;
        size_t offset;
    };
    std::vector<char> unescaped_ids_;
    std::vector<UnescapedId> rows_with_unescaped_id_;
    size_t input_count_ = 0;
    iots_batch_view_t view_{};
};

// Decodes records with simdjson On-Demand. One per pipeline thread (not thread-safe); no
// heap allocation per accepted record once its buffers have grown to the batch size.
class Decoder {
public:
    explicit Decoder(std::shared_ptr<const DecoderSchema> schema);
    explicit Decoder(DecoderSchema schema);
    ~Decoder();
    Decoder(const Decoder &) = delete;
    Decoder &operator=(const Decoder &) = delete;

    const DecoderSchema &schema() const noexcept { return *schema_; }

    // Replaces `out`'s contents with the decoded rows and rejections of `in`. Throws only
    // std::bad_alloc, or Error(IOTS_ERR_INVALID_ARG) for more than UINT32_MAX records.
    void decode(std::span<const RawRecord> in, DecodedBatch &out);

private:
    struct Impl;
    std::shared_ptr<const DecoderSchema> schema_;
    std::unique_ptr<Impl> impl_;
};

}  // namespace iotstream
