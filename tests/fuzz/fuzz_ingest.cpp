// libFuzzer target: the ingestion service's request parsing (issue 13; the body of
// POST /v1/readings and of an MQTT message). Any bytes from a device must give at least one
// result, each with a known status; a refusal says why (a reason and a detail), a rate limit
// says when to retry, and one payload never yields more results than max_readings allows.
//
// The first byte picks the device: "fast" (a bucket that never empties) or "slow" (one reading
// per 1000 s), so accepted, rate-limited and backpressure results are all reached. The
// producer points at a closed port with a small queue: accepted readings stay queued, and a
// full queue answers backpressure, so memory stays bounded however long the run.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "decode/decoder.hpp"
#include "ingest/ingestor.hpp"

using namespace iotstream;

namespace {

constexpr size_t kMaxReadings = 64;

[[noreturn]] void fail(const char *what, const IngestResult &result) {
    std::fprintf(stderr, "fuzz_ingest: %s (status %d, reason '%s', detail '%s')\n", what,
                 static_cast<int>(result.status), result.reason ? result.reason : "(null)", result.detail.c_str());
    std::abort();
}

Ingestor &ingestor() {
    static Ingestor *instance = [] {
        iots_log_set_level(IOTS_LOG_OFF);  // the producer's "broker down" lines would flood the run
        Json config = {
            {"rate", 1e9},
            {"burst", 1e7},
            {"devices", {{"slow", {{"rate", 0.001}, {"burst", 1}}}}},
            {"max_readings", kMaxReadings},
            {"max_payload_bytes", 65536},
            {"producer",
             {{"queue_full_timeout_ms", 0},
              {"kafka", {{"bootstrap.servers", "127.0.0.1:1"}, {"queue.buffering.max.messages", "1000"}}}}}};
        return new Ingestor(config, nullptr);  // never destroyed: its producer would wait to flush
    }();
    return *instance;
}

bool known_decoder_reason(std::string_view reason) {
    for (std::string_view known : reject_reason::all)
        if (known == reason) return true;
    return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const std::string_view device = size > 0 && (data[0] & 1) ? "slow" : "fast";
    const std::string_view payload(reinterpret_cast<const char *>(data) + (size > 0), size > 0 ? size - 1 : 0);
    static std::vector<IngestResult> results;
    ingestor().submit(device, payload, results);
    if (results.empty()) fail("no result for a payload", IngestResult{});
    if (results.size() > kMaxReadings) fail("more results than max_readings", results.back());
    for (const IngestResult &result : results) {
        if (result.status < IOTS_INGEST_ACCEPTED || result.status >= IOTS_INGEST__END) fail("unknown status", result);
        if (result.reason == nullptr) fail("null reason", result);
        if (result.status == IOTS_INGEST_ACCEPTED) continue;
        if (result.detail.empty()) fail("a refusal without a detail", result);
        if (result.status == IOTS_INGEST_RATE_LIMITED && result.retry_after_ms <= 0)
            fail("rate limited without a retry time", result);
        if (result.status == IOTS_INGEST_INVALID && !known_decoder_reason(result.reason))
            fail("invalid with a reason the decoder does not have", result);
    }
    return 0;
}
