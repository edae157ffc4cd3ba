// Prometheus text format 0.0.4: escaping, and the mapping of the core's stats onto families.
#include "metrics/prometheus.hpp"

#include <charconv>
#include <cmath>

namespace iotstream::metrics {

using Json = nlohmann::json;

namespace {
// The format escapes \ and newline everywhere, and " only inside label values.
std::string escape(std::string_view text, bool quotes) {
    std::string out;
    out.reserve(text.size());
    for (char c : text) {
        if (c == '\\') out += "\\\\";
        else if (c == '\n') out += "\\n";
        else if (c == '"' && quotes) out += "\\\"";
        else out += c;
    }
    return out;
}
}  // namespace

std::string escape_label_value(std::string_view value) { return escape(value, true); }

std::string escape_help(std::string_view help) { return escape(help, false); }

void PrometheusText::family(std::string_view name, std::string_view type, std::string_view help) {
    out_.append("# HELP ").append(name).append(" ").append(escape_help(help)).append("\n");
    out_.append("# TYPE ").append(name).append(" ").append(type).append("\n");
}

void PrometheusText::series(std::string_view name, const Labels &labels) {
    out_.append(name);
    if (!labels.empty()) {
        out_ += '{';
        for (size_t i = 0; i < labels.size(); ++i) {
            if (i) out_ += ',';
            out_.append(labels[i].first).append("=\"").append(escape_label_value(labels[i].second)).append("\"");
        }
        out_ += '}';
    }
    out_ += ' ';
}

void PrometheusText::sample(std::string_view name, const Labels &labels, uint64_t value) {
    series(name, labels);
    out_.append(std::to_string(value)).append("\n");
}

void PrometheusText::sample(std::string_view name, const Labels &labels, double value) {
    series(name, labels);
    if (std::isnan(value)) out_ += "NaN";
    else if (std::isinf(value)) out_ += value > 0 ? "+Inf" : "-Inf";
    else {
        char buf[32];
        auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value);  // shortest round-trip form
        out_.append(buf, ec == std::errc() ? end : buf);
    }
    out_ += '\n';
}

void PrometheusText::single(std::string_view name, std::string_view type, std::string_view help, uint64_t value) {
    family(name, type, help);
    sample(name, {}, value);
}

namespace {

uint64_t u64(const Json &doc, std::initializer_list<const char *> path) {
    const Json *at = &doc;
    for (const char *key : path) {
        if (!at->is_object() || !at->contains(key)) return 0;
        at = &(*at)[key];
    }
    return at->is_number() ? at->get<uint64_t>() : 0;
}

// A family with one sample per key of a {label value: count} object.
void by_label(PrometheusText &out, std::string_view name, std::string_view help, const char *label, const Json &counts) {
    out.family(name, "counter", help);
    if (!counts.is_object()) return;
    for (const auto &[key, value] : counts.items())
        if (value.is_number()) out.sample(name, {{label, key}}, value.get<uint64_t>());
}

// A histogram's _bucket (cumulative, le ending at +Inf), _sum and _count samples from
// metrics::Histogram::to_json(); the family line is the caller's.
void histogram(PrometheusText &out, std::string_view name, const Labels &labels, const Json &h) {
    const std::string base(name);
    for (const Json &bucket : h.value("buckets", Json::array())) {
        Labels with_le = labels;
        char buf[32];
        auto [end, ec] = std::to_chars(buf, buf + sizeof buf, bucket[0].get<double>(), std::chars_format::fixed);
        with_le.emplace_back("le", std::string(buf, ec == std::errc() ? end : buf));
        out.sample(base + "_bucket", with_le, bucket[1].get<uint64_t>());
    }
    Labels with_inf = labels;
    with_inf.emplace_back("le", "+Inf");
    out.sample(base + "_bucket", with_inf, u64(h, {"count"}));
    out.sample(base + "_sum", labels, h.value("sum_s", 0.0));
    out.sample(base + "_count", labels, u64(h, {"count"}));
}

// One family with a sample per element of `rows` that has `key`, labelled by topic and partition.
void per_partition(PrometheusText &out, std::string_view name, std::string_view help, const Json &rows,
                   const char *key) {
    out.family(name, "gauge", help);
    for (const Json &row : rows)
        if (row.contains(key))
            out.sample(name, {{"topic", row.value("topic", "")}, {"partition", std::to_string(row.value("partition", -1))}},
                       row[key].get<uint64_t>());
}

// Families of the stages: records in/out, process() time, by stage (plugin name).
void render_stages(PrometheusText &out, const Json &stages) {
    static constexpr const char *kCounts[][3] = {
        {"iotstream_stage_records_in_total", "records_in", "Records given to the stage's process()."},
        {"iotstream_stage_records_out_total", "records_out", "Records the stage emitted (results and alerts)."}};
    for (const auto &[name, key, help] : kCounts) {
        out.family(name, "counter", help);
        for (const auto &[stage, s] : stages.items()) out.sample(name, {{"stage", stage}}, u64(s, {key}));
    }
    out.family("iotstream_stage_process_seconds", "histogram", "Time of each process() call of the stage (one batch).");
    for (const auto &[stage, s] : stages.items())
        histogram(out, "iotstream_stage_process_seconds", {{"stage", stage}}, s.value("process_seconds", Json::object()));
}

// Families of the sinks, by sink (plugin name).
void render_sinks(PrometheusText &out, const Json &sinks) {
    static constexpr const char *kSinks[][4] = {
        {"iotstream_sink_batches_total", "counter", "batches", "Batches handed to the sink."},
        {"iotstream_sink_records_total", "counter", "records", "Records handed to the sink."},
        {"iotstream_sink_acknowledged_batches_total", "counter", "acknowledged", "Batches the sink acknowledged as durable."},
        {"iotstream_sink_acknowledged_records_total", "counter", "acknowledged_records",
         "Records in batches the sink acknowledged as durable."},
        {"iotstream_sink_failed_batches_total", "counter", "failed", "Batches the sink failed for good."},
        {"iotstream_sink_failed_records_total", "counter", "failed_records", "Records in batches the sink failed."},
        {"iotstream_sink_queued_batches", "gauge", "queued", "Batches waiting for the sink's thread."},
        {"iotstream_sink_unacknowledged_batches", "gauge", "unacknowledged",
         "Batches handed over and not yet acknowledged (queued ones included)."},
        {"iotstream_sink_max_queued_batches", "gauge", "max_queued_batches",
         "Unacknowledged batches at which the input pauses (the sink's max_queued_batches)."}};
    for (const auto &[name, type, key, help] : kSinks) {
        out.family(name, type, help);
        for (const Json &sink : sinks) out.sample(name, {{"sink", sink.value("plugin", "")}}, u64(sink, {key}));
    }
}

}  // namespace

