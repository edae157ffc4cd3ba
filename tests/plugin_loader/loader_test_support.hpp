// Test support for the plugin loader: a private temp folder, fixture copies, a fake host table
// that records what plugins do, and a columnar batch builder.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "iotstream/plugin.h"
#include "plugin_host/plugin_config.hpp"
#include "plugin_host/plugin_loader.hpp"

namespace iotstream::test {

namespace fs = std::filesystem;

inline fs::path fixture(const std::string &name) { return fs::path(LOADER_FIXTURE_DIR) / (name + ".so"); }

// A fresh 0700 folder, removed with everything in it.
class TempDir {
public:
    TempDir() {
        const char *tmp = std::getenv("TMPDIR");
        std::string pattern = (fs::path(tmp && *tmp ? tmp : "/tmp") / "iots-loader-test.XXXXXX").string();
        if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
        path_ = pattern;
    }
    ~TempDir() {
        std::error_code ec;
        fs::permissions(path_, fs::perms::owner_all, ec);
        fs::remove_all(path_, ec);
    }
    const fs::path &path() const { return path_; }
    fs::path operator/(const std::string &name) const { return path_ / name; }

private:
    fs::path path_;
};

// Copies a fixture into `dir` as `name` (in place: same inode when it already exists).
inline fs::path install(const std::string &fixture_name, const fs::path &dir, const std::string &name,
                        fs::perms mode = fs::perms(0644)) {
    const fs::path target = dir / name;
    fs::copy_file(fixture(fixture_name), target, fs::copy_options::overwrite_existing);
    fs::permissions(target, mode);
    return target;
}

// The atomic way to drop a file: write a hidden temp file, then rename it into place.
inline fs::path install_atomically(const std::string &fixture_name, const fs::path &dir,
                                   const std::string &name) {
    const fs::path temp = dir / ("." + name + ".tmp");
    fs::copy_file(fixture(fixture_name), temp, fs::copy_options::overwrite_existing);
    fs::permissions(temp, fs::perms(0644));
    fs::rename(temp, dir / name);
    return dir / name;
}

inline void set_mtime_age(const fs::path &file, std::chrono::seconds age) {
    const auto when = std::chrono::system_clock::now() - age;
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(when.time_since_epoch()).count();
    struct timespec times[2];
    times[0].tv_sec = times[1].tv_sec = static_cast<time_t>(ns / 1'000'000'000);
    times[0].tv_nsec = times[1].tv_nsec = static_cast<long>(ns % 1'000'000'000);
    ASSERT_EQ(::utimensat(AT_FDCWD, file.c_str(), times, 0), 0);
}

// What one plugin instance did through the host table.
struct FakeContext {
    struct Anomaly {
        uint32_t index;
        int rule_id;
        double value;
        std::string sensor;
    };
    std::string tag;
    class FakeHost *host = nullptr;
    std::vector<Anomaly> anomalies;
    std::vector<std::string> emitted;  // "output|value"
    std::vector<std::string> logs;
    long live_allocations = 0;
};

class FakeHost {
public:
    FakeHost() {
        api_.struct_size = sizeof api_;
        api_.abi_major = IOTS_PLUGIN_ABI_MAJOR;
        api_.abi_minor = IOTS_PLUGIN_ABI_MINOR;
        api_.log = [](iots_host_ctx_t *ctx, int, const char *message) { of(ctx).logs.push_back(message); };
        api_.emit = [](iots_host_ctx_t *ctx, const char *output, const char *, size_t, const char *value,
                       size_t value_len, int) {
            of(ctx).emitted.push_back(std::string(output) + "|" + std::string(value, value_len));
            return 0;
        };
        api_.dead_letter = [](iots_host_ctx_t *, const iots_batch_view_t *, uint32_t, const char *,
                              const char *) { return 0; };
        api_.alloc_mem = [](iots_host_ctx_t *ctx, size_t size) {
            ++of(ctx).live_allocations;
            return std::malloc(size);
        };
        api_.free_mem = [](iots_host_ctx_t *ctx, void *ptr) {
            if (ptr != nullptr) --of(ctx).live_allocations;
            std::free(ptr);
        };
        api_.register_rule = [](iots_host_ctx_t *ctx, const char *name) {
            auto &rules = of(ctx).host->rules_;
            for (size_t i = 0; i < rules.size(); ++i)
                if (rules[i] == name) return static_cast<int>(i);
            if (rules.size() == 64) return -1;
            rules.emplace_back(name);
            return static_cast<int>(rules.size() - 1);
        };
        api_.rule_name = [](iots_host_ctx_t *ctx, int id) -> const char * {
            auto &rules = of(ctx).host->rules_;
            return id >= 0 && static_cast<size_t>(id) < rules.size() ? rules[static_cast<size_t>(id)].c_str()
                                                                      : nullptr;
        };
        api_.report_anomaly = [](iots_host_ctx_t *ctx, const iots_batch_view_t *batch, uint32_t index,
                                 int rule_id, double value) {
            const iots_str_t sensor = batch->sensor_ids[index];
            of(ctx).anomalies.push_back({index, rule_id, value, std::string(sensor.data, sensor.len)});
            return 0;
        };
        api_.field_index = [](iots_host_ctx_t *, const char *name) {
            return std::string(name) == "temperature" ? 0 : -1;
        };
        fill_config_functions(api_);
    }

    const iots_host_api_t *api() const { return &api_; }
    FakeContext &context(const std::string &tag) {
        contexts_.push_back(std::make_unique<FakeContext>());
        contexts_.back()->tag = tag;
        contexts_.back()->host = this;
        return *contexts_.back();
    }
    static iots_host_ctx_t *handle(FakeContext &ctx) { return reinterpret_cast<iots_host_ctx_t *>(&ctx); }
    const std::vector<std::unique_ptr<FakeContext>> &contexts() const { return contexts_; }
    const std::string &rule(int id) const { return rules_.at(static_cast<size_t>(id)); }

    std::unique_ptr<PluginInstance> instantiate(const PluginRef &plugin, const Json &config = Json::object(),
                                                const std::string &tag = "") {
        FakeContext &ctx = context(tag.empty() ? std::string(plugin->name()) + " " +
                                                     std::string(plugin->version())
                                               : tag);
        return std::make_unique<PluginInstance>(plugin, config, api(), handle(ctx));
    }

private:
    static FakeContext &of(iots_host_ctx_t *ctx) { return *reinterpret_cast<FakeContext *>(ctx); }
    iots_host_api_t api_{};
    std::vector<std::unique_ptr<FakeContext>> contexts_;
    std::vector<std::string> rules_;
};

// A batch with one numeric column, "temperature".
class TestBatch {
public:
    void add(const std::string &sensor, int64_t time_ms, double temperature, uint32_t stream = 0) {
        sensors_.push_back(sensor);
        times_.push_back(time_ms);
        temperatures_.push_back(temperature);
        streams_.push_back(stream);
        offsets_.push_back(static_cast<int64_t>(offsets_.size()));
        bits_.push_back(0);
    }
    const iots_batch_view_t &view() {
        sensor_views_.clear();
        payloads_.clear();
        for (const std::string &s : sensors_) {
            sensor_views_.push_back({s.data(), s.size()});
            payloads_.push_back({"{}", 2});
        }
        columns_[0] = temperatures_.data();
        view_.struct_size = sizeof view_;
        view_.count = static_cast<uint32_t>(sensors_.size());
        view_.field_count = 1;
        view_.field_names = names_;
        view_.fields = columns_;
        view_.sensor_ids = sensor_views_.data();
        view_.event_time_ms = times_.data();
        view_.streams = streams_.data();
        view_.offsets = offsets_.data();
        view_.payloads = payloads_.data();
        view_.anomaly_bits = bits_.data();
        return view_;
    }
    size_t size() const { return sensors_.size(); }

private:
    const char *names_[1] = {"temperature"};
    const double *columns_[1] = {nullptr};
    std::vector<std::string> sensors_;
    std::vector<iots_str_t> sensor_views_, payloads_;
    std::vector<int64_t> times_, offsets_;
    std::vector<double> temperatures_;
    std::vector<uint32_t> streams_;
    std::vector<uint64_t> bits_;
    iots_batch_view_t view_{};
};

// Polls until `done(all events so far)` or the deadline; returns every event seen.
inline std::vector<PluginEvent> poll_until(PluginDirectory &dir,
                                           const std::function<bool(const std::vector<PluginEvent> &)> &done,
                                           std::chrono::milliseconds deadline = std::chrono::seconds(5)) {
    std::vector<PluginEvent> all;
    const auto until = std::chrono::steady_clock::now() + deadline;
    while (true) {
        for (PluginEvent &e : dir.poll()) all.push_back(std::move(e));
        if (done(all) || std::chrono::steady_clock::now() > until) return all;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
}

inline bool has_event(const std::vector<PluginEvent> &events, PluginEvent::Type type,
                      const std::string &name = "") {
    for (const PluginEvent &e : events)
        if (e.type == type && (name.empty() || e.name == name)) return true;
    return false;
}

}  // namespace iotstream::test
