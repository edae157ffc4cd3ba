#include "decode/decoder.hpp"

#include <cmath>
#include <cstring>
#include <limits>
#include <set>

#include <simdjson.h>

#include "decode/timestamp.hpp"

namespace iotstream {

namespace od = simdjson::ondemand;
using simdjson::error_code;

// ------------------------------------------------------------------------------------------
// Schema
// ------------------------------------------------------------------------------------------
namespace {

const char *const kDefaultFields[] = {"temperature",   "humidity",     "pressure",
                                      "battery_level", "location.lat", "location.lon"};
const char *const kDefaultRequired[] = {"temperature", "humidity", "pressure"};
constexpr size_t kMaxFields = 1024;

[[noreturn]] void schema_error(const std::string &what, const std::string &key,
                               const std::string &why) {
    throw Error(IOTS_ERR_CONFIG, what + ": key '" + key + "' " + why);
}

// A path is dot-separated non-empty segments: "temperature", "location.lat".
// Quotes, backslashes and control characters are refused: keys are matched against the raw
// JSON text, where those would be escaped.
bool valid_path(const std::string &path) {
    if (path.empty() || path.front() == '.' || path.back() == '.') return false;
    for (unsigned char c : path)
        if (c < 0x20 || c == '"' || c == '\\') return false;
    return path.find("..") == std::string::npos;
}

}  // namespace

DecoderSchema DecoderSchema::defaults() {
    DecoderSchema schema;
    for (const char *field : kDefaultFields) schema.fields.emplace_back(field);
    schema.required.assign(schema.fields.size(), false);
    for (const char *name : kDefaultRequired)
        schema.required[static_cast<size_t>(schema.field_index(name))] = true;
    return schema;
}

int DecoderSchema::field_index(std::string_view path) const noexcept {
    for (size_t i = 0; i < fields.size(); ++i)
        if (fields[i] == path) return static_cast<int>(i);
    return -1;
}

DecoderSchema DecoderSchema::from_json(const Json &object, const std::string &what) {
    ConfigReader reader(object, what);
    DecoderSchema schema = defaults();

    const bool fields_given = reader.has("fields");
    if (fields_given) {
        Json fields = reader.get_json("fields", Json());
        if (!fields.is_array() || fields.empty())
            schema_error(what, "fields", "must be a non-empty array of field paths");
        if (fields.size() > kMaxFields)
            schema_error(what, "fields", "has more than " + std::to_string(kMaxFields) + " paths");
        schema.fields.clear();
        std::set<std::string> seen;
        for (const Json &entry : fields) {
            if (!entry.is_string())
                schema_error(what, "fields", "must hold strings, got " + entry.dump());
            auto path = entry.get<std::string>();
            if (!valid_path(path))
                schema_error(what, "fields",
                             "has an invalid path \"" + path +
                                 "\" (dot-separated names under \"data\", e.g. \"location.lat\")");
            if (!seen.insert(path).second)
                schema_error(what, "fields", "lists \"" + path + "\" twice");
            schema.fields.push_back(std::move(path));
        }
        // "location" and "location.lat" cannot both be numbers.
        for (const auto &a : schema.fields)
            for (const auto &b : schema.fields)
                if (b.size() > a.size() && b.compare(0, a.size(), a) == 0 && b[a.size()] == '.')
                    schema_error(what, "fields",
                                 "has \"" + a + "\" and \"" + b +
                                     "\": a field cannot also be an object of fields");
    }

    schema.required.assign(schema.fields.size(), false);
    if (reader.has("required")) {
        Json required = reader.get_json("required", Json());
        if (!required.is_array())
            schema_error(what, "required", "must be an array of field paths");
        for (const Json &entry : required) {
            if (!entry.is_string())
                schema_error(what, "required", "must hold strings, got " + entry.dump());
            int index = schema.field_index(entry.get<std::string>());
            if (index < 0)
                schema_error(what, "required",
                             "names \"" + entry.get<std::string>() + "\", which is not in fields");
            schema.required[static_cast<size_t>(index)] = true;
        }
    } else {
        for (const char *name : kDefaultRequired)
            if (int index = schema.field_index(name); index >= 0)
                schema.required[static_cast<size_t>(index)] = true;
    }

    schema.max_record_bytes = static_cast<size_t>(
        reader.get_int("max_record_bytes", 65536, 64, int64_t{1} << 26));
    reader.finish();
    return schema;
}

// ------------------------------------------------------------------------------------------
// DecodedBatch
// ------------------------------------------------------------------------------------------
DecodedBatch::DecodedBatch() {
    // Reserve one of everything so that every view pointer is non-null from the start.
    field_names_.reserve(1);
    field_pointers_.reserve(1);
    rejections_.reserve(16);
    reserve_rows(1, 0);
    publish_view();
}

void DecodedBatch::clear() noexcept {
    rejections_.clear();
    unescaped_ids_.clear();
    rows_with_unescaped_id_.clear();
    input_count_ = 0;
    view_.count = 0;
}

void DecodedBatch::reserve_rows(size_t rows, size_t field_count) {
    rows = std::max<size_t>(rows, 1);
    if (field_columns_.size() != field_count) field_columns_.resize(field_count);
    auto grow = [rows](auto &column) {
        if (column.size() < rows) column.resize(rows);
    };
    for (auto &column : field_columns_) grow(column);
    grow(sensor_ids_);
    grow(event_time_ms_);
    grow(streams_);
    grow(offsets_);
    grow(payloads_);
    grow(anomaly_bits_);
    grow(input_indices_);
}

void DecodedBatch::publish_view() noexcept {
    // Escaped ids were stored as offsets into unescaped_ids_; it no longer moves now.
    for (const UnescapedId &id : rows_with_unescaped_id_)
        sensor_ids_[id.row].data = unescaped_ids_.data() + id.offset;
    std::memset(anomaly_bits_.data(), 0, sizeof(uint64_t) * view_.count);

    field_pointers_.clear();  // keeps capacity; field_count <= capacity reserved in decode()
    for (auto &column : field_columns_) field_pointers_.push_back(column.data());

    view_.struct_size = sizeof(iots_batch_view_t);
    view_.field_count = static_cast<uint32_t>(field_columns_.size());
    view_.field_names = field_names_.data();
    view_.fields = field_pointers_.data();
    view_.sensor_ids = sensor_ids_.data();
    view_.event_time_ms = event_time_ms_.data();
    view_.streams = streams_.data();
    view_.offsets = offsets_.data();
    view_.payloads = payloads_.data();
    view_.anomaly_bits = anomaly_bits_.data();
}

// ------------------------------------------------------------------------------------------
// Decoder
// ------------------------------------------------------------------------------------------
namespace {

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

// One object level of the schema under "data": its keys lead to columns or to deeper objects.
struct PathNode {
    KeyMatcher key;                  // this level's key ("location"); "data" for the root
    std::string label;               // full path for messages ("data.location")
    int field = -1;                  // column index for a leaf, -1 for an object
    std::vector<uint32_t> children;  // node indices
};

// What a JSON value turned out to be, including the non-JSON tokens Python writes.
enum class Kind { object, array, string, number, boolean, null, non_finite_literal, invalid };

const char *kind_name(Kind kind) {
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

// Records are flat telemetry; deeper unknown values are refused rather than recursed into.
constexpr unsigned kMaxValidatedDepth = 64;

inline bool is_json_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// raw_json_token() runs up to the next structural character, so it may end in whitespace.
inline std::string_view raw_token(od::value &value) {
    std::string_view raw = value.raw_json_token();
    while (!raw.empty() && is_json_space(raw.back())) raw.remove_suffix(1);
    return raw;
}

// RFC 8259 number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
bool is_json_number(std::string_view s) {
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

Kind classify(od::value &value) {
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
std::string quoted(std::string_view text) {
    constexpr size_t kMaxShown = 64;
    std::string out = "\"";
    out.append(text.substr(0, kMaxShown));
    if (text.size() > kMaxShown) out.append("...");
    out.push_back('"');
    return out;
}

}  // namespace

struct Decoder::Impl {
    explicit Impl(const DecoderSchema &schema);

    void decode_one(const RawRecord &record, uint32_t input_index, DecodedBatch &out);

private:
    // Walkers return a simdjson error only for malformed JSON; problems with well-formed
    // values are noted with note() and the walk goes on, so malformed JSON later in the
    // record still wins (it is the more fundamental fault).
    const PathNode *find_child(const PathNode &node, od::field &field, uint32_t &hint,
                               error_code &err);
    error_code validate_key(od::field &field);
    error_code read_string(od::value &value, std::string_view &text, bool &unescaped);
    error_code read_sensor_id(od::value &value);
    error_code read_timestamp(od::value &value);
    error_code read_object(const PathNode &node, od::value &value);
    error_code read_number(const PathNode &leaf, od::value &value);
    error_code validate(od::value &value, unsigned depth);
    error_code validate_kind(od::value &value, Kind kind, unsigned depth);
    enum class RootKey { sensor_id, timestamp, data, other };
    error_code find_root_key(od::field &field, RootKey &key);
    bool valid_non_object_document(od::document &document, size_t length, const char *&kind);
    void note(std::string_view reason, std::string detail);
    void reject(DecodedBatch &out, uint32_t input_index, std::string_view reason,
                std::string detail);

    size_t max_record_bytes_;
    size_t buffer_capacity_;
    std::unique_ptr<char[]> buffer_;  // one record plus SIMDJSON_PADDING, reused
    od::parser parser_;
    KeyMatcher sensor_id_key_{"sensor_id"};
    KeyMatcher timestamp_key_{"timestamp"};
    KeyMatcher data_key_{"data"};
    std::vector<PathNode> nodes_;  // nodes_[0] is "data"
    std::vector<uint32_t> required_fields_;
    std::vector<std::string> labels_;  // "data.<path>" per field, for messages

    // Per-record state.
    std::vector<double> values_;
    std::string_view sensor_id_;
    bool sensor_id_unescaped_ = false;
    bool have_sensor_id_ = false;
    int64_t event_time_ms_ = 0;
    bool have_timestamp_ = false;
    std::string_view noted_reason_;
    std::string noted_detail_;
};

Decoder::Impl::Impl(const DecoderSchema &schema)
    : max_record_bytes_(schema.max_record_bytes),
      buffer_capacity_(schema.max_record_bytes + simdjson::SIMDJSON_PADDING),
      buffer_(new char[buffer_capacity_]()),
      parser_(schema.max_record_bytes) {
    // A schema built by hand (not by from_json) gets the same checks that matter for safety.
    if (schema.required.size() != schema.fields.size())
        throw Error(IOTS_ERR_INVALID_ARG, "decoder schema: 'required' must have one flag per field");
    if (schema.max_record_bytes == 0)
        throw Error(IOTS_ERR_INVALID_ARG, "decoder schema: max_record_bytes must be positive");
    for (const auto &path : schema.fields)
        if (!valid_path(path))
            throw Error(IOTS_ERR_INVALID_ARG, "decoder schema: invalid field path \"" + path + "\"");
    if (parser_.allocate(schema.max_record_bytes) != simdjson::SUCCESS) throw std::bad_alloc();
    nodes_.push_back(PathNode{KeyMatcher("data"), "data", -1, {}});
    for (size_t f = 0; f < schema.fields.size(); ++f) {
        const std::string &path = schema.fields[f];
        uint32_t node = 0;
        size_t start = 0;
        while (true) {
            size_t dot = path.find('.', start);
            std::string key = path.substr(start, dot == std::string::npos ? std::string::npos
                                                                         : dot - start);
            uint32_t child = 0;
            bool found = false;
            for (uint32_t c : nodes_[node].children)
                if (nodes_[c].key.matches_unescaped(key)) {
                    child = c;
                    found = true;
                }
            if (!found) {
                child = static_cast<uint32_t>(nodes_.size());
                std::string label = nodes_[node].label + "." + key;
                nodes_.push_back(PathNode{KeyMatcher(key), std::move(label), -1, {}});
                nodes_[node].children.push_back(child);
            }
            node = child;
            if (dot == std::string::npos) break;
            start = dot + 1;
        }
        nodes_[node].field = static_cast<int>(f);
        labels_.push_back("data." + path);
        if (schema.required[f]) required_fields_.push_back(static_cast<uint32_t>(f));
    }
    values_.resize(schema.fields.size());
}

bool Decoder::Impl::valid_non_object_document(od::document &document, size_t length,
                                              const char *&kind) {
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
                    validate(element_result.value_unsafe(), 1) != simdjson::SUCCESS) {
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
            std::string_view text;
            valid = document.get_string().get(text) == simdjson::SUCCESS;
            break;
        }
        default: break;
        }
        // A scalar document is that one token and nothing after it.
        const char *end = buffer_.get() + length;
        while (end > buffer_.get() && is_json_space(end[-1])) --end;
        return valid && raw.data() + raw.size() == end;
    }
    const char *trailing;
    return valid && document.current_location().get(trailing) != simdjson::SUCCESS;
}

void Decoder::Impl::note(std::string_view reason, std::string detail) {
    if (!noted_reason_.empty()) return;  // the first problem found is the one reported
    noted_reason_ = reason;
    noted_detail_ = std::move(detail);
}

void Decoder::Impl::reject(DecodedBatch &out, uint32_t input_index, std::string_view reason,
                           std::string detail) {
    out.rejections_.push_back(Rejection{input_index, reason, std::move(detail)});
}

error_code Decoder::Impl::find_root_key(od::field &field, RootKey &key) {
    const char *raw = field.key().raw();
    if (sensor_id_key_.matches(raw)) {
        key = RootKey::sensor_id;
    } else if (timestamp_key_.matches(raw)) {
        key = RootKey::timestamp;
    } else if (data_key_.matches(raw)) {
        key = RootKey::data;
    } else {
        key = RootKey::other;
        if (raw_key_has_escape(raw)) {
            std::string_view text;
            if (auto err = field.unescaped_key().get(text)) return err;
            if (sensor_id_key_.matches_unescaped(text)) key = RootKey::sensor_id;
            else if (timestamp_key_.matches_unescaped(text)) key = RootKey::timestamp;
            else if (data_key_.matches_unescaped(text)) key = RootKey::data;
        }
    }
    return simdjson::SUCCESS;
}

// Escaped keys are rare: only those are unescaped (which also checks their escapes).
error_code Decoder::Impl::validate_key(od::field &field) {
    if (!raw_key_has_escape(field.key().raw())) return simdjson::SUCCESS;
    std::string_view key;
    return field.unescaped_key().get(key);
}

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

error_code Decoder::Impl::read_string(od::value &value, std::string_view &text, bool &unescaped) {
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

error_code Decoder::Impl::read_sensor_id(od::value &value) {
    Kind kind = classify(value);
    if (kind == Kind::string) {
        std::string_view text;
        bool unescaped;
        if (auto err = read_string(value, text, unescaped)) return err;
        if (text.empty()) {
            have_sensor_id_ = false;
            note(reject_reason::missing_sensor_id, "sensor_id is an empty string");
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
    return validate_kind(value, kind, 1);
}

error_code Decoder::Impl::read_timestamp(od::value &value) {
    Kind kind = classify(value);
    if (kind == Kind::string) {
        std::string_view text;
        bool unescaped;
        if (auto err = read_string(value, text, unescaped)) return err;
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
    return validate_kind(value, kind, 1);
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
        return validate_kind(value, kind, 1);
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
        return validate_kind(value, kind, 1);
    }
    uint32_t hint = 0;
    for (auto field_result : object) {
        // Use the field in place: copying it out costs a store-forwarding stall per key.
        if (auto err = field_result.error()) return err;
        od::field &field = field_result.value_unsafe();
        error_code err = simdjson::SUCCESS;
        const PathNode *match = find_child(node, field, hint, err);
        if (err) return err;
        if (match == nullptr)
            err = validate(field.value(), 1);
        else if (match->field >= 0)
            err = read_number(*match, field.value());
        else
            err = read_object(*match, field.value());
        if (err) return err;
    }
    return simdjson::SUCCESS;
}

error_code Decoder::Impl::validate(od::value &value, unsigned depth) {
    return validate_kind(value, classify(value), depth);
}

// Checks a value we do not otherwise read, so that accepted records are valid JSON all
// through (On-Demand skips unread values without looking at them).
error_code Decoder::Impl::validate_kind(od::value &value, Kind kind, unsigned depth) {
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
            if (auto err = validate(field.value(), depth + 1)) return err;
        }
        return simdjson::SUCCESS;
    }
    case Kind::array: {
        od::array array;
        if (auto err = value.get_array().get(array)) return err;
        for (auto element_result : array) {
            if (auto err = element_result.error()) return err;
            od::value &element = element_result.value_unsafe();
            if (auto err = validate(element, depth + 1)) return err;
        }
        return simdjson::SUCCESS;
    }
    case Kind::string: {
        std::string_view text;
        bool unescaped;
        return read_string(value, text, unescaped);
    }
    case Kind::number:
    case Kind::boolean:
    case Kind::null: return simdjson::SUCCESS;  // classify() checked the token
    case Kind::non_finite_literal:
        // Not JSON, but it is what Python writes for float('nan'): name it for what it is.
        note(reject_reason::non_finite, "a value is " + std::string(raw_token(value)));
        return simdjson::SUCCESS;
    case Kind::invalid: break;
    }
    return simdjson::TAPE_ERROR;
}

void Decoder::Impl::decode_one(const RawRecord &record, uint32_t input_index, DecodedBatch &out) {
    if (record.len > max_record_bytes_) {
        reject(out, input_index, reject_reason::too_large,
               "record is " + std::to_string(record.len) + " bytes; max_record_bytes is " +
                   std::to_string(max_record_bytes_));
        return;
    }
    if (record.len == 0 || record.data == nullptr) {
        reject(out, input_index, reject_reason::not_json, "empty record");
        return;
    }
    // librdkafka's buffers have no padding: simdjson reads past the end, so copy.
    std::memcpy(buffer_.get(), record.data, record.len);
    std::memset(buffer_.get() + record.len, 0, simdjson::SIMDJSON_PADDING);

    od::document document;
    error_code err = parser_.iterate(buffer_.get(), record.len, buffer_capacity_).get(document);
    od::object root;
    if (!err) err = document.get_object().get(root);
    if (err == simdjson::INCORRECT_TYPE) {
        // Valid JSON that is not an object is the wrong type; anything else is not JSON.
        const char *kind = nullptr;
        if (valid_non_object_document(document, record.len, kind))
            reject(out, input_index, reject_reason::wrong_type,
                   std::string("record is ") + kind + ", expected a JSON object");
        else
            reject(out, input_index, reject_reason::not_json, "invalid JSON: not an object");
        return;
    }

    std::fill(values_.begin(), values_.end(), std::numeric_limits<double>::quiet_NaN());
    have_sensor_id_ = false;
    have_timestamp_ = false;
    noted_reason_ = {};

    if (!err) {
        RootKey key;
        for (auto field_result : root) {
            if ((err = field_result.error())) break;
            od::field &field = field_result.value_unsafe();
            if ((err = find_root_key(field, key))) break;
            if (key == RootKey::sensor_id)
                err = read_sensor_id(field.value());
            else if (key == RootKey::timestamp)
                err = read_timestamp(field.value());
            else if (key == RootKey::data)
                err = read_object(nodes_[0], field.value());
            else
                err = validate(field.value(), 1);
            if (err) break;
        }
    }
    if (!err) {
        const char *trailing;
        if (document.current_location().get(trailing) == simdjson::SUCCESS)
            err = simdjson::TRAILING_CONTENT;
    }
    if (err) {
        reject(out, input_index, reject_reason::not_json,
               std::string("invalid JSON: ") + simdjson::error_message(err));
        return;
    }
    if (!noted_reason_.empty()) {
        reject(out, input_index, noted_reason_, std::move(noted_detail_));
        return;
    }
    if (!have_sensor_id_) {
        reject(out, input_index, reject_reason::missing_sensor_id, "no \"sensor_id\" key");
        return;
    }
    if (!have_timestamp_) {
        reject(out, input_index, reject_reason::missing_timestamp, "no \"timestamp\" key");
        return;
    }
    for (uint32_t f : required_fields_) {
        if (std::isnan(values_[f])) {
            reject(out, input_index, reject_reason::missing_field,
                   labels_[f] + " is required and absent");
            return;
        }
    }

    const uint32_t row = out.view_.count;
    for (size_t f = 0; f < values_.size(); ++f) out.field_columns_[f][row] = values_[f];
    if (sensor_id_unescaped_) {
        // The unescaped text lives in the parser, which the next record reuses: copy it, and
        // keep its offset until publish_view() (the vector may still move).
        size_t offset = out.unescaped_ids_.size();
        out.unescaped_ids_.insert(out.unescaped_ids_.end(), sensor_id_.begin(), sensor_id_.end());
        out.sensor_ids_[row] = iots_str_t{nullptr, sensor_id_.size()};
        out.rows_with_unescaped_id_.push_back(DecodedBatch::UnescapedId{row, offset});
    } else {
        // Zero-copy: the same bytes sit at the same offset in the caller's record.
        out.sensor_ids_[row] =
            iots_str_t{record.data + (sensor_id_.data() - buffer_.get()), sensor_id_.size()};
    }
    out.event_time_ms_[row] = event_time_ms_;
    out.streams_[row] = record.stream;
    out.offsets_[row] = record.offset;
    out.payloads_[row] = iots_str_t{record.data, record.len};
    out.input_indices_[row] = input_index;
    out.view_.count = row + 1;
}

Decoder::Decoder(std::shared_ptr<const DecoderSchema> schema)
    : schema_(std::move(schema)), impl_(std::make_unique<Impl>(*schema_)) {}

Decoder::Decoder(DecoderSchema schema)
    : Decoder(std::make_shared<const DecoderSchema>(std::move(schema))) {}

Decoder::~Decoder() = default;

void Decoder::decode(std::span<const RawRecord> in, DecodedBatch &out) {
    if (in.size() > std::numeric_limits<uint32_t>::max())
        throw Error(IOTS_ERR_INVALID_ARG, "decode: more than UINT32_MAX records in one batch");
    out.clear();
    if (out.schema_ != schema_) {
        out.schema_ = schema_;
        out.field_names_.clear();
        for (const auto &name : schema_->fields) out.field_names_.push_back(name.c_str());
        out.field_pointers_.reserve(schema_->fields.size());
    }
    out.reserve_rows(in.size(), schema_->fields.size());
    out.input_count_ = in.size();
    for (size_t i = 0; i < in.size(); ++i) impl_->decode_one(in[i], static_cast<uint32_t>(i), out);
    out.publish_view();
}

}  // namespace iotstream
