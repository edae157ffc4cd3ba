// One running instance of a plugin: its validated config and its callbacks, with failures
// turned into errors that name the file and the plugin.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>

#include "plugin_host/plugin_library.hpp"

namespace iotstream {

class PluginConfig;

// One instance of a plugin, created with a validated config; destroy() runs in the destructor.
// Callback failures throw Error(IOTS_ERR_PLUGIN, "<file>: plugin '<name>' <callback>()
// failed: <its message>"). Optional callbacks the plugin lacks are no-ops.
// A plugin must not let a C++ exception escape (plugin.h): the host cannot recover from one
// unwinding through C frames, so it is not caught here.
class PluginInstance {
public:
    // `host` and `ctx` must outlive the instance. The config is validated first (an unknown
    // key or wrong type is Error(IOTS_ERR_CONFIG) naming the file, plugin and key).
    PluginInstance(PluginRef plugin, const Json &config, const iots_host_api_t *host,
                   iots_host_ctx_t *ctx);
    ~PluginInstance();
    PluginInstance(const PluginInstance &) = delete;
    PluginInstance &operator=(const PluginInstance &) = delete;

    const Plugin &plugin() const { return *plugin_; }
    const PluginRef &plugin_ref() const { return plugin_; }
    std::string_view name() const { return plugin_->name(); }
    iots_host_ctx_t *context() const { return ctx_; }
    const Json &config() const;

    void process(const iots_batch_view_t &batch);
    bool has_tick() const { return plugin_->descriptor().tick != nullptr; }
    void tick(int64_t wall_clock_ms);
    void on_assign(uint32_t stream, int64_t restored_watermark_ms);
    void on_revoke(uint32_t stream);
    struct Checkpoint {
        int64_t oldest_needed_offset = IOTS_NO_VALUE;
        int64_t watermark_ms = IOTS_NO_VALUE;
    };
    // {IOTS_NO_VALUE, IOTS_NO_VALUE} for a stateless plugin (no checkpoint callback).
    Checkpoint checkpoint(uint32_t stream);
    void flush(bool final);

    // State hand-over (plugin.h, ABI 1.2). holds_state(): the plugin has a checkpoint, so its
    // open state is something a commit depends on. export_state() returns the stream's state
    // (the host's copy); import_state() hands it to this instance. Both throw Error naming the
    // plugin, its file and the reason; neither may be called when state_version() is 0.
    bool holds_state() const { return plugin_->descriptor().checkpoint != nullptr; }
    uint32_t state_version() const { return plugin_->descriptor().state_version; }
    std::string export_state(uint32_t stream);
    void import_state(uint32_t stream, std::string_view state, uint32_t state_version);
    // The plugin's gauges (ABI 1.4) through put(name, value); nothing when it has none.
    template <typename Put>
    void gauges(Put &&put) {
        auto fn = plugin_->descriptor().gauges;
        if (fn == nullptr) return;
        fn(instance_, [](void *opaque, const char *name, double value) {
            if (name != nullptr) (*static_cast<std::remove_reference_t<Put> *>(opaque))(name, value);
        }, &put);
    }
    // A sink's write_sink (ABI 1.3), on the sink's own thread: "" or the plugin's reason.
    std::string write_sink(const iots_sink_batch_t &batch);

private:
    [[noreturn]] void fail(const char *callback) const;

    PluginRef plugin_;
    std::unique_ptr<PluginConfig> config_;
    iots_host_ctx_t *ctx_;
    void *instance_ = nullptr;
    char errstr_[512] = {};
};
}  // namespace iotstream
