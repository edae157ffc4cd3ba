// A dead letter cut to fit the dead-letter topic. A record the broker accepted can be refused
// on the way back out: its dead letter is the original bytes plus headers, slightly larger.
// Above the limit, the dead letter keeps a prefix of the bytes and says so in headers
// (docs/pipeline.md, "Dead letters"), so no single record can stop the pipeline.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/defaults.hpp"  // kMinDeadLetterBytes
#include "kafka/producer.hpp"

namespace iotstream {

namespace dead_letter_header {
inline constexpr std::string_view reason = "iotstream.reason";
inline constexpr std::string_view detail = "iotstream.detail";
inline constexpr std::string_view source = "iotstream.source";        // input topic:partition:offset
inline constexpr std::string_view output = "iotstream.output";        // topic a refused output was for
inline constexpr std::string_view error = "iotstream.error";          // librdkafka's error name
inline constexpr std::string_view truncated = "iotstream.truncated";  // "true" when cut
inline constexpr std::string_view original_size = "iotstream.original_size";  // value bytes before the cut
inline constexpr std::string_view original_key_size = "iotstream.original_key_size";  // when the key was cut
inline constexpr std::string_view original_sha256 = "iotstream.original_sha256";  // of the whole value, hex
}  // namespace dead_letter_header

// Key, value and headers of one dead letter within `max_bytes` (key + value + headers plus
// Kafka's per-record overhead). Views into the caller's key, value and header strings, which
// must outlive it; not copyable, since its headers point into its own storage.
class DeadLetter {
public:
    // `drop_value`: keep no bytes of the value at all (a dead letter the DLQ itself refused).
    DeadLetter(std::string_view key, std::string_view value, std::vector<KafkaHeader> headers, size_t max_bytes,
               bool drop_value = false);
    DeadLetter(const DeadLetter &) = delete;
    DeadLetter &operator=(const DeadLetter &) = delete;

    std::string_view key() const { return key_; }
    std::string_view value() const { return value_; }
    std::span<const KafkaHeader> headers() const { return headers_; }
    bool truncated() const { return truncated_; }

private:
    std::string_view key_, value_;
    std::vector<KafkaHeader> headers_;
    bool truncated_ = false;
    std::string original_size_, original_key_size_, sha256_;
};

// Lower-case hex SHA-256 of `bytes`.
std::string sha256_hex(std::string_view bytes);

}  // namespace iotstream
