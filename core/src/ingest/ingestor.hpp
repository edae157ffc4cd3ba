// The ingestion service behind a device gateway (iots_ingest_*): takes one device's payload
// (one reading, a JSON array of readings, or NDJSON), validates every reading with the
// pipeline decoder's rules, applies the device's token bucket, wraps accepted readings in the
// seed's envelope and produces them keyed by sensor_id. Each reading gets one result.
//
// A reading, as a device sends it:
//   {"sensor_id": "sensor_3_17", "timestamp": "2026-11-26T23:34:43.123Z", "data": {...}}
// "sensor_id" defaults to the device id and "timestamp" to the gateway's clock; other keys
// are not carried (the envelope gets a fresh "message_id").
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "common/config.hpp"
#include "decode/decoder.hpp"
#include "ingest/rate_limiter.hpp"
#include "iotstream/iotstream.h"

namespace iotstream {

class Producer;

struct IngestResult {
    iots_ingest_status_t status = IOTS_INGEST_ACCEPTED;
    const char *reason = "";  // static storage: see iots_ingest_item_t
    std::string detail;
    int64_t retry_after_ms = 0;
};

class Ingestor {
public:
    // `config`: the ingestion config object (iotstream.h: iots_ingest_new). `producer` is
    // borrowed and must outlive the Ingestor; when null, one is made from config "producer".
    // Throws Error.
    Ingestor(const Json &config, Producer *producer);
    ~Ingestor();
    Ingestor(const Ingestor &) = delete;
    Ingestor &operator=(const Ingestor &) = delete;

    // Replaces `results` with one result per reading of `payload`. Thread-safe.
    void submit(std::string_view device_id, std::string_view payload, std::vector<IngestResult> &results);

    iots_ingest_stats_t stats() const;
    const DeviceRateLimiter &rate_limiter() const { return *limiter_; }
    // Flushes an owned producer (up to timeout_ms) and closes it; false if messages were failed.
    bool close(int timeout_ms);

private:
    struct Scratch;  // per-call buffers, pooled
    std::unique_ptr<Scratch> checkout();
    void checkin(std::unique_ptr<Scratch> scratch);
    void split_items(std::string_view payload, Scratch &scratch, std::vector<IngestResult> &results);
    void send_granted(std::string_view device_id, Scratch &scratch, uint32_t granted,
                      std::vector<IngestResult> &results);
    void dead_letter(std::string_view device_id, std::string_view item, const IngestResult &result);
    void count(const std::vector<IngestResult> &results);

    std::string topic_;
    std::string dead_letter_topic_;  // empty: invalid readings are only answered
    bool own_sensor_ids_only_ = true;
    size_t max_payload_bytes_ = 1 << 20;
    size_t max_readings_ = 10000;
    std::shared_ptr<const DecoderSchema> schema_;
    std::unique_ptr<DeviceRateLimiter> limiter_;
    std::unique_ptr<Producer> owned_producer_;
    Producer *producer_ = nullptr;

    std::mutex pool_mutex_;
    std::vector<std::unique_ptr<Scratch>> pool_;

    std::atomic<uint64_t> payloads_{0};
    std::atomic<uint64_t> by_status_[IOTS_INGEST__END] = {};
};

}  // namespace iotstream
