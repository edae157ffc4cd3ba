#include "plugin_loader.hpp"

#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <set>
#include <system_error>

#include <boost/dll/shared_library.hpp>

#include "log.hpp"
#include "plugin_config.hpp"

namespace fs = std::filesystem;

namespace iotstream {
namespace {

constexpr const char *kComponent = "plugins";
// A plugin is code, not data: anything bigger is a mistake, and we read it whole.
constexpr off_t kMaxPluginFileSize = off_t{256} << 20;
// Sanity bounds on what an entry function may claim.
constexpr uint32_t kMaxDescriptorsPerFile = 256;
constexpr uint32_t kMaxDescriptorSize = 64 * 1024;
constexpr size_t kMaxPluginNameLength = 64;

[[noreturn]] void reject(const fs::path &file, const std::string &reason) {
    throw Error(IOTS_ERR_PLUGIN, file.string() + ": " + reason);
}

std::string errno_text(int err) { return std::error_code(err, std::generic_category()).message(); }

std::string octal_mode(mode_t mode) {
    char text[8];
    std::snprintf(text, sizeof text, "%04o", static_cast<unsigned>(mode & 07777));
    return text;
}

// Empty when `st` (of a plugin file or folder) is safe to load code from; otherwise why not.
std::string insecure_reason(const struct stat &st, const char *what) {
    const bool group = (st.st_mode & S_IWGRP) != 0, others = (st.st_mode & S_IWOTH) != 0;
    if (group || others) {
        return std::string("the ") + what + " is writable by " +
               (group && others ? "group and others" : group ? "group" : "others") + " (mode " +
               octal_mode(st.st_mode) +
               "); loading a library runs its code, so only its owner may write it (chmod go-w)";
    }
    const uid_t me = geteuid();
    if (st.st_uid != me && st.st_uid != 0) {
        return std::string("the ") + what + " is owned by uid " + std::to_string(st.st_uid) +
               ", neither this user (uid " + std::to_string(me) + ") nor root";
    }
    return {};
}

FileStamp stamp_of(const struct stat &st) {
    FileStamp stamp;
    stamp.device = st.st_dev;
    stamp.inode = st.st_ino;
    stamp.size = st.st_size;
    stamp.mtime_ns = int64_t{st.st_mtim.tv_sec} * 1'000'000'000 + st.st_mtim.tv_nsec;
    stamp.mode = st.st_mode;
    stamp.owner = st.st_uid;
    return stamp;
}

// A short, printable rendering of a file's first bytes, for "not an ELF file" messages.
std::string first_bytes(const std::string &bytes) {
    std::string shown;
    for (size_t i = 0; i < bytes.size() && i < 16; ++i) {
        const unsigned char c = static_cast<unsigned char>(bytes[i]);
        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
            shown += static_cast<char>(c);
        } else {
            char hex[5];
            std::snprintf(hex, sizeof hex, "\\x%02x", c);
            shown += hex;
        }
    }
    return shown;
}

// Checks that `bytes` is a complete shared object for this host before dlopen() sees it:
// dlopen() maps segments without checking that the file holds them, so a truncated file
// would load and then SIGBUS on first use.
void check_elf(const fs::path &file, const std::string &bytes) {
    const std::string not_library = "not a shared library: ";
    if (bytes.size() < SELFMAG || std::memcmp(bytes.data(), ELFMAG, SELFMAG) != 0) {
        reject(file, not_library + "not an ELF file (" + std::to_string(bytes.size()) +
                         " bytes, beginning \"" + first_bytes(bytes) + "\")");
    }
    ElfW(Ehdr) header;
    if (bytes.size() < sizeof header) {
        reject(file, not_library + "truncated ELF file (" + std::to_string(bytes.size()) +
                         " bytes, shorter than an ELF header)");
    }
    std::memcpy(&header, bytes.data(), sizeof header);
#if __SIZEOF_POINTER__ == 8
    constexpr unsigned char host_class = ELFCLASS64;
#else
    constexpr unsigned char host_class = ELFCLASS32;
#endif
    if (header.e_ident[EI_CLASS] != host_class) {
        reject(file, not_library + (header.e_ident[EI_CLASS] == ELFCLASS32 ? "a 32" : "a 64") +
                         "-bit ELF file; the host is " +
                         std::to_string(__SIZEOF_POINTER__ * 8) + "-bit");
    }
#if defined(__x86_64__)
    constexpr ElfW(Half) host_machine = EM_X86_64;
#elif defined(__aarch64__)
    constexpr ElfW(Half) host_machine = EM_AARCH64;
#else
    constexpr ElfW(Half) host_machine = EM_NONE;  // not checked: dlopen() will tell
#endif
    if (host_machine != EM_NONE && header.e_machine != host_machine) {
        reject(file, not_library + "built for ELF machine " + std::to_string(header.e_machine) +
                         ", the host is machine " + std::to_string(host_machine));
    }
    if (header.e_type != ET_DYN) {
        const char *what = header.e_type == ET_REL    ? "a relocatable object (.o)"
                           : header.e_type == ET_EXEC ? "an executable"
                           : header.e_type == ET_CORE ? "a core dump"
                                                      : "an ELF file of unknown type";
        reject(file, not_library + "it is " + what + " (link it with -shared)");
    }
    const uint64_t size = bytes.size();
    const uint64_t phdr_end = uint64_t{header.e_phoff} + uint64_t{header.e_phnum} * sizeof(ElfW(Phdr));
    if (header.e_phnum == 0 || phdr_end > size) {
        reject(file, "truncated ELF file: its program headers end at byte " +
                         std::to_string(phdr_end) + " but the file has " + std::to_string(size) +
                         " bytes");
    }
    for (ElfW(Half) i = 0; i < header.e_phnum; ++i) {
        ElfW(Phdr) segment;
        std::memcpy(&segment, bytes.data() + header.e_phoff + i * sizeof segment, sizeof segment);
        const uint64_t end = uint64_t{segment.p_offset} + segment.p_filesz;
        if (segment.p_type == PT_LOAD && end > size) {
            reject(file, "truncated ELF file: segment " + std::to_string(i) + " ends at byte " +
                             std::to_string(end) + " but the file has " + std::to_string(size) +
                             " bytes");
        }
    }
    if (header.e_shoff != 0) {
        const uint64_t shdr_end = uint64_t{header.e_shoff} + uint64_t{header.e_shnum} * header.e_shentsize;
        if (shdr_end > size) {
            reject(file, "truncated ELF file: its section headers end at byte " +
                             std::to_string(shdr_end) + " but the file has " +
                             std::to_string(size) + " bytes");
        }
    }
}

// Reads a plugin file whole, refusing it unless it is a regular file that only its owner
// (this user or root) can write. The stamp is taken from the open descriptor, so it
// describes exactly the bytes read.
std::string read_plugin_file(const fs::path &file, FileStamp &stamp) {
    const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) reject(file, "cannot open: " + errno_text(errno));
    struct Closer {
        int fd;
        ~Closer() { ::close(fd); }
    } closer{fd};
    struct stat st {};
    if (::fstat(fd, &st) != 0) reject(file, "cannot stat: " + errno_text(errno));
    if (!S_ISREG(st.st_mode)) reject(file, "not a regular file");
    if (std::string problem = insecure_reason(st, "file"); !problem.empty()) reject(file, problem);
    if (st.st_size > kMaxPluginFileSize) {
        reject(file, "not a shared library: " + std::to_string(st.st_size) +
                         " bytes is larger than any plugin should be");
    }
    stamp = stamp_of(st);
    std::string bytes(static_cast<size_t>(st.st_size), '\0');
    size_t done = 0;
    while (done < bytes.size()) {
        const ssize_t n = ::read(fd, bytes.data() + done, bytes.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) reject(file, "cannot read: " + errno_text(errno));
        if (n == 0) break;  // shrank while we read: check_elf() judges what we got
        done += static_cast<size_t>(n);
    }
    bytes.resize(done);
    return bytes;
}

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
    }

    // Writes `bytes` to a new, never reused, read-only file named after `original`.
    fs::path write(const fs::path &original, const std::string &bytes) {
        const fs::path copy =
            path_ / (std::to_string(counter_.fetch_add(1) + 1) + "-" + original.filename().string());
        const int fd = ::open(copy.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0500);
        if (fd < 0) reject(original, "cannot create private copy " + copy.string() + ": " + errno_text(errno));
        size_t done = 0;
        while (done < bytes.size()) {
            const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) {
                const int err = errno;
                ::close(fd);
                ::unlink(copy.c_str());
                reject(original, "cannot write private copy " + copy.string() + ": " + errno_text(err));
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
    }

    // Copies left behind by processes that died without unloading (a crash, SIGKILL).
    static void remove_stale_copies(const fs::path &base) {
        std::error_code ec;
        const std::string prefix = "iotstream-plugins.";
        for (auto it = fs::directory_iterator(base, ec); !ec && it != fs::directory_iterator();
             it.increment(ec)) {
            const std::string name = it->path().filename().string();
            if (name.rfind(prefix, 0) != 0) continue;
            const pid_t pid = static_cast<pid_t>(std::strtol(name.c_str() + prefix.size(), nullptr, 10));
            struct stat st {};
            if (pid <= 0 || ::lstat(it->path().c_str(), &st) != 0 || !S_ISDIR(st.st_mode) ||
                st.st_uid != geteuid())
                continue;
            if (::kill(pid, 0) != 0 && errno == ESRCH) {
                std::error_code ignored;
                fs::remove_all(it->path(), ignored);
            }
        }
    }

    fs::path path_;
    std::atomic<uint64_t> counter_{0};
};

