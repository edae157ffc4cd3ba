// Replays after a restore: each stage sees only the records it has not handled under the
// partition's previous owner (restore_points.hpp), so nothing is counted or alerted twice.
#include <algorithm>

#include "common/log.hpp"
#include "pipeline/pipeline.hpp"

namespace iotstream {

void Pipeline::restore_stream(uint32_t id, const std::string &metadata) {
    Stream &stream = streams_[id];
    RestorePointForm form = RestorePointForm::none;
    RestorePoint point = parse_restore_point(metadata, &form);
    if (form == RestorePointForm::unrecognised && !warned_metadata_) {
        warned_metadata_ = true;  // once: every partition of an old or foreign group says the same
        logger("pipeline")->warn("the commit metadata of {}[{}] is not a restore point this version reads ('{}'); "
                                 "its partitions replay to every stage (at least once)",
                                 stream.topic, stream.partition, metadata.substr(0, 80));
    }
    stream.watermark_ms = point.watermark_ms;
    stream.read_through = point.read_through;
    stream.replay_end = point.read_through;
    for (const auto &[stage, offset] : point.stages) stream.replay_end = std::max(stream.replay_end, offset);
    stream.handled_before = std::move(point.stages);
}

bool Pipeline::replayed_for(std::string_view stage, uint32_t stream_id, int64_t offset) const {
    const Stream &stream = streams_[stream_id];
    if (offset >= stream.replay_end) return false;
    auto it = stream.handled_before.find(stage);
    return it != stream.handled_before.end() && offset < it->second;
}

void Pipeline::run_stages(bool replaying) {
    struct InProcess {  // set only while the stages' process() run, even if one throws
        Pipeline &p;
        ~InProcess() {
            p.batch_in_process_ = nullptr;
            p.subset_in_process_ = nullptr;
        }
    } in_process{*this};
    const iots_batch_view_t &full = batch_.view();
    // Per stage and batch: two clock reads and three relaxed atomic adds, no lock.
    auto timed = [](PluginInstance &instance, StageMetrics &metrics, const iots_batch_view_t &view) {
        const auto begin = std::chrono::steady_clock::now();
        instance.process(view);
        metrics.process_time.observe(std::chrono::steady_clock::now() - begin);
        metrics.records_in.fetch_add(view.count, std::memory_order_relaxed);
    };
    for (size_t position = 0; position < execution_order_.size(); ++position) {
        PluginInstance *instance = execution_order_[position];
        StageMetrics &metrics = *execution_metrics_[position];
        batch_in_process_ = &full;
        subset_in_process_ = nullptr;
        // Rules see every record, so later stages get the anomaly bits of replayed ones too;
        // their alerts and dead letters for those are not sent again (host_report_anomaly).
        // Other stages see only the records they have not handled yet.
        if (replaying && !instance->plugin().is_rule()) {
            const std::string_view stage = instance->name();
            auto fresh = [&](uint32_t i) { return !replayed_for(stage, full.streams[i], full.offsets[i]); };
            bool all_fresh = true;
            for (uint32_t i = 0; i < full.count && all_fresh; ++i) all_fresh = fresh(i);
            if (!all_fresh) {
                const iots_batch_view_t &view = subset_.select(full, fresh);
                if (view.count == 0) continue;
                batch_in_process_ = &view;
                subset_in_process_ = &subset_;
                timed(*instance, metrics, view);
                continue;
            }
        }
        timed(*instance, metrics, full);
    }
}

}  // namespace iotstream
