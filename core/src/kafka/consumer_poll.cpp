// The Consumer's fetching: poll() (records of partitions revoked meanwhile are dropped),
// the assignment, pause/resume for backpressure, and the counters. Membership is in
// consumer_group.cpp, offsets in consumer_offsets.cpp.
#include "kafka/consumer.hpp"

#include <algorithm>
#include <chrono>

#include "common/log.hpp"
#include "kafka/partition_list.hpp"

namespace iotstream {

using partition_list::remaining_ms;


std::vector<MessagePtr> Consumer::poll(size_t max_records, int timeout_ms) {
    static const auto log = logger("consumer");
    require_open();
    if (max_records == 0) throw Error(IOTS_ERR_INVALID_ARG, "max_records must be at least 1");
    std::vector<MessagePtr> batch;
    batch.reserve(std::min<size_t>(max_records, 4096));
    const bool forever = timeout_ms < 0;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(std::max(timeout_ms, 0));
    collecting_ = &batch;
    struct Reset {
        std::vector<MessagePtr> **slot;
        ~Reset() { *slot = nullptr; }
    } reset{&collecting_};
    // rd_kafka_consumer_poll rather than the batch API: in librdkafka 2.0 the batch API can skip
    // offsets around pause/resume/seek, which this class uses.
    while (batch.size() < max_records) {
        int wait = !batch.empty() ? 0 : forever ? -1 : remaining_ms(deadline);
        rd_kafka_message_t *message = rd_kafka_consumer_poll(rk_.get(), wait);
        if (hook_error_) {
            if (message) rd_kafka_message_destroy(message);
            std::rethrow_exception(std::exchange(hook_error_, nullptr));
        }
        if (message == nullptr) {
            if (!batch.empty() || (!forever && wait == 0)) break;
            continue;
        }
        if (message->err) {
            MessagePtr owned(message);
            if (message->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) continue;
            std::string text = rd_kafka_message_errstr(message);
            if (message->err == RD_KAFKA_RESP_ERR__FATAL) throw Error(IOTS_ERR_KAFKA, "fatal consumer error: " + text);
            if (message->rkt)
                log->warn("consumer error on {}[{}]: {}", rd_kafka_topic_name(message->rkt), message->partition, text);
            else
                log->warn("consumer error: {}", text);
            if (!batch.empty()) break;
            continue;
        }
        batch.emplace_back(message);
    }
    if (batch.empty()) return batch;

    uint64_t value_bytes = 0;
    {
        std::lock_guard lock(state_mutex_);
        const rd_kafka_topic_t *last_rkt = nullptr;
        int32_t last_partition = -1;
        PartitionState *state = nullptr;
        for (const auto &m : batch) {
            value_bytes += m->len;
            if (m->rkt != last_rkt || m->partition != last_partition) {  // records come in runs
                state = &partitions_[{rd_kafka_topic_name(m->rkt), m->partition}];
                last_rkt = m->rkt;
                last_partition = m->partition;
            }
            if (state->commit_base < 0) state->commit_base = m->offset;
            state->position = m->offset + 1;
        }
    }
    consumed_.fetch_add(batch.size(), std::memory_order_relaxed);
    bytes_.fetch_add(value_bytes, std::memory_order_relaxed);
    return batch;
}

TopicPartitions Consumer::assignment() const {
    return partition_list::to_pairs(partition_list::assignment_of(rk_.get()).get());
}

void Consumer::set_paused(bool paused) {
    require_open();
    partition_list::Owned owned = partition_list::assignment_of(rk_.get());
    rd_kafka_topic_partition_list_t *list = owned.get();
    paused_ = paused;
    if (list->cnt == 0) return;
    rd_kafka_resp_err_t err = paused ? rd_kafka_pause_partitions(rk_.get(), list) : rd_kafka_resume_partitions(rk_.get(), list);
    partition_list::check(err, list, paused ? "pause" : "resume");
}

void Consumer::pause_all() { set_paused(true); }
void Consumer::resume_all() { set_paused(false); }

iots_consumer_stats_t Consumer::stats() const {
    iots_consumer_stats_t s{};
    s.struct_size = sizeof s;
    s.consumed = consumed_.load(std::memory_order_relaxed);
    s.committed = committed_.load(std::memory_order_relaxed);
    s.commits = commits_.load(std::memory_order_relaxed);
    s.redelivered = redelivered_.load(std::memory_order_relaxed);
    s.bytes = bytes_.load(std::memory_order_relaxed);
    s.rebalances = rebalances_.load(std::memory_order_relaxed);
    s.queue_depth = consumer_queue_ != nullptr ? rd_kafka_queue_length(consumer_queue_) : 0;
    return s;
}

}  // namespace iotstream
