// The producer: its configuration (the seed's settings), sending (keyed records, the seed's
// envelope, waiting for room in a full queue), flushing and closing. Delivery reports and
// statistics are served in producer_delivery.cpp.
#include "kafka/producer.hpp"

#include <algorithm>
#include <cstring>

#include "common/defaults.hpp"
#include "common/log.hpp"
#include "decode/timestamp.hpp"
#include "kafka/envelope.hpp"

namespace iotstream {

namespace {

void log_from_kafka(const rd_kafka_t *rk, int level, const char *facility, const char *message) {
    static const auto log = logger("kafka");
    // librdkafka uses syslog levels: 0 emerg .. 7 debug.
    spdlog::level::level_enum mapped = level <= 2   ? spdlog::level::critical
                                       : level == 3 ? spdlog::level::err
                                       : level == 4 ? spdlog::level::warn
                                       : level <= 6 ? spdlog::level::info
                                                    : spdlog::level::debug;
    log->log(mapped, "{} [{}] {}", rd_kafka_name(rk), facility, message);
}

// The seed's producer settings, in librdkafka's words. The seed passed acks='1' as a string,
// which kafka-python's sender rejects; here it is simply acks=1.
KafkaProperties producer_defaults() {
    return {
        {"linger.ms", "10"},
        {"compression.type", "snappy"},
        {"acks", "1"},
        {"retries", "3"},
        {"max.in.flight.requests.per.connection", "5"},
        {"queue.buffering.max.kbytes", "32768"},  // the seed's 32 MB buffer_memory
        // The seed bounds the buffer by bytes only; keep librdkafka's message cap out of the way.
        {"queue.buffering.max.messages", "1000000"},
        {"batch.size", "16384"},
        {"partitioner", "murmur2_random"},  // the Java client's key -> partition mapping
        {"statistics.interval.ms", "1000"},  // feeds the `retried` counter
    };
}

bool is_true(const std::string &value) { return value == "true" || value == "1"; }

}  // namespace


void install_kafka_logging(rd_kafka_conf_t *conf) { rd_kafka_conf_set_log_cb(conf, log_from_kafka); }

void require_bootstrap_servers(const KafkaProperties &properties, const std::string &what) {
    if (properties.count("bootstrap.servers") == 0 && properties.count("metadata.broker.list") == 0)
        throw Error(IOTS_ERR_CONFIG,
                    what + ": kafka property 'bootstrap.servers' is required (e.g. \"kafka\": "
                           "{\"bootstrap.servers\": \"host:9092\"})");
}

Producer::Producer(const Json &config, DeliveryCallback on_delivery)
    : on_delivery_(std::move(on_delivery)) {
    ConfigReader reader(config, "producer config");
    default_topic_ = reader.get_string("topic", kTopicReadings);
    queue_full_timeout_ = std::chrono::milliseconds(
        reader.get_int("queue_full_timeout_ms", 5000, 0, 24LL * 3600 * 1000));
    KafkaProperties overrides = reader.kafka_properties();
    reader.finish();
    if (default_topic_.empty()) throw Error(IOTS_ERR_CONFIG, "producer config: key 'topic' must not be empty");
    require_bootstrap_servers(overrides, "producer config");

    KafkaProperties defaults = producer_defaults();
    // Idempotence needs acks=all; let librdkafka pick it unless the user chose acks explicitly.
    if (auto it = overrides.find("enable.idempotence"); it != overrides.end() && is_true(it->second))
        defaults.erase("acks");

    rd_kafka_conf_t *conf = make_kafka_conf(defaults, overrides);
    install_kafka_logging(conf);
    // Delivery reports, statistics and errors arrive as events on the main queue, which only the
    // delivery thread serves. That also lets rd_kafka_flush() wait without polling (and thus
    // without ever running the delivery callback on the caller's thread).
    rd_kafka_conf_set_events(conf, RD_KAFKA_EVENT_DR | RD_KAFKA_EVENT_STATS | RD_KAFKA_EVENT_ERROR);
    char errstr[512];
    rk_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (rk_ == nullptr) {
        rd_kafka_conf_destroy(conf);
        throw Error(IOTS_ERR_CONFIG, std::string("producer config: ") + errstr);
    }
    main_queue_ = rd_kafka_queue_get_main(rk_);
    try {
        default_rkt_ = topic_handle(default_topic_);
    } catch (...) {
        rd_kafka_queue_destroy(main_queue_);
        rd_kafka_destroy(rk_);
        throw;
    }
    delivery_thread_ = std::thread([this] { delivery_loop(); });
    logger("producer")->debug("producer {} up, default topic '{}'", rd_kafka_name(rk_), default_topic_);
}

Producer::~Producer() {
    try {
        close(kDefaultCloseTimeoutMs);
    } catch (const std::exception &e) {
        logger("producer")->error("closing producer: {}", e.what());
    }
}

rd_kafka_topic_t *Producer::topic_handle(std::string_view topic) {
    if (topic.empty() || topic == default_topic_) {
        if (default_rkt_ != nullptr) return default_rkt_;
        topic = default_topic_;
    }
    {
        std::shared_lock lock(topics_mutex_);
        if (auto it = topics_.find(topic); it != topics_.end()) return it->second;
    }
    std::unique_lock lock(topics_mutex_);
    if (auto it = topics_.find(topic); it != topics_.end()) return it->second;
    std::string name(topic);
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk_, name.c_str(), nullptr);
    if (rkt == nullptr)
        throw Error(IOTS_ERR_INVALID_ARG, "topic '" + name + "' refused: " +
                                              rd_kafka_err2str(rd_kafka_last_error()));
    topics_.emplace(std::move(name), rkt);
    return rkt;
}

