#include "plugin_host/plugin_config.hpp"

#include <limits>
#include <map>
#include <string>
#include <string_view>

#include "common/checked_int.hpp"

// The validated configuration of one plugin instance. Every value is converted once, here,
// so that the C readers below are lookups that cannot fail halfway or throw.
struct iots_config_s {
    struct Entry {
        iots_config_type_t type;
        bool is_null = false;     // an optional key without a value
        bool bool_value = false;
        int64_t int_value = 0;
        double double_value = 0;
        std::string string_value; // IOTS_CONFIG_STRING: the string itself
        std::string json_text;    // every key: the value as compact JSON text
    };
    iotstream::Json values = iotstream::Json::object();
    std::map<std::string, Entry, std::less<>> entries;
};

namespace iotstream {
namespace {

const char *type_name(iots_config_type_t type) {
    switch (type) {
        case IOTS_CONFIG_BOOL: return "a boolean";
        case IOTS_CONFIG_INT: return "an integer";
        case IOTS_CONFIG_DOUBLE: return "a number";
        case IOTS_CONFIG_STRING: return "a string";
        case IOTS_CONFIG_JSON: return "any JSON value";
    }
    return "of an unknown type";
}

// Converts `value` for a key of `type`; false when the JSON type does not fit.
bool make_entry(iots_config_type_t type, const Json &value, iots_config_s::Entry &entry) {
    entry.type = type;
    entry.json_text = value.dump();
    switch (type) {
        case IOTS_CONFIG_BOOL:
            if (!value.is_boolean()) return false;
            entry.bool_value = value.get<bool>();
            return true;
        case IOTS_CONFIG_INT:
            if (std::string why; !checked_int(value, std::numeric_limits<int64_t>::min(),
                                              std::numeric_limits<int64_t>::max(), entry.int_value, why))
                return false;
            entry.double_value = static_cast<double>(entry.int_value);
            return true;
        case IOTS_CONFIG_DOUBLE:
            if (!value.is_number()) return false;
            entry.double_value = value.get<double>();
            return true;
        case IOTS_CONFIG_STRING:
            if (!value.is_string()) return false;
            entry.string_value = value.get<std::string>();
            return true;
        case IOTS_CONFIG_JSON:
            return true;
    }
    return false;
}

std::string known_keys(const iots_plugin_descriptor_t &descriptor) {
    std::string list;
    for (uint32_t k = 0; k < descriptor.config_key_count; ++k) {
        if (!list.empty()) list += ", ";
        list += descriptor.config_keys[k].name;
    }
    return list.empty() ? "none" : list;
}

const iots_config_s::Entry *find_entry(const iots_config_t *cfg, const char *key) {
    if (cfg == nullptr || key == nullptr) return nullptr;
    auto it = cfg->entries.find(std::string_view(key));
    if (it == cfg->entries.end() || it->second.is_null) return nullptr;
    return &it->second;
}

int read_bool(const iots_config_t *cfg, const char *key, int *out) {
    auto *entry = find_entry(cfg, key);
    if (entry == nullptr || out == nullptr || entry->type != IOTS_CONFIG_BOOL) return 1;
    *out = entry->bool_value ? 1 : 0;
    return 0;
}

int read_int(const iots_config_t *cfg, const char *key, int64_t *out) {
    auto *entry = find_entry(cfg, key);
    if (entry == nullptr || out == nullptr || entry->type != IOTS_CONFIG_INT) return 1;
    *out = entry->int_value;
    return 0;
}

// An INT key reads as a double too: a plugin may widen a key's type without breaking configs.
int read_double(const iots_config_t *cfg, const char *key, double *out) {
    auto *entry = find_entry(cfg, key);
    if (entry == nullptr || out == nullptr ||
        (entry->type != IOTS_CONFIG_DOUBLE && entry->type != IOTS_CONFIG_INT))
        return 1;
    *out = entry->double_value;
    return 0;
}

int read_string(const iots_config_t *cfg, const char *key, const char **out, size_t *len) {
    auto *entry = find_entry(cfg, key);
    if (entry == nullptr || out == nullptr || entry->type != IOTS_CONFIG_STRING) return 1;
    *out = entry->string_value.c_str();
    if (len != nullptr) *len = entry->string_value.size();
    return 0;
}

int read_json(const iots_config_t *cfg, const char *key, const char **out, size_t *len) {
    auto *entry = find_entry(cfg, key);
    if (entry == nullptr || out == nullptr) return 1;
    *out = entry->json_text.c_str();
    if (len != nullptr) *len = entry->json_text.size();
    return 0;
}

}  // namespace

PluginConfig::PluginConfig(const iots_plugin_descriptor_t &descriptor, const Json &user_config)
    : impl_(std::make_unique<iots_config_s>()) {
    const std::string plugin =
        std::string("plugin '") + (descriptor.name ? descriptor.name : "(unnamed)") + "'";
    if (!user_config.is_null() && !user_config.is_object())
        throw Error(IOTS_ERR_CONFIG, plugin + ": config must be a JSON object, got " +
                                         std::string(user_config.type_name()));
    if (descriptor.config_key_count > 0 && descriptor.config_keys == nullptr)
        throw Error(IOTS_ERR_PLUGIN, plugin + ": config_key_count is " +
                                         std::to_string(descriptor.config_key_count) +
                                         " but config_keys is NULL");

    std::map<std::string, const iots_config_key_t *, std::less<>> declared;
    for (uint32_t k = 0; k < descriptor.config_key_count; ++k) {
        const iots_config_key_t &key = descriptor.config_keys[k];
        if (key.name == nullptr || *key.name == '\0')
            throw Error(IOTS_ERR_PLUGIN, plugin + ": config key #" + std::to_string(k) +
                                             " has no name");
        if (key.type < IOTS_CONFIG_BOOL || key.type > IOTS_CONFIG_JSON)
            throw Error(IOTS_ERR_PLUGIN, plugin + ": config key '" + key.name +
                                             "' has unknown type " +
                                             std::to_string(static_cast<int>(key.type)));
        if (!declared.emplace(key.name, &key).second)
            throw Error(IOTS_ERR_PLUGIN,
                        plugin + ": config key '" + key.name + "' is declared twice");
    }

    if (user_config.is_object()) {
        for (auto &[name, value] : user_config.items()) {
            if (declared.count(name) == 0)
                throw Error(IOTS_ERR_CONFIG, plugin + ": config key '" + name +
                                                 "' is not known (known keys: " +
                                                 known_keys(descriptor) + ")");
        }
    }

    for (auto &[name, key] : declared) {
        iots_config_s::Entry entry;
        Json value;
        bool optional = false;
        Json default_value;
        if (key->default_json != nullptr) {
            try {
                default_value = Json::parse(key->default_json);
            } catch (const Json::parse_error &e) {
                throw Error(IOTS_ERR_PLUGIN, plugin + ": default of config key '" + name +
                                                 "' is not valid JSON: " + e.what());
            }
            optional = default_value.is_null();
        }
        auto given = user_config.is_object() ? user_config.find(name) : user_config.end();
        if (user_config.is_object() && given != user_config.end()) {
            value = *given;
            if (value.is_null() && optional) {
                entry.type = key->type;
                entry.is_null = true;
                entry.json_text = "null";
            } else if (!make_entry(key->type, value, entry)) {
                throw Error(IOTS_ERR_CONFIG, plugin + ": config key '" + name + "' must be " +
                                                 type_name(key->type) + ", got " +
                                                 shown_value(name, value));
            }
        } else if (key->default_json == nullptr) {
            throw Error(IOTS_ERR_CONFIG, plugin + ": config key '" + name +
                                             "' is required (" +
                                             (key->help ? key->help : type_name(key->type)) +
                                             ")");
        } else {
            value = default_value;
            if (optional) {
                entry.type = key->type;
                entry.is_null = true;
                entry.json_text = "null";
            } else if (!make_entry(key->type, value, entry)) {
                throw Error(IOTS_ERR_PLUGIN, plugin + ": default of config key '" + name +
                                                 "' is not " + type_name(key->type) + ": " +
                                                 key->default_json);
            }
        }
        impl_->values[name] = value;
        impl_->entries.emplace(name, std::move(entry));
    }
}

PluginConfig::~PluginConfig() = default;

const Json &PluginConfig::values() const { return impl_->values; }

const iots_config_t *PluginConfig::handle() const { return impl_.get(); }

void fill_config_functions(iots_host_api_t &api) {
    api.config_bool = read_bool;
    api.config_int = read_int;
    api.config_double = read_double;
    api.config_string = read_string;
    api.config_json = read_json;
}

}  // namespace iotstream
