#include "mqtt/mqtt_ingest.hpp"

#include "app/library.hpp"

#include <mosquitto.h>
#include <mqtt_protocol.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "http/server.hpp"

namespace iotstream_host::mqtt {

using Json = nlohmann::json;

const char *const kMqttUsage = R"(MQTT (iotstream-host gateway, or the default run):
  --mqtt HOST:PORT        subscribe to readings on this MQTT broker; "start": run a mosquitto
                          of our own on a free loopback port (stopped with us)
  --mqtt-topic FILTER     default $share/iotstream/devices/+/readings; the device id is the
                          topic level the first '+' matches
  --mqtt-qos 0|1          subscription QoS (default 1: a PUBACK leaves after the reading is
                          accepted, rate limited, or refused; see docs/gateway.md)
  --mqtt-client-id ID     default iotstream-gateway-<hostname>-<pid>; give each gateway its own
                          stable id to resume its session after a restart
  --mqtt-clients N        connections in the shared subscription, each with its own thread
                          (default 1)
  --mqtt-session-expiry S seconds the broker keeps the session across a lost connection
                          (default 60; a clean stop ends it at once)
)";

namespace {

constexpr size_t kMaxDeviceIdBytes = 256;

// By the core's one rule (iots_parse_int), as every integer flag.
int int_flag(const std::string &flag, const std::string &text, int min, int max) {
    return static_cast<int>(integer_flag(flag, text, min, max));
}

// The filter a subscriber's topics are matched against: without a "$share/<group>/" prefix.
std::string_view unshared(std::string_view filter) {
    constexpr std::string_view kShare = "$share/";
    if (filter.substr(0, kShare.size()) != kShare) return filter;
    const size_t group_end = filter.find('/', kShare.size());
    return group_end == std::string_view::npos ? std::string_view() : filter.substr(group_end + 1);
}

bool is_blank(std::string_view text) { return text.find_first_not_of(" \t\r\n") == std::string_view::npos; }

std::once_flag g_lib_init;

}  // namespace

bool parse_mqtt_flag(const std::string &flag, const std::function<std::string()> &next, MqttOptions &o) {
    if (flag == "--mqtt") o.broker = next();
    else if (flag == "--mqtt-topic") o.topic = next();
    else if (flag == "--mqtt-qos") o.qos = int_flag(flag, next(), 0, 1);
    else if (flag == "--mqtt-client-id") o.client_id = next();
    else if (flag == "--mqtt-clients") o.clients = int_flag(flag, next(), 1, 64);
    else if (flag == "--mqtt-session-expiry") o.session_expiry_s = int_flag(flag, next(), 0, 86400 * 7);
    else return false;
    return true;
}

std::string device_from_topic(const std::string &filter, const std::string &topic) {
    const std::string_view pattern = unshared(filter);
    std::string_view rest = topic;
    size_t level_start = 0;
    for (;;) {
        const size_t pattern_end = std::min(pattern.find('/', level_start), pattern.size());
        const std::string_view level = pattern.substr(level_start, pattern_end - level_start);
        const size_t topic_end = std::min(rest.find('/'), rest.size());
        const std::string_view value = rest.substr(0, topic_end);
        if (level == "+") return value.empty() ? std::string() : std::string(value);
        if (level == "#" || level != value) return {};
        if (pattern_end == pattern.size() || topic_end == rest.size()) return {};
        level_start = pattern_end + 1;
        rest.remove_prefix(topic_end + 1);
    }
}

std::vector<std::string> split_readings(std::string_view payload) {
    std::vector<std::string> parts;
    const size_t start = payload.find_first_not_of(" \t\r\n");
    if (start != std::string_view::npos && payload[start] == '[') {
        Json root = Json::parse(payload, nullptr, false);
        if (root.is_array()) {
            for (const Json &element : root) parts.push_back(element.dump());
            return parts;
        }
        parts.emplace_back(payload);
        return parts;
    }
    size_t lines = 0;
    for (size_t pos = 0; pos <= payload.size(); pos = std::min(payload.find('\n', pos), payload.size()) + 1)
        if (!is_blank(payload.substr(pos, std::min(payload.find('\n', pos), payload.size()) - pos))) ++lines;
    if (lines < 2 || Json::parse(payload, nullptr, false).is_object()) {
        parts.emplace_back(payload);
        return parts;
    }
    for (size_t pos = 0; pos <= payload.size();) {
        const size_t end = std::min(payload.find('\n', pos), payload.size());
        if (std::string_view line = payload.substr(pos, end - pos); !is_blank(line)) parts.emplace_back(line);
        pos = end + 1;
    }
    return parts;
}