bool valid_plugin_name(const char *name) {
    const size_t length = std::strlen(name);
    if (length == 0 || length > kMaxPluginNameLength) return false;
    return std::all_of(name, name + length, [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
    });
}

const char *config_type_name(iots_config_type_t type) {
    switch (type) {
    case IOTS_CONFIG_BOOL: return "bool";
    case IOTS_CONFIG_INT: return "int";
    case IOTS_CONFIG_DOUBLE: return "double";
    case IOTS_CONFIG_STRING: return "string";
    case IOTS_CONFIG_JSON: return "json";
    }
    return "unknown";
}

bool default_matches(iots_config_type_t type, const Json &value) {
    if (value.is_null()) return true;  // optional key without a value
    switch (type) {
    case IOTS_CONFIG_BOOL: return value.is_boolean();
    case IOTS_CONFIG_INT: return value.is_number_integer();
    case IOTS_CONFIG_DOUBLE: return value.is_number();
    case IOTS_CONFIG_STRING: return value.is_string();
    case IOTS_CONFIG_JSON: return true;
    }
    return false;
}

// The key table is data the host shows and validates against without running plugin code,
// so it is checked at load time; PluginConfig checks user values against it later.
void check_config_keys(const fs::path &file, const iots_plugin_descriptor_t &d) {
    const std::string plugin = std::string("plugin '") + d.name + "': ";
    if (d.config_key_count == 0) return;
    if (d.config_keys == nullptr) {
        reject(file, plugin + "config_key_count is " + std::to_string(d.config_key_count) +
                         " but config_keys is NULL");
    }
    std::set<std::string, std::less<>> seen;
    for (uint32_t k = 0; k < d.config_key_count; ++k) {
        const iots_config_key_t &key = d.config_keys[k];
        if (key.name == nullptr || *key.name == '\0')
            reject(file, plugin + "config key #" + std::to_string(k) + " has no name");
        if (!seen.insert(key.name).second)
            reject(file, plugin + "config key '" + key.name + "' is declared twice");
        if (key.type < IOTS_CONFIG_BOOL || key.type > IOTS_CONFIG_JSON)
            reject(file, plugin + "config key '" + key.name + "' has unknown type " +
                             std::to_string(static_cast<int>(key.type)));
        if (key.default_json == nullptr) continue;
        Json value = Json::parse(key.default_json, nullptr, /*allow_exceptions=*/false);
        if (value.is_discarded())
            reject(file, plugin + "default of config key '" + key.name +
                             "' is not valid JSON: " + key.default_json);
        if (!default_matches(key.type, value))
            reject(file, plugin + "default of config key '" + key.name + "' is not " +
                             config_type_name(key.type) + ": " + key.default_json);
    }
}

