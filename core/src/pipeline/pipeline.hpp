// The stream pipeline: consume -> decode -> stage plugins -> output sinks -> commit.
//
// One processing thread owns the consumer, the decoder and every plugin instance, so plugin
// calls are serialised as plugin.h promises; librdkafka's own threads fetch and send.
//
// Delivery (at-least-once, never a partial window): outputs are grouped into commit epochs.
// Every commit_interval_ms the open epoch is sealed with the offsets it may commit: per input
// partition, the oldest offset any stage still holds in open state (so a new owner rebuilds
// open windows by replay), with the partition's event-time watermark in the commit metadata
// (so it knows which windows were already emitted). A sealed epoch is committed only once
// every record produced before it was acknowledged by every sink it went to (Kafka's output
// topics, sink plugins: output_sink.hpp), and epochs commit in order.
#pragma once

#include <atomic>
#include <chrono>
#include <deque>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "decode/decoder.hpp"
#include "kafka/consumer.hpp"
#include "kafka/envelope.hpp"
#include "kafka/producer.hpp"
#include "metrics/histogram.hpp"
#include "pipeline/output_sink.hpp"
#include "pipeline/pipeline_config.hpp"
#include "pipeline/pipeline_counters.hpp"
#include "pipeline/restore_points.hpp"
#include "plugin_host/plugin_loader.hpp"

struct iots_host_ctx_s;

namespace iotstream {

struct CommitEpoch;
class KafkaSink;

// Per stage (by plugin name; a swapped version goes on counting): records given to process(),
// records it emitted (results and alerts), and the time of each process() call. Written by the
// processing thread without a lock, read by stats().
struct StageMetrics {
    std::atomic<uint64_t> records_in{0}, records_out{0};
    metrics::Histogram process_time;
};

// exactly_once: a transactional.id unique to one pipeline of the group (transactions.cpp).
std::string derive_transactional_id(const std::string &group_id);

class Pipeline {
public:
    explicit Pipeline(const Json &document);
    ~Pipeline();
    Pipeline(const Pipeline &) = delete;
    Pipeline &operator=(const Pipeline &) = delete;

    void start();
    // Stops the processing thread; close_windows emits every open window first (and the
    // commit's watermark then covers them); nullopt: as the config's stop.close_windows says.
    // Once: later and concurrent calls return when the first is done. The first throws the
    // error that stopped the thread, if one did.
    void stop(std::optional<bool> close_windows, int timeout_ms);
    // Bounded run (replay) on the calling thread.
    void run_bounded(int timeout_ms);
    // Before start()/run_bounded() only (Error IOTS_ERR_STATE after): the tap is then read
    // without a lock by the delivery thread.
    void set_output_tap(iots_output_tap_fn tap, void *opaque);
    Json stats() const;

    // Host functions (plugin.h), reached through iots_host_ctx_s.
    int host_emit(iots_host_ctx_s *ctx, const char *output, std::string_view key,
                  std::string_view value, int flags);
    int host_dead_letter(iots_host_ctx_s *ctx, const iots_batch_view_t *batch, uint32_t index,
                         const char *reason, const char *detail);
    int host_register_rule(const char *name);
    const char *host_rule_name(int id) const;
    int host_report_anomaly(iots_host_ctx_s *ctx, const iots_batch_view_t *batch, uint32_t index,
                            int rule_id, double value);
    int host_field_index(const char *name) const;

private:
    static constexpr size_t kMaxRules = 64;  // one anomaly bit each
    struct Stream {
        std::string topic;
        int32_t partition = -1;
        bool assigned = false;
        int64_t next_offset = -1;        // after the last record processed; -1 none yet
        int64_t watermark_ms = IOTS_NO_VALUE;  // last known (restored or checkpointed)
        int64_t begin_offset = -1;       // bounded mode: the first offset still stored
        int64_t end_offset = -1;         // bounded mode: stop here
        // The restore point's replay (restore_points.hpp): per stage, records before the offset
        // were handled by the previous owner; read_through: records before it were decoded.
        std::map<std::string, int64_t, std::less<>> handled_before;
        int64_t read_through = -1;
        int64_t replay_end = -1;  // the largest of them; -1 once the replay is past them all
        // The open-sensor limit (open_sensors.cpp): hash of each sensor id -> offset of its last
        // reading, for sensors some stage may still hold state for.
        std::unordered_map<uint64_t, int64_t> open_sensors;
        uint64_t sensors_pruned_in = 0;  // the batch whose limit check last pruned the set
        uint64_t sensors_refused = 0;    // since the last warning
        std::chrono::steady_clock::time_point sensors_warned_at{};
    };
    // Dead-letter reason of a reading over limits.max_open_sensors_per_partition.
    static constexpr std::string_view kTooManySensors = "too_many_sensors";

