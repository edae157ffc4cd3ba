// Exactly-once mode (processing.guarantee "exactly_once", docs/pipeline.md#exactly-once): the
// output producer is transactional and each commit epoch is one Kafka transaction holding the
// epoch's window results, aggregates, alerts and dead letters together with the consumed
// offsets and their restore points (send_offsets_to_transaction with the consumer's group
// metadata, KIP-447: one transactional producer per consumer member, fenced by the group's
// generation). A read_committed reader sees an epoch's results all or not at all, and the
// offsets move only with them.
//
// On an abortable error (a failed delivery, a transaction the broker refused) the transaction
// is aborted and every assigned partition is rewound to its last commit exactly as a new owner
// restores it (restore_points.hpp): the stages drop its state, the restore point is read again,
// the consumer seeks back; the aborted work is redone. A fatal error (fenced, unauthorized)
// stops the pipeline with nothing committed past the last transaction.
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <functional>

#include "common/log.hpp"
#include "pipeline/commit_epochs.hpp"
#include "pipeline/pipeline.hpp"
#include "pipeline/kafka_sink.hpp"

namespace iotstream {

namespace {

// An output the cluster refuses for good fails every redo of its transaction too.
constexpr int kMaxAbortsInARow = 5;

struct KafkaErrorDeleter {
    void operator()(rd_kafka_error_t *error) const noexcept { rd_kafka_error_destroy(error); }
};
using KafkaError = std::unique_ptr<rd_kafka_error_t, KafkaErrorDeleter>;

int remaining_ms(std::chrono::steady_clock::time_point deadline) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    return static_cast<int>(std::max<int64_t>(0, left.count()));
}

// Runs `call` until it succeeds, fails for good, or the deadline passes (librdkafka: a
// retriable error means the same call may be made again).
KafkaError retry_until(std::chrono::steady_clock::time_point deadline, const std::function<rd_kafka_error_t *(int)> &call) {
    for (;;) {
        KafkaError error(call(std::max(remaining_ms(deadline), 1)));
        if (!error || !rd_kafka_error_is_retriable(error.get()) || std::chrono::steady_clock::now() >= deadline)
            return error;
        logger("pipeline")->debug("transaction call retried: {}", rd_kafka_error_string(error.get()));
    }
}

}  // namespace

