// The Consumer's offsets: commits (skipping partitions no longer owned, held while the member
// rejoins), committed offsets and their metadata, seek and rewind, per-partition lag, and the
// reads a bounded run needs outside the group's rebalancing (partitions of topics, their end
// offsets, offsets for a time, a direct assignment, the fetch position). Membership is in
// consumer_group.cpp, fetching in consumer_poll.cpp.
#include "kafka/consumer.hpp"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <set>

#include "common/log.hpp"
#include "kafka/partition_list.hpp"

namespace iotstream {

using partition_list::remaining_ms;

bool Consumer::commit(const std::vector<CommitPoint> &points, bool wait) {
    static const auto log = logger("consumer");
    require_open();
    if (points.empty()) return true;
    if (!wait && group_rebalancing()) return false;  // would cost the whole assignment; see the header
    TopicPartitions owned_list = assignment();
    std::set<PartitionKey> owned(owned_list.begin(), owned_list.end());
    auto list = partition_list::make(points.size());
    for (const auto &point : points) {
        if (point.offset < 0)
            throw Error(IOTS_ERR_INVALID_ARG, "commit offset for " + point.topic + "[" +
                                                  std::to_string(point.partition) + "] must be >= 0");
        if (owned.count({point.topic, point.partition}) == 0) {
            log->info("not committing {}[{}]: no longer assigned to this member", point.topic, point.partition);
            continue;
        }
        rd_kafka_topic_partition_t *tp =
            rd_kafka_topic_partition_list_add(list.get(), point.topic.c_str(), point.partition);
        tp->offset = point.offset;
        if (!point.metadata.empty()) {
            // The list frees metadata with free(): allocate it the same way.
            tp->metadata = std::malloc(point.metadata.size());
            if (tp->metadata == nullptr) throw std::bad_alloc();
            std::memcpy(tp->metadata, point.metadata.data(), point.metadata.size());
            tp->metadata_size = point.metadata.size();
        }
    }
    if (list->cnt == 0) return true;
    rd_kafka_resp_err_t err = rd_kafka_commit(rk_.get(), list.get(), wait ? 0 : 1);
    if (wait)
        partition_list::check(err, list.get(), "commit");
    else if (err)
        throw Error(IOTS_ERR_KAFKA, std::string("commit failed: ") + rd_kafka_err2str(err));
    uint64_t covered = 0;
    {
        std::lock_guard lock(state_mutex_);
        for (int i = 0; i < list->cnt; ++i) {
            auto it = partitions_.find({list->elems[i].topic, list->elems[i].partition});
            if (it == partitions_.end()) continue;
            PartitionState &state = it->second;
            int64_t offset = list->elems[i].offset;
            if (state.commit_base >= 0 && offset > state.commit_base)
                covered += static_cast<uint64_t>(offset - state.commit_base);
            state.commit_base = offset;
        }
    }
    committed_.fetch_add(covered, std::memory_order_relaxed);
    commits_.fetch_add(1, std::memory_order_relaxed);
    return true;
}

void Consumer::commit_records(std::span<const MessagePtr> records) {
    std::map<PartitionKey, int64_t> next_offsets;
    for (const auto &m : records) {
        int64_t &next = next_offsets[{rd_kafka_topic_name(m->rkt), m->partition}];
        next = std::max(next, m->offset + 1);
    }
    std::vector<CommitPoint> points;
    points.reserve(next_offsets.size());
    for (auto &[key, offset] : next_offsets) points.push_back({key.first, key.second, offset, {}});
    commit(points);
}

std::vector<Consumer::CommitPoint> Consumer::committed(const TopicPartitions &parts, int timeout_ms) {
    require_open();
    std::vector<CommitPoint> out;
    if (parts.empty()) return out;
    auto list = partition_list::make(parts.size());
    for (const auto &[topic, partition] : parts)
        rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), partition);
    rd_kafka_resp_err_t err = rd_kafka_committed(rk_.get(), list.get(), std::max(timeout_ms, 0));
    partition_list::check(err, list.get(), "reading committed offsets");
    out.reserve(parts.size());
    for (int i = 0; i < list->cnt; ++i) {
        const auto &tp = list->elems[i];
        out.push_back({tp.topic, tp.partition, tp.offset >= 0 ? tp.offset : -1,
                       tp.metadata ? std::string(static_cast<const char *>(tp.metadata), tp.metadata_size)
                                   : std::string()});
    }
    return out;
}

