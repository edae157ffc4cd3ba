// The Prometheus text format 0.0.4 as iots_metrics_prometheus writes it: label and HELP
// escaping against literal expectations, every family's HELP/TYPE once before its samples,
// the pipeline stats mapped to the right series, the C API's argument and buffer contract, and
// (when Debian's prometheus package is installed) promtool's own verdict on the page.
#include <gtest/gtest.h>

#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>

#include "iotstream/iotstream.h"
#include "metrics/histogram.hpp"
#include "metrics/prometheus.hpp"

using iotstream::metrics::PrometheusText;
using Json = nlohmann::json;

TEST(Prometheus, LabelValuesEscapeBackslashQuoteAndNewlineOnly) {
    EXPECT_EQ(iotstream::metrics::escape_label_value(R"(a\b"c)" "\nd\te"), R"(a\\b\"c\nd)" "\te");
    EXPECT_EQ(iotstream::metrics::escape_label_value(""), "");
    EXPECT_EQ(iotstream::metrics::escape_label_value("ünïcode"), "ünïcode");
}

TEST(Prometheus, HelpEscapesBackslashAndNewlineButNotQuotes) {
    EXPECT_EQ(iotstream::metrics::escape_help("a \"q\" \\ b\nc"), "a \"q\" \\\\ b\\nc");
}

TEST(Prometheus, SamplesCarryEscapedLabelsAndExactNumbers) {
    PrometheusText out;
    out.family("x_total", "counter", "Help with \\ and\nnewline.");
    out.sample("x_total", {{"reason", "bad \"json\"\n"}, {"stage", "a\\b"}}, uint64_t{18446744073709551615ULL});
    out.family("y_seconds", "gauge", "Seconds.");
    out.sample("y_seconds", {}, 1.5);
    out.sample("y_seconds", {{"k", "v"}}, 0.1);
    EXPECT_EQ(out.text(),
              "# HELP x_total Help with \\\\ and\\nnewline.\n"
              "# TYPE x_total counter\n"
              "x_total{reason=\"bad \\\"json\\\"\\n\",stage=\"a\\\\b\"} 18446744073709551615\n"
              "# HELP y_seconds Seconds.\n"
              "# TYPE y_seconds gauge\n"
              "y_seconds 1.5\n"
              "y_seconds{k=\"v\"} 0.1\n");
}

namespace {

Json sample_stats() {
    return Json::parse(R"({
      "running": true, "failed": false, "consumed": 1200, "bytes_consumed": 345678, "decoded": 1190,
      "batches": 12, "alerts": 7,
      "outputs": {"sent": 40, "delivered": 38, "failed": 0, "refused": 1, "retried": 1},
      "skipped_before_start": 0, "commits": 5, "commit_failures": 0, "plugin_swaps": 2,
      "dead_lettered": {"decoder": 10, "stages": 3, "outputs": 1, "total": 14, "truncated": 1,
                        "by_reason": {"not_json": 6, "missing_field": 4, "rule \"x\"\nbad\\": 3, "output_refused": 1}},
      "emitted": {"windows": 30, "alerts": 7, "out\"put": 3},
      "rules": ["r"], "prefetched": 9, "rebalances": 1, "output_queue": 2, "elapsed_s": 12.25, "error": "",
      "late": 4, "commit_age_s": 0.75,
      "partitions": [{"topic": "iot-readings", "partition": 0, "lag": 17, "open_sensors": 5},
                     {"topic": "iot-readings", "partition": 1, "open_sensors": 0}],
      "stages": {"window": {"records_in": 1190, "records_out": 30,
                            "process_seconds": {"buckets": [[0.00005, 2], [0.0001, 5], [5.0, 12]], "sum_s": 0.0125, "count": 12}}},
      "stage_gauges": {"open_windows": {"window": 9}},
      "plugins": {"loaded": 4, "rejected": 1, "added": 1, "replaced": 2, "removed": 0, "failed": 0, "refused": 1},
      "sinks": [{"plugin": "influx_sink", "batches": 6, "records": 60, "acknowledged": 5, "failed": 1,
                 "acknowledged_records": 50, "failed_records": 10, "queued": 0, "unacknowledged": 0,
                 "max_queued_batches": 16, "peak_unacknowledged": 3}],
      "sink_backpressure": {"waits": 3, "input_pauses": 2, "waited_s": 1.5}})");
}

// Parses the page into {series: value}, checking that every sample's family was announced
// with HELP then TYPE just before its first sample, and that no family is announced twice.
std::map<std::string, std::string> parse(const std::string &text) {
    std::map<std::string, std::string> samples;
    std::set<std::string> families, histograms;
    std::string current, line;
    std::istringstream in(text);
    while (std::getline(in, line)) {
        if (line.rfind("# HELP ", 0) == 0) {
            current = line.substr(7, line.find(' ', 7) - 7);
            EXPECT_TRUE(families.insert(current).second) << "family announced twice: " << current;
            std::string type;
            EXPECT_TRUE(std::getline(in, type) && type.rfind("# TYPE " + current + " ", 0) == 0) << current;
            if (type == "# TYPE " + current + " histogram") histograms.insert(current);
            continue;
        }
        const size_t space = line.rfind(' ');
        const std::string series = line.substr(0, space);
        std::string name = series.substr(0, series.find('{'));
        if (histograms.count(current))  // a histogram's samples are <family>_bucket, _sum, _count
            for (const char *suffix : {"_bucket", "_sum", "_count"})
                if (name == current + suffix) name = current;
        EXPECT_EQ(name, current) << "sample outside its family: " << line;
        EXPECT_TRUE(samples.emplace(series, line.substr(space + 1)).second) << "duplicate series " << series;
    }
    return samples;
}

}  // namespace

