#include "plugin_host/plugin_directory.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <set>

#include "common/log.hpp"

namespace fs = std::filesystem;

namespace iotstream {
namespace {
constexpr const char *kComponent = "plugins";
}  // namespace

// ------------------------------------------------------------------------------------------
// PluginDirectory
// ------------------------------------------------------------------------------------------

struct PluginDirectory::FileState {
    FileStamp acted;                          // the version last loaded or rejected
    std::shared_ptr<PluginLibrary> library;   // the live version (may predate `acted`)
    bool rejected = false;
    std::string reason;
    bool name_conflict = false;               // rejected only because a name was taken
    uint64_t conflict_generation = 0;
    bool pending = false;                     // a new version waiting to settle
    FileStamp pending_stamp;
    std::chrono::steady_clock::time_point pending_since;
};

PluginDirectory::PluginDirectory(fs::path folder) : PluginDirectory(std::move(folder), Options{}) {}

PluginDirectory::PluginDirectory(fs::path folder, Options options)
    : folder_(std::move(folder)), options_(options) {
    std::error_code ec;
    if (!fs::exists(folder_, ec))
        throw Error(IOTS_ERR_NOT_FOUND, "plugin folder '" + folder_.string() + "' does not exist");
    if (!fs::is_directory(folder_, ec))
        throw Error(IOTS_ERR_NOT_FOUND, "plugin folder '" + folder_.string() + "' is not a folder");
    scan(/*startup=*/true);
    auto log = logger(kComponent);
    log->info("{} plugin(s) loaded from {}, {} file(s) rejected", live_.size(), folder_.string(),
              rejections().size());
}

PluginDirectory::~PluginDirectory() = default;

std::vector<PluginRef> PluginDirectory::plugins() const {
    std::vector<PluginRef> all;
    all.reserve(live_.size());
    for (const auto &[name, plugin] : live_) all.push_back(plugin);
    return all;
}

PluginRef PluginDirectory::find(std::string_view name) const {
    auto it = live_.find(name);
    return it == live_.end() ? nullptr : it->second;
}

std::vector<PluginRejection> PluginDirectory::rejections() const {
    std::vector<PluginRejection> all;
    for (const auto &[file, state] : files_)
        if (state->rejected) all.push_back({file, state->reason});
    return all;
}

std::vector<PluginEvent> PluginDirectory::poll() { return scan(/*startup=*/false); }

std::string PluginDirectory::folder_problem() const {
    struct stat st {};
    if (::stat(folder_.c_str(), &st) != 0)
        return "cannot stat plugin folder " + folder_.string() + ": " + errno_text(errno);
    std::string problem = insecure_reason(st, "plugin folder");
    if (!problem.empty()) return problem + " [" + folder_.string() + "]";
    return ancestors_problem(folder_);
}

void PluginDirectory::try_load(const fs::path &file, const FileStamp &stamp,
                               std::vector<PluginEvent> &rejected) {
    FileState &state = *files_.at(file);
    state.pending = false;
    std::string reason;
    bool name_conflict = false;
    FileStamp acted = stamp;
    try {
        if (std::string problem = folder_problem(); !problem.empty()) reject_plugin_file(file, problem);
        std::shared_ptr<PluginLibrary> library = PluginLibrary::load(file);
        acted = library->stamp();
        for (size_t i = 0; i < library->size() && reason.empty(); ++i) {
            const std::string_view name = library->plugin(i)->name();
            for (const auto &[other_file, other] : files_) {
                if (other_file == file || !other->library) continue;
                for (const PluginRef &taken : other->library->plugins()) {
                    if (taken->name() != name) continue;
                    reason = file.string() + ": plugin '" + std::string(name) +
                             "' is already loaded from " + other_file.string() +
                             "; plugin names must be unique";
                    name_conflict = true;
                }
            }
        }
        if (reason.empty()) {
            state.acted = acted;
            state.library = std::move(library);
            live_dirty_ = true;
            state.rejected = false;
            state.reason.clear();
            state.name_conflict = false;
            return;
        }
    } catch (const Error &e) {
        reason = e.what();
    } catch (const std::exception &e) {
        reason = file.string() + ": " + e.what();
    }
    const bool repeat = state.rejected && state.reason == reason;
    state.acted = acted;
    state.rejected = true;
    state.reason = reason;
    state.name_conflict = name_conflict;
    state.conflict_generation = names_generation_;
    if (repeat) return;  // a retry that failed the same way: already reported
    logger(kComponent)->warn("rejected {}{}", reason,
                             state.library ? "; the previously loaded version stays live" : "");
    PluginEvent event{PluginEvent::Type::rejected, {}, nullptr, nullptr, {file, reason}};
    rejected.push_back(std::move(event));
}

std::vector<PluginEvent> PluginDirectory::scan(bool startup) {
    std::vector<PluginEvent> events;

    // 1. List "*.so" files (sorted: the first file keeps a duplicated name at start-up).
    std::vector<std::pair<fs::path, FileStamp>> listing;
    std::vector<std::pair<fs::path, std::string>> unreadable;
    std::error_code ec;
    fs::directory_iterator it(folder_, ec);
    if (ec) {
        if (!folder_missing_logged_) {
            logger(kComponent)->warn("cannot list plugin folder {}: {}; treating it as empty",
                                     folder_.string(), ec.message());
            folder_missing_logged_ = true;
        }
    } else {
        folder_missing_logged_ = false;
        for (; it != fs::directory_iterator(); it.increment(ec)) {
            if (ec) break;
            const fs::path &path = it->path();
            const std::string name = path.filename().string();
            if (name.empty() || name[0] == '.' || path.extension() != ".so") continue;
            struct stat st {};
            if (::stat(path.c_str(), &st) != 0) {
                unreadable.emplace_back(path, "cannot stat: " + errno_text(errno));
                continue;
            }
            if (S_ISDIR(st.st_mode)) continue;  // a folder named x.so is not a candidate
            listing.emplace_back(path, stamp_of(st));
        }
    }
    std::sort(listing.begin(), listing.end(),
              [](const auto &a, const auto &b) { return a.first < b.first; });

    // 2. Forget files that are gone; their plugins disappear in the diff below.
    std::set<fs::path> present;
    for (const auto &[path, stamp] : listing) present.insert(path);
    for (const auto &[path, why] : unreadable) present.insert(path);
    const size_t erased = std::erase_if(files_, [&](const auto &entry) {
        return present.count(entry.first) == 0 && entry.second->library != nullptr;
    });
    std::erase_if(files_, [&](const auto &entry) { return present.count(entry.first) == 0; });
    if (erased > 0) {
        ++names_generation_;  // files rejected for a taken name retry now
        live_dirty_ = true;
    }

    // 3. Load new and changed files once they are complete.
    const auto now = std::chrono::steady_clock::now();
    const int64_t wall_now_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                                    std::chrono::system_clock::now().time_since_epoch())
                                    .count();
    const auto settle_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(options_.settle_time).count();
    std::vector<PluginEvent> rejected;
    for (const auto &[path, why] : unreadable) {
        auto &state = files_[path];
        if (!state) state = std::make_unique<FileState>();
        const std::string reason = path.string() + ": " + why;
        if (state->rejected && state->reason == reason) continue;
        state->rejected = true;
        state->reason = reason;
        logger(kComponent)->warn("rejected {}", reason);
        rejected.push_back({PluginEvent::Type::rejected, {}, nullptr, nullptr, {path, reason}});
    }
    for (const auto &[path, stamp] : listing) {
        auto &slot = files_[path];
        const bool is_new = slot == nullptr;
        if (is_new) slot = std::make_unique<FileState>();
        FileState &state = *slot;
        if (!is_new && state.acted == stamp) {
            state.pending = false;
            if (state.rejected && state.name_conflict &&
                state.conflict_generation != names_generation_)
                try_load(path, stamp, rejected);
            continue;
        }
        if (startup) {
            try_load(path, stamp, rejected);
            continue;
        }
        if (state.pending && state.pending_stamp == stamp) {
            if (now - state.pending_since >= options_.settle_time) try_load(path, stamp, rejected);
            continue;
        }
        state.pending = true;
        state.pending_stamp = stamp;
        state.pending_since = now;
        // Untouched for a settle time already (renamed into place, or copied with its
        // times): complete now.
        if (wall_now_ns - stamp.mtime_ns >= settle_ns) try_load(path, stamp, rejected);
    }

