// The consumer-group member: the seed's IoTDataConsumer on librdkafka. Polls batches, commits
// explicit offsets (with optional metadata) only after the caller's work succeeded, rewinds on
// failure, rebalances cooperatively, pauses for backpressure and reports per-partition lag.
// One class in three files: consumer_group.cpp (the client, subscription, rebalances, leaving),
// consumer_poll.cpp (poll, pause/resume, stats), consumer_offsets.cpp (commits, committed,
// seek, rewind, lag, and the reads of a bounded run).
#pragma once

#include <atomic>
#include <cstdint>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <librdkafka/rdkafka.h>

#include "common/config.hpp"
#include "iotstream/iotstream.h"

namespace iotstream {

struct MessageDeleter {
    void operator()(rd_kafka_message_t *message) const noexcept { rd_kafka_message_destroy(message); }
};
// A consumed record, owned. Destroy it before the Consumer, or keep Consumer::shared_handle().
using MessagePtr = std::unique_ptr<rd_kafka_message_t, MessageDeleter>;
using TopicPartitions = std::vector<std::pair<std::string, int32_t>>;

struct PartitionLag {
    std::string topic;
    int32_t partition = -1;
    int64_t position = -1;        // next offset this member will read; -1 unknown
    int64_t committed = -1;       // last committed offset; -1 none
    int64_t high_watermark = -1;  // -1 unknown
    int64_t lag = -1;             // high_watermark - position; -1 unknown
};

class Consumer {
public:
    struct Hooks {  // all called on the polling thread, inside poll() or close()
        std::function<void(const TopicPartitions &)> on_assign;  // after the partitions are assigned
        std::function<void(const TopicPartitions &)> on_revoke;  // before giving them up
    };
    // Synchronous-commit point: `offset` is the next offset to read (last processed + 1).
    struct CommitPoint {
        std::string topic;
        int32_t partition = -1;
        int64_t offset = -1;
        std::string metadata;
    };

    // `config`: "group_id" (required), "topics", "auto_offset_reset", "kafka". Throws Error.
    Consumer(const Json &config, Hooks hooks);
    ~Consumer();  // close()s if needed
    Consumer(const Consumer &) = delete;
    Consumer &operator=(const Consumer &) = delete;

    // Replaces the subscription.
    void subscribe(const std::vector<std::string> &topics);
    // Up to max_records records: waits up to timeout_ms (< 0: no limit) for the first, then takes
    // only what is already prefetched. Records of partitions revoked while collecting are dropped
    // (the next owner reads them from the last commit). Rethrows what a hook threw.
    std::vector<MessagePtr> poll(size_t max_records, int timeout_ms);

    // Commits explicit offsets with optional metadata. Partitions no longer owned are skipped
    // (and logged). Throws Error(IOTS_ERR_KAFKA) when the commit fails.
    // With wait=false the commit is sent without waiting for the broker's answer (requests to the
    // coordinator stay in order, so a later commit always lands after an earlier one); a failure
    // is logged by librdkafka's commit callback and the next commit supersedes it. While this
    // member is rejoining the group (group_rebalancing()) a commit with wait=false is not sent
    // and false is returned: the caller's next commit supersedes it. Returns true otherwise.
    bool commit(const std::vector<CommitPoint> &points, bool wait = true);
    // True from the moment this member sends a JoinGroup until the rebalance callback that ends
    // that join (an assignment, or a cooperative revoke after the sync). An OffsetCommit sent in
    // that time is queued behind the JoinGroup at the coordinator (which answers a join only when
    // the group's rebalance completes) and then carries the old generation: the broker answers
    // ILLEGAL_GENERATION and librdkafka 2.0.2 drops this member's whole assignment as lost
    // (librdkafka issue #4059, fixed in 2.10), so a survivor lost its own partitions and the
    // group rebalanced again and again (issue 12, defect 11). Thread-safe.
    bool group_rebalancing() const { return group_watch_->rejoining.load(std::memory_order_acquire); }
    // Commits, for every partition in `records`, the offset after its last record there.
    void commit_records(std::span<const MessagePtr> records);
    // Committed offsets (-1 none) and metadata of `parts`.
    std::vector<CommitPoint> committed(const TopicPartitions &parts, int timeout_ms);
    // Moves the fetch position of an assigned partition; prefetched records after it are discarded.
    void seek(const std::string &topic, int32_t partition, int64_t offset, int timeout_ms);
    // Seeks every still-owned partition in `records` back to its first record there, so they are
    // delivered again. Returns the number of records that will be redelivered.
    size_t rewind(std::span<const MessagePtr> records, int timeout_ms);