TEST(Prometheus, PipelineStatsMapOntoTheirSeries) {
    PrometheusText out;
    iotstream::metrics::render_pipeline(out, sample_stats());
    const auto m = parse(out.text());
    EXPECT_EQ(m.at("iotstream_pipeline_consumed_total"), "1200");
    EXPECT_EQ(m.at("iotstream_pipeline_consumed_bytes_total"), "345678");
    EXPECT_EQ(m.at("iotstream_pipeline_outputs_refused_total"), "1");
    EXPECT_EQ(m.at("iotstream_pipeline_dead_letters_total{stage=\"decoder\"}"), "10");
    EXPECT_EQ(m.at("iotstream_pipeline_dead_letters_total{stage=\"stages\"}"), "3");
    EXPECT_EQ(m.at("iotstream_pipeline_dead_letters_by_reason_total{reason=\"rule \\\"x\\\"\\nbad\\\\\"}"), "3");
    EXPECT_EQ(m.at("iotstream_pipeline_emitted_total{output=\"out\\\"put\"}"), "3");
    EXPECT_EQ(m.at("iotstream_pipeline_running"), "1");
    EXPECT_EQ(m.at("iotstream_pipeline_uptime_seconds"), "12.25");
}

TEST(Prometheus, LagStagesPluginsAndSinksMapOntoTheirSeries) {
    PrometheusText out;
    iotstream::metrics::render_pipeline(out, sample_stats());
    const auto m = parse(out.text());
    EXPECT_EQ(m.count("iotstream_consumer_lag_records{topic=\"iot-readings\",partition=\"1\"}"), 0u);  // unknown
    const std::pair<const char *, const char *> expected[] = {
        {"iotstream_consumer_lag_records{topic=\"iot-readings\",partition=\"0\"}", "17"},
        {"iotstream_pipeline_open_sensors{topic=\"iot-readings\",partition=\"1\"}", "0"},
        {"iotstream_pipeline_late_records_total", "4"},
        {"iotstream_pipeline_commit_age_seconds", "0.75"},
        {"iotstream_stage_records_in_total{stage=\"window\"}", "1190"},
        {"iotstream_stage_records_out_total{stage=\"window\"}", "30"},
        {"iotstream_stage_process_seconds_bucket{stage=\"window\",le=\"0.00005\"}", "2"},
        {"iotstream_stage_process_seconds_bucket{stage=\"window\",le=\"5\"}", "12"},
        {"iotstream_stage_process_seconds_bucket{stage=\"window\",le=\"+Inf\"}", "12"},
        {"iotstream_stage_process_seconds_sum{stage=\"window\"}", "0.0125"},
        {"iotstream_stage_process_seconds_count{stage=\"window\"}", "12"},
        {"iotstream_stage_open_windows{stage=\"window\"}", "9"},
        {"iotstream_plugins_loaded", "4"},
        {"iotstream_plugins_rejected", "1"},
        {"iotstream_plugin_changes_total{change=\"replaced\"}", "2"},
        {"iotstream_sink_acknowledged_records_total{sink=\"influx_sink\"}", "50"},
        {"iotstream_sink_failed_batches_total{sink=\"influx_sink\"}", "1"},
        {"iotstream_sink_max_queued_batches{sink=\"influx_sink\"}", "16"},
        {"iotstream_pipeline_sink_backpressure_waits_total", "3"},
        {"iotstream_pipeline_sink_backpressure_input_pauses_total", "2"},
        {"iotstream_pipeline_sink_backpressure_seconds_total", "1.5"},
    };
    for (const auto &[series, value] : expected) EXPECT_EQ(m.count(series) ? m.at(series) : "(absent)", value) << series;
}

