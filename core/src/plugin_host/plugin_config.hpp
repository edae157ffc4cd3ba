// A plugin instance's configuration: validated against the descriptor's key table before
// create() runs, and read back by the plugin through the host table's config_* functions.
#pragma once

#include <memory>

#include "common/config.hpp"  // Json, Error
#include "iotstream/plugin.h"

struct iots_config_s;  // defined in plugin_config.cpp: the validated values, in C-readable form

namespace iotstream {

// Validates `user_config` (a JSON object, or null = {}) against descriptor.config_keys:
// rejects an unknown key or a value of the wrong type with
// Error(IOTS_ERR_CONFIG, "plugin '<name>': config key '<key>' ..."), and fills every absent key
// from its default_json (a key with default_json == NULL is required). IOTS_CONFIG_DOUBLE
// accepts integers. A default_json of "null" makes a key optional with no value: the config
// readers then report it as absent, and the user may also pass null for it.
// A descriptor whose key table is itself broken (duplicate key, default of the wrong type) is
// refused with IOTS_ERR_PLUGIN.
class PluginConfig {
public:
    PluginConfig(const iots_plugin_descriptor_t &descriptor, const Json &user_config);
    ~PluginConfig();
    PluginConfig(const PluginConfig &) = delete;
    PluginConfig &operator=(const PluginConfig &) = delete;

    const Json &values() const;           // the complete, validated object
    const iots_config_t *handle() const;  // what create() receives; valid while *this lives

private:
    std::unique_ptr<iots_config_s> impl_;
};

// Sets the config_bool/config_int/config_double/config_string/config_json entries of a host
// table. The functions never throw and return non-zero for an absent key or another type.
void fill_config_functions(iots_host_api_t &api);

}  // namespace iotstream