    // Backpressure: stops/restarts fetching for the whole assignment (partitions assigned while
    // paused start paused).
    void pause_all();
    void resume_all();
    bool paused() const { return paused_; }

    // A bounded run reads partitions it assigns itself, outside the group's rebalancing:
    // Every partition of `topics`, from the cluster's metadata. Throws Error(IOTS_ERR_KAFKA).
    TopicPartitions partitions_of(const std::vector<std::string> &topics, int timeout_ms);
    struct OffsetRange {
        std::string topic;
        int32_t partition = -1;
        int64_t begin = -1;  // the low watermark: the first offset still held
        int64_t end = -1;    // the high watermark: the offset the next record will get
    };
    // The begin and end offsets of `parts` as of now, asked of each partition's leader.
    std::vector<OffsetRange> end_offsets(const TopicPartitions &parts, int timeout_ms);
    // For each of `parts`, in order, the first offset whose timestamp is at or after `time_ms`;
    // -1 where there is none (or the broker cannot look it up).
    std::vector<int64_t> offsets_for_time(const TopicPartitions &parts, int64_t time_ms, int timeout_ms);
    // Assigns the partitions of `starts` directly (replacing the assignment; no group
    // rebalance, no hooks), each read from its `offset` (metadata is not used).
    void assign_from(const std::vector<CommitPoint> &starts);
    // The fetch position of an assigned partition (the offset after the last one fetched,
    // delivered or not); negative while unknown.
    int64_t position(const std::string &topic, int32_t partition);
    // The partition's begin and end offsets librdkafka cached from its last fetch response (no
    // request to the broker); -1 while unknown.
    OffsetRange cached_offsets(const std::string &topic, int32_t partition);
    // True when the last rebalance took the assignment away without a revoke (session lost):
    // its offsets and transaction cannot be committed any more.
    bool assignment_lost();

    TopicPartitions assignment() const;
    // Per-partition lag of the current assignment. Thread-safe.
    std::vector<PartitionLag> lag(int timeout_ms);
    // Thread-safe.
    iots_consumer_stats_t stats() const;

    // Leaves the group (revoking through on_revoke). Idempotent; later calls throw IOTS_ERR_STATE.
    void close();
    bool closed() const { return closed_; }
    rd_kafka_t *handle() { return rk_.get(); }
    // Keeps the client alive while records polled from it are still around.
    std::shared_ptr<rd_kafka_t> shared_handle() const { return rk_; }

private:
    struct PartitionState {
        int64_t position = -1;     // next offset to hand out, from what poll() returned
        int64_t commit_base = -1;  // first offset not yet covered by a commit
    };
    using PartitionKey = std::pair<std::string, int32_t>;

    // What librdkafka's broker threads tell about this member's group requests. Owned by the
    // client handle (freed by its on_destroy interceptor), which may outlive the Consumer.
    struct GroupWatch {
        std::atomic<bool> rejoining{false};
        std::atomic<bool> joined{false};    // a JoinGroup was answered
        std::atomic<bool> assigned{false};  // an assignment (maybe empty) reached on_rebalance
        bool attached = false;  // the interceptors were added to a client
    };
    static rd_kafka_resp_err_t on_new_client(rd_kafka_t *rk, const rd_kafka_conf_t *conf, void *opaque,
                                             char *errstr, size_t errstr_size);
    static void rebalance_trampoline(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                                     rd_kafka_topic_partition_list_t *partitions, void *opaque);
    void on_rebalance(rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *partitions);
    void require_open() const;
    void set_paused(bool paused);

    std::shared_ptr<rd_kafka_t> rk_;
    rd_kafka_queue_t *consumer_queue_ = nullptr;  // for the queue_depth gauge
    Hooks hooks_;
    bool closed_ = false;
    bool paused_ = false;
    bool cooperative_ = true;  // the rebalance protocol (the default strategy is cooperative-sticky)
    bool reset_to_earliest_ = true;  // where an uncommitted partition starts: low or high watermark
    std::exception_ptr hook_error_;            // thrown by a hook inside librdkafka; rethrown by poll()
    std::vector<MessagePtr> *collecting_ = nullptr;  // the batch poll() is filling, if any

    mutable std::mutex state_mutex_;
    std::map<PartitionKey, PartitionState> partitions_;

    GroupWatch *group_watch_ = nullptr;  // owned by rk_ (or by unattached_watch_)
    std::unique_ptr<GroupWatch> unattached_watch_;
    std::atomic<uint64_t> consumed_{0}, committed_{0}, commits_{0}, redelivered_{0}, bytes_{0}, rebalances_{0};
};

}  // namespace iotstream