// Checks one descriptor as the plugin built it and returns the host-side copy.
iots_plugin_descriptor_t check_descriptor(const fs::path &file, uint32_t index,
                                          const iots_plugin_descriptor_t *given) {
    const std::string which = "descriptor #" + std::to_string(index);
    if (given == nullptr) reject(file, which + " is NULL");
    // The first three fields are the same in every ABI version.
    const size_t header_size = offsetof(iots_plugin_descriptor_t, abi_minor) + sizeof(uint16_t);
    if (given->struct_size < header_size) {
        reject(file, which + ": struct_size " + std::to_string(given->struct_size) +
                         " cannot even hold the version header (" + std::to_string(header_size) +
                         " bytes)");
    }
    if (given->abi_major != IOTS_PLUGIN_ABI_MAJOR) {
        reject(file, which + ": built for plugin ABI " + std::to_string(given->abi_major) + "." +
                         std::to_string(given->abi_minor) + ", but this host speaks ABI " +
                         std::to_string(IOTS_PLUGIN_ABI_MAJOR) + ".x (major " +
                         std::to_string(given->abi_major) + " differs); rebuild it against this plugin.h");
    }
    if (given->abi_minor > IOTS_PLUGIN_ABI_MINOR) {
        reject(file, which + ": built for plugin ABI " + std::to_string(given->abi_major) + "." +
                         std::to_string(given->abi_minor) + ", newer than this host's " +
                         std::to_string(IOTS_PLUGIN_ABI_MAJOR) + "." +
                         std::to_string(IOTS_PLUGIN_ABI_MINOR) + " (minor " +
                         std::to_string(given->abi_minor) + " is newer); upgrade iotstream");
    }
    const size_t required = required_descriptor_size(given->abi_minor);
    if (given->struct_size < required) {
        reject(file, which + ": struct_size " + std::to_string(given->struct_size) +
                         " is too small for ABI " + std::to_string(given->abi_major) + "." +
                         std::to_string(given->abi_minor) + ", which needs at least " +
                         std::to_string(required) + " bytes (through destroy)");
    }
    if (given->struct_size > kMaxDescriptorSize) {
        reject(file, which + ": struct_size " + std::to_string(given->struct_size) +
                         " is implausibly large (corrupt descriptor?)");
    }

    iots_plugin_descriptor_t copy{};
    std::memcpy(&copy, given, std::min<size_t>(given->struct_size, sizeof copy));

    if (copy.name == nullptr) reject(file, which + ": name is NULL");
    if (!valid_plugin_name(copy.name)) {
        reject(file, which + ": plugin name '" + first_bytes(copy.name) +
                         "' is not 1 to " + std::to_string(kMaxPluginNameLength) +
                         " characters of [a-z0-9_]");
    }
    const std::string plugin = std::string("plugin '") + copy.name + "': ";
    if (copy.kind != IOTS_PLUGIN_STAGE && copy.kind != IOTS_PLUGIN_RULE) {
        reject(file, plugin + "unknown kind " + std::to_string(static_cast<int>(copy.kind)) +
                         " (IOTS_PLUGIN_STAGE = 1, IOTS_PLUGIN_RULE = 2)");
    }
    const char *missing = copy.create == nullptr    ? "create"
                          : copy.process == nullptr ? "process"
                          : copy.destroy == nullptr ? "destroy"
                                                    : nullptr;
    if (missing != nullptr) reject(file, plugin + "required callback " + missing + "() is NULL");
    check_config_keys(file, copy);
    return copy;
}

}  // namespace