    void build_clients();
    std::unique_ptr<PluginInstance> make_instance(const PluginRef &plugin);
    void refresh_execution_order();
    // The metrics of the stage named `name`, made on first use (never freed before the pipeline).
    StageMetrics *stage_metrics(std::string_view name);
    // Processing thread: the gauges read from Kafka's and the stages' state (per-partition lag,
    // open sensors) into stats_, at most every second unless forced.
    void refresh_gauges(bool force);
    void run_loop();
    bool process_once(int poll_timeout_ms);
    void process_batch(std::vector<MessagePtr> &messages);
    // Dead-letters an input record (to the DLQ, through kafka_) in the open epoch.
    void dead_letter_message(const rd_kafka_message_t &message, std::string_view reason,
                             std::string_view detail);
    void tick_stages(bool force);
    void poll_plugins(bool force);
    void on_assign(const TopicPartitions &parts);
    void on_revoke(const TopicPartitions &parts);
    uint32_t stream_id(const std::string &topic, int32_t partition);
    // Restores a stream's watermark and per-stage replay offsets from its commit metadata.
    void restore_stream(uint32_t id, const std::string &metadata);
    // True when `stage` already handled (stream, offset) under the previous owner.
    bool replayed_for(std::string_view stage, uint32_t stream, int64_t offset) const;
    void run_stages(bool replaying);
    // Moves readings of new sensors over the open-sensor limit out of batch_ into its rejections.
    void limit_open_sensors();
    // Forgets the sensors of stream `id` whose last reading no stage holds any more.
    void release_closed_sensors(uint32_t id);
    std::vector<Consumer::CommitPoint> commit_points(const std::vector<uint32_t> &streams);
    void seal_epoch();
    void commit_durable_epochs();
    void drain_and_commit(int timeout_ms, const std::vector<uint32_t> &streams);
    // Output sinks (output_sink.hpp): the sink plugins of the config, after kafka_.
    void build_sinks();
    // The emit path: each sink that wants `output` (a name of config_.outputs) gets the record
    // in the open epoch, the output topic first.
    void emit_output(std::string_view output, std::string_view key, std::string_view value, int64_t event_time_ms);
    // Backpressure (docs/sinks.md#backpressure): while a sink is full, waits for room (at most
    // a second), then pauses the input partitions so poll() only serves rebalances until there
    // is room. Returns the timeout for this poll (0 while still paused).
    int sink_backpressure(int poll_timeout_ms);
    // Throws the first sink's permanent failure, naming the sink.
    void throw_if_sink_failed() const;
    void fail(const std::string &message);
    // Why a host call naming (batch, index) is refused, or "" when it may proceed: only inside
    // process() of that very batch, with an index inside it.
    std::string batch_misuse(const iots_batch_view_t *batch, uint32_t index) const;
    void finish(bool close_windows, int timeout_ms);

    // Exactly-once (transactions.cpp). One transaction per commit epoch: the epoch's outputs and
    // dead letters, and the offsets with their restore points (send_offsets_to_transaction).
    void init_transactions();
    void begin_transaction();
    // Commits the open epoch's transaction; between batches it is kept open while this member
    // rejoins the group (draining: on revoke and at the end, it is committed regardless).
    void commit_transaction_epoch(int timeout_ms, bool draining);
    // Aborts the open transaction and rewinds every assigned partition to its last commit, as
    // a new owner would restore it (state dropped, restore point re-read, consumer seeked).
    void abort_and_rewind(const std::string &why, int timeout_ms);
    // The last commit of `id`: what this member committed, else what the group has.
    Consumer::CommitPoint last_commit_of(uint32_t id);
    bool in_transaction_ = false;
    // After a fatal producer error: a new transactional producer with the same transactional.id
    // (init_transactions fences the old one's epoch and aborts its open transaction).
    void replace_producer();
    int aborts_in_a_row_ = 0;  // the same failure again and again stops the pipeline
    // Offsets this member committed in its transactions, per stream: the rewind's restore points.
    std::map<uint32_t, Consumer::CommitPoint> transaction_commits_;
    // Set when the broker did not store a transaction's offsets (librdkafka's mock cluster drops
    // TxnOffsetCommit): each transaction's offsets are then also committed by the consumer.
    bool commit_offsets_outside_ = false;
    bool offsets_checked_ = false;
    std::vector<std::unique_ptr<CommitEpoch>> aborted_epochs_;  // late reports may still name them

