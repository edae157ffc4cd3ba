// Checks on a plugin file before any of its code can run: who may write it and its folder,
// and whether its bytes are a complete shared object for this host.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <string>

namespace iotstream {

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

// Throws Error(IOTS_ERR_PLUGIN, "<file>: <reason>"): the one form of every load-time refusal.
[[noreturn]] void reject_plugin_file(const std::filesystem::path &file, const std::string &reason);

// strerror() text for an errno value.
std::string errno_text(int err);

// Empty when `st` (of a plugin file or folder) is safe to load code from; otherwise why not.
std::string insecure_reason(const struct stat &st, const char *what);

// Empty when no folder above `folder` lets anyone but its owner (this user or root) rename
// its entries; otherwise which ancestor and why. Sticky folders (/tmp) pass.
std::string ancestors_problem(const std::filesystem::path &folder);

FileStamp stamp_of(const struct stat &st);

// A short, printable rendering of a text's first bytes, for messages about bad input.
std::string first_bytes(const std::string &bytes);

// Reads a plugin file whole, refusing it unless it is a regular file that only its owner
// (this user or root) can write, reached directly or through a symbolic link that stays
// inside the file's folder. The stamp is taken from the open descriptor, so it
// describes exactly the bytes read.
std::string read_plugin_file(const std::filesystem::path &file, FileStamp &stamp);

// Checks that `bytes` is a complete shared object for this host before dlopen() sees it:
// dlopen() maps segments without checking that the file holds them, so a truncated file
// would load and then SIGBUS on first use.
void check_elf(const std::filesystem::path &file, const std::string &bytes);

}  // namespace iotstream
