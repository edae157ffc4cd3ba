#include "support/fake_host.hpp"

#include <algorithm>
#include <cstdlib>

#include "plugin_host/plugin_config.hpp"

namespace iotstream::test {
namespace {

FakeContext &of(iots_host_ctx_t *ctx) { return *reinterpret_cast<FakeContext *>(ctx); }

std::string sensor_of(const iots_batch_view_t *batch, uint32_t index) {
    return {batch->sensor_ids[index].data, batch->sensor_ids[index].len};
}

}  // namespace

FakeHost::FakeHost(std::vector<std::string> fields) : fields_(std::move(fields)) {
    api_.struct_size = sizeof api_;
    api_.abi_major = IOTS_PLUGIN_ABI_MAJOR;
    api_.abi_minor = IOTS_PLUGIN_ABI_MINOR;
    api_.log = [](iots_host_ctx_t *ctx, int level, const char *message) {
        of(ctx).log_lines.push_back(std::to_string(level) + " " + message);
    };
    api_.emit = [](iots_host_ctx_t *ctx, const char *output, const char *key, size_t key_len, const char *value,
                   size_t value_len, int flags) {
        FakeContext &c = of(ctx);
        if (c.refuse_emits) return 1;
        ++c.emit_count;
        if (c.store_emits)
            c.emitted.push_back(Emitted{output, std::string(key ? key : "", key ? key_len : 0),
                                        std::string(value, value_len), flags});
        return 0;
    };
    api_.dead_letter = [](iots_host_ctx_t *ctx, const iots_batch_view_t *batch, uint32_t index, const char *reason,
                          const char *detail) {
        of(ctx).dead_letters.push_back(
            DeadLettered{index, sensor_of(batch, index), batch->offsets[index], reason, detail ? detail : ""});
        return 0;
    };
    api_.alloc_mem = [](iots_host_ctx_t *ctx, size_t size) {
        ++of(ctx).live_allocations;
        return std::malloc(size);
    };
    api_.free_mem = [](iots_host_ctx_t *ctx, void *ptr) {
        if (ptr != nullptr) --of(ctx).live_allocations;
        std::free(ptr);
    };
    fill_config_functions(api_);
    api_.register_rule = [](iots_host_ctx_t *ctx, const char *name) { return of(ctx).host->register_rule(name); };
    api_.rule_name = [](iots_host_ctx_t *ctx, int id) -> const char * {
        const auto &rules = of(ctx).host->rules_;
        return id >= 0 && static_cast<size_t>(id) < rules.size() ? rules[static_cast<size_t>(id)].c_str() : nullptr;
    };
    api_.report_anomaly = [](iots_host_ctx_t *ctx, const iots_batch_view_t *batch, uint32_t index, int rule_id,
                             double value) {
        FakeContext &c = of(ctx);
        c.anomalies.push_back(ReportedAnomaly{index, sensor_of(batch, index), rule_id, value});
        if (c.anomaly_bits != nullptr) c.anomaly_bits[index] |= uint64_t{1} << rule_id;
        return 0;
    };
    api_.field_index = [](iots_host_ctx_t *ctx, const char *name) {
        const auto &known = of(ctx).host->fields_;
        auto it = std::find(known.begin(), known.end(), name);
        return it == known.end() ? -1 : static_cast<int>(it - known.begin());
    };
}

FakeContext &FakeHost::context(const std::string &tag) {
    contexts_.push_back(std::make_unique<FakeContext>());
    contexts_.back()->tag = tag;
    contexts_.back()->host = this;
    return *contexts_.back();
}

std::unique_ptr<PluginInstance> FakeHost::instantiate(const PluginRef &plugin, const Json &config,
                                                      const std::string &tag) {
    FakeContext &ctx =
        context(tag.empty() ? std::string(plugin->name()) + " " + std::string(plugin->version()) : tag);
    return std::make_unique<PluginInstance>(plugin, config, api(), handle(ctx));
}

int FakeHost::register_rule(const std::string &name) {
    auto it = std::find(rules_.begin(), rules_.end(), name);
    if (it != rules_.end()) return static_cast<int>(it - rules_.begin());
    if (rules_.size() == 64) return -1;
    rules_.push_back(name);
    return static_cast<int>(rules_.size() - 1);
}

}  // namespace iotstream::test
