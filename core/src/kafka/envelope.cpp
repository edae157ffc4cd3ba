#include "kafka/envelope.hpp"

#include <random>

#include <simdjson.h>

#include "common/error.hpp"
#include "common/json_escape.hpp"
#include "decode/timestamp.hpp"

namespace iotstream {

void require_json_object(std::string_view text, const char *what) {
    // One parser per thread keeps its buffers, so validating small objects costs no allocation.
    thread_local simdjson::dom::parser parser;
    // simdjson reads up to SIMDJSON_PADDING bytes past the end; a reused padded copy avoids the
    // allocation its realloc_if_needed path makes on every call.
    thread_local std::string padded;
    padded.assign(text.data(), text.size());
    padded.resize(text.size() + simdjson::SIMDJSON_PADDING, '\0');
    simdjson::dom::element root;
    auto error = parser.parse(padded.data(), text.size(), false).get(root);
    if (error)
        throw Error(IOTS_ERR_INVALID_ARG,
                    std::string(what) + " is not valid JSON: " + simdjson::error_message(error));
    if (root.type() != simdjson::dom::element_type::OBJECT) {
        std::string got;
        switch (root.type()) {
            case simdjson::dom::element_type::ARRAY: got = "an array"; break;
            case simdjson::dom::element_type::STRING: got = "a string"; break;
            case simdjson::dom::element_type::BOOL: got = "a boolean"; break;
            case simdjson::dom::element_type::NULL_VALUE: got = "null"; break;
            default: got = "a number"; break;
        }
        throw Error(IOTS_ERR_INVALID_ARG, std::string(what) + " must be a JSON object, got " + got);
    }
}

void require_utf8(std::string_view text, const char *what) {
    if (!simdjson::validate_utf8(text.data(), text.size()))
        throw Error(IOTS_ERR_INVALID_ARG, std::string(what) + " is not valid UTF-8");
}

namespace {

// xoshiro256**: tiny state, excellent statistical quality, ~1 ns per 64 bits.
class Xoshiro256 {
public:
    Xoshiro256() {
        std::random_device device;
        // splitmix64 spreads the device's entropy over all four words (and avoids all-zero state).
        uint64_t seed = (static_cast<uint64_t>(device()) << 32) ^ device();
        for (auto &word : state_) {
            seed += 0x9e3779b97f4a7c15ULL;
            uint64_t z = seed;
            z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
            z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
            word = z ^ (z >> 31);
        }
    }
    uint64_t next() {
        const uint64_t result = rotl(state_[1] * 5, 7) * 9;
        const uint64_t t = state_[1] << 17;
        state_[2] ^= state_[0];
        state_[3] ^= state_[1];
        state_[1] ^= state_[2];
        state_[0] ^= state_[3];
        state_[2] ^= t;
        state_[3] = rotl(state_[3], 45);
        return result;
    }

private:
    static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
    uint64_t state_[4];
};

constexpr char kHex[] = "0123456789abcdef";

}  // namespace

std::array<char, 36> uuid4() {
    thread_local Xoshiro256 rng;
    uint64_t high = rng.next();
    uint64_t low = rng.next();
    high = (high & ~0xf000ULL) | 0x4000ULL;                       // version 4
    low = (low & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;  // variant 10xx
    unsigned char bytes[16];
    for (int i = 0; i < 8; ++i) {
        bytes[i] = static_cast<unsigned char>(high >> (56 - 8 * i));
        bytes[8 + i] = static_cast<unsigned char>(low >> (56 - 8 * i));
    }
    std::array<char, 36> text;
    size_t pos = 0;
    for (int i = 0; i < 16; ++i) {
        if (i == 4 || i == 6 || i == 8 || i == 10) text[pos++] = '-';
        text[pos++] = kHex[bytes[i] >> 4];
        text[pos++] = kHex[bytes[i] & 0x0f];
    }
    return text;
}

std::string_view EnvelopeWriter::build(std::string_view sensor_id, std::string_view data_json) {
    char stamp[kIso8601NowLength];
    return build(sensor_id, data_json, std::string_view(stamp, format_now_iso8601(stamp)));
}

std::string_view EnvelopeWriter::build_at(std::string_view sensor_id, std::string_view data_json,
                                          int64_t timestamp_ms) {
    // Microseconds like the envelopes stamped "now" (and the seed's isoformat()): one shape
    // for every envelope, whoever chose its time.
    char stamp[kIso8601MaxLength];
    return build(sensor_id, data_json, std::string_view(stamp, format_iso8601_utc_us(timestamp_ms * 1000, stamp)));
}

std::string_view EnvelopeWriter::build(std::string_view sensor_id, std::string_view data_json,
                                       std::string_view stamp) {
    static constexpr std::string_view kOpen = "{\"sensor_id\":\"";
    static constexpr std::string_view kTimestamp = "\",\"timestamp\":\"";
    static constexpr std::string_view kData = "\",\"data\":";
    static constexpr std::string_view kMessageId = ",\"message_id\":\"";
    static constexpr std::string_view kClose = "\"}";
    buffer_.clear();
    buffer_.reserve(kOpen.size() + sensor_id.size() + kTimestamp.size() + stamp.size() + kData.size() +
                    data_json.size() + kMessageId.size() + 36 + kClose.size());
    buffer_.append(kOpen);
    append_json_escaped(buffer_, sensor_id);
    buffer_.append(kTimestamp);
    buffer_.append(stamp);
    buffer_.append(kData);
    buffer_.append(data_json);
    buffer_.append(kMessageId);
    const auto id = uuid4();
    buffer_.append(id.data(), id.size());
    buffer_.append(kClose);
    return buffer_;
}

}  // namespace iotstream