    // 4. Diff the live name -> plugin map (only when a library came or went).
    if (!live_dirty_) {
        for (auto &event : rejected) events.push_back(std::move(event));
        return events;
    }
    live_dirty_ = false;
    std::map<std::string, PluginRef, std::less<>> next;
    for (const auto &[path, state] : files_) {
        if (!state->library) continue;
        for (PluginRef &plugin : state->library->plugins()) {
            const std::string name(plugin->name());
            if (next.count(name) == 0) next.emplace(name, std::move(plugin));
        }
    }
    std::vector<PluginEvent> removed, replaced, added;
    for (const auto &[name, old_plugin] : live_) {
        auto found = next.find(name);
        if (found == next.end()) {
            removed.push_back({PluginEvent::Type::removed, name, nullptr, old_plugin, {}});
        } else if (found->second.get() != old_plugin.get()) {
            replaced.push_back({PluginEvent::Type::replaced, name, found->second, old_plugin, {}});
        }
    }
    for (const auto &[name, plugin] : next)
        if (live_.count(name) == 0) added.push_back({PluginEvent::Type::added, name, plugin, nullptr, {}});
    if (!removed.empty()) ++names_generation_;
    live_ = std::move(next);

    if (!startup) {
        auto log = logger(kComponent);
        // Whether the instance goes too is the owner's decision (a configured stage stays).
        for (const auto &e : removed) log->info("file gone: {}", e.previous->label());
        for (const auto &e : replaced)
            log->info("replaced {} by version {}", e.previous->label(), e.plugin->version());
        for (const auto &e : added) log->info("added {}", e.plugin->label());
    }
    for (auto *group : {&rejected, &removed, &replaced, &added})
        for (auto &event : *group) events.push_back(std::move(event));
    return events;
}

// ------------------------------------------------------------------------------------------
// Describe
// ------------------------------------------------------------------------------------------

Json describe_plugins(const fs::path &folder) {
    PluginDirectory directory(folder, PluginDirectory::Options{std::chrono::milliseconds(0)});
    Json plugins = Json::array();
    for (const PluginRef &plugin : directory.plugins()) plugins.push_back(plugin->describe());
    Json rejected = Json::array();
    for (const PluginRejection &rejection : directory.rejections())
        rejected.push_back({{"file", rejection.file.string()}, {"reason", rejection.reason}});
    return {{"dir", folder.string()}, {"plugins", std::move(plugins)}, {"rejected", std::move(rejected)}};
}

}  // namespace iotstream
