#include "kafka/envelope.hpp"

#include <cstring>
#include <ctime>
#include <random>

#include <simdjson.h>

#include "common/error.hpp"

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

void put_digits(char *out, unsigned value, int width) {
    for (int i = width - 1; i >= 0; --i) {
        out[i] = static_cast<char>('0' + value % 10);
        value /= 10;
    }
}

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

size_t format_iso8601_utc(std::chrono::system_clock::time_point time, char *out) {
    using namespace std::chrono;
    const auto micros = duration_cast<microseconds>(time.time_since_epoch()).count();
    int64_t seconds = micros / 1000000;
    int64_t fraction = micros % 1000000;
    if (fraction < 0) {
        fraction += 1000000;
        seconds -= 1;
    }
    // The "YYYY-MM-DDTHH:MM:SS" prefix changes once a second: format it once per thread per second.
    thread_local int64_t cached_second = INT64_MIN;
    thread_local char cached_prefix[20];
    if (seconds != cached_second) {
        std::time_t t = static_cast<std::time_t>(seconds);
        std::tm parts{};
        gmtime_r(&t, &parts);
        put_digits(cached_prefix, static_cast<unsigned>(parts.tm_year + 1900), 4);
        cached_prefix[4] = '-';
        put_digits(cached_prefix + 5, static_cast<unsigned>(parts.tm_mon + 1), 2);
        cached_prefix[7] = '-';
        put_digits(cached_prefix + 8, static_cast<unsigned>(parts.tm_mday), 2);
        cached_prefix[10] = 'T';
        put_digits(cached_prefix + 11, static_cast<unsigned>(parts.tm_hour), 2);
        cached_prefix[13] = ':';
        put_digits(cached_prefix + 14, static_cast<unsigned>(parts.tm_min), 2);
        cached_prefix[16] = ':';
        put_digits(cached_prefix + 17, static_cast<unsigned>(parts.tm_sec), 2);
        cached_second = seconds;
    }
    std::memcpy(out, cached_prefix, 19);
    out[19] = '.';
    put_digits(out + 20, static_cast<unsigned>(fraction), 6);
    out[26] = 'Z';
    return kIso8601Length;
}

void append_json_escaped(std::string &out, std::string_view text) {
    size_t clean_from = 0;
    for (size_t i = 0; i < text.size(); ++i) {
        const auto c = static_cast<unsigned char>(text[i]);
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        out.append(text.data() + clean_from, i - clean_from);
        clean_from = i + 1;
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            case '\b': out += "\\b"; break;
            case '\f': out += "\\f"; break;
            default: {
                const char escape[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0x0f]};
                out.append(escape, sizeof escape);
            }
        }
    }
    out.append(text.data() + clean_from, text.size() - clean_from);
}

std::string_view EnvelopeWriter::build(std::string_view sensor_id, std::string_view data_json,
                                       std::chrono::system_clock::time_point timestamp) {
    static constexpr std::string_view kOpen = "{\"sensor_id\":\"";
    static constexpr std::string_view kTimestamp = "\",\"timestamp\":\"";
    static constexpr std::string_view kData = "\",\"data\":";
    static constexpr std::string_view kMessageId = ",\"message_id\":\"";
    static constexpr std::string_view kClose = "\"}";
    buffer_.clear();
    buffer_.reserve(kOpen.size() + sensor_id.size() + kTimestamp.size() + kIso8601Length +
                    kData.size() + data_json.size() + kMessageId.size() + 36 + kClose.size());
    buffer_.append(kOpen);
    append_json_escaped(buffer_, sensor_id);
    buffer_.append(kTimestamp);
    char stamp[kIso8601Length];
    buffer_.append(stamp, format_iso8601_utc(timestamp, stamp));
    buffer_.append(kData);
    buffer_.append(data_json);
    buffer_.append(kMessageId);
    const auto id = uuid4();
    buffer_.append(id.data(), id.size());
    buffer_.append(kClose);
    return buffer_;
}

}  // namespace iotstream
