// libiotstream, loaded at run time as an existing gateway would adopt it: dlopen() and one
// dlsym for the C API table. Everything the host asks of the core goes through `api`.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "app/options.hpp"
#include "iotstream/iotstream.h"

namespace iotstream_host {

// Set once by main() before any command runs; never unloaded.
extern const iots_api_t *api;

// `library` (--library), else next to this program, else the dynamic linker's search path;
// dies with every path tried and why.
const iots_api_t *load_library(const std::string &library);

// An integer flag's value by the core's one rule for integers (iots_parse_int: never wrapped
// or truncated), or std::runtime_error naming the flag: "--brokers must be an integer in
// [1, 16], got 1.5". Needs `api`.
int64_t integer_flag(const std::string &flag, const std::string &text, int64_t min, int64_t max);

// Dies naming `what` and the core's error text when err is not IOTS_OK.
void check(iots_err_t err, const char *errstr, const std::string &what);

// The pipeline's counters (iots_pipeline_stats_json) as JSON; {} when they cannot be read.
nlohmann::json pipeline_stats(iots_pipeline_t *pipeline);

// The core's names and defaults (iots_defaults_json(): topics, partitions, stages, pipeline
// keys), parsed once.
const nlohmann::json &core_defaults();
// The core's topic of `name`: "readings", "windows", "aggregates", "alerts" or "dlq".
std::string core_topic(const char *name);

// iots_plugins_describe_json for --plugins (or the built-in folder).
nlohmann::json describe_plugins(const Options &o);

// A default as the core or a plugin of --plugins states it, for usage(): "partitions",
// "topics.<name>" (iots_defaults_json) or "<plugin>.<key>" (the plugin's config keys).
std::string documented_default(const Options &o, const std::string &name);

}  // namespace iotstream_host
