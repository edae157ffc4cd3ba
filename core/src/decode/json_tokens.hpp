// Token-level helpers of the decoder, on simdjson On-Demand values: raw key matching, what
// kind a value is (including the non-JSON tokens Python writes), RFC 8259 number syntax.
// Inline: they run once or more per field of every record.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include <simdjson.h>

namespace iotstream::json_tokens {

namespace od = simdjson::ondemand;

// Compares a raw (still escaped) key in the padded document with one expected key. Keys of
// up to 16 bytes compare as two masked 8-byte words: the document's padding makes the
// over-read safe, and it beats a memcmp call per key. Schema keys hold no '"' or '\\', so
// matching bytes followed by '"' mean the raw key is exactly this key.
class KeyMatcher {
public:
    explicit KeyMatcher(std::string_view key) : key_(key) {
        unsigned char bytes[16] = {}, mask[16] = {};
        for (size_t i = 0; i < key.size() && i < 16; ++i) {
            bytes[i] = static_cast<unsigned char>(key[i]);
            mask[i] = 0xff;
        }
        std::memcpy(words_, bytes, 16);
        std::memcpy(masks_, mask, 16);
    }

    bool matches(const char *raw) const noexcept {
        if (key_.size() > 16) {
            // Find the raw key's end first: a long over-read could leave the padding.
            size_t n = 0;
            while (n <= key_.size() && raw[n] != '"') ++n;
            return n == key_.size() && std::memcmp(raw, key_.data(), n) == 0;
        }
        if (raw[key_.size()] != '"') return false;
        uint64_t first, second;
        std::memcpy(&first, raw, 8);
        std::memcpy(&second, raw + 8, 8);
        return (((first ^ words_[0]) & masks_[0]) | ((second ^ words_[1]) & masks_[1])) == 0;
    }
    bool matches_unescaped(std::string_view key) const noexcept { return key == key_; }

private:
    std::string key_;
    uint64_t words_[2];
    uint64_t masks_[2];
};

// Whether a raw key holds an escape (it must then be unescaped before comparing). The key is
// closed by a quote (stage 1 checked every string is closed), so the scan stays inside.
inline bool raw_key_has_escape(const char *raw) noexcept {
    while (*raw != '"') {
        if (*raw == '\\') return true;
        ++raw;
    }
    return false;
}

// What a JSON value turned out to be, including the non-JSON tokens Python writes.
enum class Kind { object, array, string, number, boolean, null, non_finite_literal, invalid };

inline const char *kind_name(Kind kind) {
    switch (kind) {
    case Kind::object: return "an object";
    case Kind::array: return "an array";
    case Kind::string: return "a string";
    case Kind::number: return "a number";
    case Kind::boolean: return "a boolean";
    case Kind::null: return "null";
    case Kind::non_finite_literal: return "a non-finite number";
    case Kind::invalid: break;
    }
    return "not valid JSON";
}

inline bool is_json_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// raw_json_token() runs up to the next structural character, so it may end in whitespace.
inline std::string_view raw_token(od::value &value) {
    std::string_view raw = value.raw_json_token();
    while (!raw.empty() && is_json_space(raw.back())) raw.remove_suffix(1);
    return raw;
}

// RFC 8259 number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
inline bool is_json_number(std::string_view s) {
    size_t i = 0, n = s.size();
    auto digit = [&](size_t k) { return k < n && s[k] >= '0' && s[k] <= '9'; };
    if (i < n && s[i] == '-') ++i;
    if (!digit(i)) return false;
    if (s[i] == '0') {
        ++i;
    } else {
        while (digit(i)) ++i;
    }
    if (i < n && s[i] == '.') {
        ++i;
        if (!digit(i)) return false;
        while (digit(i)) ++i;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        ++i;
        if (i < n && (s[i] == '+' || s[i] == '-')) ++i;
        if (!digit(i)) return false;
        while (digit(i)) ++i;
    }
    return i == n;
}

inline bool is_non_finite_literal(std::string_view s) {
    return s == "NaN" || s == "Infinity" || s == "-Infinity";
}

inline Kind classify(od::value &value) {
    od::json_type type;
    std::string_view raw = raw_token(value);
    if (value.type().get(type) != simdjson::SUCCESS)
        return is_non_finite_literal(raw) ? Kind::non_finite_literal : Kind::invalid;
    switch (type) {
    case od::json_type::object: return Kind::object;
    case od::json_type::array: return Kind::array;
    case od::json_type::string: return Kind::string;
    case od::json_type::number:
        if (is_json_number(raw)) return Kind::number;
        return is_non_finite_literal(raw) ? Kind::non_finite_literal : Kind::invalid;
    case od::json_type::boolean:
        return raw == "true" || raw == "false" ? Kind::boolean : Kind::invalid;
    case od::json_type::null: return raw == "null" ? Kind::null : Kind::invalid;
    }
    return Kind::invalid;
}

// Quotes a piece of input for a message, bounded so a huge bad value cannot bloat it.
inline std::string quoted(std::string_view text) {
    constexpr size_t kMaxShown = 64;
    std::string out = "\"";
    out.append(text.substr(0, kMaxShown));
    if (text.size() > kMaxShown) out.append("...");
    out.push_back('"');
    return out;
}

// The text of a string value. Without escapes it points into the parsed buffer (at the same
// offset as in the record); with escapes it is simdjson's unescaped copy, and `unescaped` is
// set. Bad escapes and lone surrogates are errors.
inline simdjson::error_code read_json_string(od::value &value, std::string_view &text, bool &unescaped) {
    std::string_view raw = raw_token(value);  // "..." with its quotes
    std::string_view content = raw.substr(1, raw.size() - 2);
    if (std::memchr(content.data(), '\\', content.size()) == nullptr) {
        text = content;  // points into buffer_, at the same offset as in the caller's record
        unescaped = false;
        return simdjson::SUCCESS;
    }
    unescaped = true;
    return value.get_string().get(text);  // also rejects bad escapes and lone surrogates
}

}  // namespace iotstream::json_tokens
