// iots_get_api(): the function table for hosts that dlopen() the library.
#include <string>

#include "common/error.hpp"
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
    .producer_new = iots_producer_new,
    .producer_send_reading = iots_producer_send_reading,
    .producer_send = iots_producer_send,
    .producer_send_batch = iots_producer_send_batch,
    .producer_flush = iots_producer_flush,
    .producer_get_stats = iots_producer_get_stats,
    .producer_close = iots_producer_close,
    // Consumer entries (issue 3)
    .consumer_new = iots_consumer_new,
    .consumer_subscribe = iots_consumer_subscribe,
    .consumer_poll_batch = iots_consumer_poll_batch,
    .batch_count = iots_batch_count,
    .batch_record = iots_batch_record,
    .batch_destroy = iots_batch_destroy,
    .consumer_commit_batch = iots_consumer_commit_batch,
    .consumer_process = iots_consumer_process,
    .consumer_pause = iots_consumer_pause,
    .consumer_resume = iots_consumer_resume,
    .consumer_lag = iots_consumer_lag,
    .consumer_get_stats = iots_consumer_get_stats,
    .consumer_close = iots_consumer_close,
    // Pipeline entries (issue 5)
    .pipeline_new = iots_pipeline_new,
    .pipeline_start = iots_pipeline_start,
    .pipeline_run_bounded = iots_pipeline_run_bounded,
    .pipeline_stop = iots_pipeline_stop,
    .pipeline_stats_json = iots_pipeline_stats_json,
    .pipeline_destroy = iots_pipeline_destroy,
    .plugins_describe_json = iots_plugins_describe_json,
    // Load generator entries (issue 6)
    .loadgen_new = iots_loadgen_new,
    .loadgen_start = iots_loadgen_start,
    .loadgen_wait = iots_loadgen_wait,
    .loadgen_stop = iots_loadgen_stop,
    .loadgen_get_stats = iots_loadgen_get_stats,
    .loadgen_destroy = iots_loadgen_destroy,
    // ABI 1.1
    .producer_send_reading_at = iots_producer_send_reading_at,
    // ABI 1.2: ingestion (issue 14)
    .ingest_new = iots_ingest_new,
    .ingest_submit = iots_ingest_submit,
    .ingest_reply_count = iots_ingest_reply_count,
    .ingest_reply_item = iots_ingest_reply_item,
    .ingest_reply_destroy = iots_ingest_reply_destroy,
    .ingest_status_name = iots_ingest_status_name,
    .ingest_get_stats = iots_ingest_get_stats,
    .ingest_close = iots_ingest_close,
    // ABI 1.3: metrics (issue 15)
    .metrics_prometheus = iots_metrics_prometheus,
    // ABI 1.4: the output tap (issue 15)
    .pipeline_set_output_tap = iots_pipeline_set_output_tap,
    // ABI 1.5: names and defaults (issue 11)
    .defaults_json = iots_defaults_json,
    // ABI 1.6: fault injection for the fault matrix (issue 13)
    .broker_set_partition_leader = iots_broker_set_partition_leader,
    .broker_set_coordinator = iots_broker_set_coordinator,
    // ABI 1.7: the integer rule, for hosts' flags (issue 11)
    .parse_int = iots_parse_int,
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
