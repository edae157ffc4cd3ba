// MQTT ingestion for the device gateway (issue 14): devices publish to an MQTT broker
// (Debian's mosquitto); the gateway subscribes through libmosquitto with a shared subscription
// (default "$share/iotstream/devices/+/readings"), takes the device id from the topic level the
// filter's '+' matches, and hands each message's payload (one reading, a JSON array or NDJSON)
// to the core's ingestion handle (iots_ingest_submit, through the C API table only): the same
// validation, token buckets, envelope and DLQ as the HTTP route.
//
// MQTT has no per-reading answer, so (docs/gateway.md, "MQTT"):
//   accepted      produced keyed by sensor_id (handed to the producer, as HTTP's 202);
//   invalid       the core produced it to the DLQ with the decoder's reason (as over HTTP);
//   rate limited  dropped and counted (never DLQ'd: a flood must not reach Kafka either way);
//   backpressure  the message callback retries those readings with a backoff until they are
//                 accepted or the gateway stops (then counted as dropped).
// The callback runs on the client's network thread (run_network, libmosquitto in its external
// threads mode), which writes a QoS 1 message's PUBACK only after the callback returns: the ack
// follows acceptance.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "iotstream/iotstream.h"

struct mosquitto;

namespace iotstream_host::mqtt {

struct MqttOptions {
    std::string broker;  // HOST:PORT; "" = no MQTT; "start" = a mosquitto of our own on loopback
    std::string topic = "$share/iotstream/devices/+/readings";
    std::string client_id;  // "" = iotstream-gateway-<hostname>-<pid>
    int qos = 1;
    int clients = 1;                // connections (each its own network thread), all in the share
    int session_expiry_s = 60;      // how long the broker keeps our session across a reconnect
    int keepalive_s = 30;
    int reconnect_max_s = 30;       // backoff doubles from 1 s up to this
};

extern const char *const kMqttUsage;

// Consumes `flag` (and its value through next()) when it is an MQTT flag; throws
// std::runtime_error for a bad value.
bool parse_mqtt_flag(const std::string &flag, const std::function<std::string()> &next, MqttOptions &options);

// The device id a topic names under `filter` (the level its first '+' matches; a "$share/<group>/"
// prefix is not part of topics), "" when the topic does not fit.
std::string device_from_topic(const std::string &filter, const std::string &topic);

// A payload split into readings the way the core splits it (a JSON array's elements, NDJSON
// lines, or the whole text), for resubmitting some of them; empty when it cannot be.
std::vector<std::string> split_readings(std::string_view payload);

struct MqttCounters {
    std::atomic<uint64_t> messages{0};   // PUBLISHes received
    std::atomic<uint64_t> received{0};   // readings in them
    std::atomic<uint64_t> accepted{0};
    std::atomic<uint64_t> invalid{0};    // invalid or too large: in the DLQ with the reason
    std::atomic<uint64_t> forbidden{0};  // a sensor_id other than the topic's device
    std::atomic<uint64_t> rate_limited{0};
    std::atomic<uint64_t> dropped{0};    // backpressure that outlasted the gateway, or bad topics
    std::atomic<uint64_t> backpressure_retries{0};
    std::atomic<uint64_t> connects{0};
    std::atomic<uint64_t> disconnects{0};
    std::atomic<int64_t> connected{0};   // clients connected now
    std::atomic<int64_t> subscribed{0};  // clients whose subscription the broker granted
};

class MqttIngest {
public:
    // Connects options.clients clients to options.broker (HOST:PORT) and subscribes; connection
    // failures are retried in the background with backoff. `ingest` is borrowed and must
    // outlive stop(). Throws std::runtime_error for bad options.
    MqttIngest(const iots_api_t *api, iots_ingest_t *ingest, const MqttOptions &options);
    ~MqttIngest();
    MqttIngest(const MqttIngest &) = delete;
    MqttIngest &operator=(const MqttIngest &) = delete;

    // Disconnects (ending the session, so the broker stops sharing messages with us) and joins
    // the network threads; no callback runs after it. Idempotent.
    void stop();
    // {"broker", "topic", "qos", "clients", "connected", "messages", "received", "accepted", ...}
    nlohmann::json stats() const;
    // The counters in the Prometheus text format (iotstream_mqtt_* families).
    std::string prometheus() const;
    const std::string &broker() const { return broker_; }
    // Waits until every client's subscription is granted (messages published before that reach
    // no one); false after timeout_ms.
    bool wait_subscribed(int timeout_ms) const;

    // libmosquitto's callbacks, on the network threads (public for them).
    struct Client;  // mqtt_ingest.cpp
    void handle(const char *topic, std::string_view payload);
    void connected(Client &client, mosquitto *mosq, int rc);
    void disconnected(Client &client, int rc);
    void subscribed(Client &client, int granted_qos);  // -1: refused

private:
    void run_network(Client &client);

    const iots_api_t *api_;
    iots_ingest_t *ingest_;
    MqttOptions options_;
    std::string broker_, host_;
    int port_ = 0;
    std::vector<std::unique_ptr<Client>> clients_;
    std::atomic<bool> stopping_{false};
    MqttCounters counters_;
};

}  // namespace iotstream_host::mqtt