// A transactional.id unique to this pipeline: KIP-447 fences zombies by the group generation,
// so it need not follow the input partitions; with processing.transactional_id a restarted
// member reuses its id and fences (aborts) its previous incarnation's open transaction at once
// instead of after transaction.timeout.ms.
std::string derive_transactional_id(const std::string &group_id) {
    static std::atomic<unsigned> sequence{0};
    char host[256] = "";
    if (gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
    return group_id + ".eos." + host + "." + std::to_string(getpid()) + "." + std::to_string(sequence++);
}

void Pipeline::init_transactions() {
    static const auto log = logger("pipeline");
    rd_kafka_t *rk = kafka_->producer().handle();
    KafkaError error(rd_kafka_init_transactions(rk, 30000));
    if (error)
        throw Error(IOTS_ERR_KAFKA, std::string("exactly_once: initialising the transactional producer failed: ") +
                                        rd_kafka_error_string(error.get()));
    char id[512];
    size_t size = sizeof id;
    if (rd_kafka_conf_get(rd_kafka_conf(rk), "transactional.id", id, &size) != RD_KAFKA_CONF_OK) id[0] = '\0';
    log->info("exactly-once: transactional producer '{}' ready", id);
    begin_transaction();
}

void Pipeline::begin_transaction() {
    if (in_transaction_) return;
    KafkaError error(rd_kafka_begin_transaction(kafka_->producer().handle()));
    if (error)
        throw Error(IOTS_ERR_KAFKA, std::string("exactly_once: beginning a transaction failed: ") +
                                        rd_kafka_error_string(error.get()));
    in_transaction_ = true;
}

void Pipeline::replace_producer() {
    kafka_->replace_producer();
    init_transactions();
}

Consumer::CommitPoint Pipeline::last_commit_of(uint32_t id) {
    if (auto it = transaction_commits_.find(id); it != transaction_commits_.end()) return it->second;
    const Stream &stream = streams_[id];
    std::vector<Consumer::CommitPoint> committed = consumer_->committed({{stream.topic, stream.partition}}, 10000);
    if (!committed.empty()) return committed.front();
    return {stream.topic, stream.partition, -1, {}};
}

void Pipeline::commit_transaction_epoch(int timeout_ms, bool draining) {
    static const auto log = logger("pipeline");
    const auto now = std::chrono::steady_clock::now();
    const auto deadline = now + std::chrono::milliseconds(timeout_ms);
    if (!draining && consumer_->group_rebalancing()) {
        // The offsets would carry a generation that is about to end: keep the transaction open
        // (its epoch simply grows) until the rebalance is over, or the revoke commits it.
        counters_.commits_deferred.fetch_add(1, std::memory_order_relaxed);
        last_seal_ = now;
        return;
    }
    last_seal_ = now;
    // Sinks other than Kafka's stay at least once (an external store is outside the
    // transaction): the epoch's batches must be acknowledged before its offsets are committed.
    for (OutputSink *sink : sinks_)
        if (!sink->commits_with_transaction()) sink->hand_over();
    for (OutputSink *sink : sinks_)
        if (!sink->commits_with_transaction() && !sink->wait_acknowledged(deadline)) {
            throw_if_sink_failed();
            if (!draining) return;  // the transaction stays open; the next seal tries again
            log->warn("sink '{}' has not acknowledged every batch within {} ms; the transaction is aborted",
                      sink->name(), timeout_ms);
            abort_and_rewind("a sink did not acknowledge in time", timeout_ms);
            return;
        }
    char fatal[512];
    if (rd_kafka_fatal_error(kafka_->producer().handle(), fatal, sizeof fatal) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        abort_and_rewind(std::string("fatal producer error: ") + fatal, timeout_ms);
        return;
    }
    if (open_epoch_->delivery_failed.load()) {
        abort_and_rewind("an output could not be delivered", timeout_ms);
        return;
    }
    std::vector<uint32_t> ids;
    for (uint32_t id = 0; id < streams_.size(); ++id)
        if (streams_[id].assigned) ids.push_back(id);
    std::vector<Consumer::CommitPoint> points = commit_points(ids);
    rd_kafka_t *rk = kafka_->producer().handle();
    begin_transaction();  // a transaction is always open between commits; this covers the first
    if (!points.empty()) {
        std::unique_ptr<rd_kafka_topic_partition_list_t, void (*)(rd_kafka_topic_partition_list_t *)> offsets(
            rd_kafka_topic_partition_list_new(static_cast<int>(points.size())), rd_kafka_topic_partition_list_destroy);
        for (const Consumer::CommitPoint &point : points) {
            rd_kafka_topic_partition_t *tp =
                rd_kafka_topic_partition_list_add(offsets.get(), point.topic.c_str(), point.partition);
            tp->offset = point.offset;
            if (!point.metadata.empty()) {  // freed by the list with free()
                tp->metadata = std::malloc(point.metadata.size());
                if (tp->metadata == nullptr) throw std::bad_alloc();
                std::memcpy(tp->metadata, point.metadata.data(), point.metadata.size());
                tp->metadata_size = point.metadata.size();
            }
        }
        std::unique_ptr<rd_kafka_consumer_group_metadata_t, void (*)(rd_kafka_consumer_group_metadata_t *)> group(
            rd_kafka_consumer_group_metadata(consumer_->handle()), rd_kafka_consumer_group_metadata_destroy);
        KafkaError error = retry_until(deadline, [&](int left) {
            return rd_kafka_send_offsets_to_transaction(rk, offsets.get(), group.get(), left);
        });
        if (error) {
            if (rd_kafka_error_txn_requires_abort(error.get()) || rd_kafka_error_is_fatal(error.get())) {
                abort_and_rewind(std::string("sending the offsets: ") + rd_kafka_error_string(error.get()), timeout_ms);
                return;
            }
            throw Error(IOTS_ERR_KAFKA, std::string("exactly_once: sending the offsets to the transaction failed: ") +
                                            rd_kafka_error_string(error.get()) +
                                            "; nothing after the last transaction is committed");
        }
    }
    KafkaError error = retry_until(deadline, [&](int left) { return rd_kafka_commit_transaction(rk, left); });
    if (error) {
        if (rd_kafka_error_txn_requires_abort(error.get()) || rd_kafka_error_is_fatal(error.get())) {
            abort_and_rewind(std::string("committing: ") + rd_kafka_error_string(error.get()), timeout_ms);
            return;
        }
        throw Error(IOTS_ERR_KAFKA, std::string("exactly_once: committing the transaction failed: ") +
                                        rd_kafka_error_string(error.get()) +
                                        "; nothing after the last transaction is committed");
    }
    in_transaction_ = false;
    aborts_in_a_row_ = 0;
    counters_.transactions_committed.fetch_add(1, std::memory_order_relaxed);
    counters_.committed_epochs.fetch_add(1, std::memory_order_relaxed);
    if (!points.empty()) {
        counters_.commits.fetch_add(1, std::memory_order_relaxed);
        counters_.last_commit_ns.store(std::chrono::steady_clock::now().time_since_epoch().count(),
                                       std::memory_order_relaxed);
    }
    for (size_t i = 0; i < points.size(); ++i) transaction_commits_[stream_id(points[i].topic, points[i].partition)] = points[i];
    // The epoch is settled (commit_transaction flushed every output); a new one starts.
    open_epoch_ = std::make_unique<CommitEpoch>();

    if (!points.empty() && !offsets_checked_) {
        // Does the broker keep the transaction's offsets? librdkafka's mock cluster (the embedded
        // broker) answers TxnOffsetCommit without storing them, so a restart would start over.
        offsets_checked_ = true;
        TopicPartitions parts;
        for (const auto &point : points) parts.emplace_back(point.topic, point.partition);
        std::vector<Consumer::CommitPoint> stored = consumer_->committed(parts, 10000);
        for (const auto &point : points)
            for (const auto &got : stored)
                if (got.topic == point.topic && got.partition == point.partition && got.offset != point.offset)
                    commit_offsets_outside_ = true;
        if (commit_offsets_outside_)
            log->warn("exactly-once: the broker did not store the transaction's offsets (librdkafka's mock cluster "
                      "drops TxnOffsetCommit); each transaction's offsets are also committed by the consumer once the "
                      "transaction has committed");
    }
    if (commit_offsets_outside_ && !points.empty()) {
        // After the transaction (its outputs are committed) and before the next one's offsets:
        // a crash in between replays one epoch whose outputs are already committed.
        try {
            consumer_->commit(points, /*wait=*/true);
        } catch (const Error &e) {
            counters_.commit_failures.fetch_add(1, std::memory_order_relaxed);
            if (draining)  // nothing supersedes it before the partitions move or the run ends
                log->warn("exactly-once: committing the offsets outside the transaction failed while draining, "
                          "their next owner restores an earlier commit: {}", e.what());
            else
                log->warn("exactly-once: committing the offsets outside the transaction failed (the next "
                          "transaction's commit supersedes it): {}", e.what());
        }
    }
    if (!finished_) begin_transaction();
}

void Pipeline::abort_and_rewind(const std::string &why, int timeout_ms) {
    static const auto log = logger("pipeline");
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    counters_.transactions_aborted.fetch_add(1, std::memory_order_relaxed);
    if (++aborts_in_a_row_ > kMaxAbortsInARow)
        throw Error(IOTS_ERR_KAFKA, "exactly_once: " + std::to_string(kMaxAbortsInARow) +
                                        " transactions in a row were aborted, the last because " + why +
                                        "; the pipeline stops, nothing after the last transaction is committed");
    log->warn("exactly-once: aborting the transaction ({}); the assigned partitions rewind to their last commit", why);
    rd_kafka_t *rk = kafka_->producer().handle();
    bool fatal = rd_kafka_fatal_error(rk, nullptr, 0) != RD_KAFKA_RESP_ERR_NO_ERROR;
    if (in_transaction_ && !fatal) {
        KafkaError error = retry_until(deadline, [&](int left) { return rd_kafka_abort_transaction(rk, left); });
        if (error && !rd_kafka_error_is_fatal(error.get()))
            throw Error(IOTS_ERR_KAFKA, std::string("exactly_once: aborting the transaction failed: ") +
                                            rd_kafka_error_string(error.get()) +
                                            "; nothing after the last transaction is committed");
        fatal = error != nullptr;
    }
    in_transaction_ = false;
    // Reports of the aborted outputs (purged) may still arrive and name the epoch: keep it.
    aborted_epochs_.push_back(std::move(open_epoch_));
    open_epoch_ = std::make_unique<CommitEpoch>();
    if (fatal) replace_producer();
    for (uint32_t id = 0; id < streams_.size(); ++id) {
        Stream &stream = streams_[id];
        if (!stream.assigned) continue;
        Consumer::CommitPoint last = last_commit_of(id);
        for (const auto &instance : live_->instances()) instance->on_revoke(id);
        stream.next_offset = -1;
        stream.open_sensors = {};
        restore_stream(id, last.metadata);
        for (const auto &instance : live_->instances()) instance->on_assign(id, stream.watermark_ms);
        if (last.offset >= 0) {
            consumer_->seek(stream.topic, stream.partition, last.offset, remaining_ms(deadline));
        } else {  // never committed: where a group without commits starts
            std::unique_ptr<rd_kafka_topic_partition_list_t, void (*)(rd_kafka_topic_partition_list_t *)> list(
                rd_kafka_topic_partition_list_new(1), rd_kafka_topic_partition_list_destroy);
            rd_kafka_topic_partition_list_add(list.get(), stream.topic.c_str(), stream.partition)->offset =
                config_.auto_offset_reset == "latest" ? RD_KAFKA_OFFSET_END : RD_KAFKA_OFFSET_BEGINNING;
            KafkaError error(rd_kafka_seek_partitions(consumer_->handle(), list.get(), std::max(remaining_ms(deadline), 1)));
            if (error)
                throw Error(IOTS_ERR_KAFKA, "exactly_once: rewinding " + stream.topic + "[" +
                                                std::to_string(stream.partition) + "] failed: " +
                                                rd_kafka_error_string(error.get()));
        }
    }
    if (!finished_) begin_transaction();
}

}  // namespace iotstream
