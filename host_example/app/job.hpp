// What every command builds from the flags and the --config file: the documents handed to the
// core (pipeline, load generator) and the broker they talk to.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "app/options.hpp"
#include "iotstream/iotstream.h"

namespace iotstream_host {

// The --config file ({} without one); dies on a file that is not a JSON object or has an
// unknown top-level key.
nlohmann::json read_config_file(const Options &o);

// The embedded broker with the job's topics, unless --bootstrap names a cluster (then *broker
// stays NULL). Returns the bootstrap address.
std::string start_broker(const Options &o, const nlohmann::json &file, iots_broker_t **broker);

// iots_loadgen_new's document: the file's "loadgen" with the flags laid over it.
nlohmann::json loadgen_config(const Options &o, const nlohmann::json &file, const std::string &bootstrap);

// iots_pipeline_new's document: the file's "pipeline" with the flags laid over it.
// `embedded_broker`: the data dies with this process, so a stop closes open windows by default.
nlohmann::json pipeline_config(const Options &o, const nlohmann::json &file, const std::string &bootstrap,
                               bool embedded_broker);

}  // namespace iotstream_host