void Producer::send(std::string_view topic, std::string_view key, std::string_view value,
                    std::span<const KafkaHeader> headers, void *msg_opaque) {
    if (closed_.load(std::memory_order_acquire)) throw Error(IOTS_ERR_STATE, "producer is closed");
    rd_kafka_topic_t *rkt = topic_handle(topic);
    std::chrono::steady_clock::time_point deadline{};
    bool waited = false;
    for (;;) {
        // librdkafka takes ownership of the headers only on success, so build them per attempt.
        rd_kafka_headers_t *kafka_headers = nullptr;
        if (!headers.empty()) {
            kafka_headers = rd_kafka_headers_new(headers.size());
            for (const auto &[name, header_value] : headers)
                rd_kafka_header_add(kafka_headers, name.data(), static_cast<ssize_t>(name.size()),
                                    header_value.data(), static_cast<ssize_t>(header_value.size()));
        }
        rd_kafka_resp_err_t err =
            kafka_headers == nullptr
                ? rd_kafka_producev(rk_, RD_KAFKA_V_RKT(rkt), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                    RD_KAFKA_V_KEY(key.data(), key.size()),
                                    RD_KAFKA_V_VALUE(const_cast<char *>(value.data()), value.size()),
                                    RD_KAFKA_V_OPAQUE(msg_opaque), RD_KAFKA_V_END)
                : rd_kafka_producev(rk_, RD_KAFKA_V_RKT(rkt), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                    RD_KAFKA_V_KEY(key.data(), key.size()),
                                    RD_KAFKA_V_VALUE(const_cast<char *>(value.data()), value.size()),
                                    RD_KAFKA_V_OPAQUE(msg_opaque), RD_KAFKA_V_HEADERS(kafka_headers),
                                    RD_KAFKA_V_END);
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            sent_.fetch_add(1, std::memory_order_relaxed);
            bytes_.fetch_add(value.size(), std::memory_order_relaxed);
            return;
        }
        if (kafka_headers != nullptr) rd_kafka_headers_destroy(kafka_headers);
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
            throw KafkaSendError(err, "cannot send to topic '" + std::string(rd_kafka_topic_name(rkt)) +
                                            "': " + rd_kafka_err2str(err));
        auto now = std::chrono::steady_clock::now();
        if (!waited) {
            deadline = now + queue_full_timeout_;
            waited = true;
        }
        if (now >= deadline) {
            queue_full_.fetch_add(1, std::memory_order_relaxed);
            throw Error(IOTS_ERR_QUEUE_FULL,
                        "producer queue stayed full for " + std::to_string(queue_full_timeout_.count()) +
                            " ms (queue.buffering.max.messages / queue.buffering.max.kbytes); " +
                            std::to_string(stats().queue_depth) + " messages awaiting delivery");
        }
        wait_for_room(deadline);
    }
}