struct MqttIngest::Client {
    MqttIngest *owner = nullptr;
    std::string id;
    mosquitto *mosq = nullptr;
    std::atomic<bool> connected{false};
    std::atomic<bool> subscribed{false};
    std::thread network;  // run_network()
    std::mutex wake_mutex;
    std::condition_variable wake;  // ends a reconnect backoff early on stop
    bool stop = false;             // under wake_mutex: DISCONNECT is queued, flush it and end
    std::atomic<int> reconnect_delay_s{1};
};

namespace {

void on_connect(mosquitto *mosq, void *obj, int rc, int /*flags*/, const mosquitto_property *) {
    auto *client = static_cast<MqttIngest::Client *>(obj);
    client->owner->connected(*client, mosq, rc);
}

void on_disconnect(mosquitto *, void *obj, int rc, const mosquitto_property *) {
    auto *client = static_cast<MqttIngest::Client *>(obj);
    client->owner->disconnected(*client, rc);
}

void on_subscribe(mosquitto *, void *obj, int, int count, const int *granted, const mosquitto_property *) {
    auto *client = static_cast<MqttIngest::Client *>(obj);
    client->owner->subscribed(*client, count > 0 && granted[0] < 128 ? granted[0] : -1);
}

void on_message(mosquitto *, void *obj, const mosquitto_message *message, const mosquitto_property *) {
    auto *client = static_cast<MqttIngest::Client *>(obj);
    client->owner->handle(message->topic,
                          std::string_view(static_cast<const char *>(message->payload),
                                           static_cast<size_t>(std::max(message->payloadlen, 0))));
}

}  // namespace

MqttIngest::MqttIngest(const iots_api_t *api, iots_ingest_t *ingest, const MqttOptions &options)
    : api_(api), ingest_(ingest), options_(options), broker_(options.broker) {
    uint16_t port = 0;
    std::tie(host_, port) = http::split_listen(options.broker, "--mqtt");
    port_ = port;
    if (port_ == 0) throw std::runtime_error("--mqtt needs HOST:PORT with a port, got '" + options.broker + "'");
    const std::string_view pattern = unshared(options.topic);
    if (pattern.empty() || pattern.find('+') == std::string_view::npos)
        throw std::runtime_error("--mqtt-topic '" + options.topic +
                                 "' needs a '+' level for the device id, e.g. devices/+/readings");
    std::call_once(g_lib_init, [] { mosquitto_lib_init(); });

    std::string base = options.client_id;
    if (base.empty()) {
        char hostname[256] = "host";
        gethostname(hostname, sizeof hostname - 1);
        base = "iotstream-gateway-" + std::string(hostname) + "-" + std::to_string(getpid());
    }
    mosquitto_property *connect_properties = nullptr;
    mosquitto_property_add_int32(&connect_properties, MQTT_PROP_SESSION_EXPIRY_INTERVAL,
                                 static_cast<uint32_t>(options.session_expiry_s));
    try {
        for (int i = 0; i < options.clients; ++i) {
            auto client = std::make_unique<Client>();
            client->owner = this;
            client->id = options.clients > 1 ? base + "-" + std::to_string(i) : base;
            // clean_session false: with a session expiry, a reconnect resumes the session and the
            // broker sends again the QoS 1 messages we had not acknowledged.
            client->mosq = mosquitto_new(client->id.c_str(), false, client.get());
            if (!client->mosq) throw std::runtime_error("mosquitto_new failed for client id '" + client->id + "'");
            mosquitto_int_option(client->mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5);
            mosquitto_int_option(client->mosq, MOSQ_OPT_RECEIVE_MAXIMUM, 100);
            // Our own network thread (run_network): libmosquitto queues packets instead of
            // writing them from the calling thread, so a PUBACK still leaves after on_message.
            mosquitto_threaded_set(client->mosq, true);
            mosquitto_connect_v5_callback_set(client->mosq, on_connect);
            mosquitto_disconnect_v5_callback_set(client->mosq, on_disconnect);
            mosquitto_message_v5_callback_set(client->mosq, on_message);
            mosquitto_subscribe_v5_callback_set(client->mosq, on_subscribe);
            // A first connection that fails is retried by the network thread, with the backoff.
            const int rc = mosquitto_connect_bind_v5(client->mosq, host_.c_str(), port_, options.keepalive_s, nullptr,
                                                     connect_properties);
            if (rc != MOSQ_ERR_SUCCESS && rc != MOSQ_ERR_ERRNO && rc != MOSQ_ERR_NO_CONN)
                throw std::runtime_error("MQTT " + broker_ + ": " + mosquitto_strerror(rc));
            if (rc != MOSQ_ERR_SUCCESS)
                std::fprintf(stderr, "mqtt: %s not reachable yet (%s); retrying with backoff\n", broker_.c_str(),
                             mosquitto_strerror(rc));
            Client &started = *client;
            clients_.push_back(std::move(client));
            started.network = std::thread([this, &started] { run_network(started); });
        }
    } catch (...) {
        mosquitto_property_free_all(&connect_properties);
        stop();
        throw;
    }
    mosquitto_property_free_all(&connect_properties);
}

