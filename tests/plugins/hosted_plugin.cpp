#include "hosted_plugin.hpp"

#include <dlfcn.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <mutex>
#include <stdexcept>

namespace iotstream::test {

const iots_plugin_descriptor_t &HostedPlugin::descriptor(const std::string &plugin) {
    static std::mutex mutex;
    static std::map<std::string, const iots_plugin_descriptor_t *> loaded;
    std::lock_guard lock(mutex);
    if (auto it = loaded.find(plugin); it != loaded.end()) return *it->second;
    std::string path = std::string(IOTSTREAM_TEST_PLUGIN_DIR) + "/" + plugin + ".so";
    void *handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr) throw std::runtime_error("dlopen " + path + ": " + dlerror());
    auto entry = reinterpret_cast<iots_plugin_entry_fn>(dlsym(handle, IOTS_PLUGIN_ENTRY_SYMBOL));
    if (entry == nullptr) throw std::runtime_error(path + " lacks " IOTS_PLUGIN_ENTRY_SYMBOL);
    uint32_t count = 0;
    const iots_plugin_descriptor_t *const *descriptors = entry(&count);
    for (uint32_t d = 0; d < count; ++d) {
        if (plugin == descriptors[d]->name) {
            loaded[plugin] = descriptors[d];
            return *descriptors[d];
        }
    }
    throw std::runtime_error(path + " has no descriptor named " + plugin);
}

HostedPlugin::HostedPlugin(const std::string &plugin, const nlohmann::json &config,
                           const std::vector<std::string> &preregistered_rules)
    : descriptor_(descriptor(plugin)) {
    tag = plugin;
    host = &host_;
    for (auto &rule : preregistered_rules) host_.register_rule(rule);
    try {
        config_ = std::make_unique<PluginConfig>(descriptor_, config);
    } catch (const Error &e) {
        throw std::runtime_error(e.what());
    }
    char errstr[512] = "";
    if (descriptor_.create(host_.api(), FakeHost::handle(*this), config_->handle(), &instance_, errstr,
                           sizeof errstr) != 0)
        throw std::runtime_error(errstr);
}

HostedPlugin::~HostedPlugin() {
    if (instance_ != nullptr) descriptor_.destroy(instance_);
}

std::string HostedPlugin::create_error(const std::string &plugin, const nlohmann::json &config) {
    try {
        HostedPlugin hosted(plugin, config);
        return "";
    } catch (const std::runtime_error &e) {
        return e.what();
    }
}

void HostedPlugin::process(ReadingBatch &batch) {
    char errstr[512] = "";
    const iots_batch_view_t &view = batch.view();
    anomaly_bits = batch.anomaly_bits();
    int rc = descriptor_.process(instance_, &view, errstr, sizeof errstr);
    anomaly_bits = nullptr;
    if (rc != 0) throw std::runtime_error(errstr);
}

void HostedPlugin::process(const std::vector<Reading> &readings) {
    ReadingBatch batch(readings);
    process(batch);
}

int HostedPlugin::tick(int64_t wall_clock_ms) {
    return descriptor_.tick ? descriptor_.tick(instance_, wall_clock_ms) : 0;
}

int HostedPlugin::flush(int final) { return descriptor_.flush(instance_, final); }

void HostedPlugin::on_assign(uint32_t stream, int64_t restored_watermark_ms) {
    if (descriptor_.on_assign) descriptor_.on_assign(instance_, stream, restored_watermark_ms);
}

void HostedPlugin::on_revoke(uint32_t stream) {
    if (descriptor_.on_revoke) descriptor_.on_revoke(instance_, stream);
}

std::pair<int64_t, int64_t> HostedPlugin::checkpoint(uint32_t stream) {
    int64_t offset = 0, watermark = 0;
    descriptor_.checkpoint(instance_, stream, &offset, &watermark);
    return {offset, watermark};
}

std::string HostedPlugin::export_state(uint32_t stream) {
    if (descriptor_.export_state == nullptr) throw std::runtime_error(tag + " has no export_state");
    std::string state;
    char errstr[512] = "";
    auto append = [](void *sink, const void *data, size_t len) {
        static_cast<std::string *>(sink)->append(static_cast<const char *>(data), len);
        return 0;
    };
    if (descriptor_.export_state(instance_, stream, append, &state, errstr, sizeof errstr) != 0)
        throw std::runtime_error(errstr);
    return state;
}

std::string HostedPlugin::import_state(uint32_t stream, const std::string &state, uint32_t state_version) {
    if (descriptor_.import_state == nullptr) return tag + " has no import_state";
    char errstr[512] = "";
    if (descriptor_.import_state(instance_, stream, state.data(), state.size(), state_version, errstr,
                                 sizeof errstr) == 0)
        return "";
    return errstr[0] != '\0' ? errstr : "import_state failed without a reason";
}

ReferenceStats reference_stats(const std::vector<double> &values) {
    ReferenceStats s;
    s.n = values.size();
    if (s.n == 0) return s;
    s.min = *std::min_element(values.begin(), values.end());
    s.max = *std::max_element(values.begin(), values.end());
    long double sum = 0;
    for (double v : values) sum += v;
    s.mean = static_cast<double>(sum / static_cast<long double>(s.n));
    if (s.n >= 2) {
        long double squares = 0;
        for (double v : values) squares += (v - s.mean) * (v - s.mean);
        s.std = static_cast<double>(std::sqrt(squares / static_cast<long double>(s.n - 1)));
    }
    return s;
}

}  // namespace iotstream::test