void Producer::wait_for_room(std::chrono::steady_clock::time_point deadline) {
    // Woken by the delivery thread when reports free room; the short cap covers a report that
    // lands between the failed enqueue and this wait.
    auto until = std::min(deadline, std::chrono::steady_clock::now() + std::chrono::milliseconds(5));
    std::unique_lock lock(room_mutex_);
    room_waiters_.fetch_add(1, std::memory_order_acq_rel);
    room_cv_.wait_until(lock, until);
    room_waiters_.fetch_sub(1, std::memory_order_acq_rel);
}

void Producer::send_reading(std::string_view topic, std::string_view sensor_id, std::string_view data_json,
                            std::optional<int64_t> timestamp_ms) {
    if (sensor_id.empty()) throw Error(IOTS_ERR_INVALID_ARG, "sensor_id must not be empty");
    require_utf8(sensor_id, "sensor_id");
    require_json_object(data_json, "data_json");
    // The decoder's range: what is sent here is read back as it was written.
    if (timestamp_ms && (*timestamp_ms < kMinTimestampMs || *timestamp_ms > kMaxTimestampMs))
        throw Error(IOTS_ERR_INVALID_ARG,
                    "timestamp_ms " + std::to_string(*timestamp_ms) + " is outside the years 0000..9999");
    thread_local EnvelopeWriter writer;
    send(topic, sensor_id,
         timestamp_ms ? writer.build_at(sensor_id, data_json, *timestamp_ms) : writer.build(sensor_id, data_json),
         {}, nullptr);
}


bool Producer::flush(int timeout_ms) {
    if (closed_.load(std::memory_order_acquire)) return true;
    return rd_kafka_flush(rk_, timeout_ms < 0 ? -1 : timeout_ms) == RD_KAFKA_RESP_ERR_NO_ERROR;
}

bool Producer::close(int timeout_ms) {
    std::lock_guard lock(close_mutex_);
    if (closed_.exchange(true, std::memory_order_acq_rel)) return true;
    static const auto log = logger("producer");
    bool clean = rd_kafka_flush(rk_, timeout_ms < 0 ? -1 : timeout_ms) == RD_KAFKA_RESP_ERR_NO_ERROR;
    if (!clean) {
        // Fail what is left, so every accepted message is reported before we go.
        rd_kafka_purge(rk_, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        if (rd_kafka_flush(rk_, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR)
            log->error("{} message(s) still unreported after purging; they are lost",
                       rd_kafka_outq_len(rk_));
        log->warn("producer closed after {} ms with undelivered messages; they were reported failed",
                  timeout_ms);
    }
    stop_delivery_.store(true, std::memory_order_release);
    rd_kafka_queue_yield(main_queue_);
    if (delivery_thread_.joinable()) delivery_thread_.join();
    while (rd_kafka_event_t *event = rd_kafka_queue_poll(main_queue_, 0)) handle_event(event);
    for (auto &[name, rkt] : topics_) rd_kafka_topic_destroy(rkt);
    topics_.clear();
    default_rkt_ = nullptr;
    rd_kafka_queue_destroy(main_queue_);
    main_queue_ = nullptr;
    rd_kafka_destroy(rk_);
    rk_ = nullptr;
    return clean;
}

size_t Producer::max_message_bytes() const {
    char value[32];
    size_t size = sizeof value;
    if (rd_kafka_conf_get(rd_kafka_conf(rk_), "message.max.bytes", value, &size) != RD_KAFKA_CONF_OK)
        throw Error(IOTS_ERR_INTERNAL, "librdkafka has no message.max.bytes");
    return std::stoull(value);
}

iots_producer_stats_t Producer::stats() const {
    iots_producer_stats_t s{};
    s.struct_size = sizeof s;
    // Read the completions first, so depth never counts a report twice.
    s.delivered = delivered_.load(std::memory_order_relaxed);
    s.failed = failed_.load(std::memory_order_relaxed);
    s.sent = sent_.load(std::memory_order_relaxed);
    s.retried = retried_.load(std::memory_order_relaxed);
    s.bytes = bytes_.load(std::memory_order_relaxed);
    s.queue_full = queue_full_.load(std::memory_order_relaxed);
    // A report can overtake the `sent` increment of its own send for a moment: clamp.
    s.queue_depth = std::max<int64_t>(0, static_cast<int64_t>(s.sent - s.delivered - s.failed));
    return s;
}

}  // namespace iotstream
