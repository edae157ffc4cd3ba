// Checking the values the decoder does not read (unknown keys, non-object documents), so an
// accepted record is valid JSON all through: On-Demand skips unread values without looking.
#include "decode/record_validation.hpp"

#include "decode/decoder.hpp"  // reject_reason

namespace iotstream {

using namespace json_tokens;
using simdjson::error_code;

namespace {
// Records are flat telemetry; deeper unknown values are refused rather than recursed into.
constexpr unsigned kMaxValidatedDepth = 64;
}  // namespace

bool valid_non_object_document(od::document &document, std::string_view text, const char *&kind,
                               FirstProblem &problem) {
    od::json_type type;
    if (document.type().get(type) != simdjson::SUCCESS) return false;
    bool valid = false;
    if (type == od::json_type::array) {
        kind = "an array";
        od::array array;
        valid = document.get_array().get(array) == simdjson::SUCCESS;
        if (valid) {
            for (auto element_result : array) {
                if (element_result.error() != simdjson::SUCCESS ||
                    validate_value(element_result.value_unsafe(), 1, problem) != simdjson::SUCCESS) {
                    valid = false;
                    break;
                }
            }
        }
    } else {
        std::string_view raw;
        if (document.raw_json_token().get(raw) != simdjson::SUCCESS) return false;
        while (!raw.empty() && is_json_space(raw.back())) raw.remove_suffix(1);
        switch (type) {
        case od::json_type::number:
            kind = "a number";
            valid = is_json_number(raw);
            break;
        case od::json_type::boolean:
            kind = "a boolean";
            valid = raw == "true" || raw == "false";
            break;
        case od::json_type::null:
            kind = "null";
            valid = raw == "null";
            break;
        case od::json_type::string: {
            kind = "a string";
            std::string_view unescaped;
            valid = document.get_string().get(unescaped) == simdjson::SUCCESS;
            break;
        }
        default: break;
        }
        // A scalar document is that one token and nothing after it.
        const char *end = text.data() + text.size();
        while (end > text.data() && is_json_space(end[-1])) --end;
        return valid && raw.data() + raw.size() == end;
    }
    const char *trailing;
    return valid && document.current_location().get(trailing) != simdjson::SUCCESS;
}

// Escaped keys are rare: only those are unescaped.
error_code validate_key(od::field &field) {
    if (!raw_key_has_escape(field.key().raw())) return simdjson::SUCCESS;
    std::string_view key;
    return field.unescaped_key().get(key);
}

error_code validate_value(od::value &value, unsigned depth, FirstProblem &problem) {
    return validate_value_of_kind(value, classify(value), depth, problem);
}

// Checks a value we do not otherwise read, so that accepted records are valid JSON all
// through (On-Demand skips unread values without looking at them).
error_code validate_value_of_kind(od::value &value, Kind kind, unsigned depth, FirstProblem &problem) {
    // Bounded recursion: a 64 KiB record of '[' must not exhaust the stack.
    if ((kind == Kind::object || kind == Kind::array) && depth >= kMaxValidatedDepth)
        return simdjson::DEPTH_ERROR;
    switch (kind) {
    case Kind::object: {
        od::object object;
        if (auto err = value.get_object().get(object)) return err;
        for (auto field_result : object) {
            if (auto err = field_result.error()) return err;
            od::field &field = field_result.value_unsafe();
            if (auto err = validate_key(field)) return err;
            if (auto err = validate_value(field.value(), depth + 1, problem)) return err;
        }
        return simdjson::SUCCESS;
    }
    case Kind::array: {
        od::array array;
        if (auto err = value.get_array().get(array)) return err;
        for (auto element_result : array) {
            if (auto err = element_result.error()) return err;
            od::value &element = element_result.value_unsafe();
            if (auto err = validate_value(element, depth + 1, problem)) return err;
        }
        return simdjson::SUCCESS;
    }
    case Kind::string: {
        std::string_view text;
        bool unescaped;
        return read_json_string(value, text, unescaped);
    }
    case Kind::number:
    case Kind::boolean:
    case Kind::null: return simdjson::SUCCESS;  // classify() checked the token
    case Kind::non_finite_literal:
        // Not JSON, but it is what Python writes for float('nan'): name it for what it is.
        problem.note(reject_reason::non_finite, "a value is " + std::string(raw_token(value)));
        return simdjson::SUCCESS;
    case Kind::invalid: break;
    }
    return simdjson::TAPE_ERROR;
}

}  // namespace iotstream
