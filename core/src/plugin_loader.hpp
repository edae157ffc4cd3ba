// The plugin loader: shared-library plugins (plugin.h) loaded with Boost.DLL from a watched
// folder, checked before any of their callbacks run, instantiated with validated config, and
// swapped while the pipeline keeps running.
//
// Lifetime rule (as OBS): a library stays loaded while any of its code may still run. Every
// PluginRef and every PluginInstance holds a shared_ptr to its library, so dropping a file
// from the folder never unmaps code that a live instance is executing.
//
// Hot-swap protocol (the pipeline's side; LiveInstances implements it):
//  1. The pipeline thread calls PluginDirectory::poll() between batches (every ~250 ms).
//     poll() only loads and checks libraries; it never creates or destroys instances.
//  2. The events are applied at that same batch boundary, on the thread that calls process():
//       Added(p)        create an instance (if the pipeline wants p: every rule plugin joins
//                       the rules stage; a stage plugin only where the config names it).
//       Replaced(o, n)  create the instance of n FIRST; if that fails the instance of o stays
//                       live (a rejection never stops the stream). Then retire o's instance:
//                       a stage plugin is drained with flush(final=1) so its open state is
//                       emitted, a rule plugin is simply destroyed; n's instance takes o's
//                       place. No batch is seen by both or by neither.
//       Removed(name)   retire the instance as above.
//       Rejected(f, r)  nothing to do: poll() already logged it; the previous version of the
//                       file (if any) stays live.
//  3. A new instance starts with empty state: the factory should call on_assign() for the
//     streams currently assigned, exactly as after a rebalance.
//
// Threading: PluginLibrary, PluginRef and iots_plugins_describe_json are thread-safe. One
// PluginDirectory, PluginInstance or LiveInstances is used by one thread at a time.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config.hpp"  // Json, Error
#include "iotstream/plugin.h"

namespace iotstream {

class PluginConfig;
class PluginLibrary;

// The folder used when none is given: $IOTSTREAM_PLUGIN_DIR if set, else the build tree's
// plugin folder if it exists, else the installed one.
std::filesystem::path default_plugin_dir();

// Size a descriptor must have for the callbacks that ABI minor `abi_minor` requires
// (offsetof the last required field + its size). Only ever grows with the minor.
size_t required_descriptor_size(uint16_t abi_minor);

// What identifies one version of a file: a change of any field is a new version.
struct FileStamp {
    dev_t device = 0;
    ino_t inode = 0;
    off_t size = 0;
    int64_t mtime_ns = 0;
    mode_t mode = 0;
    uid_t owner = 0;
    bool operator==(const FileStamp &) const = default;
};

// One plugin (one descriptor) inside a loaded library. Always handled through PluginRef,
// which keeps the library loaded.
class Plugin {
public:
    // The host-side copy: zero-initialised, then min(struct_size, sizeof) bytes of the
    // plugin's descriptor, so fields an older plugin lacks read as zero.
    const iots_plugin_descriptor_t &descriptor() const { return descriptor_; }
    std::string_view name() const { return descriptor_.name; }
    std::string_view version() const { return descriptor_.version ? descriptor_.version : ""; }
    std::string_view description() const {
        return descriptor_.description ? descriptor_.description : "";
    }
    iots_plugin_kind_t kind() const { return descriptor_.kind; }
    bool is_rule() const { return descriptor_.kind == IOTS_PLUGIN_RULE; }
    // The file in the plugin folder this was loaded from (not the private copy).
    const std::filesystem::path &file() const;
    const PluginLibrary &library() const { return *library_; }
    // "kind name version (file)" for log lines.
    std::string label() const;
    // name, kind, version, description, file, abi, config keys (type, default, required, help).
    Json describe() const;

private:
    friend class PluginLibrary;
    const PluginLibrary *library_ = nullptr;
    iots_plugin_descriptor_t descriptor_{};
};

// Shares ownership of the plugin's library (aliasing shared_ptr).
using PluginRef = std::shared_ptr<const Plugin>;

// One loaded shared library. load() checks the file and every descriptor before returning;
// each failure is Error(IOTS_ERR_PLUGIN, "<file>: <reason>"). The library is opened from a
// private copy (dlopen caches by path, and overwriting a mapped file in place crashes the
// process), with RTLD_LOCAL | RTLD_NOW: plugins never see each other's symbols, and an
// unresolved symbol is a load-time rejection instead of a crash mid-stream.
class PluginLibrary : public std::enable_shared_from_this<PluginLibrary> {
public:
    static std::shared_ptr<PluginLibrary> load(const std::filesystem::path &file);
    ~PluginLibrary();
    PluginLibrary(const PluginLibrary &) = delete;
    PluginLibrary &operator=(const PluginLibrary &) = delete;

