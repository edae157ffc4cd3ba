// The watched plugin folder: what is live, what was refused, and what changed since the last
// look.
#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "plugin_host/plugin_library.hpp"

namespace iotstream {

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
// The JSON behind iots_plugins_describe_json(): {"dir", "plugins": [...], "rejected":
// [{"file", "reason"}]}. Loads the libraries but creates no instance.
Json describe_plugins(const std::filesystem::path &folder);
}  // namespace iotstream
