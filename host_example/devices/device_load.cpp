#include "devices/device_load.hpp"

#include <mosquitto.h>
#include <unistd.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <random>
#include <stdexcept>

#include "http/server.hpp"

namespace iotstream_host::devices {

namespace {

using Clock = std::chrono::steady_clock;
namespace beast = boost::beast;
namespace asio = boost::asio;

// The seed's reading ranges (as the core's load generator draws them).
class Readings {
public:
    Readings(uint64_t seed, double anomaly_share) : rng_(seed), anomaly_share_(anomaly_share) {}

    // Appends {"sensor_id": ..., "data": {...}}; true when anomalous.
    bool append(std::string &out, const std::string &sensor) {
        double temperature = uniform(20.0, 35.0), humidity = uniform(30.0, 80.0), battery = uniform(15.0, 100.0);
        const bool anomalous = uniform(0, 1) < anomaly_share_;
        if (anomalous) {
            switch (rng_() % 5) {
                case 0: temperature = uniform(40.5, 50.0); break;
                case 1: temperature = uniform(-10.0, -0.5); break;
                case 2: humidity = uniform(95.5, 100.0); break;
                case 3: humidity = uniform(0.0, 4.5); break;
                default: battery = uniform(0.0, 9.5); break;
            }
        }
        char data[192];
        std::snprintf(data, sizeof data,
                      R"({"temperature":%.2f,"humidity":%.2f,"pressure":%.2f,"battery_level":%.1f})", temperature,
                      humidity, uniform(1000.0, 1020.0), battery);
        out += R"({"sensor_id":")";
        out += sensor;
        out += R"(","data":)";
        out += data;
        out += '}';
        return anomalous;
    }

private:
    double uniform(double lo, double hi) { return std::uniform_real_distribution<double>(lo, hi)(rng_); }
    std::mt19937_64 rng_;
    double anomaly_share_;
};

// Paces one connection on an absolute schedule: its n-th reading is not sent before n / rate.
class Pacer {
public:
    Pacer(double rate_per_s, Clock::time_point start) : rate_(rate_per_s), start_(start) {}
    void wait(uint64_t sent_readings) const {
        if (rate_ <= 0) return;
        const auto due = start_ + std::chrono::duration_cast<Clock::duration>(
                                      std::chrono::duration<double>(static_cast<double>(sent_readings) / rate_));
        if (due > Clock::now()) std::this_thread::sleep_until(due);
    }

private:
    double rate_;
    Clock::time_point start_;
};

struct MqttConnection {
    std::atomic<int64_t> outstanding{0};
    std::atomic<uint64_t> *acked = nullptr;
    int batch = 1;
};

void on_publish(mosquitto *, void *obj, int /*mid*/) {
    auto *c = static_cast<MqttConnection *>(obj);
    c->outstanding.fetch_sub(1, std::memory_order_relaxed);
    c->acked->fetch_add(static_cast<uint64_t>(c->batch), std::memory_order_relaxed);
}

std::once_flag g_lib_init;

// The next message of a connection: `n` readings of its next device (devices are spread over
// connections; each cycles through its share), a JSON array when n > 1.
void next_message(Readings &readings, uint64_t n, uint64_t &sequence, const DeviceLoadOptions &options,
                  std::string &sensor, std::string &payload, std::atomic<uint64_t> &anomalous) {
    sensor = "sensor_" + std::to_string(sequence % options.sensors);
    sequence += static_cast<uint64_t>(options.connections);
    payload.clear();
    if (n > 1) payload += '[';
    for (uint64_t i = 0; i < n; ++i) {
        if (i > 0) payload += ',';
        if (readings.append(payload, sensor)) anomalous.fetch_add(1, std::memory_order_relaxed);
    }
    if (n > 1) payload += ']';
}

}  // namespace

DeviceLoad::DeviceLoad(const DeviceLoadOptions &options) : options_(options) {
    if (options_.via != "mqtt" && options_.via != "http")
        throw std::runtime_error("--via must be mqtt or http, got '" + options_.via + "'");
    if (options_.via == "mqtt" && options_.mqtt_broker.empty()) throw std::runtime_error("devices: no MQTT broker");
    if (options_.via == "http" && options_.http_url.empty()) throw std::runtime_error("devices: no gateway URL");
    if (options_.connections < 1 || options_.batch < 1 || options_.sensors < 1)
        throw std::runtime_error("devices: connections, batch and sensors must be >= 1");
    if (options_.duration_s <= 0 && options_.count == 0) throw std::runtime_error("devices: give a duration or a count");
    std::call_once(g_lib_init, [] { mosquitto_lib_init(); });
    started_ = Clock::now();
    running_ = options_.connections;
    for (int i = 0; i < options_.connections; ++i)
        threads_.emplace_back([this, i] {
            try {
                if (options_.via == "mqtt") run_mqtt(i);
                else run_http(i);
            } catch (const std::exception &e) {
                std::lock_guard lock(error_mutex_);
                if (error_.empty()) error_ = e.what();
            }
            if (running_.fetch_sub(1) == 1) finished_ = Clock::now().time_since_epoch().count();
        });
}

