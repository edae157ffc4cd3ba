// A loaded plugin library and the plugins (descriptors) inside it.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/config.hpp"  // Json, Error
#include "iotstream/plugin.h"
#include "plugin_host/file_checks.hpp"

namespace iotstream {

class PluginLibrary;

// The folder used when none is given: $IOTSTREAM_PLUGIN_DIR if set, else the build tree's
// plugin folder if it exists, else the installed one.
std::filesystem::path default_plugin_dir();
// One plugin (one descriptor) inside a loaded library. Always handled through PluginRef,
// which keeps the library loaded.
class Plugin {
public:
    Plugin() = default;
    Plugin(Plugin &&) = default;  // moves the key table's buffer with it: descriptor_ stays valid
    Plugin(const Plugin &) = delete;
    Plugin &operator=(const Plugin &) = delete;

    // The host-side copy: zero-initialised, then min(struct_size, sizeof) bytes of the
    // plugin's descriptor, so fields an older plugin lacks read as zero. Its config_keys point
    // to the host's copy of the key table, in this header's layout (config_key_size = sizeof).
    const iots_plugin_descriptor_t &descriptor() const { return descriptor_; }
    std::string_view name() const { return descriptor_.name; }
    std::string_view version() const { return descriptor_.version ? descriptor_.version : ""; }
    std::string_view description() const {
        return descriptor_.description ? descriptor_.description : "";
    }
    iots_plugin_kind_t kind() const { return descriptor_.kind; }
    bool is_rule() const { return descriptor_.kind == IOTS_PLUGIN_RULE; }
    bool is_sink() const { return descriptor_.kind == IOTS_PLUGIN_SINK; }
    // "stage", "rule" or "sink".
    const char *kind_name() const { return is_rule() ? "rule" : is_sink() ? "sink" : "stage"; }
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
    std::vector<iots_config_key_t> config_keys_;  // descriptor_.config_keys points here
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

}  // namespace iotstream