MqttIngest::~MqttIngest() { stop(); }

void MqttIngest::connected(Client &client, mosquitto *mosq, int rc) {
    if (rc != 0) {
        std::fprintf(stderr, "mqtt: %s refused client '%s': %s\n", broker_.c_str(), client.id.c_str(),
                     mosquitto_reason_string(rc));
        return;
    }
    client.connected = true;
    client.reconnect_delay_s = 1;
    counters_.connects.fetch_add(1, std::memory_order_relaxed);
    counters_.connected.fetch_add(1, std::memory_order_relaxed);
    // Again on every connection: a resumed session keeps it, a new one needs it.
    const int sub = mosquitto_subscribe_v5(mosq, nullptr, options_.topic.c_str(), options_.qos, 0, nullptr);
    if (sub != MOSQ_ERR_SUCCESS)
        std::fprintf(stderr, "mqtt: subscribing to %s failed: %s\n", options_.topic.c_str(), mosquitto_strerror(sub));
}

void MqttIngest::subscribed(Client &client, int granted_qos) {
    if (granted_qos < 0) {
        std::fprintf(stderr, "mqtt: %s refused the subscription to %s\n", broker_.c_str(), options_.topic.c_str());
        return;
    }
    if (!client.subscribed.exchange(true)) counters_.subscribed.fetch_add(1, std::memory_order_relaxed);
}

void MqttIngest::disconnected(Client &client, int rc) {
    if (client.subscribed.exchange(false)) counters_.subscribed.fetch_sub(1, std::memory_order_relaxed);
    if (!client.connected.exchange(false)) return;
    counters_.disconnects.fetch_add(1, std::memory_order_relaxed);
    counters_.connected.fetch_sub(1, std::memory_order_relaxed);
    if (!stopping_)
        std::fprintf(stderr, "mqtt: client '%s' lost %s (%s); reconnecting with backoff\n", client.id.c_str(),
                     broker_.c_str(), mosquitto_strerror(rc));
}

// One message: submit, count each reading's result, and resubmit the readings refused for
// backpressure (a full producer queue) until they are accepted or the gateway stops. The
// PUBACK of a QoS 1 message leaves after this returns.
void MqttIngest::handle(const char *topic, std::string_view payload) {
    counters_.messages.fetch_add(1, std::memory_order_relaxed);
    const std::string device = device_from_topic(options_.topic, topic ? topic : "");
    if (device.empty() || device.size() > kMaxDeviceIdBytes) {
        counters_.dropped.fetch_add(1, std::memory_order_relaxed);
        return;
    }
    std::string retry;
    std::string_view current = payload;
    auto backoff = std::chrono::milliseconds(5);
    for (bool first = true;; first = false) {
        iots_ingest_reply_t *reply = nullptr;
        char errstr[512];
        if (api_->ingest_submit(ingest_, device.c_str(), current.data(), current.size(), &reply, errstr,
                                sizeof errstr) != IOTS_OK) {
            std::fprintf(stderr, "mqtt: ingestion failed for device '%s': %s\n", device.c_str(), errstr);
            counters_.dropped.fetch_add(1, std::memory_order_relaxed);
            return;
        }
        const size_t count = api_->ingest_reply_count(reply);
        if (first) counters_.received.fetch_add(count, std::memory_order_relaxed);
        std::vector<size_t> again;
        for (size_t i = 0; i < count; ++i) {
            switch (api_->ingest_reply_item(reply, i)->status) {
            case IOTS_INGEST_ACCEPTED: counters_.accepted.fetch_add(1, std::memory_order_relaxed); break;
            case IOTS_INGEST_RATE_LIMITED: counters_.rate_limited.fetch_add(1, std::memory_order_relaxed); break;
            case IOTS_INGEST_FORBIDDEN: counters_.forbidden.fetch_add(1, std::memory_order_relaxed); break;
            case IOTS_INGEST_BACKPRESSURE: again.push_back(i); break;
            default: counters_.invalid.fetch_add(1, std::memory_order_relaxed); break;  // invalid, too large
            }
        }
        api_->ingest_reply_destroy(reply);
        if (again.empty()) return;
        std::vector<std::string> parts;
        if (again.size() < count) parts = split_readings(current);
        if (stopping_ || (again.size() < count && parts.size() != count)) {
            counters_.dropped.fetch_add(again.size(), std::memory_order_relaxed);
            return;
        }
        counters_.backpressure_retries.fetch_add(again.size(), std::memory_order_relaxed);
        if (again.size() < count) {  // only the refused ones, as NDJSON (one reading alone as it is)
            std::string next;
            for (size_t i : again) next += parts[i] + "\n";
            retry = std::move(next);
            current = retry;
        }
        std::this_thread::sleep_for(backoff);
        backoff = std::min(backoff * 2, std::chrono::milliseconds(500));
    }
}

