#include "fake_host.hpp"

#include <dlfcn.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <mutex>
#include <stdexcept>

namespace iotstream::test {

Batch::Batch(const std::vector<Reading> &readings) {
    const size_t n = readings.size();
    sensor_storage_.reserve(n);
    columns_.assign(kSchema.size(), std::vector<double>(n));
    for (size_t i = 0; i < n; ++i) {
        const Reading &r = readings[i];
        sensor_storage_.push_back(r.sensor);
        columns_[0][i] = r.temperature;
        columns_[1][i] = r.humidity;
        columns_[2][i] = r.pressure;
        columns_[3][i] = r.battery_level;
        columns_[4][i] = 37.5;
        columns_[5][i] = -121.5;
        event_times_.push_back(r.event_time_ms);
        streams_.push_back(r.stream);
        offsets_.push_back(r.offset);
        anomaly_bits_.push_back(r.anomaly_bits);
    }
    for (size_t i = 0; i < n; ++i) {
        sensor_ids_.push_back(iots_str_t{sensor_storage_[i].data(), sensor_storage_[i].size()});
        payloads_.push_back(iots_str_t{sensor_storage_[i].data(), sensor_storage_[i].size()});
    }
    for (auto &column : columns_) column_pointers_.push_back(column.data());
    for (auto &name : kSchema) field_names_.push_back(name.c_str());
    view_.struct_size = sizeof view_;
    view_.count = static_cast<uint32_t>(n);
    view_.field_count = static_cast<uint32_t>(kSchema.size());
    view_.field_names = field_names_.data();
    view_.fields = column_pointers_.data();
    view_.sensor_ids = sensor_ids_.data();
    view_.event_time_ms = event_times_.data();
    view_.streams = streams_.data();
    view_.offsets = offsets_.data();
    view_.payloads = payloads_.data();
    view_.anomaly_bits = anomaly_bits_.data();
}

namespace {

FakeHost &self(iots_host_ctx_t *ctx) { return *reinterpret_cast<FakeHost *>(ctx); }

// Plugins stay loaded for the whole test binary (as a host never unloads live code).
const iots_plugin_descriptor_t &load_descriptor(const std::string &plugin) {
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

}  // namespace

const iots_plugin_descriptor_t &FakeHost::descriptor(const std::string &plugin) {
    return load_descriptor(plugin);
}

FakeHost::FakeHost(const std::string &plugin, const nlohmann::json &config,
                   const std::vector<std::string> &preregistered_rules)
    : descriptor_(load_descriptor(plugin)) {
    for (auto &rule : preregistered_rules) register_rule(rule);
    try {
        config_ = std::make_unique<PluginConfig>(descriptor_, config);
    } catch (const Error &e) {
        throw std::runtime_error(e.what());
    }
    api_.struct_size = sizeof api_;
    api_.abi_major = IOTS_PLUGIN_ABI_MAJOR;
    api_.abi_minor = IOTS_PLUGIN_ABI_MINOR;
    api_.log = host_log;
    api_.emit = host_emit;
    api_.dead_letter = host_dead_letter;
    api_.alloc_mem = host_alloc;
    api_.free_mem = host_free;
    fill_config_functions(api_);
    api_.register_rule = host_register_rule;
    api_.rule_name = host_rule_name;
    api_.report_anomaly = host_report_anomaly;
    api_.field_index = host_field_index;
    char errstr[512] = "";
    if (descriptor_.create(&api_, reinterpret_cast<iots_host_ctx_t *>(this), config_->handle(),
                           &instance_, errstr, sizeof errstr) != 0)
        throw std::runtime_error(errstr);
}

FakeHost::~FakeHost() {
    if (instance_ != nullptr) descriptor_.destroy(instance_);
}

std::string FakeHost::create_error(const std::string &plugin, const nlohmann::json &config) {
    try {
        FakeHost host(plugin, config);
        return "";
    } catch (const std::runtime_error &e) {
        return e.what();
    }
}

void FakeHost::process(Batch &batch) {
    char errstr[512] = "";
    current_batch_ = &batch;
    int rc = descriptor_.process(instance_, batch.view(), errstr, sizeof errstr);
    current_batch_ = nullptr;
    if (rc != 0) throw std::runtime_error(errstr);
}

void FakeHost::process(const std::vector<Reading> &readings) {
    Batch batch(readings);
    process(batch);
}

int FakeHost::tick(int64_t wall_clock_ms) {
    return descriptor_.tick ? descriptor_.tick(instance_, wall_clock_ms) : 0;
}

int FakeHost::flush(int final) { return descriptor_.flush(instance_, final); }

void FakeHost::on_assign(uint32_t stream, int64_t restored_watermark_ms) {
    if (descriptor_.on_assign) descriptor_.on_assign(instance_, stream, restored_watermark_ms);
}

void FakeHost::on_revoke(uint32_t stream) {
    if (descriptor_.on_revoke) descriptor_.on_revoke(instance_, stream);
}

std::pair<int64_t, int64_t> FakeHost::checkpoint(uint32_t stream) {
    int64_t offset = 0, watermark = 0;
    descriptor_.checkpoint(instance_, stream, &offset, &watermark);
    return {offset, watermark};
}

int FakeHost::register_rule(const std::string &name) {
    auto it = std::find(rules_.begin(), rules_.end(), name);
    if (it != rules_.end()) return static_cast<int>(it - rules_.begin());
    if (rules_.size() == 64) return -1;
    rules_.push_back(name);
    return static_cast<int>(rules_.size() - 1);
}

void FakeHost::host_log(iots_host_ctx_t *ctx, int level, const char *message) {
    self(ctx).log_lines.push_back(std::to_string(level) + " " + message);
}

int FakeHost::host_emit(iots_host_ctx_t *ctx, const char *output, const char *key, size_t key_len,
                        const char *value, size_t value_len, int flags) {
    FakeHost &host = self(ctx);
    if (host.refuse_emits) return 1;
    ++host.emit_count;
    if (host.store_emits)
        host.emitted.push_back(
        Emitted{output, std::string(key, key_len), std::string(value, value_len), flags});
    return 0;
}

int FakeHost::host_dead_letter(iots_host_ctx_t *ctx, const iots_batch_view_t *batch,
                               uint32_t index, const char *reason, const char *detail) {
    self(ctx).dead_letters.push_back(
        DeadLettered{index, std::string(batch->sensor_ids[index].data, batch->sensor_ids[index].len),
                     batch->offsets[index], reason, detail ? detail : ""});
    return 0;
}

void *FakeHost::host_alloc(iots_host_ctx_t *, size_t size) { return std::malloc(size); }

void FakeHost::host_free(iots_host_ctx_t *, void *ptr) { std::free(ptr); }

int FakeHost::host_register_rule(iots_host_ctx_t *ctx, const char *name) {
    return self(ctx).register_rule(name);
}

const char *FakeHost::host_rule_name(iots_host_ctx_t *ctx, int rule_id) {
    auto &rules = self(ctx).rules_;
    if (rule_id < 0 || static_cast<size_t>(rule_id) >= rules.size()) return nullptr;
    return rules[static_cast<size_t>(rule_id)].c_str();
}

int FakeHost::host_report_anomaly(iots_host_ctx_t *ctx, const iots_batch_view_t *batch,
                                  uint32_t index, int rule_id, double value) {
    FakeHost &host = self(ctx);
    host.anomalies.push_back(ReportedAnomaly{
        index, std::string(batch->sensor_ids[index].data, batch->sensor_ids[index].len), rule_id,
        value});
    if (host.current_batch_ != nullptr) host.current_batch_->set_anomaly_bit(index, rule_id);
    return 0;
}

int FakeHost::host_field_index(iots_host_ctx_t *, const char *field_name) {
    auto it = std::find(kSchema.begin(), kSchema.end(), field_name);
    return it == kSchema.end() ? -1 : static_cast<int>(it - kSchema.begin());
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
