// Header-only helpers shared by the bundled plugins (not a plugin itself: no CMakeLists.txt).
// Everything here stays inside the plugin; only plain C crosses plugin.h.
#pragma once

#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <new>
#include <stdexcept>
#include <string>
#include <string_view>

#include "iotstream/plugin.h"

namespace iotstream::plugin {

// Host log levels (iots_log_level_t of iotstream.h, which plugins do not include).
enum LogLevel : int { kLogDebug = 1, kLogInfo = 2, kLogWarn = 3, kLogError = 4 };

// A failure with a message meant for the host's errstr.
class PluginError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

inline void write_errstr(char *errstr, size_t errstr_size, std::string_view message) noexcept {
    if (errstr == nullptr || errstr_size == 0) return;
    size_t n = message.size() < errstr_size - 1 ? message.size() : errstr_size - 1;
    std::memcpy(errstr, message.data(), n);
    errstr[n] = '\0';
}

// Runs `body` and turns any exception into a non-zero return plus a message: nothing C++
// leaves a plugin callback.
template <typename Body>
int guarded(const char *plugin, char *errstr, size_t errstr_size, Body &&body) noexcept {
    try {
        body();
        return 0;
    } catch (const PluginError &e) {
        write_errstr(errstr, errstr_size, std::string(plugin) + ": " + e.what());
    } catch (const std::bad_alloc &) {
        write_errstr(errstr, errstr_size, std::string(plugin) + ": out of memory");
    } catch (const std::exception &e) {
        write_errstr(errstr, errstr_size, std::string(plugin) + ": internal error: " + e.what());
    } catch (...) {
        write_errstr(errstr, errstr_size, std::string(plugin) + ": internal error");
    }
    return 1;
}

// Refuses a host table from another ABI major or one too short for the 1.0 functions.
inline void check_host(const iots_host_api_t *host, iots_host_ctx_t *ctx) {
    if (host == nullptr) throw PluginError("host table is NULL");
    if (host->abi_major != IOTS_PLUGIN_ABI_MAJOR)
        throw PluginError("host plugin ABI major " + std::to_string(host->abi_major) +
                          ", plugin built for " + std::to_string(IOTS_PLUGIN_ABI_MAJOR));
    if (!IOTS_HAS_FIELD(host, field_index))
        throw PluginError("host table too small (" + std::to_string(host->struct_size) +
                          " bytes)");
    (void)ctx;
}

// Typed config reads that name the key when the host cannot supply it.
inline int64_t config_int(const iots_host_api_t *host, const iots_config_t *cfg, const char *key) {
    int64_t value = 0;
    if (host->config_int(cfg, key, &value) != 0)
        throw PluginError(std::string("config key '") + key + "' is missing or not an integer");
    return value;
}

inline bool config_int_optional(const iots_host_api_t *host, const iots_config_t *cfg,
                                const char *key, int64_t &out) {
    return host->config_int(cfg, key, &out) == 0;
}

inline std::string config_string(const iots_host_api_t *host, const iots_config_t *cfg,
                                 const char *key) {
    const char *text = nullptr;
    size_t len = 0;
    if (host->config_string(cfg, key, &text, &len) != 0)
        throw PluginError(std::string("config key '") + key + "' is missing or not a string");
    return std::string(text, len);
}

inline std::string config_json(const iots_host_api_t *host, const iots_config_t *cfg,
                               const char *key) {
    const char *text = nullptr;
    size_t len = 0;
    if (host->config_json(cfg, key, &text, &len) != 0)
        throw PluginError(std::string("config key '") + key + "' is missing");
    return std::string(text, len);
}

// Heterogeneous lookup: find(std::string_view) in an unordered_map<std::string, ...> without
// building a std::string per record.
struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

// Appends JSON text to a reused buffer (no allocation once the buffer has grown). The plugins'
// one JSON escaper and ISO-8601 formatter: plugins see only plugin.h, not the core's own.
class JsonWriter {
public:
    void clear() { out_.clear(); }
    const std::string &str() const { return out_; }

