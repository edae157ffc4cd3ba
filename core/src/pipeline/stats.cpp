// The pipeline's stats document (iots_pipeline_stats_json).
#include "pipeline/pipeline.hpp"
#include "pipeline/sinks.hpp"

namespace iotstream {

Json Pipeline::stats() const {
    Json out;
    out["running"] = running_.load();
    out["failed"] = failed_.load();
    out["consumed"] = counters_.consumed.load();
    out["bytes_consumed"] = counters_.bytes_consumed.load();
    out["decoded"] = counters_.decoded.load();
    out["batches"] = counters_.batches.load();
    out["alerts"] = counters_.alerts.load();
    out["outputs"] = {{"sent", counters_.outputs_sent.load()},
                      {"delivered", counters_.outputs_delivered.load()},
                      {"failed", counters_.outputs_failed.load()},
                      {"refused", counters_.outputs_refused.load()},
                      {"retried", counters_.outputs_retried.load()}};
    out["skipped_before_start"] = counters_.skipped_before_start.load();
    out["replay"] = {{"records", counters_.replayed.load()},
                     {"outputs_skipped", counters_.replay_outputs_skipped.load()}};
    out["guarantee"] = config_.exactly_once ? "exactly_once" : "at_least_once";
    if (config_.exactly_once)
        out["transactions"] = {{"committed", counters_.transactions_committed.load()},
                               {"aborted", counters_.transactions_aborted.load()}};
    out["commits"] = counters_.commits.load();
    out["commit_failures"] = counters_.commit_failures.load();
    out["commits_deferred"] = counters_.commits_deferred.load();
    out["plugin_swaps"] = counters_.plugin_swaps.load();
    uint64_t decode_rejected = counters_.decode_rejected.load();
    uint64_t stage_dead_lettered = counters_.stage_dead_lettered.load();
    uint64_t outputs_dead_lettered = counters_.outputs_dead_lettered.load();
    {
        std::lock_guard lock(stats_mutex_);
        out["error"] = error_;
        out["dead_lettered"] = {{"decoder", decode_rejected},
                                {"stages", stage_dead_lettered},
                                {"outputs", outputs_dead_lettered},
                                {"total", decode_rejected + stage_dead_lettered + outputs_dead_lettered},
                                {"truncated", counters_.dead_letters_truncated.load()},
                                {"by_reason", dead_letter_reasons_}};
        out["emitted"] = emitted_by_output_;
    }
    {
        std::lock_guard lock(rules_mutex_);
        out["rules"] = rule_names_;
    }
    if (consumer_) {
        iots_consumer_stats_t cs = consumer_->stats();
        out["prefetched"] = cs.queue_depth;
        out["rebalances"] = cs.rebalances;
    }
    if (producer_) out["output_queue"] = producer_->stats().queue_depth;
    double elapsed = started_ ? std::chrono::duration<double>(std::chrono::steady_clock::now() - started_at_).count() : 0;
    out["elapsed_s"] = elapsed;
    Json sinks = Json::array();
    for (const auto &sink : sinks_) sinks.push_back(sink->stats());
    out["sinks"] = sinks;
    return out;
}

}  // namespace iotstream