// One client's network thread, instead of mosquitto_loop_start: libmosquitto's own loop does a
// pselect() before every packet, so a small QoS 0 message cost the gateway a pselect and three
// read()s (command byte, remaining length, rest: lib/packet_mosq.c, packet__read). Here one
// poll() is followed by up to kPacketsPerWakeup packets, until the socket would block; then the
// packets queued meanwhile (the PUBACKs of the messages just handled, SUBSCRIBE, PINGREQ) are
// written, and the keepalive is served. A lost connection is retried with backoff (1 s doubling
// to 30 s, reset by a CONNACK), as libmosquitto's loop did.
void MqttIngest::run_network(Client &client) {
    constexpr int kPacketsPerWakeup = 256;
    constexpr int kPollMs = 100;  // how soon a stop or a queued packet from another thread is seen
    mosquitto *mosq = client.mosq;
    auto stop_requested = [&client] {
        std::lock_guard lock(client.wake_mutex);
        return client.stop;
    };
    while (!stop_requested()) {
        const int sock = mosquitto_socket(mosq);
        if (sock < 0) {  // not connected (never was, or lost): reconnect after the backoff
            const int delay = client.reconnect_delay_s.load();
            {
                std::unique_lock lock(client.wake_mutex);
                if (client.wake.wait_for(lock, std::chrono::seconds(delay), [&client] { return client.stop; })) break;
            }
            client.reconnect_delay_s = std::min(delay * 2, std::max(1, options_.reconnect_max_s));
            mosquitto_reconnect(mosq);  // failure leaves the socket closed: the next round waits again
            continue;
        }
        pollfd fd{sock, static_cast<short>(POLLIN | (mosquitto_want_write(mosq) ? POLLOUT : 0)), 0};
        const int ready = poll(&fd, 1, kPollMs);
        int rc = MOSQ_ERR_SUCCESS;
        if (ready > 0 && (fd.revents & (POLLIN | POLLHUP | POLLERR))) {
            for (int i = 0; i < kPacketsPerWakeup && rc == MOSQ_ERR_SUCCESS && mosquitto_socket(mosq) >= 0; ++i) {
                errno = 0;
                rc = mosquitto_loop_read(mosq, 1);  // one packet; EAGAIN: nothing more to read now
                if (errno == EAGAIN || errno == EWOULDBLOCK) break;
            }
        }
        if (rc == MOSQ_ERR_SUCCESS && mosquitto_socket(mosq) >= 0 && mosquitto_want_write(mosq))
            rc = mosquitto_loop_write(mosq, 1);  // writes every queued packet it can
        if (rc == MOSQ_ERR_SUCCESS && mosquitto_socket(mosq) >= 0) mosquitto_loop_misc(mosq);  // keepalive
        // An error closed the socket and ran on_disconnect (libmosquitto's rc handling): the next
        // round reconnects.
    }
    // Stopping: stop() queued a DISCONNECT; write it (and any PUBACK still queued), at most 1 s.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(1);
    while (mosquitto_socket(mosq) >= 0 && mosquitto_want_write(mosq) && std::chrono::steady_clock::now() < deadline) {
        pollfd fd{mosquitto_socket(mosq), POLLOUT, 0};
        if (poll(&fd, 1, kPollMs) > 0 && mosquitto_loop_write(mosq, 1) != MOSQ_ERR_SUCCESS) break;
    }
}