// ------------------------------------------------------------------------------------------
// Free functions
// ------------------------------------------------------------------------------------------

fs::path default_plugin_dir() {
    if (const char *env = std::getenv("IOTSTREAM_PLUGIN_DIR"); env != nullptr && *env != '\0')
        return env;
    std::error_code ec;
    if (fs::is_directory(IOTSTREAM_DEFAULT_PLUGIN_DIR, ec)) return IOTSTREAM_DEFAULT_PLUGIN_DIR;
    return IOTSTREAM_INSTALLED_PLUGIN_DIR;
}

size_t required_descriptor_size(uint16_t abi_minor) {
    // Each minor appends fields; a minor's requirement names its last required field.
    switch (abi_minor) {
    case 0:
    default:
        return offsetof(iots_plugin_descriptor_t, destroy) + sizeof(iots_plugin_descriptor_t::destroy);
    }
}

// ------------------------------------------------------------------------------------------
// Plugin
// ------------------------------------------------------------------------------------------

const fs::path &Plugin::file() const { return library_->file(); }

std::string Plugin::label() const {
    return std::string(is_rule() ? "rule" : "stage") + " plugin '" + descriptor_.name + "' " +
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
        {"kind", is_rule() ? "rule" : "stage"},
        {"version", version()},
        {"description", description()},
        {"file", file().string()},
        {"abi", std::to_string(descriptor_.abi_major) + "." + std::to_string(descriptor_.abi_minor)},
        {"config", std::move(keys)},
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
        reject(file, "dlopen() failed: " + message);
    }
    if (!impl.library.has(IOTS_PLUGIN_ENTRY_SYMBOL)) {
        reject(file, std::string("not an iotstream plugin: it does not export the entry symbol '") +
                         IOTS_PLUGIN_ENTRY_SYMBOL +
                         "' (declare it extern \"C\" IOTS_PLUGIN_EXPORT, see plugin.h)");
    }
    auto &entry = impl.library.get<const iots_plugin_descriptor_t *const *(uint32_t *)>(
        IOTS_PLUGIN_ENTRY_SYMBOL);
    uint32_t count = 0;
    const iots_plugin_descriptor_t *const *descriptors = entry(&count);
    if (descriptors == nullptr || count == 0) {
        reject(file, std::string(IOTS_PLUGIN_ENTRY_SYMBOL) + "() returned no descriptors (count " +
                         std::to_string(count) + (descriptors ? ")" : ", array NULL)"));
    }
    if (count > kMaxDescriptorsPerFile) {
        reject(file, std::string(IOTS_PLUGIN_ENTRY_SYMBOL) + "() claims " + std::to_string(count) +
                         " descriptors, more than the " + std::to_string(kMaxDescriptorsPerFile) +
                         " a file may hold");
    }
    self->plugins_.resize(count);
    std::set<std::string, std::less<>> names;
    for (uint32_t i = 0; i < count; ++i) {
        Plugin &plugin = self->plugins_[i];
        plugin.library_ = self.get();
        plugin.descriptor_ = check_descriptor(file, i, descriptors[i]);
        if (!names.insert(plugin.descriptor_.name).second)
            reject(file, std::string("plugin name '") + plugin.descriptor_.name +
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
    return problem.empty() ? problem : problem + " [" + folder_.string() + "]";
}

void PluginDirectory::try_load(const fs::path &file, const FileStamp &stamp,
                               std::vector<PluginEvent> &rejected) {
    FileState &state = *files_.at(file);
    state.pending = false;
    std::string reason;
    bool name_conflict = false;
    FileStamp acted = stamp;
    try {
        if (std::string problem = folder_problem(); !problem.empty()) reject(file, problem);
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
        for (const auto &e : removed) log->info("removed {}", e.previous->label());
        for (const auto &e : replaced)
            log->info("replaced {} by version {}", e.previous->label(), e.plugin->version());
        for (const auto &e : added) log->info("added {}", e.plugin->label());
    }
    for (auto *group : {&rejected, &removed, &replaced, &added})
        for (auto &event : *group) events.push_back(std::move(event));
    return events;
}

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

// ------------------------------------------------------------------------------------------
// LiveInstances
// ------------------------------------------------------------------------------------------

LiveInstances::LiveInstances(Factory factory) : factory_(std::move(factory)) {
    if (!factory_) throw Error(IOTS_ERR_INVALID_ARG, "LiveInstances: factory is empty");
}

LiveInstances::~LiveInstances() { clear(); }

PluginInstance *LiveInstances::find(std::string_view name) const {
    for (const auto &instance : instances_)
        if (instance->name() == name) return instance.get();
    return nullptr;
}

void LiveInstances::retire(std::unique_ptr<PluginInstance> instance) {
    if (!instance) return;
    if (!instance->plugin().is_rule()) {
        try {
            instance->flush(/*final=*/true);  // a stage's open state is emitted, not lost
        } catch (const std::exception &e) {
            logger(kComponent)->error("draining before unload: {}", e.what());
        }
    }
    instance.reset();  // destroy(); the library unloads once nothing else holds it
}

void LiveInstances::clear() {
    while (!instances_.empty()) {
        std::unique_ptr<PluginInstance> last = std::move(instances_.back());
        instances_.pop_back();
        retire(std::move(last));
    }
}

LiveInstances::Report LiveInstances::add(const std::vector<PluginRef> &plugins) {
    Report report;
    for (const PluginRef &plugin : plugins) {
        if (find(plugin->name()) != nullptr) continue;
        if (install(plugin, report)) ++report.added;
    }
    return report;
}

bool LiveInstances::install(const PluginRef &plugin, Report &report) {
    std::unique_ptr<PluginInstance> made;
    try {
        made = factory_(plugin);
    } catch (const std::exception &e) {
        ++report.failed;
        logger(kComponent)->error("cannot start {}: {}", plugin->label(), e.what());
        return false;
    }
    if (!made) return false;
    instances_.push_back(std::move(made));
    return true;
}

LiveInstances::Report LiveInstances::apply(const std::vector<PluginEvent> &events) {
    Report report;
    auto position = [this](std::string_view name) {
        return std::find_if(instances_.begin(), instances_.end(),
                            [&](const auto &instance) { return instance->name() == name; });
    };
    for (const PluginEvent &event : events) {
        switch (event.type) {
        case PluginEvent::Type::rejected:
            break;
        case PluginEvent::Type::added:
            if (install(event.plugin, report)) ++report.added;
            break;
        case PluginEvent::Type::removed: {
            auto it = position(event.name);
            if (it == instances_.end()) break;
            std::unique_ptr<PluginInstance> old = std::move(*it);
            instances_.erase(it);
            retire(std::move(old));
            ++report.removed;
            break;
        }
        case PluginEvent::Type::replaced: {
            // The new instance first: if it cannot start, the old one keeps running.
            std::unique_ptr<PluginInstance> made;
            try {
                made = factory_(event.plugin);
            } catch (const std::exception &e) {
                ++report.failed;
                logger(kComponent)->error("cannot start {}; keeping version {} live: {}",
                                          event.plugin->label(),
                                          event.previous ? event.previous->version() : "", e.what());
                break;
            }
            auto it = position(event.name);
            if (it == instances_.end()) {
                if (made) {
                    instances_.push_back(std::move(made));
                    ++report.added;
                }
                break;
            }
            std::unique_ptr<PluginInstance> old = std::move(*it);
            if (made) {
                *it = std::move(made);  // same slot: stage order is preserved
                ++report.replaced;
            } else {
                instances_.erase(it);
                ++report.removed;
            }
            retire(std::move(old));
            break;
        }
        }
    }
    return report;
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

extern "C" IOTS_EXPORT iots_err_t iots_plugins_describe_json(const char *dir, char *buf,
                                                             size_t buf_size, size_t *needed,
                                                             char *errstr, size_t errstr_size) {
    return iotstream::guard(errstr, errstr_size, [&]() -> iots_err_t {
        if (buf == nullptr && buf_size != 0)
            throw iotstream::Error(IOTS_ERR_INVALID_ARG, "argument 'buf' is NULL but buf_size is " +
                                                             std::to_string(buf_size));
        const fs::path folder = dir != nullptr ? fs::path(dir) : iotstream::default_plugin_dir();
        const std::string text = iotstream::describe_plugins(folder).dump();
        if (needed != nullptr) *needed = text.size() + 1;
        if (buf_size < text.size() + 1) {
            iotstream::write_errstr(errstr, errstr_size,
                                    "buffer of " + std::to_string(buf_size) + " bytes is too small: " +
                                        std::to_string(text.size() + 1) + " needed");
            return IOTS_ERR_BUFFER_TOO_SMALL;
        }
        std::memcpy(buf, text.c_str(), text.size() + 1);
        iotstream::write_errstr(errstr, errstr_size, "");
        return IOTS_OK;
    });
}
