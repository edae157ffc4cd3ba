#include "plugin_host/file_checks.hpp"

#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <system_error>

#include "common/error.hpp"

namespace fs = std::filesystem;

namespace iotstream {
namespace {

// A plugin is code, not data: anything bigger is a mistake, and we read it whole.
constexpr off_t kMaxPluginFileSize = off_t{256} << 20;

std::string octal_mode(mode_t mode) {
    char text[8];
    std::snprintf(text, sizeof text, "%04o", static_cast<unsigned>(mode & 07777));
    return text;
}

}  // namespace

void reject_plugin_file(const fs::path &file, const std::string &reason) {
    throw Error(IOTS_ERR_PLUGIN, file.string() + ": " + reason);
}

std::string errno_text(int err) { return std::error_code(err, std::generic_category()).message(); }

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

std::string ancestors_problem(const fs::path &folder) {
    std::error_code ec;
    const fs::path real = fs::canonical(folder, ec);
    if (ec) return "cannot resolve plugin folder " + folder.string() + ": " + ec.message();
    // As sshd's StrictModes does for authorized_keys: whoever can rename an entry of an
    // ancestor can swap the whole plugin folder. A sticky ancestor (/tmp) is safe, since there
    // only an entry's owner may rename it; a group-writable one is a deliberate administrative
    // grant (shared /opt trees), so unlike the folder itself it passes.
    for (fs::path dir = real.parent_path();; dir = dir.parent_path()) {
        struct stat st {};
        if (::stat(dir.c_str(), &st) != 0) return "cannot stat " + dir.string() + ": " + errno_text(errno);
        const uid_t me = geteuid();
        std::string problem;
        if ((st.st_mode & S_IWOTH) != 0 && (st.st_mode & S_ISVTX) == 0) {
            problem = "writable by others without the sticky bit (mode " + octal_mode(st.st_mode) + ")";
        } else if (st.st_uid != me && st.st_uid != 0) {
            problem = "owned by uid " + std::to_string(st.st_uid) + ", neither this user (uid " +
                      std::to_string(me) + ") nor root";
        }
        if (!problem.empty())
            return "the plugin folder's ancestor " + dir.string() + " is " + problem +
                   ": whoever may rename its entries can replace the plugin folder [" + folder.string() + "]";
        if (dir.parent_path() == dir) break;
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

void check_elf(const fs::path &file, const std::string &bytes) {
    const std::string not_library = "not a shared library: ";
    if (bytes.size() < SELFMAG || std::memcmp(bytes.data(), ELFMAG, SELFMAG) != 0) {
        reject_plugin_file(file, not_library + "not an ELF file (" + std::to_string(bytes.size()) +
                         " bytes, beginning \"" + first_bytes(bytes) + "\")");
    }
    ElfW(Ehdr) header;
    if (bytes.size() < sizeof header) {
        reject_plugin_file(file, not_library + "truncated ELF file (" + std::to_string(bytes.size()) +
                         " bytes, shorter than an ELF header)");
    }
    std::memcpy(&header, bytes.data(), sizeof header);
#if __SIZEOF_POINTER__ == 8
    constexpr unsigned char host_class = ELFCLASS64;
#else
    constexpr unsigned char host_class = ELFCLASS32;
#endif
    if (header.e_ident[EI_CLASS] != host_class) {
        reject_plugin_file(file, not_library + (header.e_ident[EI_CLASS] == ELFCLASS32 ? "a 32" : "a 64") +
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
        reject_plugin_file(file, not_library + "built for ELF machine " + std::to_string(header.e_machine) +
                         ", the host is machine " + std::to_string(host_machine));
    }
    if (header.e_type != ET_DYN) {
        const char *what = header.e_type == ET_REL    ? "a relocatable object (.o)"
                           : header.e_type == ET_EXEC ? "an executable"
                           : header.e_type == ET_CORE ? "a core dump"
                                                      : "an ELF file of unknown type";
        reject_plugin_file(file, not_library + "it is " + what + " (link it with -shared)");
    }
    const uint64_t size = bytes.size();
    const uint64_t phdr_end = uint64_t{header.e_phoff} + uint64_t{header.e_phnum} * sizeof(ElfW(Phdr));
    if (header.e_phnum == 0 || phdr_end > size) {
        reject_plugin_file(file, "truncated ELF file: its program headers end at byte " +
                         std::to_string(phdr_end) + " but the file has " + std::to_string(size) +
                         " bytes");
    }
    for (ElfW(Half) i = 0; i < header.e_phnum; ++i) {
        ElfW(Phdr) segment;
        std::memcpy(&segment, bytes.data() + header.e_phoff + i * sizeof segment, sizeof segment);
        const uint64_t end = uint64_t{segment.p_offset} + segment.p_filesz;
        if (segment.p_type == PT_LOAD && end > size) {
            reject_plugin_file(file, "truncated ELF file: segment " + std::to_string(i) + " ends at byte " +
                             std::to_string(end) + " but the file has " + std::to_string(size) +
                             " bytes");
        }
    }
    if (header.e_shoff != 0) {
        const uint64_t shdr_end = uint64_t{header.e_shoff} + uint64_t{header.e_shnum} * header.e_shentsize;
        if (shdr_end > size) {
            reject_plugin_file(file, "truncated ELF file: its section headers end at byte " +
                             std::to_string(shdr_end) + " but the file has " +
                             std::to_string(size) + " bytes");
        }
    }
}

// Reads a plugin file whole, refusing it unless it is a regular file that only its owner
// (this user or root) can write. The stamp is taken from the open descriptor, so it
// describes exactly the bytes read.
std::string read_plugin_file(const fs::path &file, FileStamp &stamp) {
    // A symbolic link is followed only to a file inside the entry's own folder (the usual
    // rule.so -> rule.so.1.2): a link out of the folder would load code no check covered.
    fs::path target = file;
    struct stat link {};
    if (::lstat(file.c_str(), &link) == 0 && S_ISLNK(link.st_mode)) {
        std::error_code ec;
        const fs::path resolved = fs::canonical(file, ec);
        if (ec) reject_plugin_file(file, "a symbolic link that cannot be resolved: " + ec.message());
        const fs::path folder = fs::canonical(file.parent_path().empty() ? fs::path(".") : file.parent_path(), ec);
        if (ec) reject_plugin_file(file, "cannot resolve its folder: " + ec.message());
        const auto [mismatch, rest] = std::mismatch(folder.begin(), folder.end(), resolved.begin(), resolved.end());
        if (mismatch != folder.end() || rest == resolved.end()) {
            reject_plugin_file(file, "a symbolic link to " + resolved.string() + ", outside the plugin folder " +
                                         folder.string() + "; only links to files inside the folder are followed");
        }
        target = resolved;
    }
    // O_NOFOLLOW: an entry swapped for a link after the check above is refused, not followed.
    const int fd = ::open(target.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW);
    if (fd < 0) {
        const int err = errno;
        reject_plugin_file(file, err == ELOOP ? std::string("became a symbolic link while it was checked")
                                              : "cannot open: " + errno_text(err));
    }
    struct Closer {
        int fd;
        ~Closer() { ::close(fd); }
    } closer{fd};
    struct stat st {};
    if (::fstat(fd, &st) != 0) reject_plugin_file(file, "cannot stat: " + errno_text(errno));
    if (!S_ISREG(st.st_mode)) reject_plugin_file(file, "not a regular file");
    if (std::string problem = insecure_reason(st, "file"); !problem.empty()) reject_plugin_file(file, problem);
    if (st.st_size > kMaxPluginFileSize) {
        reject_plugin_file(file, "not a shared library: " + std::to_string(st.st_size) +
                         " bytes is larger than any plugin should be");
    }
    stamp = stamp_of(st);
    std::string bytes(static_cast<size_t>(st.st_size), '\0');
    size_t done = 0;
    while (done < bytes.size()) {
        const ssize_t n = ::read(fd, bytes.data() + done, bytes.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) reject_plugin_file(file, "cannot read: " + errno_text(errno));
        if (n == 0) break;  // shrank while we read: check_elf() judges what we got
        done += static_cast<size_t>(n);
    }
    bytes.resize(done);
    return bytes;
}

}  // namespace iotstream
