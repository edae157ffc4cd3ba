// The live dashboard of iotstream-host (issue 15): GET / (a page served by the host, no CDN),
// GET /api/summary (throughput history, backlog, dead letters by reason, plugins, outputs),
// GET /api/windows?q=&limit= (the latest window result per sensor, searchable by sensor id) and
// GET /api/alerts (server-sent events: each alert as it is delivered). It reads the pipeline
// only through the C API table: the output tap (ABI 1.4) for results, stats JSON for counters.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "http/server.hpp"
#include "iotstream/iotstream.h"

namespace iotstream_host::dashboard {

struct Limits {
    size_t max_sensors = 200000;  // latest windows kept; further sensors are counted, not kept
    size_t max_alerts = 1000;     // recent alerts kept for late subscribers
    size_t history_seconds = 600;
};

class Dashboard {
public:
    // `produced` (may be empty) reads how many readings this process has produced, for the
    // backlog; `plugins` is iots_plugins_describe_json's document.
    Dashboard(const iots_api_t *api, iots_pipeline_t *pipeline, nlohmann::json plugins,
              std::function<uint64_t()> produced, Limits limits = {});
    ~Dashboard();  // stops the sampler; stop the server first
    Dashboard(const Dashboard &) = delete;
    Dashboard &operator=(const Dashboard &) = delete;

    // Installs the output tap. Before the pipeline starts (the core refuses it after).
    void attach();
    void add_routes(http::Router &router);

    nlohmann::json summary();
    nlohmann::json windows(std::string_view query, size_t limit);
    // SSE frames for the alerts after `cursor` (a sequence number), advancing it.
    std::string alert_events(uint64_t &cursor);

private:
    static void tap(void *opaque, const iots_output_record_t *record);
    void sample_loop();
    nlohmann::json pipeline_stats() const;

    const iots_api_t *api_;
    iots_pipeline_t *pipeline_;
    nlohmann::json plugins_;
    std::function<uint64_t()> produced_;
    Limits limits_;

    struct Sample {
        double t;  // seconds since the dashboard started
        uint64_t produced, consumed, delivered, dead_lettered;
    };
    std::mutex mutex_;  // guards everything below
    std::map<std::string, std::string, std::less<>> latest_window_;  // sensor id -> window JSON
    uint64_t sensors_not_kept_ = 0;
    std::deque<std::pair<uint64_t, std::string>> alerts_;  // (sequence, alert JSON)
    uint64_t alert_sequence_ = 0;
    std::map<std::string, uint64_t, std::less<>> tapped_;  // records per output
    std::deque<Sample> history_;

    std::atomic<bool> stopping_{false};
    std::thread sampler_;
};

// A started server on `listen` (HOST:PORT; port 0: any free port) with the dashboard's routes
// and GET /metrics. Throws std::runtime_error. Stop it before the dashboard and the pipeline go.
std::unique_ptr<http::Server> serve_dashboard(const std::string &listen, Dashboard &dashboard, const iots_api_t *api,
                                              iots_pipeline_t *pipeline);

}  // namespace iotstream_host::dashboard
