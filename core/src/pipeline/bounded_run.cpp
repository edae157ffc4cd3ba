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
    rd_kafka_t *rk = consumer_->handle();

    // The partitions of every input topic, with their end offsets as of now.
    TopicPartitions parts;
    for (const std::string &topic : config_.input_topics) {
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic.c_str(), nullptr);
        const rd_kafka_metadata_t *metadata = nullptr;
        rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, rkt, &metadata, 10000);
        rd_kafka_topic_destroy(rkt);
        if (err) throw Error(IOTS_ERR_KAFKA, "metadata of topic " + topic + ": " + rd_kafka_err2str(err));
        for (int t = 0; t < metadata->topic_cnt; ++t) {
            const auto &tm = metadata->topics[t];
            if (tm.err) {
                std::string text = rd_kafka_err2str(tm.err);
                rd_kafka_metadata_destroy(metadata);
                throw Error(IOTS_ERR_KAFKA, "topic " + topic + ": " + text);
            }
            for (int p = 0; p < tm.partition_cnt; ++p) parts.emplace_back(topic, tm.partitions[p].id);
        }
        rd_kafka_metadata_destroy(metadata);
    }
    std::vector<Consumer::CommitPoint> committed;
    if (config_.bounded_start == "committed") committed = consumer_->committed(parts, 10000);

    std::unique_ptr<rd_kafka_topic_partition_list_t, decltype(&rd_kafka_topic_partition_list_destroy)> list(
        rd_kafka_topic_partition_list_new(static_cast<int>(parts.size())), &rd_kafka_topic_partition_list_destroy);
    std::vector<uint32_t> pending;
    for (const auto &[topic, partition] : parts) {
        int64_t low = 0, high = 0;
        if (rd_kafka_resp_err_t err = rd_kafka_query_watermark_offsets(rk, topic.c_str(), partition, &low, &high, 10000))
            throw Error(IOTS_ERR_KAFKA, "end offset of " + topic + "[" + std::to_string(partition) + "]: " +
                                            rd_kafka_err2str(err));
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
        auto *tp = rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), partition);
        tp->offset = config_.bounded_start_time_ms >= 0 ? config_.bounded_start_time_ms : start;  // time: resolved below
        for (const auto &instance : live_->instances()) instance->on_assign(id, stream.watermark_ms);
    }
    if (config_.bounded_start_time_ms >= 0) {
        if (rd_kafka_resp_err_t err = rd_kafka_offsets_for_times(rk, list.get(), 10000))
            throw Error(IOTS_ERR_KAFKA, std::string("offsets for start_time_ms: ") + rd_kafka_err2str(err));
        // No offset for the time (no record at/after it, or a broker that cannot look it up, as
        // the embedded one): read the partition from its start and skip older records by their
        // timestamps. The result is the same; only more is read.
        for (int i = 0; i < list->cnt; ++i)
            if (list->elems[i].offset < 0)
                list->elems[i].offset = streams_[stream_id(list->elems[i].topic, list->elems[i].partition)].begin_offset;
        skip_before_ms_ = config_.bounded_start_time_ms;
    }
    // A partition is pending while its start is before its end; one with nothing to read never
    // gets a consumer position, so it must not be waited for.
    for (int i = 0; i < list->cnt; ++i) {
        uint32_t id = stream_id(list->elems[i].topic, list->elems[i].partition);
        if (list->elems[i].offset < streams_[id].end_offset) pending.push_back(id);
    }
    if (rd_kafka_resp_err_t err = rd_kafka_assign(rk, list.get()))
        throw Error(IOTS_ERR_KAFKA, std::string("assigning the input partitions: ") + rd_kafka_err2str(err));
    logger("pipeline")->info("bounded run over {} partition(s), {} with data to read", parts.size(), pending.size());

    // Done when every partition has been read up to its end offset as of the start. The
    // consumer's position also counts: it moves past records that are never delivered.
    auto all_done = [&] {
        for (uint32_t id : pending) {
            Stream &stream = streams_[id];
            if (stream.next_offset >= stream.end_offset) continue;
            auto *one = rd_kafka_topic_partition_list_new(1);
            rd_kafka_topic_partition_list_add(one, stream.topic.c_str(), stream.partition);
            rd_kafka_position(rk, one);
            int64_t position = one->elems[0].offset;
            rd_kafka_topic_partition_list_destroy(one);
            if (position < stream.end_offset) return false;
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