    PipelineConfig config_;
    std::shared_ptr<const DecoderSchema> schema_;
    std::unique_ptr<Decoder> decoder_;
    DecodedBatch batch_;
    std::vector<RawRecord> raw_;
    EnvelopeWriter envelope_;
    std::string scratch_;

    // Where outputs go (output_sink.hpp). kafka_ (the output topics, dead letters and the
    // transactional producer) is destroyed last, after the instances that may still emit;
    // configured_sinks_ (below) first, since their threads hold epochs and contexts.
    std::unique_ptr<KafkaSink> kafka_;
    std::unique_ptr<Consumer> consumer_;

    iots_host_api_t host_api_{};
    std::deque<std::unique_ptr<iots_host_ctx_s>> contexts_;  // one per instance ever made
    std::unique_ptr<PluginDirectory> plugins_;
    std::unique_ptr<LiveInstances> live_;
    std::vector<PluginInstance *> execution_order_;
    std::vector<StageMetrics *> execution_metrics_;  // of execution_order_[i]
    // The config's `sinks` (sink plugins), in its order; destroyed first (~Pipeline): they hold epochs.
    std::vector<std::unique_ptr<OutputSink>> configured_sinks_;
    // Every output sink, kafka_ first: the emit path and the commit epochs go through these only.
    std::vector<OutputSink *> sinks_;
    bool paused_for_sinks_ = false;  // the input is paused until every sink has room
    std::chrono::steady_clock::time_point paused_since_{};
    bool order_dirty_ = true;
    int64_t skip_before_ms_ = -1;  // bounded run from a time: records older than this are skipped
    bool draining_ = false;  // inside drain_and_commit(): commits wait for the broker's answer
    // The batch whose process() calls are running, else nullptr. dead_letter and report_anomaly
    // accept only this batch: a pointer kept from an earlier process() may equal &batch_.view()
    // while its rows are gone, so pointer equality alone is no guard.
    const iots_batch_view_t *batch_in_process_ = nullptr;
    // When a stage sees only the records it has not handled (a replay), its rows as a subset.
    BatchSubset subset_;
    const BatchSubset *subset_in_process_ = nullptr;
    bool warned_metadata_ = false;  // an unreadable restore point is logged once

    mutable std::mutex rules_mutex_;
    std::vector<std::string> rule_names_;  // id -> name (at most 64)

    std::vector<Stream> streams_;
    std::map<std::pair<std::string, int32_t>, uint32_t> stream_ids_;
    std::vector<const rd_kafka_message_t *> batch_messages_;  // input index -> message

    // Epochs: the open one collects outputs; sealed ones wait for their deliveries.
    std::unique_ptr<CommitEpoch> open_epoch_;
    std::deque<std::unique_ptr<CommitEpoch>> sealed_epochs_;
    std::chrono::steady_clock::time_point last_seal_{}, last_tick_{}, last_plugin_poll_{};

    PipelineCounters counters_;
    mutable std::mutex stats_mutex_;  // guards the fields below
    std::map<std::string, uint64_t, std::less<>> dead_letter_reasons_;
    std::map<std::string, uint64_t, std::less<>> emitted_by_output_;
    std::string error_;
    std::map<std::string, std::unique_ptr<StageMetrics>, std::less<>> stage_metrics_;  // entries never removed
    Json partition_gauges_ = Json::array();  // refresh_gauges(): [{topic, partition, lag, open_sensors}]
    Json stage_gauges_ = Json::object();     // refresh_gauges(): {gauge name: {stage: value}}
    std::chrono::steady_clock::time_point gauges_at_{};  // processing thread only

    std::thread thread_;
    // True while the processing thread runs: it clears this itself when it ends, stopped or
    // failed, so stats() never reports a dead thread as running.
    std::atomic<bool> running_{false};
    std::atomic<bool> stop_requested_{false};
    std::atomic<bool> failed_{false};
    bool started_ = false;
    bool finished_ = false;
    // stop() runs once: concurrent callers wait for the first, then return (no second join).
    std::mutex stop_mutex_;
    bool stopped_ = false;  // guarded by stop_mutex_
    std::chrono::steady_clock::time_point started_at_{};
};

}  // namespace iotstream
