// The device gateway of iotstream-host (issue 14): POST /v1/readings over HTTP, device
// authentication, and the core's ingestion service (iots_ingest_*, through the C API table
// only) behind it: per-reading validation, per-device token buckets, produce to Kafka.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "gateway/device_auth.hpp"
#include "http/server.hpp"
#include "mqtt/mosquitto_process.hpp"
#include "mqtt/mqtt_ingest.hpp"
#include "iotstream/iotstream.h"

namespace iotstream_host::gateway {

struct GatewayOptions {
    std::string listen;  // host:port ("" = not serving; `gateway` defaults to 127.0.0.1:8080)
    std::string device_tokens;
    std::string shared_token_file;
    double device_rate = 0;   // readings/s per device; 0: the config's (or the core's 10)
    double device_burst = 0;  // bucket size; 0: the config's (or the core's 20)
    size_t max_body_bytes = 1 << 20;
    size_t max_connections = 1024;
    int read_timeout_ms = 10000;
    int http_threads = 2;
    mqtt::MqttOptions mqtt;  // mqtt.broker "": HTTP only
};

extern const char *const kGatewayUsage;

// Consumes `flag` (and its value through next()) when it is a gateway flag; throws
// std::runtime_error for a bad value.
bool parse_gateway_flag(const std::string &flag, const std::function<std::string()> &next, GatewayOptions &options);

class Gateway {
public:
    // More routes on the gateway's server (e.g. GET /metrics), given the ingestion handle,
    // which stays valid while the server runs, and the gateway (for metrics_text()).
    using ExtraRoutes = std::function<void(http::Router &, iots_ingest_t *, const Gateway &)>;

    // `ingest_config`: the --config file's "ingest" object (iots_ingest_new's keys); the flags
    // are laid over it, readings go to `bootstrap`, invalid ones to iot-dlq unless it says
    // otherwise. Starts serving. Throws std::runtime_error.
    Gateway(const iots_api_t *api, const GatewayOptions &options, const std::string &bootstrap,
            nlohmann::json ingest_config, const ExtraRoutes &extra_routes = {});
    ~Gateway();
    Gateway(const Gateway &) = delete;
    Gateway &operator=(const Gateway &) = delete;

    std::string url() const;
    // The MQTT broker the gateway subscribes to ("" when none; ours with --mqtt start).
    std::string mqtt_broker() const;
    // Whether the MQTT subscription is granted within timeout_ms (true without MQTT).
    bool wait_mqtt_subscribed(int timeout_ms) const;
    // {"http": {...server and response counters}, "ingest": {...the core's counters},
    //  "mqtt": {...subscriber counters, when subscribed}}
    nlohmann::json stats() const;
    // The gateway's own counters in the Prometheus text format, for GET /metrics after the
    // core's page: the MQTT subscriber's (iotstream_mqtt_*), "" without MQTT.
    std::string metrics_text() const;
    // Stops the MQTT subscriber and the HTTP server, then flushes and closes the ingestion producer; idempotent.
    void stop();
    // The gateway's routes, for a server that serves more (e.g. /metrics).
    void add_routes(http::Router &router);

private:
    http::Response post_readings(const http::Request &request);
    http::Response counted(http::Response response);

    const iots_api_t *api_;
    DeviceAuth auth_;
    iots_ingest_t *ingest_ = nullptr;
    std::string host_;
    std::unique_ptr<http::Server> server_;
    std::unique_ptr<mqtt::MosquittoProcess> own_mqtt_broker_;  // --mqtt start
    std::unique_ptr<mqtt::MqttIngest> mqtt_;
    nlohmann::json final_ingest_stats_;  // the core's counters as they were at stop()
    std::atomic<uint64_t> unauthenticated_{0};
    std::atomic<uint64_t> by_status_[600] = {};
};

// `iotstream-host gateway`: serves until `stop` is set (or for run_for_s when > 0), with a
// progress line a second and a summary (also as JSON to summary_json when not empty).
// Returns the exit code.
int serve_gateway(const iots_api_t *api, const GatewayOptions &options, const std::string &bootstrap,
                  const nlohmann::json &ingest_config, const std::atomic<bool> &stop, double run_for_s,
                  const std::string &summary_json);

}  // namespace iotstream_host::gateway
