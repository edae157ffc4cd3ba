// The bounded (replay) run: reads every input partition from its start up to its end offset
// as of the start, then closes every window and commits.
#include <algorithm>

#include "common/log.hpp"
#include "pipeline/commit_epochs.hpp"
#include "pipeline/pipeline.hpp"

namespace iotstream {

void Pipeline::run_bounded(int timeout_ms) {
    if (started_) throw Error(IOTS_ERR_STATE, "the pipeline was already started");
    started_ = true;
    {
        // Runs on the caller's thread and finishes itself: stop() has nothing to do.
        std::lock_guard stopping(stop_mutex_);
        stopped_ = true;
    }
    if (config_.exactly_once) init_transactions();
    started_at_ = std::chrono::steady_clock::now();
    last_seal_ = started_at_;
    const auto deadline = timeout_ms < 0 ? std::chrono::steady_clock::time_point::max()
                                         : started_at_ + std::chrono::milliseconds(timeout_ms);

    // The partitions of every input topic, with their begin and end offsets as of now.
    const TopicPartitions parts = consumer_->partitions_of(config_.input_topics, 10000);
    std::vector<Consumer::CommitPoint> committed;
    if (config_.bounded_start == "committed") committed = consumer_->committed(parts, 10000);

    std::vector<Consumer::CommitPoint> starts;  // where each partition is read from
    for (const Consumer::OffsetRange &range : consumer_->end_offsets(parts, 10000)) {
        const auto &[topic, partition, low, high] = range;
        uint32_t id = stream_id(topic, partition);
        Stream &stream = streams_[id];
        stream.assigned = true;
        stream.end_offset = high;
        stream.begin_offset = low;
        int64_t start = low;
        std::string metadata;
        for (const auto &point : committed)
            if (point.topic == topic && point.partition == partition && point.offset >= 0) {
                start = std::max(point.offset, low);
                metadata = point.metadata;
            }
        restore_stream(id, metadata);
        if (config_.bounded_start_offset >= 0) start = std::clamp(config_.bounded_start_offset, low, high);
        starts.push_back({topic, partition, start, {}});
        for (const auto &instance : live_->instances()) instance->on_assign(id, stream.watermark_ms);
    }
    if (config_.bounded_start_time_ms >= 0) {
        const std::vector<int64_t> offsets = consumer_->offsets_for_time(parts, config_.bounded_start_time_ms, 10000);
        // No offset for the time (no record at/after it, or a broker that cannot look it up, as
        // the embedded one): read the partition from its start and skip older records by their
        // timestamps. The result is the same; only more is read.
        for (size_t i = 0; i < starts.size(); ++i) {
            const Stream &stream = streams_[stream_id(starts[i].topic, starts[i].partition)];
            starts[i].offset = offsets[i] >= 0 ? offsets[i] : stream.begin_offset;
        }
        skip_before_ms_ = config_.bounded_start_time_ms;
    }
    // A partition is pending while its start is before its end; one with nothing to read never
    // gets a consumer position, so it must not be waited for.
    std::vector<uint32_t> pending;
    for (const auto &start : starts) {
        uint32_t id = stream_id(start.topic, start.partition);
        if (start.offset < streams_[id].end_offset) pending.push_back(id);
    }
    consumer_->assign_from(starts);
    logger("pipeline")->info("bounded run over {} partition(s), {} with data to read", parts.size(), pending.size());

    // Done when every partition has been read up to its end offset as of the start. The
    // consumer's position also counts: it moves past records that are never delivered.
    auto all_done = [&] {
        for (uint32_t id : pending) {
            Stream &stream = streams_[id];
            if (stream.next_offset >= stream.end_offset) continue;
            if (consumer_->position(stream.topic, stream.partition) < stream.end_offset) return false;
        }
        return true;
    };
    try {
        while (!all_done()) {
            if (std::chrono::steady_clock::now() >= deadline)
                throw Error(IOTS_ERR_TIMED_OUT, "bounded run did not reach the end offsets within " +
                                                    std::to_string(timeout_ms) + " ms");
            process_once(config_.poll_timeout_ms);
        }
    } catch (const std::exception &e) {
        fail(e.what());
        finish(false, 10000);
        throw;
    }
    finish(/*close_windows=*/true, timeout_ms < 0 ? 60000 : std::max(1000, timeout_ms));
    if (failed_) {
        std::lock_guard lock(stats_mutex_);
        throw Error(IOTS_ERR_KAFKA, error_);
    }
}

}  // namespace iotstream
