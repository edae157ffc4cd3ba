#include "plugin_host/plugin_instance.hpp"

#include <cstring>

#include "plugin_host/plugin_config.hpp"

namespace iotstream {

// ------------------------------------------------------------------------------------------
// PluginInstance
// ------------------------------------------------------------------------------------------

PluginInstance::PluginInstance(PluginRef plugin, const Json &config, const iots_host_api_t *host,
                               iots_host_ctx_t *ctx)
    : plugin_(std::move(plugin)), ctx_(ctx) {
    if (!plugin_) throw Error(IOTS_ERR_INVALID_ARG, "PluginInstance: plugin is NULL");
    require_arg(host, "host");
    try {
        config_ = std::make_unique<PluginConfig>(plugin_->descriptor(), config);
    } catch (const Error &e) {
        throw Error(e.code(), plugin_->file().string() + ": " + e.what());
    }
    const iots_plugin_descriptor_t &d = plugin_->descriptor();
    if (d.create(host, ctx_, config_->handle(), &instance_, errstr_, sizeof errstr_) != 0) fail("create");
}

PluginInstance::~PluginInstance() { plugin_->descriptor().destroy(instance_); }

const Json &PluginInstance::config() const { return config_->values(); }

void PluginInstance::fail(const char *callback) const {
    const std::string reason = errstr_[0] != '\0' ? std::string(errstr_, strnlen(errstr_, sizeof errstr_))
                                                  : std::string("no reason given (it returned non-zero)");
    throw Error(IOTS_ERR_PLUGIN, plugin_->file().string() + ": plugin '" + std::string(name()) +
                                     "' " + callback + "() failed: " + reason);
}

void PluginInstance::process(const iots_batch_view_t &batch) {
    errstr_[0] = '\0';
    if (plugin_->descriptor().process(instance_, &batch, errstr_, sizeof errstr_) != 0) fail("process");
}

std::string PluginInstance::write_sink(const iots_sink_batch_t &batch) {
    char errstr[512] = {};  // not errstr_: this runs on the sink's thread
    if (plugin_->descriptor().write_sink(instance_, &batch, errstr, sizeof errstr) == 0) return {};
    return errstr[0] != '\0' ? std::string(errstr, strnlen(errstr, sizeof errstr))
                             : std::string("write_sink() returned non-zero without a reason");
}

void PluginInstance::tick(int64_t wall_clock_ms) {
    const auto fn = plugin_->descriptor().tick;
    errstr_[0] = '\0';
    if (fn != nullptr && fn(instance_, wall_clock_ms) != 0) fail("tick");
}

void PluginInstance::on_assign(uint32_t stream, int64_t restored_watermark_ms) {
    if (const auto fn = plugin_->descriptor().on_assign) fn(instance_, stream, restored_watermark_ms);
}

void PluginInstance::on_revoke(uint32_t stream) {
    if (const auto fn = plugin_->descriptor().on_revoke) fn(instance_, stream);
}

PluginInstance::Checkpoint PluginInstance::checkpoint(uint32_t stream) {
    Checkpoint point;
    if (const auto fn = plugin_->descriptor().checkpoint)
        fn(instance_, stream, &point.oldest_needed_offset, &point.watermark_ms);
    return point;
}

void PluginInstance::flush(bool final) {
    const auto fn = plugin_->descriptor().flush;
    errstr_[0] = '\0';
    if (fn != nullptr && fn(instance_, final ? 1 : 0) != 0) fail("flush");
}

namespace {
// The host side of iots_state_write_fn: appends to a std::string. No exception crosses back
// into the plugin: out of memory is a non-zero return.
int append_state(void *sink, const void *data, size_t len) {
    if (sink == nullptr || (data == nullptr && len > 0)) return 1;
    try {
        static_cast<std::string *>(sink)->append(static_cast<const char *>(data), len);
        return 0;
    } catch (...) {
        return 1;
    }
}
}  // namespace

std::string PluginInstance::export_state(uint32_t stream) {
    const auto fn = plugin_->descriptor().export_state;
    if (fn == nullptr) throw Error(IOTS_ERR_PLUGIN, plugin_->file().string() + ": plugin '" + std::string(name()) +
                                                        "' cannot export its state");
    std::string state;
    errstr_[0] = '\0';
    if (fn(instance_, stream, append_state, &state, errstr_, sizeof errstr_) != 0) fail("export_state");
    return state;
}

void PluginInstance::import_state(uint32_t stream, std::string_view state, uint32_t state_version) {
    const auto fn = plugin_->descriptor().import_state;
    if (fn == nullptr) throw Error(IOTS_ERR_PLUGIN, plugin_->file().string() + ": plugin '" + std::string(name()) +
                                                        "' cannot import state");
    errstr_[0] = '\0';
    if (fn(instance_, stream, state.data(), state.size(), state_version, errstr_, sizeof errstr_) != 0)
        fail("import_state");
}
}  // namespace iotstream
