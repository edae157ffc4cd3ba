// iots_get_api(): the function table for hosts that dlopen() the library.
#include <string>

#include "error.hpp"
#include "iotstream/iotstream.h"

namespace {

// Designated initializers keep each entry next to its name; the order is the ABI's.
const iots_api_t kApiV1 = {
    .struct_size = sizeof(iots_api_t),
    .abi_major = IOTS_ABI_MAJOR,
    .abi_minor = IOTS_ABI_MINOR,
    .version = iots_version,
    .version_str = iots_version_str,
    .err_str = iots_err_str,
    .err_name = iots_err_name,
    .log_set_level = iots_log_set_level,
    .log_get_level = iots_log_get_level,
    .log_set_callback = iots_log_set_callback,
    .broker_new = iots_broker_new,
    .broker_bootstrap = iots_broker_bootstrap,
    .broker_create_topic = iots_broker_create_topic,
    .broker_set_down = iots_broker_set_down,
    .broker_set_rtt = iots_broker_set_rtt,
    .broker_push_request_errors = iots_broker_push_request_errors,
    .broker_destroy = iots_broker_destroy,
    // Producer entries (issue 3)
    .producer_new = nullptr,
    .producer_send_reading = nullptr,
    .producer_send = nullptr,
    .producer_send_batch = nullptr,
    .producer_flush = nullptr,
    .producer_get_stats = nullptr,
    .producer_close = nullptr,
    // Consumer entries (issue 3)
    .consumer_new = nullptr,
    .consumer_subscribe = nullptr,
    .consumer_poll_batch = nullptr,
    .batch_count = nullptr,
    .batch_record = nullptr,
    .batch_destroy = nullptr,
    .consumer_commit_batch = nullptr,
    .consumer_process = nullptr,
    .consumer_pause = nullptr,
    .consumer_resume = nullptr,
    .consumer_lag = nullptr,
    .consumer_get_stats = nullptr,
    .consumer_close = nullptr,
    // Pipeline entries (issue 5)
    .pipeline_new = nullptr,
    .pipeline_start = nullptr,
    .pipeline_run_bounded = nullptr,
    .pipeline_stop = nullptr,
    .pipeline_stats_json = nullptr,
    .pipeline_destroy = nullptr,
    .plugins_describe_json = iots_plugins_describe_json,
    // Load generator entries (issue 6)
    .loadgen_new = nullptr,
    .loadgen_start = nullptr,
    .loadgen_wait = nullptr,
    .loadgen_stop = nullptr,
    .loadgen_get_stats = nullptr,
    .loadgen_destroy = nullptr,
};

}  // namespace

extern "C" IOTS_EXPORT const iots_api_t *iots_get_api(int abi_major, int abi_minor, char *errstr,
                                                      size_t errstr_size) {
    using iotstream::write_errstr;
    if (abi_major != IOTS_ABI_MAJOR) {
        write_errstr(errstr, errstr_size,
                     "libiotstream " + std::string(iots_version_str()) + " serves ABI major " +
                         std::to_string(IOTS_ABI_MAJOR) + ", not " + std::to_string(abi_major));
        return nullptr;
    }
    if (abi_minor < 0 || abi_minor > IOTS_ABI_MINOR) {
        write_errstr(errstr, errstr_size,
                     "libiotstream " + std::string(iots_version_str()) + " serves ABI " +
                         std::to_string(IOTS_ABI_MAJOR) + "." + std::to_string(IOTS_ABI_MINOR) +
                         ", older than the requested minor " + std::to_string(abi_minor));
        return nullptr;
    }
    write_errstr(errstr, errstr_size, "");
    return &kApiV1;
}