void Consumer::seek(const std::string &topic, int32_t partition, int64_t offset, int timeout_ms) {
    require_open();
    if (offset < 0) throw Error(IOTS_ERR_INVALID_ARG, "seek offset must be >= 0");
    auto list = partition_list::make(1);
    rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), partition)->offset = offset;
    partition_list::check_error_object(rd_kafka_seek_partitions(rk_.get(), list.get(), std::max(timeout_ms, 0)),
                       "seek " + topic + "[" + std::to_string(partition) + "]");
    partition_list::check(RD_KAFKA_RESP_ERR_NO_ERROR, list.get(), "seek");
    std::lock_guard lock(state_mutex_);
    if (auto it = partitions_.find({topic, partition}); it != partitions_.end()) it->second.position = offset;
}

size_t Consumer::rewind(std::span<const MessagePtr> records, int timeout_ms) {
    require_open();
    std::map<PartitionKey, std::pair<int64_t, size_t>> first;  // first offset, record count
    for (const auto &m : records) {
        auto [it, inserted] = first.try_emplace({rd_kafka_topic_name(m->rkt), m->partition}, m->offset, 0);
        it->second.first = std::min(it->second.first, m->offset);
        ++it->second.second;
    }
    TopicPartitions owned_list = assignment();
    std::set<PartitionKey> owned(owned_list.begin(), owned_list.end());
    auto list = partition_list::make(first.size());
    size_t rewound = 0;
    for (auto &[key, entry] : first) {
        if (owned.count(key) == 0) continue;  // its new owner starts from the last commit anyway
        rd_kafka_topic_partition_list_add(list.get(), key.first.c_str(), key.second)->offset = entry.first;
        rewound += entry.second;
    }
    if (list->cnt == 0) return 0;
    partition_list::check_error_object(rd_kafka_seek_partitions(rk_.get(), list.get(), std::max(timeout_ms, 0)), "rewind");
    partition_list::check(RD_KAFKA_RESP_ERR_NO_ERROR, list.get(), "rewind");
    {
        std::lock_guard lock(state_mutex_);
        for (int i = 0; i < list->cnt; ++i)
            if (auto it = partitions_.find({list->elems[i].topic, list->elems[i].partition}); it != partitions_.end())
                it->second.position = list->elems[i].offset;
    }
    redelivered_.fetch_add(rewound, std::memory_order_relaxed);
    return rewound;
}

std::vector<PartitionLag> Consumer::lag(int timeout_ms) {
    static const auto log = logger("consumer");
    require_open();
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(std::max(timeout_ms, 0));
    partition_list::Owned list = partition_list::assignment_of(rk_.get());
    std::vector<PartitionLag> out(static_cast<size_t>(list->cnt));
    if (list->cnt == 0) return out;
    if (rd_kafka_resp_err_t err = rd_kafka_committed(rk_.get(), list.get(), remaining_ms(deadline)))
        log->warn("lag: committed offsets unavailable: {}", rd_kafka_err2str(err));
    for (int i = 0; i < list->cnt; ++i) {
        const auto &tp = list->elems[i];
        PartitionLag &entry = out[static_cast<size_t>(i)];
        entry.topic = tp.topic;
        entry.partition = tp.partition;
        entry.committed = !tp.err && tp.offset >= 0 ? tp.offset : -1;
        {
            std::lock_guard lock(state_mutex_);
            if (auto it = partitions_.find({entry.topic, entry.partition}); it != partitions_.end())
                entry.position = it->second.position;
        }
        if (entry.position < 0) entry.position = entry.committed;  // where reading resumes
        int64_t low = -1, high = -1;
        // The end offset every fetch response carries (cached by librdkafka) is as fresh as the
        // last fetch and costs nothing; ask the partition leader only when none is cached yet
        // (a round trip per partition: about a second each on the embedded broker).
        if (rd_kafka_get_watermark_offsets(rk_.get(), tp.topic, tp.partition, &low, &high) != RD_KAFKA_RESP_ERR_NO_ERROR ||
            high < 0 || low < 0) {
            low = high = -1;
            if (rd_kafka_query_watermark_offsets(rk_.get(), tp.topic, tp.partition, &low, &high,
                                                 std::max(remaining_ms(deadline), 1)) != RD_KAFKA_RESP_ERR_NO_ERROR)
                high = -1;
        }
        entry.high_watermark = high >= 0 ? high : -1;
        // Neither read nor committed: reading will start where auto.offset.reset points.
        if (entry.position < 0 && high >= 0) entry.position = reset_to_earliest_ ? std::max<int64_t>(low, 0) : high;
        if (entry.high_watermark >= 0 && entry.position >= 0)
            entry.lag = std::max<int64_t>(0, entry.high_watermark - entry.position);
    }
    return out;
}

