// Checks on what a plugin's entry function returns: each descriptor's version header, size,
// name, kind, required callbacks and config key table, before the host keeps a copy.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <vector>

#include "common/config_keys.hpp"  // config_type_name
#include "iotstream/plugin.h"

namespace iotstream {

// Size a descriptor must have for the callbacks that ABI minor `abi_minor` requires
// (offsetof the last required field + its size). Only ever grows with the minor.
size_t required_descriptor_size(uint16_t abi_minor);

// Checks descriptor #`index` as the plugin built it and returns the host-side copy:
// zero-initialised, then min(struct_size, sizeof) bytes of it. Its key table is copied the same
// way into `config_keys` (stepped by the plugin's config_key_size), and the copy points there,
// so the host reads every key in this header's layout. Refusals name the file.
iots_plugin_descriptor_t check_descriptor(const std::filesystem::path &file, uint32_t index,
                                          const iots_plugin_descriptor_t *given,
                                          std::vector<iots_config_key_t> &config_keys);

}  // namespace iotstream
