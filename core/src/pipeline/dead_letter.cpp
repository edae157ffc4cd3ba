#include "pipeline/dead_letter.hpp"

#include <algorithm>

#include <openssl/evp.h>

#include "common/error.hpp"

namespace iotstream {

namespace {

// Kafka's record format adds at most this much per record and per header (lengths, varints,
// attributes), so estimates with these never undershoot librdkafka's own size check.
constexpr size_t kRecordOverheadBytes = 128;
constexpr size_t kHeaderOverheadBytes = 16;
// Header values we write from other sources (a plugin's reason, a decoder detail quoting the
// input) are cut to this; with the rest they stay well inside kMinDeadLetterBytes.
constexpr size_t kMaxHeaderValueBytes = 1024;

// A prefix of at most `max` bytes that does not end inside a UTF-8 sequence.
std::string_view utf8_prefix(std::string_view text, size_t max) {
    if (text.size() <= max) return text;
    size_t n = max;
    while (n > 0 && (static_cast<unsigned char>(text[n]) & 0xC0) == 0x80) --n;
    return text.substr(0, n);
}

size_t size_of(std::string_view key, std::string_view value, std::span<const KafkaHeader> headers) {
    size_t total = kRecordOverheadBytes + key.size() + value.size();
    for (const auto &[name, header_value] : headers) total += kHeaderOverheadBytes + name.size() + header_value.size();
    return total;
}

bool has_header(std::span<const KafkaHeader> headers, std::string_view name) {
    return std::any_of(headers.begin(), headers.end(), [&](const KafkaHeader &h) { return h.first == name; });
}

}  // namespace

std::string sha256_hex(std::string_view bytes) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    if (EVP_Digest(bytes.data(), bytes.size(), digest, &length, EVP_sha256(), nullptr) != 1)
        throw Error(IOTS_ERR_INTERNAL, "SHA-256 failed");
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out(2 * length, '0');
    for (unsigned int i = 0; i < length; ++i) {
        out[2 * i] = kHex[digest[i] >> 4];
        out[2 * i + 1] = kHex[digest[i] & 0xF];
    }
    return out;
}

DeadLetter::DeadLetter(std::string_view key, std::string_view value, std::vector<KafkaHeader> headers,
                       size_t max_bytes, bool drop_value)
    : key_(key), value_(value), headers_(std::move(headers)) {
    for (auto &header : headers_) header.second = utf8_prefix(header.second, kMaxHeaderValueBytes);
    if (!drop_value && size_of(key_, value_, headers_) <= max_bytes) return;

    truncated_ = true;
    // A dead letter cut before already names its original; a second cut keeps those headers.
    if (!has_header(headers_, dead_letter_header::truncated)) {
        original_size_ = std::to_string(value.size());
        sha256_ = sha256_hex(value);
        headers_.emplace_back(dead_letter_header::truncated, "true");
        headers_.emplace_back(dead_letter_header::original_size, original_size_);
        headers_.emplace_back(dead_letter_header::original_sha256, sha256_);
    }
    // A key over a quarter of the budget is cut too (a key is the producer's to choose).
    if (key_.size() > max_bytes / 4) {
        original_key_size_ = std::to_string(key.size());
        key_ = key_.substr(0, max_bytes / 4);
        headers_.emplace_back(dead_letter_header::original_key_size, original_key_size_);
    }
    size_t fixed = size_of(key_, {}, headers_);
    value_ = drop_value || fixed >= max_bytes ? value_.substr(0, 0) : value_.substr(0, max_bytes - fixed);
}

}  // namespace iotstream
