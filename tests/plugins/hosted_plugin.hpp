// One bundled plugin (plugins/<name>.so) run directly through its descriptor on a FakeHost, so
// tests see the callbacks' own return codes and messages. It is its own host context: what
// the plugin did reads as plugin.emitted, plugin.anomalies, ...
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "iotstream/plugin.h"
#include "plugin_host/plugin_config.hpp"
#include "support/fake_host.hpp"
#include "support/reading_batch.hpp"

namespace iotstream::test {

class HostedPlugin : public FakeContext {
public:
    // Loads the plugin and creates an instance with `config`. Throws std::runtime_error carrying
    // PluginConfig's or create()'s message when either refuses.
    HostedPlugin(const std::string &plugin, const nlohmann::json &config,
                 const std::vector<std::string> &preregistered_rules = {});
    ~HostedPlugin();
    HostedPlugin(const HostedPlugin &) = delete;
    HostedPlugin &operator=(const HostedPlugin &) = delete;

    // The error create() (or config validation) gives for `config`; "" when it succeeds.
    static std::string create_error(const std::string &plugin, const nlohmann::json &config);
    // Plugins stay loaded for the whole test binary (as a host never unloads live code).
    static const iots_plugin_descriptor_t &descriptor(const std::string &plugin);

    // process(); throws with the plugin's errstr when it returns non-zero.
    void process(ReadingBatch &batch);
    void process(const std::vector<Reading> &readings);
    int tick(int64_t wall_clock_ms);
    int flush(int final);
    void on_assign(uint32_t stream, int64_t restored_watermark_ms);
    void on_revoke(uint32_t stream);
    // {oldest_needed_offset, watermark_ms}
    std::pair<int64_t, int64_t> checkpoint(uint32_t stream);

    // State hand-over (ABI 1.2): the stream's exported bytes (throws with errstr on failure),
    // and import_state's errstr ("" when it returned 0).
    std::string export_state(uint32_t stream);
    std::string import_state(uint32_t stream, const std::string &state, uint32_t state_version);

    const std::vector<std::string> &rules() const { return host_.rules(); }

private:
    FakeHost host_;
    const iots_plugin_descriptor_t &descriptor_;
    std::unique_ptr<PluginConfig> config_;
    void *instance_ = nullptr;
};

// Two-pass reference statistics, computed independently of the plugin's Welford code.
struct ReferenceStats {
    size_t n = 0;
    double min = 0, max = 0, mean = 0, std = 0;
};
ReferenceStats reference_stats(const std::vector<double> &values);

}  // namespace iotstream::test
