// A minimal in-process host for plugin tests: loads a built plugin with dlopen(), validates its
// config through PluginConfig, and records everything the plugin emits, dead-letters or
// reports, so tests can assert on real plugin behaviour without Kafka.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "iotstream/plugin.h"
#include "plugin_host/plugin_config.hpp"

namespace iotstream::test {

inline constexpr double kAbsent = std::numeric_limits<double>::quiet_NaN();

// One input record, as the decoder would have produced it.
struct Reading {
    std::string sensor;
    int64_t event_time_ms = 0;
    double temperature = 25.0;
    double humidity = 50.0;
    double pressure = 1010.0;
    double battery_level = 80.0;
    uint32_t stream = 0;
    int64_t offset = 0;
    uint64_t anomaly_bits = 0;
};

// The fake decoder schema: column order of every batch.
inline const std::vector<std::string> kSchema = {"temperature", "humidity",     "pressure",
                                                 "battery_level", "location.lat", "location.lon"};

// Readings laid out as the columns of an iots_batch_view_t. Owns all memory the view points to.
class Batch {
public:
    explicit Batch(const std::vector<Reading> &readings);
    const iots_batch_view_t *view() const { return &view_; }
    uint64_t anomaly_bits(uint32_t index) const { return anomaly_bits_[index]; }
    void set_anomaly_bit(uint32_t index, int rule) { anomaly_bits_[index] |= uint64_t{1} << rule; }

private:
    std::vector<std::string> sensor_storage_;
    std::vector<std::vector<double>> columns_;
    std::vector<const double *> column_pointers_;
    std::vector<const char *> field_names_;
    std::vector<iots_str_t> sensor_ids_;
    std::vector<int64_t> event_times_;
    std::vector<uint32_t> streams_;
    std::vector<int64_t> offsets_;
    std::vector<iots_str_t> payloads_;
    std::vector<uint64_t> anomaly_bits_;
    iots_batch_view_t view_{};
};

struct Emitted {
    std::string output;
    std::string key;
    std::string value;
    int flags;
    nlohmann::json json() const { return nlohmann::json::parse(value); }
};

struct DeadLettered {
    uint32_t index;
    std::string sensor;
    int64_t offset;
    std::string reason;
    std::string detail;
};

struct ReportedAnomaly {
    uint32_t index;
    std::string sensor;
    int rule_id;
    double value;
};

class FakeHost {
public:
    // Loads plugins/<plugin>.so and creates an instance with `config`. Throws std::runtime_error
    // carrying PluginConfig's or create()'s message when either refuses.
    FakeHost(const std::string &plugin, const nlohmann::json &config,
             const std::vector<std::string> &preregistered_rules = {});
    ~FakeHost();
    FakeHost(const FakeHost &) = delete;
    FakeHost &operator=(const FakeHost &) = delete;

    // The error create() (or config validation) gives for `config`; "" when it succeeds.
    static std::string create_error(const std::string &plugin, const nlohmann::json &config);
    static const iots_plugin_descriptor_t &descriptor(const std::string &plugin);

    // process(); throws with the plugin's errstr when it returns non-zero.
    void process(Batch &batch);
    void process(const std::vector<Reading> &readings);
    int tick(int64_t wall_clock_ms);
    int flush(int final);
    void on_assign(uint32_t stream, int64_t restored_watermark_ms);
    void on_revoke(uint32_t stream);
    // {oldest_needed_offset, watermark_ms}
    std::pair<int64_t, int64_t> checkpoint(uint32_t stream);

    int register_rule(const std::string &name);
    const std::vector<std::string> &rules() const { return rules_; }

    // Captured output, in order.
    std::vector<Emitted> emitted;
    std::vector<DeadLettered> dead_letters;
    std::vector<ReportedAnomaly> anomalies;
    std::vector<std::string> log_lines;
    bool refuse_emits = false;  // emit() returns non-zero while set
    bool store_emits = true;    // false: only count (benchmarks with millions of windows)
    size_t emit_count = 0;

private:
    static void host_log(iots_host_ctx_t *ctx, int level, const char *message);
    static int host_emit(iots_host_ctx_t *ctx, const char *output, const char *key, size_t key_len,
                         const char *value, size_t value_len, int flags);
    static int host_dead_letter(iots_host_ctx_t *ctx, const iots_batch_view_t *batch,
                                uint32_t index, const char *reason, const char *detail);
    static void *host_alloc(iots_host_ctx_t *ctx, size_t size);
    static void host_free(iots_host_ctx_t *ctx, void *ptr);
    static int host_register_rule(iots_host_ctx_t *ctx, const char *name);
    static const char *host_rule_name(iots_host_ctx_t *ctx, int rule_id);
    static int host_report_anomaly(iots_host_ctx_t *ctx, const iots_batch_view_t *batch,
                                   uint32_t index, int rule_id, double value);
    static int host_field_index(iots_host_ctx_t *ctx, const char *field_name);

    const iots_plugin_descriptor_t &descriptor_;
    std::unique_ptr<PluginConfig> config_;
    iots_host_api_t api_{};
    void *instance_ = nullptr;
    std::vector<std::string> rules_;
    Batch *current_batch_ = nullptr;  // the batch being processed (report_anomaly sets its bits)
};

// Two-pass reference statistics, computed independently of the plugin's Welford code.
struct ReferenceStats {
    size_t n = 0;
    double min = 0, max = 0, mean = 0, std = 0;
};
ReferenceStats reference_stats(const std::vector<double> &values);

}  // namespace iotstream::test
