#include "plugin_host/descriptor_checks.hpp"

#include <algorithm>
#include <cstring>
#include <limits>
#include <set>
#include <string>
#include <type_traits>

#include "common/checked_int.hpp"
#include "common/config.hpp"
#include "plugin_host/file_checks.hpp"

namespace fs = std::filesystem;

namespace iotstream {
namespace {

constexpr uint32_t kMaxDescriptorSize = 64 * 1024;
constexpr size_t kMaxPluginNameLength = 64;

bool valid_plugin_name(const char *name) {
    const size_t length = std::strlen(name);
    if (length == 0 || length > kMaxPluginNameLength) return false;
    return std::all_of(name, name + length, [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
    });
}


// An enum field a plugin wrote, read as the integer it holds: a C plugin may store any int
// there, and loading a C++ enum outside its declared values is undefined (UBSan flags it;
// found by tests/fuzz/fuzz_plugin_descriptor). Only validated values are read as the enum.
template <typename Enum>
std::underlying_type_t<Enum> raw_value(const Enum &field) {
    std::underlying_type_t<Enum> value;
    std::memcpy(&value, &field, sizeof value);
    return value;
}

bool default_matches(iots_config_type_t type, const Json &value) {
    if (value.is_null()) return true;  // optional key without a value
    switch (type) {
    case IOTS_CONFIG_BOOL: return value.is_boolean();
    case IOTS_CONFIG_INT: {
        int64_t ignored = 0;
        std::string why;
        return checked_int(value, std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max(),
                           ignored, why);
    }
    case IOTS_CONFIG_DOUBLE: return value.is_number();
    case IOTS_CONFIG_STRING: return value.is_string();
    case IOTS_CONFIG_JSON: return true;
    }
    return false;
}

// iots_config_key_t as ABI 1.0 defined it; later minors only append fields.
constexpr size_t kConfigKeySize1_0 = offsetof(iots_config_key_t, help) + sizeof(iots_config_key_t::help);

// Copies the plugin's key table into `keys`, element by element: each is config_key_size bytes
// as the plugin was built (0, or a 1.0 plugin: the 1.0 size); fields a newer plugin.h appended
// are left out, fields an older one lacked read as zero.
void copy_config_keys(const fs::path &file, const iots_plugin_descriptor_t &d, std::vector<iots_config_key_t> &keys) {
    keys.assign(d.config_key_count, iots_config_key_t{});
    if (d.config_key_count == 0) return;
    if (d.config_keys == nullptr) {
        reject_plugin_file(file, std::string("plugin '") + d.name + "': config_key_count is " +
                                     std::to_string(d.config_key_count) + " but config_keys is NULL");
    }
    const size_t step = d.config_key_size != 0 ? d.config_key_size : kConfigKeySize1_0;
    if (step < kConfigKeySize1_0 || step % alignof(iots_config_key_t) != 0) {
        reject_plugin_file(file, std::string("plugin '") + d.name + "': config_key_size " + std::to_string(step) +
                                     " is smaller than an ABI 1.0 config key (" + std::to_string(kConfigKeySize1_0) +
                                     " bytes) or not a multiple of its alignment; set it with sizeof");
    }
    const auto *table = reinterpret_cast<const unsigned char *>(d.config_keys);
    for (uint32_t k = 0; k < d.config_key_count; ++k)
        std::memcpy(&keys[k], table + k * step, std::min(step, sizeof(iots_config_key_t)));
}

// The key table is data the host shows and validates against without running plugin code,
// so it is checked at load time; PluginConfig checks user values against it later.
void check_config_keys(const fs::path &file, const iots_plugin_descriptor_t &d) {
    const std::string plugin = std::string("plugin '") + d.name + "': ";
    std::set<std::string, std::less<>> seen;
    for (uint32_t k = 0; k < d.config_key_count; ++k) {
        const iots_config_key_t &key = d.config_keys[k];
        if (key.name == nullptr || *key.name == '\0')
            reject_plugin_file(file, plugin + "config key #" + std::to_string(k) + " has no name");
        if (!seen.insert(key.name).second)
            reject_plugin_file(file, plugin + "config key '" + key.name + "' is declared twice");
        const auto type = raw_value(key.type);
        if (type < IOTS_CONFIG_BOOL || type > IOTS_CONFIG_JSON)
            reject_plugin_file(file, plugin + "config key '" + key.name + "' has unknown type " +
                             std::to_string(type));
        if (key.default_json == nullptr) continue;
        Json value = Json::parse(key.default_json, nullptr, /*allow_exceptions=*/false);
        if (value.is_discarded())
            reject_plugin_file(file, plugin + "default of config key '" + key.name +
                             "' is not valid JSON: " + key.default_json);
        if (!default_matches(key.type, value))
            reject_plugin_file(file, plugin + "default of config key '" + key.name + "' is not " +
                             config_type_name(key.type) + ": " + key.default_json);
    }
}

// ABI 1.2's state hand-over fields: all or nothing (an older plugin has none: they read as zero).
void check_state_handover(const fs::path &file, iots_plugin_descriptor_t &d) {
    const bool any = d.state_version != 0 || d.state_min_version != 0 || d.export_state != nullptr ||
                     d.import_state != nullptr;
    if (!any) return;
    const std::string plugin = std::string("plugin '") + d.name + "': ";
    if (d.state_version == 0 || d.export_state == nullptr || d.import_state == nullptr)
        reject_plugin_file(file, plugin + "state hand-over needs state_version (>= 1), export_state() and "
                                          "import_state() together (state_version " +
                                          std::to_string(d.state_version) + ", export_state " +
                                          (d.export_state ? "set" : "NULL") + ", import_state " +
                                          (d.import_state ? "set" : "NULL") + ")");
    if (d.state_min_version == 0) d.state_min_version = d.state_version;
    if (d.state_min_version > d.state_version)
        reject_plugin_file(file, plugin + "state_min_version " + std::to_string(d.state_min_version) +
                                     " is above state_version " + std::to_string(d.state_version));
}

// The appended fields a plugin has: those of its ABI minor or older that its struct_size covers
// whole. The rest read as zero, as in a plugin built before they existed: what lies past an
// older minor's fields is not ours to read, and a struct_size that ends inside a field is
// corrupt (fuzz_plugin_descriptor: two bytes of config_key_size made the host step through the
// key table past its end). Fields are in ABI order, so the first one missing ends the rest.
void keep_only_fields_the_plugin_has(iots_plugin_descriptor_t &copy, size_t struct_size) {
    struct AppendedField {
        size_t end;
        uint16_t abi_minor;
    };
#define IOTS_FIELD(field, minor) \
    AppendedField { offsetof(iots_plugin_descriptor_t, field) + sizeof(iots_plugin_descriptor_t::field), minor }
    const AppendedField appended[] = {
        IOTS_FIELD(config_key_size, 1), IOTS_FIELD(state_version, 2), IOTS_FIELD(state_min_version, 2),
        IOTS_FIELD(export_state, 2),    IOTS_FIELD(import_state, 2),  IOTS_FIELD(write_sink, 3),
        IOTS_FIELD(gauges, 4),
    };
#undef IOTS_FIELD
    static_assert(offsetof(iots_plugin_descriptor_t, gauges) + sizeof(iots_plugin_descriptor_t::gauges) ==
                      sizeof(iots_plugin_descriptor_t),
                  "a field appended to the descriptor belongs in `appended`");
    size_t whole = offsetof(iots_plugin_descriptor_t, config_key_size);
    for (const AppendedField &field : appended) {
        if (field.end > struct_size || copy.abi_minor < field.abi_minor) break;
        whole = field.end;
    }
    if (whole < sizeof copy) std::memset(reinterpret_cast<unsigned char *>(&copy) + whole, 0, sizeof copy - whole);
}

}  // namespace

size_t required_descriptor_size(uint16_t abi_minor) {
    // Each minor appends fields; a minor's requirement names its last required field.
    switch (abi_minor) {
    case 0:
    case 1:
    case 2:
    default:
        return offsetof(iots_plugin_descriptor_t, destroy) + sizeof(iots_plugin_descriptor_t::destroy);
    }
}

// Checks one descriptor as the plugin built it and returns the host-side copy.
iots_plugin_descriptor_t check_descriptor(const fs::path &file, uint32_t index,
                                          const iots_plugin_descriptor_t *given,
                                          std::vector<iots_config_key_t> &config_keys) {
    const std::string which = "descriptor #" + std::to_string(index);
    if (given == nullptr) reject_plugin_file(file, which + " is NULL");
    // The first three fields are the same in every ABI version.
    const size_t header_size = offsetof(iots_plugin_descriptor_t, abi_minor) + sizeof(uint16_t);
    if (given->struct_size < header_size) {
        reject_plugin_file(file, which + ": struct_size " + std::to_string(given->struct_size) +
                         " cannot even hold the version header (" + std::to_string(header_size) +
                         " bytes)");
    }
    if (given->abi_major != IOTS_PLUGIN_ABI_MAJOR) {
        reject_plugin_file(file, which + ": built for plugin ABI " + std::to_string(given->abi_major) + "." +
                         std::to_string(given->abi_minor) + ", but this host speaks ABI " +
                         std::to_string(IOTS_PLUGIN_ABI_MAJOR) + ".x (major " +
                         std::to_string(given->abi_major) + " differs); rebuild it against this plugin.h");
    }
    if (given->abi_minor > IOTS_PLUGIN_ABI_MINOR) {
        reject_plugin_file(file, which + ": built for plugin ABI " + std::to_string(given->abi_major) + "." +
                         std::to_string(given->abi_minor) + ", newer than this host's " +
                         std::to_string(IOTS_PLUGIN_ABI_MAJOR) + "." +
                         std::to_string(IOTS_PLUGIN_ABI_MINOR) + " (minor " +
                         std::to_string(given->abi_minor) + " is newer); upgrade iotstream");
    }
    const size_t required = required_descriptor_size(given->abi_minor);
    if (given->struct_size < required) {
        reject_plugin_file(file, which + ": struct_size " + std::to_string(given->struct_size) +
                         " is too small for ABI " + std::to_string(given->abi_major) + "." +
                         std::to_string(given->abi_minor) + ", which needs at least " +
                         std::to_string(required) + " bytes (through destroy)");
    }
    if (given->struct_size > kMaxDescriptorSize) {
        reject_plugin_file(file, which + ": struct_size " + std::to_string(given->struct_size) +
                         " is implausibly large (corrupt descriptor?)");
    }

    iots_plugin_descriptor_t copy{};
    std::memcpy(&copy, given, std::min<size_t>(given->struct_size, sizeof copy));
    keep_only_fields_the_plugin_has(copy, given->struct_size);

    if (copy.name == nullptr) reject_plugin_file(file, which + ": name is NULL");
    if (!valid_plugin_name(copy.name)) {
        reject_plugin_file(file, which + ": plugin name '" + first_bytes(copy.name) +
                         "' is not 1 to " + std::to_string(kMaxPluginNameLength) +
                         " characters of [a-z0-9_]");
    }
    const std::string plugin = std::string("plugin '") + copy.name + "': ";
    // A sink (ABI 1.3) is the one kind whose descriptor must reach write_sink.
    const auto kind = raw_value(copy.kind);
    const bool sink = kind == IOTS_PLUGIN_SINK && copy.abi_minor >= 3;
    if (kind != IOTS_PLUGIN_STAGE && kind != IOTS_PLUGIN_RULE && !sink) {
        reject_plugin_file(file, plugin + "unknown kind " + std::to_string(kind) +
                         " for ABI " + std::to_string(copy.abi_major) + "." + std::to_string(copy.abi_minor) +
                         " (IOTS_PLUGIN_STAGE = 1, IOTS_PLUGIN_RULE = 2, IOTS_PLUGIN_SINK = 3 from ABI 1.3)");
    }
    if (sink && given->struct_size < offsetof(iots_plugin_descriptor_t, write_sink) + sizeof copy.write_sink)
        reject_plugin_file(file, plugin + "a sink's struct_size " + std::to_string(given->struct_size) +
                                     " does not reach write_sink (ABI 1.3)");
    if (!sink && copy.write_sink != nullptr)
        reject_plugin_file(file, plugin + "write_sink() is set but the plugin is not a sink (IOTS_PLUGIN_SINK)");
    const char *missing = copy.create == nullptr                ? "create"
                          : !sink && copy.process == nullptr    ? "process"
                          : sink && copy.write_sink == nullptr  ? "write_sink"
                          : copy.destroy == nullptr             ? "destroy"
                                                                : nullptr;
    if (missing != nullptr) reject_plugin_file(file, plugin + "required callback " + missing + "() is NULL");
    check_state_handover(file, copy);
    copy_config_keys(file, copy, config_keys);
    copy.config_keys = config_keys.data();
    copy.config_key_size = sizeof(iots_config_key_t);
    check_config_keys(file, copy);
    return copy;
}


}  // namespace iotstream
