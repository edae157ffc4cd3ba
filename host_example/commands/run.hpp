// The default command's state: everything one run of the IoT job starts, owned here and
// stopped in reverse order. Shared by commands/run.cpp (start, progress, stop) and
// commands/run_summary.cpp (the summary table, --summary-json and the window sample).
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "app/options.hpp"
#include "dashboard/dashboard.hpp"
#include "devices/device_load.hpp"
#include "gateway/gateway.hpp"
#include "http/server.hpp"
#include "iotstream/iotstream.h"

namespace iotstream_host {

struct Run {
    explicit Run(const Options &options) : o(options), gateway_options(options) { gen_stats.struct_size = sizeof gen_stats; }

    const Options &o;
    nlohmann::json file;  // --config
    std::chrono::steady_clock::time_point started;

    iots_broker_t *broker = nullptr;  // NULL with --bootstrap
    std::string bootstrap;
    iots_pipeline_t *pipeline = nullptr;

    // The input: the load generator, or simulated devices through the gateway (--via).
    iots_loadgen_t *gen = nullptr;
    iots_loadgen_stats_t gen_stats{};
    std::unique_ptr<devices::DeviceLoad> devices;

    bool with_gateway = false;
    Options gateway_options;  // the flags, with what --via needs of the gateway
    std::string via_token;    // --via http: the devices' token
    std::unique_ptr<gateway::Gateway> gateway;
    iots_ingest_t *gateway_ingest = nullptr;

    std::unique_ptr<http::Server> metrics_server;
    // The dashboard taps the pipeline's outputs until the pipeline is destroyed: it outlives it.
    std::unique_ptr<dashboard::Dashboard> dashboard;
    std::unique_ptr<http::Server> dashboard_server;
};

// Prints the summary (and writes --summary-json); true when every count reconciles.
bool print_summary(Run &run, const nlohmann::json &stats);

// Prints --show-windows window results read back from iot-windows.
void print_windows(const Options &o, const std::string &bootstrap);

}  // namespace iotstream_host
