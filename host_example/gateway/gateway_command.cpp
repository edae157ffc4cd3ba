// `iotstream-host gateway`: the device gateway on its own, in front of a Kafka cluster.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <thread>

#include "gateway/gateway.hpp"
#include "metrics/metrics_route.hpp"

namespace iotstream_host::gateway {

int serve_gateway(const iots_api_t *api, const GatewayOptions &options, const std::string &bootstrap,
                  const nlohmann::json &ingest_config, const std::atomic<bool> &stop, double run_for_s,
                  const std::string &summary_json) {
    Gateway gateway(api, options, bootstrap, ingest_config,
                    [api](http::Router &router, iots_ingest_t *ingest, const Gateway &self) {
                        metrics::add_metrics_route(router, api, nullptr, ingest,
                                                   [&self] { return self.metrics_text(); });
                    });
    std::printf("gateway listening on %s (POST /v1/readings, GET /metrics), producing to %s\n", gateway.url().c_str(),
                bootstrap.c_str());
    if (!gateway.mqtt_broker().empty())
        std::printf("mqtt: subscribing to %s on %s (QoS %d)\n", options.mqtt.topic.c_str(),
                    gateway.mqtt_broker().c_str(), options.mqtt.qos);
    std::printf("%8s %10s %10s %10s %12s %10s %10s %8s %10s\n", "elapsed", "requests", "req/s", "accepted",
                "accepted/s", "rejected", "limited", "401", "mqtt msg/s");
    const auto started = std::chrono::steady_clock::now();
    uint64_t last_requests = 0, last_accepted = 0, last_messages = 0;
    while (!stop) {
        std::this_thread::sleep_for(std::chrono::seconds(1));
        const nlohmann::json s = gateway.stats();
        const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
        const uint64_t requests = s["http"]["requests"], accepted = s["ingest"]["accepted"];
        const nlohmann::json &ingest = s["ingest"];
        const uint64_t rejected = ingest.value("invalid", 0ULL) + ingest.value("too_large", 0ULL) +
                                  ingest.value("forbidden", 0ULL) + ingest.value("backpressure", 0ULL);
        const uint64_t messages = s.contains("mqtt") ? s["mqtt"]["messages"].get<uint64_t>() : 0;
        std::printf("%7.0fs %10llu %10llu %10llu %12llu %10llu %10llu %8llu %10llu\n", elapsed,
                    static_cast<unsigned long long>(requests),
                    static_cast<unsigned long long>(requests - last_requests),
                    static_cast<unsigned long long>(accepted),
                    static_cast<unsigned long long>(accepted - last_accepted),
                    static_cast<unsigned long long>(rejected),
                    static_cast<unsigned long long>(ingest.value("rate_limited", 0ULL)),
                    static_cast<unsigned long long>(s["http"]["unauthenticated"].get<uint64_t>()),
                    static_cast<unsigned long long>(messages - last_messages));
        std::fflush(stdout);
        last_requests = requests;
        last_accepted = accepted;
        last_messages = messages;
        if (run_for_s > 0 && elapsed >= run_for_s) break;
    }
    gateway.stop();  // flushes: every accepted reading is delivered or failed
    const nlohmann::json s = gateway.stats();
    std::printf("\nGateway summary\n%s\n", s.dump(2).c_str());
    if (!summary_json.empty()) std::ofstream(summary_json) << nlohmann::json{{"gateway", s}}.dump(2) << "\n";
    return 0;
}

}  // namespace iotstream_host::gateway