void MqttIngest::stop() {
    stopping_ = true;
    mosquitto_property *properties = nullptr;
    // Session expiry 0 at DISCONNECT ends the session: the broker stops sharing messages with
    // a member that is gone (mosquitto queues a persistent session's share while it is away).
    mosquitto_property_add_int32(&properties, MQTT_PROP_SESSION_EXPIRY_INTERVAL, 0);
    for (auto &client : clients_) {
        if (!client->mosq) continue;
        mosquitto_disconnect_v5(client->mosq, MQTT_RC_NORMAL_DISCONNECTION, properties);  // queued
        {
            std::lock_guard lock(client->wake_mutex);
            client->stop = true;
        }
        client->wake.notify_all();
        if (client->network.joinable()) client->network.join();  // it writes the DISCONNECT first
        mosquitto_destroy(client->mosq);
        client->mosq = nullptr;
    }
    mosquitto_property_free_all(&properties);
}

bool MqttIngest::wait_subscribed(int timeout_ms) const {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (counters_.subscribed.load() < options_.clients) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return true;
}

std::string MqttIngest::prometheus() const {
    const MqttCounters &c = counters_;
    std::string out;
    auto family = [&out](const char *name, const char *type, const char *help) {
        out.append("# HELP ").append(name).append(" ").append(help).append("\n");
        out.append("# TYPE ").append(name).append(" ").append(type).append("\n");
    };
    auto sample = [&out](const char *name, const char *labels, uint64_t value) {
        out.append(name).append(labels).append(" ").append(std::to_string(value)).append("\n");
    };
    family("iotstream_mqtt_messages_total", "counter", "MQTT PUBLISH messages the gateway received.");
    sample("iotstream_mqtt_messages_total", "", c.messages.load());
    family("iotstream_mqtt_readings_received_total", "counter", "Readings in the MQTT messages the gateway received.");
    sample("iotstream_mqtt_readings_received_total", "", c.received.load());
    family("iotstream_mqtt_readings_total", "counter",
           "Readings received over MQTT, by result (invalid: in the dead-letter topic with the reason; dropped: "
           "backpressure that outlasted the gateway, or a topic naming no device).");
    sample("iotstream_mqtt_readings_total", "{result=\"accepted\"}", c.accepted.load());
    sample("iotstream_mqtt_readings_total", "{result=\"invalid\"}", c.invalid.load());
    sample("iotstream_mqtt_readings_total", "{result=\"forbidden\"}", c.forbidden.load());
    sample("iotstream_mqtt_readings_total", "{result=\"rate_limited\"}", c.rate_limited.load());
    sample("iotstream_mqtt_readings_total", "{result=\"dropped\"}", c.dropped.load());
    family("iotstream_mqtt_backpressure_retries_total", "counter",
           "Readings submitted again after a full producer queue.");
    sample("iotstream_mqtt_backpressure_retries_total", "", c.backpressure_retries.load());
    family("iotstream_mqtt_connects_total", "counter", "Connections of the gateway's MQTT clients to the broker.");
    sample("iotstream_mqtt_connects_total", "", c.connects.load());
    family("iotstream_mqtt_disconnects_total", "counter", "Connections of the gateway's MQTT clients lost.");
    sample("iotstream_mqtt_disconnects_total", "", c.disconnects.load());
    family("iotstream_mqtt_clients_connected", "gauge", "The gateway's MQTT clients connected now.");
    sample("iotstream_mqtt_clients_connected", "", static_cast<uint64_t>(std::max<int64_t>(0, c.connected.load())));
    family("iotstream_mqtt_clients_subscribed", "gauge", "The gateway's MQTT clients whose subscription is granted.");
    sample("iotstream_mqtt_clients_subscribed", "", static_cast<uint64_t>(std::max<int64_t>(0, c.subscribed.load())));
    return out;
}

Json MqttIngest::stats() const {
    const MqttCounters &c = counters_;
    return {{"broker", broker_},
            {"topic", options_.topic},
            {"qos", options_.qos},
            {"clients", options_.clients},
            {"connected", c.connected.load()},
            {"subscribed", c.subscribed.load()},
            {"connects", c.connects.load()},
            {"disconnects", c.disconnects.load()},
            {"messages", c.messages.load()},
            {"received", c.received.load()},
            {"accepted", c.accepted.load()},
            {"invalid", c.invalid.load()},
            {"forbidden", c.forbidden.load()},
            {"rate_limited", c.rate_limited.load()},
            {"dropped", c.dropped.load()},
            {"backpressure_retries", c.backpressure_retries.load()}};
}

}  // namespace iotstream_host::mqtt
