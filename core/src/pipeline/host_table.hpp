// The host table (plugin.h's iots_host_api_t) the pipeline hands every plugin instance: C
// trampolines that find the pipeline through the instance's context and call into it.
#pragma once

#include <memory>
#include <string>

#include <spdlog/spdlog.h>

#include "iotstream/plugin.h"

namespace iotstream {
class Pipeline;
class PluginSink;
struct StageMetrics;
}

// What a plugin instance's host context knows: its pipeline and its name, for logs.
struct iots_host_ctx_s {
    iotstream::Pipeline *pipeline;
    std::string plugin;
    std::shared_ptr<spdlog::logger> log;
    iotstream::PluginSink *sink = nullptr;  // a sink plugin's (sink_ack), else nullptr
    iotstream::StageMetrics *metrics = nullptr;  // a stage's counters (records out), else nullptr
};

namespace iotstream {

// The complete table: every entry set, config readers included. Nothing in it throws.
iots_host_api_t make_host_api();

}  // namespace iotstream