TopicPartitions Consumer::partitions_of(const std::vector<std::string> &topics, int timeout_ms) {
    require_open();
    rd_kafka_t *rk = rk_.get();
    TopicPartitions parts;
    for (const std::string &topic : topics) {
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic.c_str(), nullptr);
        const rd_kafka_metadata_t *metadata = nullptr;
        rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, rkt, &metadata, std::max(timeout_ms, 0));
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
    return parts;
}

std::vector<Consumer::OffsetRange> Consumer::end_offsets(const TopicPartitions &parts, int timeout_ms) {
    require_open();
    std::vector<OffsetRange> out;
    out.reserve(parts.size());
    for (const auto &[topic, partition] : parts) {
        int64_t low = 0, high = 0;
        if (rd_kafka_resp_err_t err = rd_kafka_query_watermark_offsets(rk_.get(), topic.c_str(), partition, &low,
                                                                       &high, std::max(timeout_ms, 0)))
            throw Error(IOTS_ERR_KAFKA, "end offset of " + topic + "[" + std::to_string(partition) + "]: " +
                                            rd_kafka_err2str(err));
        out.push_back({topic, partition, low, high});
    }
    return out;
}

std::vector<int64_t> Consumer::offsets_for_time(const TopicPartitions &parts, int64_t time_ms, int timeout_ms) {
    require_open();
    std::vector<int64_t> out;
    if (parts.empty()) return out;
    auto list = partition_list::make(parts.size());
    for (const auto &[topic, partition] : parts)
        rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), partition)->offset = time_ms;
    if (rd_kafka_resp_err_t err = rd_kafka_offsets_for_times(rk_.get(), list.get(), std::max(timeout_ms, 0)))
        throw Error(IOTS_ERR_KAFKA, "offsets for time " + std::to_string(time_ms) + ": " + rd_kafka_err2str(err));
    out.reserve(parts.size());
    for (int i = 0; i < list->cnt; ++i) out.push_back(list->elems[i].offset >= 0 ? list->elems[i].offset : -1);
    return out;
}

void Consumer::assign_from(const std::vector<CommitPoint> &starts) {
    require_open();
    auto list = partition_list::make(starts.size());
    for (const auto &start : starts)
        rd_kafka_topic_partition_list_add(list.get(), start.topic.c_str(), start.partition)->offset = start.offset;
    if (rd_kafka_resp_err_t err = rd_kafka_assign(rk_.get(), list.get()))
        throw Error(IOTS_ERR_KAFKA, "assigning " + std::to_string(starts.size()) + " partition(s): " +
                                        rd_kafka_err2str(err));
}

int64_t Consumer::position(const std::string &topic, int32_t partition) {
    require_open();
    auto list = partition_list::make(1);
    rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), partition);
    rd_kafka_position(rk_.get(), list.get());
    return list->elems[0].offset;
}

Consumer::OffsetRange Consumer::cached_offsets(const std::string &topic, int32_t partition) {
    require_open();
    OffsetRange range{topic, partition, -1, -1};
    int64_t low = -1, high = -1;
    if (rd_kafka_get_watermark_offsets(rk_.get(), topic.c_str(), partition, &low, &high) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        range.begin = low;
        range.end = high;
    }
    return range;
}

}  // namespace iotstream
