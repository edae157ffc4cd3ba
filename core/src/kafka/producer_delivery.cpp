// What happens to a record after Producer::send(): the delivery thread that serves
// librdkafka's events, the delivery reports (counters, the caller's callback, waking senders
// waiting for room), the retry count read from librdkafka's statistics, and what a failed
// delivery means for the caller (classify_output_failure). Creating, sending and closing are
// in producer.cpp.
#include "kafka/producer.hpp"

#include <cstring>

#include "common/log.hpp"

namespace iotstream {

OutputFailure classify_output_failure(rd_kafka_resp_err_t err) noexcept {
    switch (err) {
        // The record itself: too large for the producer or the broker, or refused as invalid.
        case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
        case RD_KAFKA_RESP_ERR_INVALID_MSG:
        case RD_KAFKA_RESP_ERR_INVALID_MSG_SIZE:
        case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
        case RD_KAFKA_RESP_ERR_INVALID_TIMESTAMP:
        case RD_KAFKA_RESP_ERR_INVALID_RECORD:
        case RD_KAFKA_RESP_ERR__BAD_MSG:
            return OutputFailure::refused;
        // The cluster, for now: librdkafka retried until its limits, a later attempt may pass.
        case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT:
        case RD_KAFKA_RESP_ERR__TIMED_OUT:
        case RD_KAFKA_RESP_ERR__TIMED_OUT_QUEUE:
        case RD_KAFKA_RESP_ERR__TRANSPORT:
        case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
        case RD_KAFKA_RESP_ERR__RETRY:
        case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
        case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
        case RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE:
        case RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION:
        case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
        case RD_KAFKA_RESP_ERR_BROKER_NOT_AVAILABLE:
        case RD_KAFKA_RESP_ERR_REPLICA_NOT_AVAILABLE:
        case RD_KAFKA_RESP_ERR_NETWORK_EXCEPTION:
        case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS:
        case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND:
        case RD_KAFKA_RESP_ERR_KAFKA_STORAGE_ERROR:
        case RD_KAFKA_RESP_ERR_FENCED_LEADER_EPOCH:
        case RD_KAFKA_RESP_ERR_UNKNOWN_LEADER_EPOCH:
        case RD_KAFKA_RESP_ERR_THROTTLING_QUOTA_EXCEEDED:
            return OutputFailure::transient;
        // Everything else (authorization, policy, a fatal idempotence error, a purge at
        // shutdown, codes we do not know) must not be papered over.
        default:
            return OutputFailure::fatal;
    }
}

void Producer::delivery_loop() {
    while (!stop_delivery_.load(std::memory_order_acquire)) {
        rd_kafka_event_t *event = rd_kafka_queue_poll(main_queue_, 200);
        if (event == nullptr) continue;
        handle_event(event);
    }
}

void Producer::handle_event(rd_kafka_event_t *event) {
    try {
        switch (rd_kafka_event_type(event)) {
            case RD_KAFKA_EVENT_DR: handle_delivery_reports(event); break;
            case RD_KAFKA_EVENT_STATS:
                handle_statistics(rd_kafka_event_stats(event), std::strlen(rd_kafka_event_stats(event)));
                break;
            case RD_KAFKA_EVENT_ERROR: {
                static const auto log = logger("producer");
                if (rd_kafka_event_error_is_fatal(event))
                    log->error("fatal producer error: {}", rd_kafka_event_error_string(event));
                else
                    log->warn("producer error: {}", rd_kafka_event_error_string(event));
                break;
            }
            default: break;
        }
    } catch (const std::exception &e) {
        logger("producer")->error("handling a librdkafka event: {}", e.what());
    }
    // Destroying a DR event releases its messages; only then does rd_kafka_flush() see them gone,
    // so the counters above are always up to date when flush returns.
    rd_kafka_event_destroy(event);
}

void Producer::handle_delivery_reports(rd_kafka_event_t *event) {
    static const auto log = logger("producer");
    uint64_t delivered = 0, failed = 0;
    iots_delivery_report_t report{};
    report.struct_size = sizeof report;
    while (const rd_kafka_message_t *msg = rd_kafka_event_message_next(event)) {
        report.err = msg->err ? IOTS_ERR_KAFKA : IOTS_OK;
        report.errstr = msg->err ? rd_kafka_err2str(msg->err) : "";
        report.topic = rd_kafka_topic_name(msg->rkt);
        report.partition = msg->partition;
        report.offset = msg->err || msg->offset < 0 ? -1 : msg->offset;
        report.key = msg->key;
        report.key_len = msg->key_len;
        report.msg_opaque = msg->_private;
        if (msg->err)
            ++failed;
        else
            ++delivered;
        if (on_delivery_) {
            try {
                on_delivery_(report, *msg);
            } catch (const std::exception &e) {
                log->error("delivery callback threw: {}", e.what());
            }
        }
    }
    // Count before the event is destroyed (see handle_event), after the callbacks ran.
    delivered_.fetch_add(delivered, std::memory_order_relaxed);
    failed_.fetch_add(failed, std::memory_order_relaxed);
    if (failed > 0) log->debug("{} message(s) failed delivery", failed);
    if (room_waiters_.load(std::memory_order_acquire) > 0) {
        std::lock_guard lock(room_mutex_);
        room_cv_.notify_all();
    }
}

void Producer::handle_statistics(const char *json, size_t size) {
    // Two kinds of retry show in librdkafka's statistics: whole requests re-sent (per-broker
    // "txretries") and messages re-sent after a failed produce response, which librdkafka
    // re-queues per message. The latter show as a partition transmitting more messages
    // ("txmsgs") than were produced to it ("msgs") minus those still waiting ("msgq_cnt",
    // "xmit_msgq_cnt"): a message waiting for its retry counts as retried.
    simdjson::dom::element root;
    if (stats_parser_.parse(json, size).get(root)) return;
    uint64_t total = 0;
    simdjson::dom::object brokers;
    if (!root["brokers"].get(brokers))
        for (auto broker : brokers) {
            uint64_t retries = 0;
            if (!broker.value["txretries"].get(retries)) total += retries;
        }
    simdjson::dom::object topics;
    if (!root["topics"].get(topics))
        for (auto topic : topics) {
            simdjson::dom::object partitions;
            if (topic.value["partitions"].get(partitions)) continue;
            for (auto partition : partitions) {
                if (partition.key == "-1") continue;  // the unassigned-partition queue
                int64_t transmitted = 0, produced = 0, queued = 0, queued_for_send = 0;
                if (partition.value["txmsgs"].get(transmitted) || partition.value["msgs"].get(produced) ||
                    partition.value["msgq_cnt"].get(queued) || partition.value["xmit_msgq_cnt"].get(queued_for_send))
                    continue;
                int64_t resent = transmitted - (produced - queued - queued_for_send);
                if (resent > 0) total += static_cast<uint64_t>(resent);
            }
        }
    // Monotonic even if a broker or partition leaves the statistics.
    uint64_t previous = retried_.load(std::memory_order_relaxed);
    while (total > previous && !retried_.compare_exchange_weak(previous, total, std::memory_order_relaxed)) {
    }
}

}  // namespace iotstream
