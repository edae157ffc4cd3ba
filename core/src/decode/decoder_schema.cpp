// DecoderSchema: which numeric fields under "data" become columns.
#include <set>

#include "common/config_keys.hpp"
#include "decode/decoder.hpp"

namespace iotstream {

namespace {

constexpr size_t kMaxFields = 1024;

[[noreturn]] void schema_error(const std::string &what, const std::string &key,
                               const std::string &why) {
    throw Error(IOTS_ERR_CONFIG, what + ": key '" + key + "' " + why);
}

// Marks the default required fields (decoder.required) that are among schema.fields.
void mark_default_required(DecoderSchema &schema) {
    for (const Json &name : key_default("decoder.required"))
        if (int index = schema.field_index(name.get<std::string>()); index >= 0)
            schema.required[static_cast<size_t>(index)] = true;
}

}  // namespace

bool DecoderSchema::valid_path(const std::string &path) {
    if (path.empty() || path.front() == '.' || path.back() == '.') return false;
    for (unsigned char c : path)
        if (c < 0x20 || c == '"' || c == '\\') return false;
    return path.find("..") == std::string::npos;
}

DecoderSchema DecoderSchema::defaults() {
    DecoderSchema schema;
    for (const Json &field : key_default("decoder.fields")) schema.fields.push_back(field.get<std::string>());
    schema.required.assign(schema.fields.size(), false);
    mark_default_required(schema);
    return schema;
}

size_t DecoderSchema::default_max_record_bytes() {
    static const auto bytes = key_default("decoder.max_record_bytes").get<size_t>();
    return bytes;
}

size_t DecoderSchema::default_max_sensor_id_bytes() {
    static const auto bytes = key_default("decoder.max_sensor_id_bytes").get<size_t>();
    return bytes;
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
        mark_default_required(schema);
    }

    schema.max_record_bytes = static_cast<size_t>(read_key_int(reader, "decoder.max_record_bytes"));
    schema.max_sensor_id_bytes = static_cast<size_t>(read_key_int(reader, "decoder.max_sensor_id_bytes"));
    reader.finish();
    return schema;
}

}  // namespace iotstream
