// The values under a record's root keys: "sensor_id" (length, escapes), "timestamp" (ISO-8601
// or epoch milliseconds), and the schema's paths under "data" (numbers, nested objects). A
// problem with a well-formed value is noted and the walk goes on (decoder_walk.hpp).
#include <cmath>
#include <cstring>
#include <limits>

#include "decode/decoder_walk.hpp"
#include "decode/timestamp.hpp"

namespace iotstream {

using namespace json_tokens;
using simdjson::error_code;

// The schema child named by `field`'s key, or nullptr. Tries the child after the last match
// first: producers write keys in one order, so this is usually a single comparison. Any
// order still works.
const PathNode *Decoder::Impl::find_child(const PathNode &node, od::field &field,
                                          uint32_t &hint, error_code &err) {
    const size_t child_count = node.children.size();
    const char *raw = field.key().raw();
    for (size_t k = 0; k < child_count; ++k) {
        size_t c = hint + k < child_count ? hint + k : hint + k - child_count;
        const PathNode &child = nodes_[node.children[c]];
        if (child.key.matches(raw)) {
            hint = static_cast<uint32_t>(c + 1 < child_count ? c + 1 : 0);
            return &child;
        }
    }
    if (!raw_key_has_escape(raw)) return nullptr;
    std::string_view key;
    if ((err = field.unescaped_key().get(key))) return nullptr;
    for (uint32_t c : node.children)
        if (nodes_[c].key.matches_unescaped(key)) return &nodes_[c];
    return nullptr;
}

error_code Decoder::Impl::read_sensor_id(od::value &value) {
    Kind kind = classify(value);
    if (kind == Kind::string) {
        std::string_view text;
        bool unescaped;
        if (auto err = read_json_string(value, text, unescaped)) return err;
        if (text.empty()) {
            have_sensor_id_ = false;
            note(reject_reason::missing_sensor_id, "sensor_id is an empty string");
            return simdjson::SUCCESS;
        }
        if (text.size() > max_sensor_id_bytes_) {
            have_sensor_id_ = false;
            note(reject_reason::sensor_id_too_long,
                 "sensor_id is " + std::to_string(text.size()) + " bytes, over decoder.max_sensor_id_bytes (" +
                     std::to_string(max_sensor_id_bytes_) + ")");
            return simdjson::SUCCESS;
        }
        sensor_id_ = text;
        sensor_id_unescaped_ = unescaped;
        have_sensor_id_ = true;
        return simdjson::SUCCESS;
    }
    if (kind == Kind::null) {
        have_sensor_id_ = false;  // null is how Python writes "none": treat as absent
        return simdjson::SUCCESS;
    }
    if (kind == Kind::invalid) return simdjson::TAPE_ERROR;
    note(reject_reason::wrong_type,
         std::string("sensor_id is ") + kind_name(kind) + " " + quoted(raw_token(value)) +
             ", expected a non-empty string");
    return validate_value_of_kind(value, kind, 1, problem_);
}

error_code Decoder::Impl::read_timestamp(od::value &value) {
    Kind kind = classify(value);
    if (kind == Kind::string) {
        std::string_view text;
        bool unescaped;
        if (auto err = read_json_string(value, text, unescaped)) return err;
        TimestampParse parsed = parse_iso8601_ms(text);
        if (parsed.error != nullptr) {
            note(reject_reason::bad_timestamp,
                 "timestamp " + quoted(text) + ": " + parsed.error);
            return simdjson::SUCCESS;
        }
        event_time_ms_ = parsed.epoch_ms;
        have_timestamp_ = true;
        return simdjson::SUCCESS;
    }
    if (kind == Kind::number) {
        int64_t epoch_ms;
        if (value.get_int64().get(epoch_ms) != simdjson::SUCCESS) {
            note(reject_reason::bad_timestamp,
                 "timestamp " + quoted(raw_token(value)) +
                     ": a numeric timestamp must be integer epoch milliseconds");
        } else if (epoch_ms < kMinTimestampMs || epoch_ms > kMaxTimestampMs) {
            note(reject_reason::bad_timestamp,
                 "timestamp " + std::to_string(epoch_ms) +
                     ": epoch milliseconds outside years 0000-9999");
        } else {
            event_time_ms_ = epoch_ms;
            have_timestamp_ = true;
        }
        return simdjson::SUCCESS;
    }
    if (kind == Kind::null) {
        have_timestamp_ = false;
        return simdjson::SUCCESS;
    }
    if (kind == Kind::non_finite_literal) {
        note(reject_reason::bad_timestamp, "timestamp is " + std::string(raw_token(value)));
        return simdjson::SUCCESS;
    }
    if (kind == Kind::invalid) return simdjson::TAPE_ERROR;
    note(reject_reason::wrong_type,
         std::string("timestamp is ") + kind_name(kind) +
             ", expected an ISO-8601 string or integer epoch milliseconds");
    return validate_value_of_kind(value, kind, 1, problem_);
}

error_code Decoder::Impl::read_number(const PathNode &leaf, od::value &value) {
    double number;
    if (value.get_double().get(number) == simdjson::SUCCESS) {
        // simdjson refuses numbers that overflow, so this is finite; keep the check cheap
        // and explicit anyway, the rules downstream rely on it.
        if (std::isfinite(number)) {
            values_[static_cast<size_t>(leaf.field)] = number;
            return simdjson::SUCCESS;
        }
    }
    Kind kind = classify(value);
    switch (kind) {
    case Kind::number:  // well-formed, yet not a double: it overflows to infinity
        note(reject_reason::non_finite,
             leaf.label + " is " + quoted(raw_token(value)) + ", which overflows a double");
        return simdjson::SUCCESS;
    case Kind::non_finite_literal:
        note(reject_reason::non_finite, leaf.label + " is " + std::string(raw_token(value)));
        return simdjson::SUCCESS;
    case Kind::null:
        values_[static_cast<size_t>(leaf.field)] = std::numeric_limits<double>::quiet_NaN();
        return simdjson::SUCCESS;
    case Kind::invalid: return simdjson::NUMBER_ERROR;
    default:
        note(reject_reason::wrong_type,
             leaf.label + " is " + kind_name(kind) + ", expected a number");
        return validate_value_of_kind(value, kind, 1, problem_);
    }
}

error_code Decoder::Impl::read_object(const PathNode &node, od::value &value) {
    od::object object;
    if (value.get_object().get(object) != simdjson::SUCCESS) {
        Kind kind = classify(value);
        if (kind == Kind::null) return simdjson::SUCCESS;  // absent: its fields stay NaN
        if (kind == Kind::invalid) return simdjson::TAPE_ERROR;
        note(reject_reason::wrong_type,
             node.label + " is " + kind_name(kind) + ", expected an object");
        return validate_value_of_kind(value, kind, 1, problem_);
    }
    uint32_t hint = 0;
    for (auto field_result : object) {
        // Use the field in place: copying it out costs a store-forwarding stall per key.
        if (auto err = field_result.error()) return err;
        od::field &field = field_result.value_unsafe();
        error_code err = simdjson::SUCCESS;
        const PathNode *match = find_child(node, field, hint, err);
        if (err) return err;
        if (match != nullptr && node_seen_[static_cast<size_t>(match - nodes_.data())]++ != 0)
            note(reject_reason::duplicate_key, "key " + json_tokens::quoted(match->label) + " appears twice");
        if (match == nullptr)
            err = validate_value(field.value(), 1, problem_);
        else if (match->field >= 0)
            err = read_number(*match, field.value());
        else
            err = read_object(*match, field.value());
        if (err) return err;
    }
    return simdjson::SUCCESS;
}

}  // namespace iotstream
