// The producer: the seed's IoTDataProducer on librdkafka. Sends readings in the seed's envelope
// (or raw records), keyed for Java-compatible murmur2 partitioning, and reports every accepted
// message exactly once, delivered or failed, on its own delivery thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <span>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>

#include <librdkafka/rdkafka.h>
#include <simdjson.h>

#include "common/config.hpp"
#include "iotstream/iotstream.h"

namespace iotstream {

using KafkaHeader = std::pair<std::string_view, std::string_view>;

// What a failed output means once librdkafka has given up on it (its own retries are spent).
enum class OutputFailure {
    transient,  // the cluster could not take it now (leader moves, timeouts, too few replicas): send again
    refused,    // this record can never be taken (too large, invalid): re-sending the same bytes is futile
    fatal,      // the producer or the topic is unusable (authorization, fatal idempotence error, shutdown)
};
OutputFailure classify_output_failure(rd_kafka_resp_err_t err) noexcept;

// Thrown by Producer::send when librdkafka refuses a message at once; carries its code so
// the caller can classify it.
class KafkaSendError : public Error {
public:
    KafkaSendError(rd_kafka_resp_err_t kafka_error, const std::string &message)
        : Error(IOTS_ERR_KAFKA, message), kafka_error_(kafka_error) {}
    rd_kafka_resp_err_t kafka_error() const noexcept { return kafka_error_; }

private:
    rd_kafka_resp_err_t kafka_error_;
};

// Routes librdkafka's own log lines to logger("kafka"); install on every client's conf.
void install_kafka_logging(rd_kafka_conf_t *conf);

// Throws IOTS_ERR_CONFIG unless the "kafka" section names the brokers to talk to.
void require_bootstrap_servers(const KafkaProperties &properties, const std::string &what);

class Producer {
public:
    // `message` is librdkafka's copy of the reported message (its error code, payload and
    // headers), valid only during the call.
    using DeliveryCallback = std::function<void(const iots_delivery_report_t &report, const rd_kafka_message_t &message)>;

    // `config`: the producer config object ("topic", "queue_full_timeout_ms", "kafka").
    // `on_delivery` (may be empty) runs on the delivery thread, once per accepted message,
    // never concurrently with itself. Throws Error.
    Producer(const Json &config, DeliveryCallback on_delivery);
    // Closes with kDefaultCloseTimeoutMs if close() was not called.
    ~Producer();
    Producer(const Producer &) = delete;
    Producer &operator=(const Producer &) = delete;

    static constexpr int kDefaultCloseTimeoutMs = 10000;

    // Raw send; copies key and value. An empty `topic` means the default topic; a key with a
    // null data() is "no key" (random partition). `msg_opaque` comes back in the report.
    // Waits up to queue_full_timeout_ms for room, then throws Error(IOTS_ERR_QUEUE_FULL); any
    // other refusal throws KafkaSendError. Thread-safe.
    void send(std::string_view topic, std::string_view key, std::string_view value,
              std::span<const KafkaHeader> headers, void *msg_opaque);
    // Wraps `data_json` (checked: one JSON object) in the envelope, keyed by sensor_id.
    // `timestamp_ms`: the envelope's event time (epoch ms, years 0000..9999, else
    // IOTS_ERR_INVALID_ARG); now when absent.
    void send_reading(std::string_view topic, std::string_view sensor_id, std::string_view data_json,
                      std::optional<int64_t> timestamp_ms = std::nullopt);

    // Waits until every accepted message is reported; false on timeout (< 0: no limit).
    bool flush(int timeout_ms);
    // Flushes up to timeout_ms, then fails whatever is left (reported through the callback),
    // stops the delivery thread and releases librdkafka. False when it had to fail messages.
    // Idempotent; later sends throw IOTS_ERR_STATE.
    bool close(int timeout_ms);

    iots_producer_stats_t stats() const;
    // librdkafka's message.max.bytes as configured: no larger message is sent.
    size_t max_message_bytes() const;
    rd_kafka_t *handle() { return rk_; }
    const std::string &default_topic() const { return default_topic_; }

private:
    rd_kafka_topic_t *topic_handle(std::string_view topic);
    void wait_for_room(std::chrono::steady_clock::time_point deadline);
    void delivery_loop();
    void handle_event(rd_kafka_event_t *event);
    void handle_delivery_reports(rd_kafka_event_t *event);
    void handle_statistics(const char *json, size_t size);

    std::string default_topic_;
    std::chrono::milliseconds queue_full_timeout_{5000};
    DeliveryCallback on_delivery_;

    rd_kafka_t *rk_ = nullptr;
    rd_kafka_queue_t *main_queue_ = nullptr;  // delivery reports, statistics, errors
    rd_kafka_topic_t *default_rkt_ = nullptr;

    struct StringHash {
        using is_transparent = void;
        size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
    };
    std::shared_mutex topics_mutex_;
    std::unordered_map<std::string, rd_kafka_topic_t *, StringHash, std::equal_to<>> topics_;

    std::thread delivery_thread_;
    std::atomic<bool> stop_delivery_{false};
    std::mutex close_mutex_;
    std::atomic<bool> closed_{false};

    // Senders blocked on a full queue sleep here; the delivery thread wakes them as reports free room.
    std::mutex room_mutex_;
    std::condition_variable room_cv_;
    std::atomic<int> room_waiters_{0};

    simdjson::dom::parser stats_parser_;  // delivery thread only

    std::atomic<uint64_t> sent_{0}, delivered_{0}, failed_{0}, retried_{0}, bytes_{0}, queue_full_{0};
};

}  // namespace iotstream
