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
