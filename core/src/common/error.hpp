// Internal error type and the one place where C++ exceptions become C error codes.
#pragma once

#include <cstdio>
#include <cstring>
#include <new>
#include <stdexcept>
#include <string>

#include "iotstream/iotstream.h"

namespace iotstream {

// Thrown inside the library; never crosses the C ABI (see guard()).
class Error : public std::runtime_error {
public:
    Error(iots_err_t code, const std::string &message) : std::runtime_error(message), code_(code) {}
    iots_err_t code() const noexcept { return code_; }

private:
    iots_err_t code_;
};

// Writes `message` into a caller-owned buffer, truncating; tolerates NULL/0.
inline void write_errstr(char *errstr, size_t errstr_size, const std::string &message) noexcept {
    if (errstr == nullptr || errstr_size == 0) return;
    size_t n = message.size() < errstr_size - 1 ? message.size() : errstr_size - 1;
    std::memcpy(errstr, message.data(), n);
    errstr[n] = '\0';
}

// Runs `body` (returning void or iots_err_t) and converts every exception into a code plus
// a message in errstr. Every C entry point that can fail goes through here.
template <typename Body>
iots_err_t guard(char *errstr, size_t errstr_size, Body &&body) noexcept {
    try {
        if constexpr (std::is_same_v<decltype(body()), void>) {
            body();
            write_errstr(errstr, errstr_size, "");
            return IOTS_OK;
        } else {
            return body();
        }
    } catch (const Error &e) {
        write_errstr(errstr, errstr_size, e.what());
        return e.code();
    } catch (const std::bad_alloc &) {
        write_errstr(errstr, errstr_size, "out of memory");
        return IOTS_ERR_NO_MEMORY;
    } catch (const std::exception &e) {
        write_errstr(errstr, errstr_size, std::string("internal error: ") + e.what());
        return IOTS_ERR_INTERNAL;
    } catch (...) {
        write_errstr(errstr, errstr_size, "internal error: unknown exception");
        return IOTS_ERR_INTERNAL;
    }
}

// Throws Error(IOTS_ERR_INVALID_ARG) naming the argument when it is null.
template <typename T>
inline void require_arg(const T *ptr, const char *name) {
    if (ptr == nullptr) throw Error(IOTS_ERR_INVALID_ARG, std::string("argument '") + name + "' is NULL");
}

}  // namespace iotstream
