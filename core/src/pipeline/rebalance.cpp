// Rebalances: assigned partitions restore their watermark from the commit metadata; revoked
// ones are drained and committed while still ours.
#include "common/log.hpp"
#include "pipeline/commit_epochs.hpp"
#include "pipeline/pipeline.hpp"

namespace iotstream {

namespace {
constexpr int kRevokeFlushTimeoutMs = 30000;
}  // namespace

void Pipeline::on_assign(const TopicPartitions &parts) {
    std::vector<Consumer::CommitPoint> committed = consumer_->committed(parts, 10000);
    for (const auto &[topic, partition] : parts) {
        uint32_t id = stream_id(topic, partition);
        Stream &stream = streams_[id];
        stream.assigned = true;
        stream.next_offset = -1;
        stream.watermark_ms = IOTS_NO_VALUE;
        for (const auto &point : committed)
            if (point.topic == topic && point.partition == partition)
                stream.watermark_ms = parse_watermark_metadata(point.metadata);
        for (const auto &instance : live_->instances()) instance->on_assign(id, stream.watermark_ms);
    }
    logger("pipeline")->info("assigned {} partition(s)", parts.size());
}

void Pipeline::on_revoke(const TopicPartitions &parts) {
    std::vector<uint32_t> ids;
    for (const auto &[topic, partition] : parts) ids.push_back(stream_id(topic, partition));
    // Make every result so far durable and commit, while these partitions are still ours
    // (finish() has already done so when the revoke comes from leaving the group).
    if (!failed_ && !finished_) {
        try {
            drain_and_commit(kRevokeFlushTimeoutMs, ids);
        } catch (const std::exception &e) {
            logger("pipeline")->warn("commit on revoke failed: {}", e.what());
        }
    }
    for (uint32_t id : ids) {
        for (const auto &instance : live_->instances()) instance->on_revoke(id);
        streams_[id].assigned = false;
        streams_[id].next_offset = -1;
    }
    logger("pipeline")->info("revoked {} partition(s)", parts.size());
}

}  // namespace iotstream