void render_pipeline(PrometheusText &out, const Json &s) {
    out.single("iotstream_pipeline_consumed_total", "counter", "Records read from the input topics.",
               u64(s, {"consumed"}));
    out.single("iotstream_pipeline_consumed_bytes_total", "counter", "Value bytes read from the input topics.",
               u64(s, {"bytes_consumed"}));
    out.single("iotstream_pipeline_decoded_total", "counter", "Records decoded into batches for the stages.",
               u64(s, {"decoded"}));
    out.single("iotstream_pipeline_batches_total", "counter", "Batches run through the stages.", u64(s, {"batches"}));
    out.single("iotstream_pipeline_alerts_total", "counter", "Anomalies reported by stages.", u64(s, {"alerts"}));
    out.single("iotstream_pipeline_skipped_before_start_total", "counter",
               "Records read but not processed by a bounded run from a time.", u64(s, {"skipped_before_start"}));
    static constexpr const char *kOutputs[][2] = {
        {"sent", "Output records handed to the producer."},
        {"delivered", "Output records acknowledged by Kafka."},
        {"failed", "Output records that failed for good."},
        {"refused", "Output records Kafka refused, then dead-lettered."},
        {"retried", "Output records sent again after a transient failure."}};
    for (const auto &[what, help] : kOutputs)
        out.single(std::string("iotstream_pipeline_outputs_") + what + "_total", "counter", help,
                   u64(s, {"outputs", what}));
    by_label(out, "iotstream_pipeline_emitted_total", "Records emitted by the stages, by output.", "output",
             s.value("emitted", Json::object()));

    out.family("iotstream_pipeline_dead_letters_total", "counter", "Records sent to the dead-letter topic, by stage.");
    for (const char *stage : {"decoder", "stages", "outputs"})
        out.sample("iotstream_pipeline_dead_letters_total", {{"stage", stage}}, u64(s, {"dead_lettered", stage}));
    by_label(out, "iotstream_pipeline_dead_letters_by_reason_total", "Dead letters by reason.", "reason",
             s.value("dead_lettered", Json::object()).value("by_reason", Json::object()));
    out.single("iotstream_pipeline_dead_letters_truncated_total", "counter",
               "Dead letters cut to limits.dead_letter_max_bytes.", u64(s, {"dead_lettered", "truncated"}));

    out.single("iotstream_pipeline_commits_total", "counter", "Offset commits that succeeded.", u64(s, {"commits"}));
    out.single("iotstream_pipeline_commit_failures_total", "counter", "Offset commits that failed.",
               u64(s, {"commit_failures"}));
    out.single("iotstream_pipeline_plugin_swaps_total", "counter", "Plugins replaced while running.",
               u64(s, {"plugin_swaps"}));
    out.single("iotstream_pipeline_rebalances_total", "counter", "Partition assignments and revocations.",
               u64(s, {"rebalances"}));

    out.single("iotstream_pipeline_running", "gauge", "1 while the processing thread runs.",
               s.value("running", false) ? 1 : 0);
    out.single("iotstream_pipeline_failed", "gauge", "1 once the pipeline stopped on an error.",
               s.value("failed", false) ? 1 : 0);
    out.single("iotstream_pipeline_prefetched_records", "gauge", "Records fetched but not yet polled.",
               u64(s, {"prefetched"}));
    out.single("iotstream_pipeline_output_queue_records", "gauge", "Output records not yet acknowledged.",
               u64(s, {"output_queue"}));
    out.family("iotstream_pipeline_uptime_seconds", "gauge", "Seconds since the pipeline started.");
    out.sample("iotstream_pipeline_uptime_seconds", {}, s.value("elapsed_s", 0.0));

    out.single("iotstream_pipeline_late_records_total", "counter",
               "Records dead-lettered as late (after their windows closed).", u64(s, {"late"}));
    out.family("iotstream_pipeline_commit_age_seconds", "gauge",
               "Seconds since the last offset commit the consumer accepted (since the start before the first).");
    out.sample("iotstream_pipeline_commit_age_seconds", {}, s.value("commit_age_s", 0.0));
    const Json partitions = s.value("partitions", Json::array());
    per_partition(out, "iotstream_consumer_lag_records", "Records in the partition after the next one to process.",
                  partitions, "lag");
    per_partition(out, "iotstream_pipeline_open_sensors",
                  "Sensors some stage may hold state for (limits.max_open_sensors_per_partition counts them).",
                  partitions, "open_sensors");
    render_stages(out, s.value("stages", Json::object()));
    // Gauges the stage plugins report (plugin.h ABI 1.4), e.g. the window stage's open_windows.
    const Json stage_gauges = s.value("stage_gauges", Json::object());
    for (const auto &[gauge, by_stage] : stage_gauges.items()) {
        const std::string name = "iotstream_stage_" + gauge;
        out.family(name, "gauge", "Reported by the stage plugins (plugin.h gauges): " + gauge + ".");
        for (const auto &[stage, value] : by_stage.items())
            if (value.is_number()) out.sample(name, {{"stage", stage}}, value.get<double>());
    }

    out.single("iotstream_plugins_loaded", "gauge", "Plugins loaded from the plugin folder.",
               u64(s, {"plugins", "loaded"}));
    out.single("iotstream_plugins_rejected", "gauge", "Files in the plugin folder refused (docs/security.md).",
               u64(s, {"plugins", "rejected"}));
    out.family("iotstream_plugin_changes_total", "counter",
               "Plugin folder changes at run time: added, replaced, removed; failed to start; refused by policy.");
    for (const char *change : {"added", "replaced", "removed", "failed", "refused"})
        out.sample("iotstream_plugin_changes_total", {{"change", change}}, u64(s, {"plugins", change}));
    render_sinks(out, s.value("sinks", Json::array()));
    out.single("iotstream_pipeline_sink_backpressure_waits_total", "counter",
               "Times the pipeline waited because a sink held max_queued_batches unacknowledged batches.",
               u64(s, {"sink_backpressure", "waits"}));
    out.single("iotstream_pipeline_sink_backpressure_input_pauses_total", "counter",
               "Times a full sink stayed full for a second and the input partitions were paused.",
               u64(s, {"sink_backpressure", "input_pauses"}));
    out.family("iotstream_pipeline_sink_backpressure_seconds_total", "counter",
               "Seconds the input was held back for full sinks (waits and pauses that ended).");
    out.sample("iotstream_pipeline_sink_backpressure_seconds_total", {},
               s.value("sink_backpressure", Json::object()).value("waited_s", 0.0));
}

void render_ingest(PrometheusText &out, const iots_ingest_stats_t &s) {
    out.single("iotstream_ingest_payloads_total", "counter", "Payloads submitted by devices.", s.payloads);
    out.family("iotstream_ingest_readings_total", "counter", "Readings submitted by devices, by result.");
    const std::pair<const char *, uint64_t> results[] = {
        {"accepted", s.accepted},         {"invalid", s.invalid},     {"rate_limited", s.rate_limited},
        {"backpressure", s.backpressure}, {"too_large", s.too_large}, {"forbidden", s.forbidden}};
    for (const auto &[result, count] : results) out.sample("iotstream_ingest_readings_total", {{"result", result}}, count);
    out.single("iotstream_ingest_devices_tracked", "gauge", "Per-device token buckets held now.", s.devices_tracked);
    out.family("iotstream_ingest_buckets_evicted_total", "counter",
               "Token buckets dropped: idle once refilled, early at max_devices.");
    out.sample("iotstream_ingest_buckets_evicted_total", {{"why", "idle"}}, s.buckets_evicted_idle);
    out.sample("iotstream_ingest_buckets_evicted_total", {{"why", "early"}}, s.buckets_evicted_early);
}

}  // namespace iotstream::metrics
