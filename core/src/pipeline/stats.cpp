// The pipeline's stats document (iots_pipeline_stats_json), and the gauges the processing
// thread reads for it from state only it may touch.
#include "pipeline/pipeline.hpp"
#include "pipeline/kafka_sink.hpp"

#include <algorithm>

namespace iotstream {

namespace {
constexpr auto kGaugeInterval = std::chrono::seconds(1);
constexpr std::string_view kLate = "late";  // the window stage's dead-letter reason

// A plugin's gauge name: [a-z0-9_]{1,64}, and not one of the host's own stage series
// (iotstream_stage_records_*_total, iotstream_stage_process_seconds_*).
bool valid_gauge_name(std::string_view name) {
    if (name.empty() || name.size() > 64 || name.starts_with("records_") || name.starts_with("process_seconds"))
        return false;
    for (std::string_view suffix : {"_total", "_bucket", "_sum", "_count"})
        if (name.ends_with(suffix)) return false;
    return std::all_of(name.begin(), name.end(),
                       [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'; });
}
}  // namespace

void Pipeline::refresh_gauges(bool force) {
    const auto now = std::chrono::steady_clock::now();
    if (!force && now - gauges_at_ < kGaugeInterval) return;
    gauges_at_ = now;
    Json partitions = Json::array();
    for (uint32_t id = 0; id < streams_.size(); ++id) {
        Stream &stream = streams_[id];
        if (!stream.assigned) continue;
        Json entry = {{"topic", stream.topic}, {"partition", stream.partition}};
        // Lag: the end offset librdkafka cached from the last fetch response (no request) minus
        // the next offset to process; unknown until the partition was read or positioned
        // (except an empty partition: 0).
        const int64_t position = std::max(stream.next_offset, consumer_->position(stream.topic, stream.partition));
        const Consumer::OffsetRange cached = consumer_->cached_offsets(stream.topic, stream.partition);
        if (cached.end >= 0) {
            if (position >= 0)
                entry["lag"] = std::max<int64_t>(0, cached.end - position);
            else if (cached.end == 0 || cached.end == cached.begin)  // nothing stored: nothing to read
                entry["lag"] = 0;
        }
        // Open sensors: those the open-sensor limit counts, after forgetting the ones no stage
        // holds any more (the limit tracks them only when it is on).
        if (config_.max_open_sensors_per_partition > 0) {
            release_closed_sensors(id);
            entry["open_sensors"] = stream.open_sensors.size();
        }
        partitions.push_back(std::move(entry));
    }
    // The stages' own gauges (plugin.h ABI 1.4), by gauge name then stage.
    Json stage_gauges = Json::object();
    for (PluginInstance *instance : execution_order_)
        instance->gauges([&](std::string_view name, double value) {
            if (valid_gauge_name(name)) stage_gauges[std::string(name)][std::string(instance->name())] = value;
        });
    std::lock_guard lock(stats_mutex_);
    partition_gauges_ = std::move(partitions);
    stage_gauges_ = std::move(stage_gauges);
}

Json Pipeline::stats() const {
    Json out;
    out["running"] = running_.load();
    out["failed"] = failed_.load();
    out["consumed"] = counters_.consumed.load();
    out["bytes_consumed"] = counters_.bytes_consumed.load();
    out["decoded"] = counters_.decoded.load();
    out["batches"] = counters_.batches.load();
    out["alerts"] = counters_.alerts.load();
    out["outputs"] = kafka_->stats();
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
        auto late = dead_letter_reasons_.find(kLate);
        out["late"] = late == dead_letter_reasons_.end() ? 0 : late->second;
        out["partitions"] = partition_gauges_;
        out["stage_gauges"] = stage_gauges_;
        Json stages = Json::object();
        for (const auto &[name, metrics] : stage_metrics_)
            stages[name] = {{"records_in", metrics->records_in.load(std::memory_order_relaxed)},
                            {"records_out", metrics->records_out.load(std::memory_order_relaxed)},
                            {"process_seconds", metrics->process_time.to_json()}};
        out["stages"] = std::move(stages);
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
    if (kafka_) out["output_queue"] = kafka_->producer().stats().queue_depth;
    double elapsed = started_ ? std::chrono::duration<double>(std::chrono::steady_clock::now() - started_at_).count() : 0;
    out["elapsed_s"] = elapsed;
    // Seconds since the last commit the consumer accepted (since the start while there is none).
    const int64_t last_commit = counters_.last_commit_ns.load(std::memory_order_relaxed);
    out["commit_age_s"] = last_commit == 0 ? elapsed
                                           : std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch() -
                                                                           std::chrono::nanoseconds(last_commit))
                                                 .count();
    out["plugins"] = {{"loaded", counters_.plugins_loaded.load()},   {"rejected", counters_.plugins_rejected.load()},
                      {"added", counters_.plugins_added.load()},     {"replaced", counters_.plugins_replaced.load()},
                      {"removed", counters_.plugins_removed.load()}, {"failed", counters_.plugins_failed.load()},
                      {"refused", counters_.plugins_refused.load()}};
    Json sinks = Json::array();
    for (const auto &sink : configured_sinks_) sinks.push_back(sink->stats());
    out["sinks"] = sinks;
    out["sink_backpressure"] = {{"waits", counters_.sink_waits.load()},
                                {"input_pauses", counters_.sink_input_pauses.load()},
                                {"waited_s", static_cast<double>(counters_.sink_waited_ns.load()) / 1e9}};
    return out;
}

}  // namespace iotstream
