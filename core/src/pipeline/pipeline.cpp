// The runner: consume -> decode -> stages, tick and seal on the processing thread; start/stop
// and the end of a run. Building the pipeline is in pipeline_setup.cpp, its sinks' side in
// pipeline_sinks.cpp.
#include "pipeline/pipeline.hpp"

#include "common/clock.hpp"
#include "common/log.hpp"
#include "pipeline/kafka_sink.hpp"

namespace iotstream {

namespace {
// Stages' tick(): often enough that interval emissions leave in small steps (the aggregate
// stage emits at most 512 per tick), which keeps alerts from queuing behind bursts.
constexpr int kTickIntervalMs = 25;
constexpr int kPluginPollIntervalMs = 250;
}  // namespace

void Pipeline::poll_plugins(bool force) {
    auto now = std::chrono::steady_clock::now();
    if (!config_.watch_plugins && !force) return;
    if (!force && now - last_plugin_poll_ < std::chrono::milliseconds(kPluginPollIntervalMs)) return;
    last_plugin_poll_ = now;
    std::vector<PluginEvent> events = plugins_->poll();
    if (events.empty()) return;
    LiveInstances::Report report = live_->apply(events);
    counters_.plugin_swaps.fetch_add(report.added + report.replaced + report.removed, std::memory_order_relaxed);
    counters_.plugins_added.fetch_add(report.added, std::memory_order_relaxed);
    counters_.plugins_replaced.fetch_add(report.replaced, std::memory_order_relaxed);
    counters_.plugins_removed.fetch_add(report.removed, std::memory_order_relaxed);
    counters_.plugins_failed.fetch_add(report.failed, std::memory_order_relaxed);
    counters_.plugins_refused.fetch_add(report.refused, std::memory_order_relaxed);
    counters_.plugins_loaded = plugins_->plugins().size();
    counters_.plugins_rejected = plugins_->rejections().size();
    order_dirty_ = true;
}

void Pipeline::tick_stages(bool force) {
    auto now = std::chrono::steady_clock::now();
    if (!force && now - last_tick_ < std::chrono::milliseconds(kTickIntervalMs)) return;
    last_tick_ = now;
    int64_t wall = wall_clock_ms();
    for (PluginInstance *instance : execution_order_)
        if (instance->has_tick()) instance->tick(wall);
}

void Pipeline::process_batch(std::vector<MessagePtr> &messages) {
    raw_.clear();
    batch_messages_.clear();
    const rd_kafka_topic_t *last_rkt = nullptr;
    int32_t last_partition = -1;
    uint32_t id = 0;
    uint64_t bytes = 0;
    uint64_t skipped = 0;
    uint64_t replayed = 0;
    bool replaying = false;  // a record some stage handled under the previous owner
    for (const MessagePtr &m : messages) {
        if (m->rkt != last_rkt || m->partition != last_partition) {  // records come in runs
            id = stream_id(rd_kafka_topic_name(m->rkt), m->partition);
            last_rkt = m->rkt;
            last_partition = m->partition;
        }
        if (skip_before_ms_ >= 0 && rd_kafka_message_timestamp(m.get(), nullptr) < skip_before_ms_) {
            streams_[id].next_offset = m->offset + 1;  // read, before the bounded run's start time
            ++skipped;
            continue;
        }
        if (m->offset < streams_[id].replay_end) {
            replaying = true;
            replayed += m->offset < streams_[id].read_through;
        }
        raw_.push_back(RawRecord{static_cast<const char *>(m->payload), m->payload ? m->len : 0, id, m->offset});
        batch_messages_.push_back(m.get());
        bytes += m->len;
    }
    counters_.consumed.fetch_add(messages.size() - skipped, std::memory_order_relaxed);
    counters_.skipped_before_start.fetch_add(skipped, std::memory_order_relaxed);
    counters_.bytes_consumed.fetch_add(bytes, std::memory_order_relaxed);
    counters_.replayed.fetch_add(replayed, std::memory_order_relaxed);

    decoder_->decode(raw_, batch_);
    if (config_.max_open_sensors_per_partition > 0 && batch_.size() > 0) limit_open_sensors();
    for (const Rejection &rejection : batch_.rejections()) {
        const RawRecord &record = raw_[rejection.input_index];
        if (replaying && record.offset < streams_[record.stream].read_through) {
            counters_.replay_outputs_skipped.fetch_add(1, std::memory_order_relaxed);  // dead-lettered before
            continue;
        }
        dead_letter_message(*batch_messages_[rejection.input_index], rejection.reason, rejection.detail);
    }
    counters_.decode_rejected.fetch_add(batch_.rejections().size(), std::memory_order_relaxed);
    counters_.decoded.fetch_add(batch_.size(), std::memory_order_relaxed);

    if (batch_.size() > 0) run_stages(replaying);

    for (const RawRecord &record : raw_) streams_[record.stream].next_offset = record.offset + 1;
    if (replaying)  // a stream whose replay is over reads as an ordinary one again
        for (const RawRecord &record : raw_) {
            Stream &stream = streams_[record.stream];
            if (stream.replay_end >= 0 && stream.next_offset >= stream.replay_end) {
                stream.handled_before.clear();
                stream.read_through = stream.replay_end = -1;
            }
        }
    counters_.batches.fetch_add(1, std::memory_order_relaxed);
}

bool Pipeline::process_once(int poll_timeout_ms) {
    poll_plugins(false);
    if (order_dirty_) refresh_execution_order();
    poll_timeout_ms = sink_backpressure(poll_timeout_ms);
    std::vector<MessagePtr> messages = consumer_->poll(config_.max_batch, poll_timeout_ms);
    if (order_dirty_) refresh_execution_order();  // a rebalance inside poll() may add instances
    if (!messages.empty()) process_batch(messages);
    tick_stages(false);
    kafka_->resend_failed_outputs();
    if (std::chrono::steady_clock::now() - last_seal_ >= std::chrono::milliseconds(config_.commit_interval_ms))
        seal_epoch();
    commit_durable_epochs();
    refresh_gauges(false);
    return !messages.empty();
}

void Pipeline::fail(const std::string &message) {
    logger("pipeline")->error("pipeline stopped: {}", message);
    std::lock_guard lock(stats_mutex_);
    if (error_.empty()) error_ = message;
    failed_ = true;
}

void Pipeline::finish(bool close_windows, int timeout_ms) {
    if (finished_) return;
    finished_ = true;
    if (!failed_) {
        try {
            for (PluginInstance *instance : execution_order_) instance->flush(close_windows);
            drain_and_commit(timeout_ms, {});
        } catch (const std::exception &e) {
            fail(e.what());
        }
    }
    try {
        refresh_gauges(true);  // the last lag and open sensors, while the partitions are still ours
    } catch (const std::exception &e) {
        logger("pipeline")->warn("reading the final gauges: {}", e.what());
    }
    try {
        consumer_->close();  // leaves the group
    } catch (const std::exception &e) {
        logger("pipeline")->warn("leaving the group: {}", e.what());
    }
    kafka_->producer().flush(timeout_ms);
}

void Pipeline::start() {
    if (started_) throw Error(IOTS_ERR_STATE, "the pipeline was already started");
    started_ = true;
    if (config_.exactly_once) init_transactions();
    consumer_->subscribe(config_.input_topics);
    started_at_ = std::chrono::steady_clock::now();
    last_seal_ = started_at_;
    running_ = true;
    thread_ = std::thread([this] { run_loop(); });
}

void Pipeline::run_loop() {
    try {
        while (!stop_requested_.load(std::memory_order_acquire)) process_once(config_.poll_timeout_ms);
    } catch (const std::exception &e) {
        fail(e.what());
    }
    running_ = false;
}

void Pipeline::stop(std::optional<bool> close_windows, int timeout_ms) {
    std::lock_guard stopping(stop_mutex_);
    if (!started_) throw Error(IOTS_ERR_STATE, "the pipeline was not started");
    if (stopped_) return;
    stopped_ = true;
    stop_requested_ = true;
    if (thread_.joinable()) thread_.join();
    // The processing thread has ended: this thread now has the instances to itself.
    finish(close_windows.value_or(config_.close_windows_on_stop), timeout_ms);
    if (failed_) {
        std::lock_guard lock(stats_mutex_);
        throw Error(IOTS_ERR_KAFKA, error_);
    }
}
}  // namespace iotstream
