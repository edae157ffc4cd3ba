#include "plugin_host/plugin_library.hpp"

#include <dlfcn.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <ctime>
#include <mutex>
#include <set>

#include <boost/dll/shared_library.hpp>

#include "plugin_host/descriptor_checks.hpp"

namespace fs = std::filesystem;

namespace iotstream {
namespace {

// Sanity bounds on what an entry function may claim.
constexpr uint32_t kMaxDescriptorsPerFile = 256;

// The per-process folder of private copies (0700, under $TMPDIR or /tmp). Shared by every
// loaded library; removed when the last one is unloaded.
class CopyDirectory {
public:
    static std::shared_ptr<CopyDirectory> get() {
        static std::mutex mutex;
        static std::weak_ptr<CopyDirectory> current;
        std::lock_guard<std::mutex> lock(mutex);
        if (auto existing = current.lock()) return existing;
        auto created = std::shared_ptr<CopyDirectory>(new CopyDirectory());
        current = created;
        return created;
    }

    ~CopyDirectory() {
        std::error_code ignored;
        fs::remove_all(path_, ignored);
        if (lock_fd_ >= 0) ::close(lock_fd_);
    }

    // Writes `bytes` to a new, never reused, read-only file named after `original`.
    fs::path write(const fs::path &original, const std::string &bytes) {
        const fs::path copy =
            path_ / (std::to_string(counter_.fetch_add(1) + 1) + "-" + original.filename().string());
        const int fd = ::open(copy.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0500);
        if (fd < 0) reject_plugin_file(original, "cannot create private copy " + copy.string() + ": " + errno_text(errno));
        size_t done = 0;
        while (done < bytes.size()) {
            const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) {
                const int err = errno;
                ::close(fd);
                ::unlink(copy.c_str());
                reject_plugin_file(original, "cannot write private copy " + copy.string() + ": " + errno_text(err));
            }
            done += static_cast<size_t>(n);
        }
        ::close(fd);
        return copy;
    }

private:
    CopyDirectory() {
        const char *tmp = std::getenv("TMPDIR");
        const fs::path base = tmp != nullptr && *tmp != '\0' ? fs::path(tmp) : fs::path("/tmp");
        remove_stale_copies(base);
        std::string pattern = (base / ("iotstream-plugins." + std::to_string(::getpid()) + ".XXXXXX")).string();
        if (::mkdtemp(pattern.data()) == nullptr) {
            throw Error(IOTS_ERR_PLUGIN, "cannot create the plugin copy folder in " + base.string() +
                                             ": " + errno_text(errno));
        }
        path_ = pattern;
        // Held for the folder's life: the lock, not the pid in the name, tells other processes
        // it is in use (a pid means nothing to a process in another PID namespace sharing /tmp).
        lock_fd_ = ::open((path_ / kLockName).c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (lock_fd_ < 0 || ::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
            const int err = errno;
            std::error_code ignored;
            fs::remove_all(path_, ignored);
            throw Error(IOTS_ERR_PLUGIN, "cannot lock the plugin copy folder " + path_.string() + ": " + errno_text(err));
        }
    }

    // Copies left behind by processes that died without unloading (a crash, SIGKILL): a
    // folder of ours whose lock nobody holds. One without a lock file is either being created
    // right now or was left by a version before the lock; it goes only when old and its pid
    // is gone.
    static void remove_stale_copies(const fs::path &base) {
        std::error_code ec;
        const std::string prefix = "iotstream-plugins.";
        for (auto it = fs::directory_iterator(base, ec); !ec && it != fs::directory_iterator();
             it.increment(ec)) {
            const std::string name = it->path().filename().string();
            if (name.rfind(prefix, 0) != 0) continue;
            struct stat st {};
            if (::lstat(it->path().c_str(), &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != geteuid())
                continue;
            std::error_code ignored;
            const int fd = ::open((it->path() / kLockName).c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
            const int open_error = errno;
            if (fd >= 0) {
                if (::flock(fd, LOCK_EX | LOCK_NB) == 0) fs::remove_all(it->path(), ignored);
                ::close(fd);
                continue;
            }
            const pid_t pid = static_cast<pid_t>(std::strtol(name.c_str() + prefix.size(), nullptr, 10));
            const bool old = ::time(nullptr) - st.st_mtime > 3600;
            if (open_error == ENOENT && old && pid > 0 && ::kill(pid, 0) != 0 && errno == ESRCH)
                fs::remove_all(it->path(), ignored);
        }
    }

    static constexpr const char *kLockName = ".lock";
    int lock_fd_ = -1;
    fs::path path_;
    std::atomic<uint64_t> counter_{0};
};
}  // namespace

fs::path default_plugin_dir() {
    if (const char *env = std::getenv("IOTSTREAM_PLUGIN_DIR"); env != nullptr && *env != '\0')
        return env;
    std::error_code ec;
    if (fs::is_directory(IOTSTREAM_DEFAULT_PLUGIN_DIR, ec)) return IOTSTREAM_DEFAULT_PLUGIN_DIR;
    return IOTSTREAM_INSTALLED_PLUGIN_DIR;
}

// ------------------------------------------------------------------------------------------
// Plugin
// ------------------------------------------------------------------------------------------

const fs::path &Plugin::file() const { return library_->file(); }

std::string Plugin::label() const {
    return std::string(kind_name()) + " plugin '" + descriptor_.name + "' " +
           std::string(version()) + " (" + file().string() + ")";
}

Json Plugin::describe() const {
    Json keys = Json::array();
    for (uint32_t k = 0; k < descriptor_.config_key_count; ++k) {
        const iots_config_key_t &key = descriptor_.config_keys[k];
        keys.push_back({
            {"name", key.name},
            {"type", config_type_name(key.type)},
            {"required", key.default_json == nullptr},
            {"default", key.default_json ? Json::parse(key.default_json) : Json()},
            {"help", key.help ? key.help : ""},
        });
    }
    return {
        {"name", descriptor_.name},
        {"kind", kind_name()},
        {"version", version()},
        {"description", description()},
        {"file", file().string()},
        {"abi", std::to_string(descriptor_.abi_major) + "." + std::to_string(descriptor_.abi_minor)},
        {"config", std::move(keys)},
        {"state_version", descriptor_.state_version},  // 0: no state hand-over on replace
    };
}

// ------------------------------------------------------------------------------------------
// PluginLibrary
// ------------------------------------------------------------------------------------------

struct PluginLibrary::Impl {
    std::shared_ptr<CopyDirectory> copies;
    fs::path copy;
    boost::dll::shared_library library;

    ~Impl() {
        library.unload();
        std::error_code ignored;
        if (!copy.empty()) fs::remove(copy, ignored);
    }
};

PluginLibrary::PluginLibrary() : impl_(std::make_unique<Impl>()) {}

PluginLibrary::~PluginLibrary() = default;

std::shared_ptr<PluginLibrary> PluginLibrary::load(const fs::path &file) {
    std::shared_ptr<PluginLibrary> self(new PluginLibrary());
    self->file_ = file;
    const std::string bytes = read_plugin_file(file, self->stamp_);
    check_elf(file, bytes);

    Impl &impl = *self->impl_;
    impl.copies = CopyDirectory::get();
    impl.copy = impl.copies->write(file, bytes);
    boost::dll::fs::error_code ec;
    ::dlerror();
    impl.library.load(impl.copy, ec,
                      boost::dll::load_mode::rtld_local | boost::dll::load_mode::rtld_now);
    if (ec || !impl.library.is_loaded()) {
        const char *why = ::dlerror();
        std::string message = why != nullptr ? why : ec.message();
        // dlerror() names the private copy; the user knows the file by its own name.
        if (const std::string prefix = impl.copy.string() + ": "; message.rfind(prefix, 0) == 0)
            message.erase(0, prefix.size());
        reject_plugin_file(file, "dlopen() failed: " + message);
    }
    if (!impl.library.has(IOTS_PLUGIN_ENTRY_SYMBOL)) {
        reject_plugin_file(file, std::string("not an iotstream plugin: it does not export the entry symbol '") +
                         IOTS_PLUGIN_ENTRY_SYMBOL +
                         "' (declare it extern \"C\" IOTS_PLUGIN_EXPORT, see plugin.h)");
    }
    auto &entry = impl.library.get<const iots_plugin_descriptor_t *const *(uint32_t *)>(
        IOTS_PLUGIN_ENTRY_SYMBOL);
    uint32_t count = 0;
    const iots_plugin_descriptor_t *const *descriptors = entry(&count);
    if (descriptors == nullptr || count == 0) {
        reject_plugin_file(file, std::string(IOTS_PLUGIN_ENTRY_SYMBOL) + "() returned no descriptors (count " +
                         std::to_string(count) + (descriptors ? ")" : ", array NULL)"));
    }
    if (count > kMaxDescriptorsPerFile) {
        reject_plugin_file(file, std::string(IOTS_PLUGIN_ENTRY_SYMBOL) + "() claims " + std::to_string(count) +
                         " descriptors, more than the " + std::to_string(kMaxDescriptorsPerFile) +
                         " a file may hold");
    }
    self->plugins_.resize(count);
    std::set<std::string, std::less<>> names;
    for (uint32_t i = 0; i < count; ++i) {
        Plugin &plugin = self->plugins_[i];
        plugin.library_ = self.get();
        plugin.descriptor_ = check_descriptor(file, i, descriptors[i], plugin.config_keys_);
        if (!names.insert(plugin.descriptor_.name).second)
            reject_plugin_file(file, std::string("plugin name '") + plugin.descriptor_.name +
                             "' appears twice in this file");
    }
    return self;
}

PluginRef PluginLibrary::plugin(size_t index) const {
    return PluginRef(shared_from_this(), &plugins_.at(index));
}

std::vector<PluginRef> PluginLibrary::plugins() const {
    std::vector<PluginRef> all;
    all.reserve(plugins_.size());
    for (size_t i = 0; i < plugins_.size(); ++i) all.push_back(plugin(i));
    return all;
}

}  // namespace iotstream