    void raw(std::string_view text) { out_.append(text); }

    // "name": ; names are literals chosen by the plugin, so they need no escaping.
    void key(std::string_view name) {
        out_.push_back('"');
        out_.append(name);
        out_.append("\":");
    }

    // " and \ get a backslash, other bytes below 0x20 \u00xx (so \n is \u000a, unlike the
    // core's envelopes; both read back the same); UTF-8 and invalid bytes pass through.
    void string(std::string_view s) {
        out_.push_back('"');
        for (char c : s) {
            auto u = static_cast<unsigned char>(c);
            if (c == '"' || c == '\\') {
                out_.push_back('\\');
                out_.push_back(c);
            } else if (u < 0x20) {
                char escaped[8];
                std::snprintf(escaped, sizeof escaped, "\\u%04x", u);
                out_.append(escaped);
            } else {
                out_.push_back(c);  // UTF-8 bytes pass through unchanged
            }
        }
        out_.push_back('"');
    }

    void integer(int64_t value) {
        char buf[24];
        auto result = std::to_chars(buf, buf + sizeof buf, value);
        out_.append(buf, result.ptr);
    }

    // Shortest text that reads back to the same double; always a JSON float ("2.0", not "2")
    // so consumers see the type the seed's Python produced. NaN and infinities become null.
    void number(double value) {
        if (!std::isfinite(value)) {
            out_.append("null");
            return;
        }
        char buf[32];
        auto result = std::to_chars(buf, buf + sizeof buf, value);
        std::string_view text(buf, static_cast<size_t>(result.ptr - buf));
        out_.append(text);
        if (text.find_first_of(".e") == std::string_view::npos) out_.append(".0");
    }

    // "2026-01-01T00:00:00.123Z": ISO-8601 UTC with milliseconds. Digits are written by hand
    // for years 0000-9999 (snprintf was a quarter of an aggregate emission's cost).
    void iso8601(int64_t epoch_ms) {
        using namespace std::chrono;
        sys_time<milliseconds> t{milliseconds{epoch_ms}};
        auto day = floor<days>(t);
        year_month_day ymd{day};
        hh_mm_ss<milliseconds> hms{t - day};
        const int year = static_cast<int>(ymd.year());
        const auto month = static_cast<unsigned>(ymd.month()), mday = static_cast<unsigned>(ymd.day());
        const auto hour = static_cast<unsigned>(hms.hours().count());
        const auto minute = static_cast<unsigned>(hms.minutes().count());
        const auto second = static_cast<unsigned>(hms.seconds().count());
        const auto millis = static_cast<unsigned>(hms.subseconds().count());
        if (year < 0 || year > 9999) {
            char buf[48];
            int n = std::snprintf(buf, sizeof buf, "\"%04d-%02u-%02uT%02u:%02u:%02u.%03uZ\"", year,
                                  month, mday, hour, minute, second, millis);
            out_.append(buf, static_cast<size_t>(n));
            return;
        }
        char buf[] = "\"0000-00-00T00:00:00.000Z\"";
        put_digits(buf + 1, static_cast<unsigned>(year), 4);
        put_digits(buf + 6, month, 2);
        put_digits(buf + 9, mday, 2);
        put_digits(buf + 12, hour, 2);
        put_digits(buf + 15, minute, 2);
        put_digits(buf + 18, second, 2);
        put_digits(buf + 21, millis, 3);
        out_.append(buf, sizeof buf - 1);
    }

private:
    // `width` decimal digits of `value` (zero-padded) at out[0, width).
    static void put_digits(char *out, unsigned value, int width) {
        for (int i = width - 1; i >= 0; --i) {
            out[i] = static_cast<char>('0' + value % 10);
            value /= 10;
        }
    }

    std::string out_;
};

}  // namespace iotstream::plugin
