// Simulated devices for iotstream-host: readings of the seed's shape from `sensors` devices
// (device id = sensor_id = "sensor_<n>"), sent through the gateway instead of straight to
// Kafka: published over MQTT (libmosquitto, topic devices/<id>/readings) or POSTed over HTTP
// (Boost.Beast, keep-alive). The default run's `--via mqtt|http` and the MQTT load client
// (`iotstream-host devices`, scripts/bench-gateway.sh) both use it.
#pragma once

#include <atomic>
#include <chrono>
#include <mutex>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

namespace iotstream_host::devices {

struct DeviceLoadOptions {
    std::string via = "mqtt";    // "mqtt" | "http"
    std::string mqtt_broker;     // HOST:PORT (via mqtt)
    std::string topic_prefix = "devices/";  // topic: <prefix><device id>/readings
    int qos = 1;
    std::string http_url;        // http://HOST:PORT (via http)
    std::string token;           // the gateway's shared token (via http)
    double rate = 20000;         // readings/s over all connections; 0: as fast as possible
    double duration_s = 0;       // 0: until count (or stop())
    uint64_t count = 0;          // 0: until duration_s
    uint64_t sensors = 100000;
    int connections = 2;         // one thread each
    int batch = 1;               // readings per message/request (a JSON array when > 1; one device)
    double anomaly_share = 0.01;
    uint64_t seed = 1;
};

struct DeviceLoadStats {
    std::atomic<uint64_t> sent{0};      // readings handed to MQTT / posted
    std::atomic<uint64_t> messages{0};  // MQTT messages / HTTP requests
    std::atomic<uint64_t> acked{0};     // readings in messages the broker acknowledged (QoS 1) or
                                        // written (QoS 0); readings the gateway accepted (HTTP)
    std::atomic<uint64_t> failed{0};    // readings refused or lost (HTTP non-202, MQTT errors)
    std::atomic<uint64_t> anomalous{0};
};

class DeviceLoad {
public:
    // Validates and starts the connection threads. Throws std::runtime_error.
    explicit DeviceLoad(const DeviceLoadOptions &options);
    ~DeviceLoad();
    DeviceLoad(const DeviceLoad &) = delete;
    DeviceLoad &operator=(const DeviceLoad &) = delete;

    bool done() const { return finished_.load() != 0; }
    // Stops sending, waits for the messages in flight (up to 10 s) and joins.
    void stop();
    const DeviceLoadStats &stats() const { return stats_; }
    double elapsed_s() const;
    std::string error() const;

private:
    void run_mqtt(int index);
    void run_http(int index);
    uint64_t claim(uint64_t want);

    DeviceLoadOptions options_;
    DeviceLoadStats stats_;
    std::atomic<uint64_t> claimed_{0};
    std::atomic<int> running_{0};
    std::atomic<bool> stop_{false};
    std::chrono::steady_clock::time_point started_;
    std::atomic<std::chrono::steady_clock::rep> finished_{0};  // when the last connection ended
    mutable std::mutex error_mutex_;
    std::string error_;
    std::vector<std::thread> threads_;
};

// `iotstream-host devices`: runs a DeviceLoad with a progress line a second and prints a summary
// (readings/s sent and acknowledged); JSON to summary_json when not empty. Returns the exit code.
int run_devices_command(const DeviceLoadOptions &options, const std::atomic<bool> &stop, const std::string &summary_json);

}  // namespace iotstream_host::devices
