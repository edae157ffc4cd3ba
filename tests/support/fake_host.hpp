// The host table (iots_host_api_t) for plugin tests, with no pipeline behind it. Each plugin
// instance gets a FakeContext that records what it emitted, dead-lettered, reported and logged
// and how much host memory it holds. Rules are registered host-wide (64 at most, as in the
// core); field_index() answers from the reading fields the host is given, which should be the
// fields of the ReadingBatch es the tests process.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "iotstream/plugin.h"
#include "plugin_host/plugin_loader.hpp"
#include "support/reading_batch.hpp"

namespace iotstream::test {

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

class FakeHost;

// What one plugin instance did through the host table, in order. Its address is the
// instance's iots_host_ctx_t (FakeHost::handle()).
struct FakeContext {
    std::string tag;
    FakeHost *host = nullptr;
    std::vector<Emitted> emitted;
    std::vector<DeadLettered> dead_letters;
    std::vector<ReportedAnomaly> anomalies;
    std::vector<std::string> log_lines;  // "<level> <message>"
    long live_allocations = 0;           // alloc_mem() calls not yet matched by free_mem()
    bool refuse_emits = false;           // emit() returns non-zero while set
    bool store_emits = true;             // false: emits are only counted (millions of windows)
    size_t emit_count = 0;
    uint64_t *anomaly_bits = nullptr;  // of the batch being processed: report_anomaly() sets its bit
};

class FakeHost {
public:
    explicit FakeHost(std::vector<std::string> fields = default_reading_fields());
    FakeHost(const FakeHost &) = delete;
    FakeHost &operator=(const FakeHost &) = delete;

    const iots_host_api_t *api() const { return &api_; }
    static iots_host_ctx_t *handle(FakeContext &ctx) { return reinterpret_cast<iots_host_ctx_t *>(&ctx); }

    // A new context, owned by the host.
    FakeContext &context(const std::string &tag);
    const std::vector<std::unique_ptr<FakeContext>> &contexts() const { return contexts_; }

    // An instance of a loaded plugin in a new context (tagged "<name> <version>" by default),
    // made the way the core makes it (config validated, then create()).
    std::unique_ptr<PluginInstance> instantiate(const PluginRef &plugin, const Json &config = Json::object(),
                                                const std::string &tag = "");

    // The id of a rule name (registered on first use); -1 once 64 rules exist.
    int register_rule(const std::string &name);
    const std::vector<std::string> &rules() const { return rules_; }
    const std::string &rule(int id) const { return rules_.at(static_cast<size_t>(id)); }

private:
    std::vector<std::string> fields_;
    std::vector<std::string> rules_;
    std::vector<std::unique_ptr<FakeContext>> contexts_;
    iots_host_api_t api_{};
};

}  // namespace iotstream::test
