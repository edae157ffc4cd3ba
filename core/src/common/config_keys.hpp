// The core's own config keys, described the way plugins describe theirs (iots_config_key_t:
// type, default as JSON text, help), plus integer bounds. One table, pipeline_keys(), is the
// source of every pipeline key's default and range: the config readers take them from it,
// iots_defaults_json() publishes it (with the topic names and default stages) for hosts,
// bindings and docs/pipeline.md (scripts/pipeline-keys-doc.py; checked by a test).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "common/config.hpp"
#include "iotstream/plugin.h"

namespace iotstream {

// One key of a core config document. key.name is its dotted path in the pipeline document
// ("input.max_batch"; "stages[].plugin" for a key of each element of an array);
// key.default_json NULL: required; "null": absent unless given (the reader says what then).
struct CoreConfigKey {
    iots_config_key_t key;
    int64_t min = 0;  // IOTS_CONFIG_INT keys only: the accepted range
    int64_t max = 0;
};

// Every key of the pipeline document (docs/pipeline.md), in the document's order.
std::span<const CoreConfigKey> pipeline_keys();

// The entry of `path`; throws IOTS_ERR_INTERNAL for a path not in the table (a core bug).
const CoreConfigKey &pipeline_key(std::string_view path);

// "bool", "int", "double", "string" or "json" (plugin keys and core keys alike).
const char *config_type_name(iots_config_type_t type);

// Reads the key `path` from `reader` (the object that holds it: the path's last name is the
// key), checked against the table's type and range; absent, the table's default.
int64_t read_key_int(ConfigReader &reader, std::string_view path);
std::string read_key_string(ConfigReader &reader, std::string_view path);
bool read_key_bool(ConfigReader &reader, std::string_view path);
Json read_key_json(ConfigReader &reader, std::string_view path);
// For an int key whose default is "null": nullopt when absent.
std::optional<int64_t> read_key_optional_int(ConfigReader &reader, std::string_view path);
// A key's default as JSON (null for a required key).
Json key_default(std::string_view path);

// The document iots_defaults_json() returns: {"topics": {"readings": ..., "windows": ...,
// "aggregates": ..., "alerts": ..., "dlq": ...}, "partitions": n, "stages": [...],
// "keys": [{"path", "type", "default", "required", "help"[, "min", "max"]}, ...]}.
const std::string &defaults_json();

}  // namespace iotstream