    const std::filesystem::path &file() const { return file_; }
    const FileStamp &stamp() const { return stamp_; }
    size_t size() const { return plugins_.size(); }
    PluginRef plugin(size_t index) const;
    std::vector<PluginRef> plugins() const;

private:
    struct Impl;
    PluginLibrary();
    std::filesystem::path file_;
    FileStamp stamp_;
    std::vector<Plugin> plugins_;
    std::unique_ptr<Impl> impl_;  // the Boost.DLL handle and the private copy
};

// A file that could not be loaded, and why.
struct PluginRejection {
    std::filesystem::path file;
    std::string reason;  // the full message, beginning with the file name
};

struct PluginEvent {
    enum class Type { added, replaced, removed, rejected };
    Type type;
    std::string name;             // the plugin's name (empty for rejected)
    PluginRef plugin;             // added / replaced: the new version
    PluginRef previous;           // replaced / removed: the version that goes away
    PluginRejection rejection;    // rejected
};

// A watched plugin folder. The constructor loads every "*.so" in it (names starting with "."
// are ignored, so "write .x.so.tmp, then rename to x.so" is the atomic way to drop a file);
// poll() reports what changed since. A changed file is loaded only once complete: its
// stamp (inode, size, mtime, mode) must be unchanged across two polls at least
// `settle_time` apart, or its mtime must already be older than settle_time (renamed into
// place). Duplicate plugin names: the file already live keeps the name, the newcomer is
// rejected naming both files. Loading a library runs its code, so a folder or file that is
// writable by group or others, or owned by someone other than the user or root, is refused.
class PluginDirectory {
public:
    struct Options {
        std::chrono::milliseconds settle_time{200};
    };
    // Throws Error(IOTS_ERR_NOT_FOUND) when `folder` does not exist or is not a folder.
    // Every other problem is a rejection (see rejections()) and never an exception.
    explicit PluginDirectory(std::filesystem::path folder);
    PluginDirectory(std::filesystem::path folder, Options options);
    ~PluginDirectory();
    PluginDirectory(const PluginDirectory &) = delete;
    PluginDirectory &operator=(const PluginDirectory &) = delete;

    const std::filesystem::path &folder() const { return folder_; }
    // The live plugins, sorted by name.
    std::vector<PluginRef> plugins() const;
    PluginRef find(std::string_view name) const;
    // Files currently refused, sorted by file name.
    std::vector<PluginRejection> rejections() const;

    // Rescans the folder (one readdir + one stat per file: cheap). Loads complete new or
    // changed files and returns the changes, rejections first, then removals, replacements
    // and additions, each group sorted by name. Rejections are logged (logger("plugins"))
    // and reported once per version of a file.
    std::vector<PluginEvent> poll();

private:
    struct FileState;
    std::vector<PluginEvent> scan(bool startup);
    void try_load(const std::filesystem::path &file, const FileStamp &stamp,
                  std::vector<PluginEvent> &rejected);
    std::string folder_problem() const;

    std::filesystem::path folder_;
    Options options_;
    std::map<std::filesystem::path, std::unique_ptr<FileState>> files_;
    std::map<std::string, PluginRef, std::less<>> live_;
    uint64_t names_generation_ = 0;  // bumped when a name is freed: retries name conflicts
    bool folder_missing_logged_ = false;
    bool live_dirty_ = false;  // a library was loaded or dropped since the last diff
};

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

private:
    [[noreturn]] void fail(const char *callback) const;

    PluginRef plugin_;
    std::unique_ptr<PluginConfig> config_;
    iots_host_ctx_t *ctx_;
    void *instance_ = nullptr;
    char errstr_[512] = {};
};

// The live instances of a set of plugins, kept in step with a PluginDirectory by the
// hot-swap protocol above. Used on the thread that calls process().
class LiveInstances {
public:
    // Makes the instance for a plugin that became live, or returns nullptr when this set
    // does not want it. May throw Error: the plugin is then not live (added) or the previous
    // instance stays live (replaced); the error is logged.
    using Factory = std::function<std::unique_ptr<PluginInstance>(const PluginRef &)>;

    struct Report {
        size_t added = 0, replaced = 0, removed = 0, failed = 0;
    };

    explicit LiveInstances(Factory factory);
    ~LiveInstances();  // retires every instance, last first
    LiveInstances(const LiveInstances &) = delete;
    LiveInstances &operator=(const LiveInstances &) = delete;

    // Instantiates plugins already loaded (a PluginDirectory's start-up set).
    Report add(const std::vector<PluginRef> &plugins);
    // Applies poll() events. Call only between batches.
    Report apply(const std::vector<PluginEvent> &events);
    const std::vector<std::unique_ptr<PluginInstance>> &instances() const { return instances_; }
    PluginInstance *find(std::string_view name) const;
    // Retires every instance (stages drained), last first.
    void clear();

private:
    bool install(const PluginRef &plugin, Report &report);
    void retire(std::unique_ptr<PluginInstance> instance);

    Factory factory_;
    std::vector<std::unique_ptr<PluginInstance>> instances_;
};

// The JSON behind iots_plugins_describe_json(): {"dir", "plugins": [...], "rejected":
// [{"file", "reason"}]}. Loads the libraries but creates no instance.
Json describe_plugins(const std::filesystem::path &folder);

}  // namespace iotstream