TEST(Prometheus, HistogramBucketsAreCumulativeAndEndAtCount) {
    iotstream::metrics::Histogram h;
    h.observe(std::chrono::microseconds(10));   // first bucket
    h.observe(std::chrono::microseconds(100));  // exactly 0.0001: its own bucket (le is inclusive)
    h.observe(std::chrono::milliseconds(2));
    h.observe(std::chrono::seconds(10));        // +Inf only
    const Json j = h.to_json();
    EXPECT_EQ(j["count"], 4);
    EXPECT_EQ(j["buckets"][0][1], 1);
    EXPECT_EQ(j["buckets"][1][1], 2);
    EXPECT_EQ(j["buckets"].back()[1], 3);
    EXPECT_NEAR(j["sum_s"].get<double>(), 10.00211, 1e-9);
}

TEST(Prometheus, IngestCountersByResult) {
    iots_ingest_stats_t s{};
    s.struct_size = sizeof s;
    s.payloads = 4, s.accepted = 10, s.invalid = 2, s.rate_limited = 3, s.devices_tracked = 5, s.buckets_evicted_idle = 1;
    PrometheusText out;
    iotstream::metrics::render_ingest(out, s);
    const auto m = parse(out.text());
    EXPECT_EQ(m.at("iotstream_ingest_payloads_total"), "4");
    EXPECT_EQ(m.at("iotstream_ingest_readings_total{result=\"accepted\"}"), "10");
    EXPECT_EQ(m.at("iotstream_ingest_readings_total{result=\"rate_limited\"}"), "3");
    EXPECT_EQ(m.at("iotstream_ingest_readings_total{result=\"forbidden\"}"), "0");
    EXPECT_EQ(m.at("iotstream_ingest_devices_tracked"), "5");
    EXPECT_EQ(m.at("iotstream_ingest_buckets_evicted_total{why=\"idle\"}"), "1");
}

TEST(Prometheus, PromtoolAcceptsThePage) {
    if (std::system("command -v promtool >/dev/null 2>&1") != 0) GTEST_SKIP() << "promtool not installed (Debian prometheus)";
    PrometheusText out;
    iotstream::metrics::render_pipeline(out, sample_stats());
    iots_ingest_stats_t s{};
    iotstream::metrics::render_ingest(out, s);
    const std::string path = ::testing::TempDir() + "iotstream_metrics_page.txt";
    std::ofstream(path) << out.text();
    EXPECT_EQ(std::system(("promtool check metrics < " + path + " 2>&1").c_str()), 0) << out.text();
}

TEST(Prometheus, CApiRefusesNoHandleAndReportsTheNeededSize) {
    size_t needed = 0;
    char buf[8];
    EXPECT_EQ(iots_metrics_prometheus(nullptr, nullptr, buf, sizeof buf, &needed), IOTS_ERR_INVALID_ARG);

    iots_ingest_t *ingest = nullptr;
    char errstr[256];
    // No broker is contacted until a reading is produced.
    ASSERT_EQ(iots_ingest_new(R"({"producer": {"kafka": {"bootstrap.servers": "127.0.0.1:9"}}})", nullptr, &ingest,
                              errstr, sizeof errstr), IOTS_OK) << errstr;
    ASSERT_EQ(iots_metrics_prometheus(nullptr, ingest, buf, sizeof buf, &needed), IOTS_ERR_BUFFER_TOO_SMALL);
    ASSERT_GT(needed, sizeof buf);
    std::string page(needed, '\0');
    ASSERT_EQ(iots_metrics_prometheus(nullptr, ingest, page.data(), page.size(), &needed), IOTS_OK);
    page.resize(needed - 1);
    EXPECT_NE(page.find("iotstream_ingest_readings_total{result=\"accepted\"} 0\n"), std::string::npos) << page;

    const iots_api_t *api = iots_get_api(1, 3, errstr, sizeof errstr);
    ASSERT_NE(api, nullptr) << errstr;
    ASSERT_GE(api->struct_size, offsetof(iots_api_t, metrics_prometheus) + sizeof(void *));
    EXPECT_EQ(api->metrics_prometheus, &iots_metrics_prometheus);
    iots_ingest_close(ingest, 1000);
}
