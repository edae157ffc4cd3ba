// Sealing epochs with their commit points and committing them in order once durable.
#include "pipeline/commit_epochs.hpp"

#include <algorithm>

#include "common/log.hpp"
#include "pipeline/pipeline.hpp"
#include "pipeline/output_sink.hpp"

namespace iotstream {

std::vector<Consumer::CommitPoint> Pipeline::commit_points(const std::vector<uint32_t> &ids) {
    std::vector<Consumer::CommitPoint> points;
    for (uint32_t id : ids) {
        Stream &stream = streams_[id];
        if (!stream.assigned || stream.next_offset < 0) continue;
        // Each stage has handled every record before its restore offset: before the oldest one
        // it still holds, and before what it skipped in a replay of the previous owner's work.
        // The commit offset is the smallest; stages at it need no entry.
        RestorePoint point;
        point.read_through = std::max(stream.next_offset, stream.read_through);
        int64_t offset = point.read_through;
        int64_t watermark = IOTS_NO_VALUE;
        for (PluginInstance *instance : execution_order_) {
            PluginInstance::Checkpoint cp = instance->checkpoint(id);
            int64_t handled = stream.next_offset;
            if (cp.oldest_needed_offset != IOTS_NO_VALUE) handled = std::min(handled, cp.oldest_needed_offset);
            if (auto it = stream.handled_before.find(instance->name()); it != stream.handled_before.end())
                handled = std::max(handled, it->second);
            point.stages.emplace(instance->name(), handled);
            offset = std::min(offset, handled);
            if (cp.watermark_ms != IOTS_NO_VALUE)
                watermark = watermark == IOTS_NO_VALUE ? cp.watermark_ms : std::min(watermark, cp.watermark_ms);
        }
        std::erase_if(point.stages, [&](const auto &stage) { return stage.second <= offset; });
        if (watermark != IOTS_NO_VALUE) stream.watermark_ms = watermark;
        point.watermark_ms = stream.watermark_ms;
        points.push_back({stream.topic, stream.partition, offset, format_restore_point(point)});
    }
    return points;
}

namespace {
constexpr int kTransactionCommitTimeoutMs = 30000;
}  // namespace

void Pipeline::seal_epoch() {
    if (config_.exactly_once) {  // one transaction per epoch (transactions.cpp)
        commit_transaction_epoch(kTransactionCommitTimeoutMs, /*draining=*/false);
        return;
    }
    std::vector<uint32_t> ids;
    for (uint32_t id = 0; id < streams_.size(); ++id)
        if (streams_[id].assigned) ids.push_back(id);
    for (OutputSink *sink : sinks_) sink->hand_over();  // what it buffers belongs to this epoch
    open_epoch_->points = commit_points(ids);
    CommitEpoch *sealed = open_epoch_.get();
    sealed_epochs_.push_back(std::move(open_epoch_));
    open_epoch_ = std::make_unique<CommitEpoch>();
    sealed->outstanding.fetch_sub(1, std::memory_order_acq_rel);  // closes it
    last_seal_ = std::chrono::steady_clock::now();
}

void Pipeline::commit_durable_epochs() {
    if (failed_) return;  // a failed epoch is never committed past, by any later one
    throw_if_sink_failed();
    while (!sealed_epochs_.empty() && sealed_epochs_.front()->outstanding.load(std::memory_order_acquire) == 0) {
        std::unique_ptr<CommitEpoch> epoch = std::move(sealed_epochs_.front());
        sealed_epochs_.pop_front();
        if (epoch->delivery_failed) {
            throw_if_sink_failed();
            throw Error(IOTS_ERR_KAFKA, "an output record could not be delivered; nothing after the last commit is "
                                        "committed (the records will be processed again on restart)");
        }
        if (!epoch->points.empty()) {
            // A commit refused during a rebalance (stale generation, unknown member) is not an
            // error of ours: the records stay uncommitted and are read again by their next
            // owner, which at-least-once allows. The next epoch's commit supersedes this one.
            try {
                // Between batches the commit is not waited for (a round trip would stall the
                // processing thread); on revoke and at the end it is (drain_and_commit). While
                // this member rejoins the group it is not sent at all (it would cost the whole
                // assignment, Consumer::group_rebalancing()); the next epoch's supersedes it.
                if (consumer_->commit(epoch->points, /*wait=*/draining_)) {
                    counters_.commits.fetch_add(1, std::memory_order_relaxed);
                    counters_.last_commit_ns.store(std::chrono::steady_clock::now().time_since_epoch().count(),
                                                   std::memory_order_relaxed);
                } else
                    counters_.commits_deferred.fetch_add(1, std::memory_order_relaxed);
            } catch (const Error &e) {
                counters_.commit_failures.fetch_add(1, std::memory_order_relaxed);
                // Its own line: a refused commit on revoke or at the end is the one that lets the
                // next owner emit this member's last outputs again (tests look for it).
                if (draining_)
                    logger("pipeline")->warn("commit refused while draining; the next owner of these partitions "
                                             "emits their outputs since the last commit again: {}",
                                             e.what());
                else
                    logger("pipeline")->warn("commit skipped: {}", e.what());
            }
        }
        counters_.committed_epochs.fetch_add(1, std::memory_order_relaxed);
    }
}

void Pipeline::drain_and_commit(int timeout_ms, const std::vector<uint32_t> &) {
    if (config_.exactly_once) {  // commit_transaction() flushes the outputs itself
        commit_transaction_epoch(timeout_ms, /*draining=*/true);
        return;
    }
    seal_epoch();
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    bool settled = true;
    for (OutputSink *sink : sinks_)
        if (!sink->wait_acknowledged(deadline)) {
            settled = false;
            logger("pipeline")->warn("sink '{}' has not acknowledged every batch within {} ms", sink->name(),
                                     timeout_ms);
        }
    if (!settled)
        logger("pipeline")->warn("outputs not all acknowledged within {} ms; their offsets stay uncommitted",
                                 timeout_ms);
    draining_ = true;  // these commits must land before the partitions are given up
    try {
        commit_durable_epochs();
    } catch (...) {
        draining_ = false;
        throw;
    }
    draining_ = false;
}
}  // namespace iotstream
