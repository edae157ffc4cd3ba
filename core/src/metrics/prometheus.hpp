// The Prometheus text exposition format 0.0.4 (iots_metrics_prometheus): one writer that
// escapes, and the renderers that map the core's existing stats onto metric families. The
// counters themselves live where they are counted (Pipeline::stats(), the ingest counters);
// this room only names and formats them.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "iotstream/iotstream.h"

namespace iotstream::metrics {

// A label value with \, " and newline escaped as the format requires.
std::string escape_label_value(std::string_view value);
// HELP text: only \ and newline are escaped there.
std::string escape_help(std::string_view help);

using Labels = std::vector<std::pair<std::string, std::string>>;

class PrometheusText {
public:
    // Starts a family: its # HELP and # TYPE lines. `type` is "counter" or "gauge".
    void family(std::string_view name, std::string_view type, std::string_view help);
    void sample(std::string_view name, const Labels &labels, uint64_t value);
    void sample(std::string_view name, const Labels &labels, double value);
    // A family with one unlabelled sample.
    void single(std::string_view name, std::string_view type, std::string_view help, uint64_t value);
    const std::string &text() const { return out_; }

private:
    void series(std::string_view name, const Labels &labels);
    std::string out_;
};

// Families of a pipeline, from its stats document (Pipeline::stats()).
void render_pipeline(PrometheusText &out, const nlohmann::json &stats);
// Families of an ingestion handle, from its counters.
void render_ingest(PrometheusText &out, const iots_ingest_stats_t &stats);

}  // namespace iotstream::metrics