DeviceLoad::~DeviceLoad() { stop(); }

void DeviceLoad::stop() {
    stop_ = true;
    for (std::thread &t : threads_)
        if (t.joinable()) t.join();
}

double DeviceLoad::elapsed_s() const {
    const auto end = done() ? Clock::time_point(Clock::duration(finished_.load())) : Clock::now();
    return std::chrono::duration<double>(end - started_).count();
}

std::string DeviceLoad::error() const {
    std::lock_guard lock(error_mutex_);
    return error_;
}

// Readings this connection may send next (0: done), so that `count` holds over all of them.
uint64_t DeviceLoad::claim(uint64_t want) {
    if (stop_) return 0;
    if (options_.duration_s > 0 && elapsed_s() >= options_.duration_s) return 0;
    if (options_.count == 0) return want;
    const uint64_t before = claimed_.fetch_add(want);
    if (before >= options_.count) return 0;
    return std::min(want, options_.count - before);
}

void DeviceLoad::run_mqtt(int index) {
    const auto [host, port] = http::split_listen(options_.mqtt_broker, "--mqtt");
    MqttConnection connection;
    connection.acked = &stats_.acked;
    connection.batch = options_.batch;
    const std::string id = "iotstream-devices-" + std::to_string(getpid()) + "-" + std::to_string(index);
    mosquitto *mosq = mosquitto_new(id.c_str(), true, &connection);
    if (!mosq) throw std::runtime_error("mosquitto_new failed");
    struct Destroy {
        mosquitto *m;
        ~Destroy() { mosquitto_destroy(m); }
    } destroy{mosq};
    mosquitto_int_option(mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
    mosquitto_max_inflight_messages_set(mosq, 100);
    mosquitto_publish_callback_set(mosq, on_publish);
    if (int rc = mosquitto_connect(mosq, host.c_str(), port, 30); rc != MOSQ_ERR_SUCCESS)
        throw std::runtime_error("devices: MQTT " + options_.mqtt_broker + ": " + mosquitto_strerror(rc));
    // No network thread: this thread publishes (libmosquitto then writes each message at once,
    // without waking a loop thread through its socket pair) and runs the loop itself for the
    // acknowledgements, every 64 messages and whenever it waits.
    auto loop = [&](int timeout_ms) {
        const int rc = mosquitto_loop(mosq, timeout_ms, 1000);
        if (rc == MOSQ_ERR_NO_CONN || rc == MOSQ_ERR_CONN_LOST) mosquitto_reconnect(mosq);
    };

    Readings readings(options_.seed * 1000003 + static_cast<uint64_t>(index), options_.anomaly_share);
    Pacer pacer(options_.rate / options_.connections, started_);
    std::string payload, sensor, topic;
    uint64_t sequence = static_cast<uint64_t>(index), mine = 0;
    uint64_t my_messages = 0;
    constexpr int64_t kMaxOutstanding = 5000;  // messages libmosquitto holds for us, at most
    for (;;) {
        const uint64_t n = claim(static_cast<uint64_t>(options_.batch));
        if (n == 0) break;
        next_message(readings, n, sequence, options_, sensor, payload, stats_.anomalous);
        topic = options_.topic_prefix + sensor + "/readings";
        while (connection.outstanding.load(std::memory_order_relaxed) >= kMaxOutstanding && !stop_) loop(10);
        connection.batch = static_cast<int>(n);  // the last message may be shorter
        connection.outstanding.fetch_add(1, std::memory_order_relaxed);
        const int rc = mosquitto_publish(mosq, nullptr, topic.c_str(), static_cast<int>(payload.size()),
                                         payload.data(), options_.qos, false);
        if (rc != MOSQ_ERR_SUCCESS) {
            connection.outstanding.fetch_sub(1, std::memory_order_relaxed);
            stats_.failed.fetch_add(n, std::memory_order_relaxed);
            if (rc == MOSQ_ERR_NO_CONN || rc == MOSQ_ERR_CONN_LOST) std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
        stats_.sent.fetch_add(n, std::memory_order_relaxed);
        stats_.messages.fetch_add(1, std::memory_order_relaxed);
        mine += n;
        if (++my_messages % 64 == 0) loop(0);
        pacer.wait(mine);
    }
    const auto deadline = Clock::now() + std::chrono::seconds(10);
    while (connection.outstanding.load() > 0 && Clock::now() < deadline) loop(5);
    const int64_t lost = connection.outstanding.load();
    if (lost > 0) stats_.failed.fetch_add(static_cast<uint64_t>(lost) * options_.batch, std::memory_order_relaxed);
    mosquitto_disconnect(mosq);
}

void DeviceLoad::run_http(int index) {
    std::string authority = options_.http_url;
    if (authority.rfind("http://", 0) == 0) authority = authority.substr(7);
    if (const size_t slash = authority.find('/'); slash != std::string::npos) authority.resize(slash);
    const auto [host, port] = http::split_listen(authority, "--via http");
    asio::io_context io;
    asio::ip::tcp::resolver resolver(io);
    const auto endpoints = resolver.resolve(host, std::to_string(port));
    beast::tcp_stream stream(io);
    bool open = false;
    beast::flat_buffer buffer;

    Readings readings(options_.seed * 1000003 + static_cast<uint64_t>(index), options_.anomaly_share);
    Pacer pacer(options_.rate / options_.connections, started_);
    std::string payload, sensor;
    uint64_t sequence = static_cast<uint64_t>(index), mine = 0;
    for (;;) {
        const uint64_t n = claim(static_cast<uint64_t>(options_.batch));
        if (n == 0) break;
        next_message(readings, n, sequence, options_, sensor, payload, stats_.anomalous);
        beast::http::request<beast::http::string_body> request{beast::http::verb::post, "/v1/readings", 11};
        request.set(beast::http::field::host, authority);
        request.set(beast::http::field::content_type, "application/json");
        request.set("X-Device-Id", sensor);
        request.set(beast::http::field::authorization, "Bearer " + options_.token);
        request.body() = payload;
        request.prepare_payload();
        uint64_t accepted = 0;
        try {
            if (!open) {
                stream.connect(endpoints);
                open = true;
            }
            stream.expires_after(std::chrono::seconds(10));
            beast::http::write(stream, request);
            beast::http::response<beast::http::string_body> response;
            beast::http::read(stream, buffer, response);
            if (response.result_int() == 202) {
                const nlohmann::json body = nlohmann::json::parse(response.body(), nullptr, false);
                accepted = body.is_object() ? body.value("accepted", uint64_t{0}) : 0;
            }
            if (!response.keep_alive()) {
                stream.close();
                open = false;
            }
        } catch (const std::exception &) {
            stream.close();
            open = false;
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        stats_.acked.fetch_add(accepted, std::memory_order_relaxed);
        stats_.failed.fetch_add(n - accepted, std::memory_order_relaxed);
        stats_.sent.fetch_add(n, std::memory_order_relaxed);
        stats_.messages.fetch_add(1, std::memory_order_relaxed);
        mine += n;
        pacer.wait(mine);
    }
}

int run_devices_command(const DeviceLoadOptions &options, const std::atomic<bool> &stop, const std::string &summary_json) {
    DeviceLoad load(options);
    std::printf("devices: %" PRIu64 " sensors over %s (%s), %d connection(s), %d reading(s)/message%s\n",
                options.sensors, options.via.c_str(),
                options.via == "mqtt" ? (options.mqtt_broker + ", QoS " + std::to_string(options.qos)).c_str()
                                      : options.http_url.c_str(),
                options.connections, options.batch, options.rate > 0 ? "" : ", as fast as possible");
    std::printf("%8s %12s %10s %12s %10s\n", "elapsed", "sent", "sent/s", "acked", "failed");
    uint64_t last_sent = 0;
    auto last = Clock::now();
    while (!load.done() && !stop) {
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        if (Clock::now() - last < std::chrono::seconds(1) && !load.done()) continue;
        const double dt = std::chrono::duration<double>(Clock::now() - last).count();
        last = Clock::now();
        const DeviceLoadStats &s = load.stats();
        std::printf("%7.0fs %12" PRIu64 " %10.0f %12" PRIu64 " %10" PRIu64 "\n", load.elapsed_s(), s.sent.load(),
                    static_cast<double>(s.sent.load() - last_sent) / dt, s.acked.load(), s.failed.load());
        last_sent = s.sent.load();
    }
    load.stop();
    const DeviceLoadStats &s = load.stats();
    const double elapsed = load.elapsed_s();
    nlohmann::json summary = {{"via", options.via},         {"qos", options.qos},
                              {"sent", s.sent.load()},      {"messages", s.messages.load()},
                              {"acked", s.acked.load()},    {"failed", s.failed.load()},
                              {"anomalous", s.anomalous.load()}, {"elapsed_s", elapsed},
                              {"sent_per_s", static_cast<double>(s.sent.load()) / std::max(elapsed, 1e-9)}};
    if (!load.error().empty()) summary["error"] = load.error();
    std::printf("\ndevices summary\n%s\n", summary.dump(2).c_str());
    if (!summary_json.empty()) std::ofstream(summary_json) << summary.dump(2) << "\n";
    return load.error().empty() ? 0 : 1;
}

}  // namespace iotstream_host::devices
