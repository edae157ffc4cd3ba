// Version, error strings and the API table.
#include <cstdio>
#include <string>

#include "common/error.hpp"
#include "iotstream/iotstream.h"

namespace {
struct ErrorInfo {
    iots_err_t code;
    const char *name;
    const char *description;
};

// Indexed by -code; keep in the enum's order.
constexpr ErrorInfo kErrors[] = {
    {IOTS_OK, "IOTS_OK", "success"},
    {IOTS_ERR_INVALID_ARG, "IOTS_ERR_INVALID_ARG", "invalid argument"},
    {IOTS_ERR_CONFIG, "IOTS_ERR_CONFIG", "invalid configuration"},
    {IOTS_ERR_KAFKA, "IOTS_ERR_KAFKA", "Kafka client error"},
    {IOTS_ERR_QUEUE_FULL, "IOTS_ERR_QUEUE_FULL", "producer queue full"},
    {IOTS_ERR_TIMED_OUT, "IOTS_ERR_TIMED_OUT", "timed out"},
    {IOTS_ERR_STATE, "IOTS_ERR_STATE", "not allowed in the current state"},
    {IOTS_ERR_NO_MEMORY, "IOTS_ERR_NO_MEMORY", "out of memory"},
    {IOTS_ERR_INTERNAL, "IOTS_ERR_INTERNAL", "internal error"},
    {IOTS_ERR_PLUGIN, "IOTS_ERR_PLUGIN", "plugin rejected or failed"},
    {IOTS_ERR_NOT_FOUND, "IOTS_ERR_NOT_FOUND", "not found"},
    {IOTS_ERR_BUFFER_TOO_SMALL, "IOTS_ERR_BUFFER_TOO_SMALL", "buffer too small"},
    {IOTS_ERR_HANDLER, "IOTS_ERR_HANDLER", "handler failed"},
    {IOTS_ERR_UNSUPPORTED, "IOTS_ERR_UNSUPPORTED", "unsupported ABI version"},
};
static_assert(sizeof(kErrors) / sizeof(kErrors[0]) == static_cast<size_t>(-IOTS_ERR__END),
              "every error code needs a row");

const ErrorInfo *find_error(iots_err_t err) {
    int index = -static_cast<int>(err);
    if (index < 0 || index >= -static_cast<int>(IOTS_ERR__END)) return nullptr;
    return &kErrors[index];
}
}  // namespace

extern "C" {

IOTS_EXPORT int iots_version(void) { return IOTS_VERSION; }

IOTS_EXPORT const char *iots_version_str(void) {
    static const std::string text = [] {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%d.%d.%d", (IOTS_VERSION >> 24) & 0xff,
                      (IOTS_VERSION >> 16) & 0xff, (IOTS_VERSION >> 8) & 0xff);
        return std::string(buf);
    }();
    return text.c_str();
}

IOTS_EXPORT const char *iots_err_str(iots_err_t err) {
    const ErrorInfo *info = find_error(err);
    return info ? info->description : "unknown error code";
}

IOTS_EXPORT const char *iots_err_name(iots_err_t err) {
    const ErrorInfo *info = find_error(err);
    return info ? info->name : "IOTS_ERR_UNKNOWN";
}

}  // extern "C"
