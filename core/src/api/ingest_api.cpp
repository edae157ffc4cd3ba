// The C API of ingestion (iotstream.h: iots_ingest_*).
#include <string>
#include <vector>

#include "api/producer_handle.hpp"
#include "api/ingest_handle.hpp"

struct iots_ingest_reply_s {
    std::vector<iotstream::IngestResult> results;  // owns the detail strings
    std::vector<iots_ingest_item_t> items;
};

using namespace iotstream;

extern "C" {

IOTS_EXPORT iots_err_t iots_ingest_new(const char *config_json, iots_producer_t *producer, iots_ingest_t **ingestp,
                                       char *errstr, size_t errstr_size) {
    return guard(errstr, errstr_size, [&] {
        require_arg(ingestp, "ingestp");
        *ingestp = nullptr;
        Json config = parse_config(config_json, "ingest config");
        auto handle = std::make_unique<iots_ingest_s>();
        handle->ingestor = std::make_unique<Ingestor>(config, producer ? producer->producer.get() : nullptr);
        *ingestp = handle.release();
    });
}

IOTS_EXPORT iots_err_t iots_ingest_submit(iots_ingest_t *ingest, const char *device_id, const void *payload,
                                          size_t payload_len, iots_ingest_reply_t **replyp, char *errstr,
                                          size_t errstr_size) {
    if (replyp) *replyp = nullptr;
    return guard(errstr, errstr_size, [&] {
        require_arg(ingest, "ingest");
        require_arg(device_id, "device_id");
        require_arg(replyp, "replyp");
        if (payload == nullptr && payload_len > 0)
            throw Error(IOTS_ERR_INVALID_ARG, "payload is NULL but payload_len > 0");
        auto reply = std::make_unique<iots_ingest_reply_s>();
        ingest->ingestor->submit(device_id, std::string_view(static_cast<const char *>(payload), payload_len),
                                 reply->results);
        reply->items.reserve(reply->results.size());
        for (const IngestResult &result : reply->results)
            reply->items.push_back({result.status, result.reason, result.detail.c_str(), result.retry_after_ms});
        *replyp = reply.release();
    });
}

IOTS_EXPORT size_t iots_ingest_reply_count(const iots_ingest_reply_t *reply) {
    return reply ? reply->items.size() : 0;
}

IOTS_EXPORT const iots_ingest_item_t *iots_ingest_reply_item(const iots_ingest_reply_t *reply, size_t index) {
    return reply && index < reply->items.size() ? &reply->items[index] : nullptr;
}

IOTS_EXPORT void iots_ingest_reply_destroy(iots_ingest_reply_t *reply) { delete reply; }

IOTS_EXPORT const char *iots_ingest_status_name(iots_ingest_status_t status) {
    switch (status) {
        case IOTS_INGEST_ACCEPTED: return "accepted";
        case IOTS_INGEST_INVALID: return "invalid";
        case IOTS_INGEST_RATE_LIMITED: return "rate_limited";
        case IOTS_INGEST_BACKPRESSURE: return "backpressure";
        case IOTS_INGEST_TOO_LARGE: return "too_large";
        case IOTS_INGEST_FORBIDDEN: return "forbidden";
        default: return "unknown";
    }
}

IOTS_EXPORT iots_err_t iots_ingest_get_stats(iots_ingest_t *ingest, iots_ingest_stats_t *stats) {
    return guard(nullptr, 0, [&] {
        require_arg(ingest, "ingest");
        require_arg(stats, "stats");
        if (stats->struct_size < sizeof(iots_ingest_stats_t))
            throw Error(IOTS_ERR_INVALID_ARG, "stats->struct_size is smaller than iots_ingest_stats_t");
        size_t caller_size = stats->struct_size;
        *stats = ingest->ingestor->stats();
        stats->struct_size = caller_size;
    });
}

IOTS_EXPORT iots_err_t iots_ingest_close(iots_ingest_t *ingest, int timeout_ms) {
    return guard(nullptr, 0, [&] {
        require_arg(ingest, "ingest");
        std::unique_ptr<iots_ingest_s> owned(ingest);
        return owned->ingestor->close(timeout_ms) ? IOTS_OK : IOTS_ERR_TIMED_OUT;
    });
}

}  // extern "C"
