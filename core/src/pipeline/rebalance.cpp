// Rebalances: assigned partitions restore their restore point from the commit metadata; revoked
// ones are drained and committed while still ours.
#include <exception>

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
        stream.open_sensors = {};
        std::string metadata;
        for (const auto &point : committed)
            if (point.topic == topic && point.partition == partition) metadata = point.metadata;
        restore_stream(id, metadata);
        for (const auto &instance : live_->instances()) instance->on_assign(id, stream.watermark_ms);
    }
    logger("pipeline")->info("assigned {} partition(s)", parts.size());
}

void Pipeline::on_revoke(const TopicPartitions &parts) {
    std::vector<uint32_t> ids;
    for (const auto &[topic, partition] : parts) ids.push_back(stream_id(topic, partition));
    // Make every result so far durable and commit, while these partitions are still ours
    // (finish() has already done so when the revoke comes from leaving the group).
    // A delivery failure found here stops the pipeline, as it does between batches: the
    // failed epoch is already off the queue, so going on would let later epochs commit past
    // its inputs (issue 12, defect 5). The consumer hands the error to poll(), which ends the
    // processing loop before anything else is committed.
    std::exception_ptr failure;
    if (!failed_ && !finished_) {
        try {
            // Exactly-once: the open transaction is committed while the partitions are still ours
            // (a commit keeps the work of the partitions this member keeps; an abort would rewind
            // them all). Partitions lost (session expired) are no longer ours to commit: abort.
            if (config_.exactly_once && consumer_->assignment_lost())
                abort_and_rewind("partitions lost", kRevokeFlushTimeoutMs);
            else
                drain_and_commit(kRevokeFlushTimeoutMs, ids);
        } catch (const std::exception &e) {
            fail(std::string("commit on revoke: ") + e.what());
            failure = std::current_exception();
        }
    }
    for (uint32_t id : ids) {
        for (const auto &instance : live_->instances()) instance->on_revoke(id);
        streams_[id].assigned = false;
        streams_[id].next_offset = -1;
        streams_[id].open_sensors = {};
    }
    logger("pipeline")->info("revoked {} partition(s)", parts.size());
    if (failure) std::rethrow_exception(failure);
}

}  // namespace iotstream
