// Test support for the plugin loader: a private temp folder, fixture copies and directory
// polling. The fake host table and the batch builder are tests/support's.
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
#include "plugin_host/plugin_loader.hpp"
#include "support/fake_host.hpp"
#include "support/reading_batch.hpp"

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

// The one reason a folder holding one bad file is rejected for (and nothing loads).
inline std::string the_rejection(const fs::path &dir) {
    PluginDirectory plugins(dir);
    const auto rejected = plugins.rejections();
    EXPECT_EQ(rejected.size(), 1u);
    EXPECT_TRUE(plugins.plugins().empty());
    return rejected.empty() ? std::string() : rejected.front().reason;
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

// The loader tests' readings carry one field, "temperature": plugins asking for another get -1.
inline const std::vector<std::string> kTemperatureOnly = {"temperature"};

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
