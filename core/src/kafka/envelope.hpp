// The seed's reading envelope, built by hand into a reused buffer:
//   {"sensor_id":"...","timestamp":"2026-11-26T23:34:43.123456Z","data":{...},"message_id":"<uuid4>"}
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace iotstream {

// Throws Error(IOTS_ERR_INVALID_ARG) unless `text` is exactly one well-formed JSON object.
// `what` names the argument in the message ("data_json"). Thread-safe (per-thread parser).
void require_json_object(std::string_view text, const char *what);

// Throws Error(IOTS_ERR_INVALID_ARG) unless `text` is valid UTF-8.
void require_utf8(std::string_view text, const char *what);

// A random (version 4, variant 10xx) UUID in its 36-character text form, from a per-thread
// xoshiro256** generator seeded once from std::random_device. Thread-safe.
std::array<char, 36> uuid4();

// Builds envelopes into one buffer that keeps its capacity between calls. One writer per
// thread; the returned view is valid until the next build().
class EnvelopeWriter {
public:
    // `data_json` must already be a validated JSON object; `sensor_id` is escaped as needed.
    // The timestamp is now, with microseconds, as the seed's Python wrote it.
    std::string_view build(std::string_view sensor_id, std::string_view data_json);
    // The timestamp is `timestamp_ms` with milliseconds ("...T00:00:00.000Z"); the caller keeps
    // it within kMinTimestampMs..kMaxTimestampMs (decode/timestamp.hpp), the decoder's range.
    std::string_view build_at(std::string_view sensor_id, std::string_view data_json, int64_t timestamp_ms);

private:
    std::string_view build(std::string_view sensor_id, std::string_view data_json, std::string_view stamp);
    std::string buffer_;
};

}  // namespace iotstream
