// The ingestion service: its config, then per payload: split (payload_split.cpp), wrap each
// reading in the envelope, let the decoder judge it, check the device's sensor ids and rate,
// produce what is granted, dead-letter what is invalid, count.
#include "ingest/ingestor.hpp"

#include <algorithm>
#include <chrono>

#include <simdjson.h>

#include "common/defaults.hpp"
#include "common/json_escape.hpp"
#include "common/log.hpp"
#include "decode/timestamp.hpp"
#include "kafka/envelope.hpp"
#include "kafka/producer.hpp"
#include "ingest/payload_split.hpp"

namespace iotstream {

using namespace ingest_reason;

namespace {

int64_t steady_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

// The decoder's reason as a NUL-terminated static string (its constants view string literals).
const char *static_reason(std::string_view reason) {
    for (std::string_view known : reject_reason::all)
        if (known == reason) return known.data();
    return "invalid";
}

RateLimits read_limits(const Json &object, const std::string &what, RateLimits fallback) {
    ConfigReader reader(object, what);
    RateLimits limits{reader.get_double("rate", fallback.rate), reader.get_double("burst", fallback.burst)};
    reader.finish();
    if (!(limits.rate > 0) || limits.rate > 1e9)
        throw Error(IOTS_ERR_CONFIG, what + ": key 'rate' must be > 0 and <= 1e9 readings/s");
    if (!(limits.burst >= 1) || limits.burst > 1e7)
        throw Error(IOTS_ERR_CONFIG, what + ": key 'burst' must be between 1 and 1e7 readings");
    if (limits.burst / limits.rate > kMaxRefillSeconds)
        throw Error(IOTS_ERR_CONFIG, what + ": burst/rate (the time to refill) must be at most " +
                                         std::to_string(static_cast<int>(kMaxRefillSeconds)) + " s");
    return limits;
}

}  // namespace

Ingestor::Ingestor(const Json &config, Producer *producer) {
    ConfigReader reader(config, "ingest config");
    topic_ = reader.get_string("topic", kTopicReadings);
    if (topic_.empty()) throw Error(IOTS_ERR_CONFIG, "ingest config: key 'topic' must not be empty");
    dead_letter_topic_ = reader.get_string("dead_letter_topic", "");
    Json bucket = Json::object();
    if (reader.has("rate")) bucket["rate"] = reader.get_json("rate", Json());
    if (reader.has("burst")) bucket["burst"] = reader.get_json("burst", Json());
    const RateLimits defaults = read_limits(bucket, "ingest config", RateLimits{});
    std::unordered_map<std::string, RateLimits> overrides;
    Json devices = reader.get_json("devices", Json::object());
    if (!devices.is_object())
        throw Error(IOTS_ERR_CONFIG, "ingest config: key 'devices' must be an object of {\"rate\", \"burst\"} by device id");
    for (const auto &[device, limits] : devices.items())
        overrides[device] = read_limits(limits, "ingest config: devices." + device, defaults);
    const auto max_devices = static_cast<size_t>(reader.get_int("max_devices", 1000000, 1, int64_t{1} << 32));
    max_payload_bytes_ = static_cast<size_t>(reader.get_int("max_payload_bytes", 1 << 20, 64, int64_t{1} << 30));
    max_readings_ = static_cast<size_t>(reader.get_int("max_readings", 10000, 1, 10000000));
    const std::string sensor_ids = reader.get_string("sensor_ids", "own");
    if (sensor_ids != "own" && sensor_ids != "any")
        throw Error(IOTS_ERR_CONFIG, "ingest config: key 'sensor_ids' must be \"own\" or \"any\", got \"" +
                                         sensor_ids + "\"");
    own_sensor_ids_only_ = sensor_ids == "own";
    schema_ = std::make_shared<const DecoderSchema>(
        reader.has("decoder") ? DecoderSchema::from_json(reader.get_json("decoder", Json()), "ingest config: decoder")
                              : DecoderSchema::defaults());
    Json producer_config = reader.get_json("producer", Json::object());
    reader.finish();
    if (producer == nullptr) {
        if (!producer_config.is_object())
            throw Error(IOTS_ERR_CONFIG, "ingest config: key 'producer' must be an object");
        if (!producer_config.contains("queue_full_timeout_ms")) producer_config["queue_full_timeout_ms"] = 0;
        owned_producer_ = std::make_unique<Producer>(producer_config, Producer::DeliveryCallback{});
        producer = owned_producer_.get();
    }
    producer_ = producer;
    limiter_ = std::make_unique<DeviceRateLimiter>(defaults, overrides, max_devices);
}

Ingestor::~Ingestor() { close(Producer::kDefaultCloseTimeoutMs); }

bool Ingestor::close(int timeout_ms) {
    if (!owned_producer_) return true;
    bool clean = owned_producer_->close(timeout_ms);
    return clean;
}

std::unique_ptr<Ingestor::Scratch> Ingestor::checkout() {
    {
        std::lock_guard lock(pool_mutex_);
        if (!pool_.empty()) {
            auto scratch = std::move(pool_.back());
            pool_.pop_back();
            return scratch;
        }
    }
    return std::make_unique<Scratch>(schema_);
}

void Ingestor::checkin(std::unique_ptr<Scratch> scratch) {
    std::lock_guard lock(pool_mutex_);
    pool_.push_back(std::move(scratch));
}

void Ingestor::submit(std::string_view device_id, std::string_view payload, std::vector<IngestResult> &results) {
    if (device_id.empty()) throw Error(IOTS_ERR_INVALID_ARG, "device_id must not be empty");
    results.clear();
    payloads_.fetch_add(1, std::memory_order_relaxed);
    if (payload.size() > max_payload_bytes_) {
        results.push_back({IOTS_INGEST_TOO_LARGE, kTooLarge,
                           "payload is " + std::to_string(payload.size()) + " bytes; max_payload_bytes is " +
                               std::to_string(max_payload_bytes_)});
        count(results);
        return;
    }
    auto scratch = checkout();
    struct Return {
        Ingestor *self;
        std::unique_ptr<Scratch> &scratch;
        ~Return() { self->checkin(std::move(scratch)); }
    } give_back_scratch{this, scratch};

    split_items(payload, *scratch, results);
    if (!results.empty()) {  // the payload as a whole was refused
        count(results);
        return;
    }

    // Wrap each reading in the envelope, then let the decoder judge the envelope: the same
    // rules, reasons and limits as the pipeline that will read it. Text that is no reading
    // object (or is over the size limit) goes to the decoder as it is, for its reason.
    char now_text[kIso8601NowLength];
    const size_t now_length = format_now_iso8601(now_text);
    scratch->envelopes.resize(scratch->items.size());
    for (size_t i = 0; i < scratch->items.size(); ++i) {
        const std::string &item = scratch->items[i];
        std::string &envelope = scratch->envelopes[i];
        // Array elements were validated with the whole payload; other text is validated here.
        // The envelope takes the members' source texts (reformatting numbers through the DOM
        // cost more than the rest of ingestion); the decoder judges the envelope next.
        simdjson::dom::element root;
        Scratch::Fields fields;
        if (item.size() > schema_->max_record_bytes ||
            (!scratch->items_validated && (scratch->parse(item, root) || !root.is_object())) ||
            !scratch->raw_fields(item, fields)) {
            envelope = item;
            continue;
        }
        envelope.assign("{\"sensor_id\":");
        if (fields.has_sensor_id) {
            envelope += fields.sensor_id;
        } else {
            envelope += '"';
            append_json_escaped(envelope, device_id);
            envelope += '"';
        }
        envelope += ",\"timestamp\":";
        if (fields.has_timestamp) {
            envelope += fields.timestamp;
        } else {
            envelope += '"';
            envelope.append(now_text, now_length);
            envelope += '"';
        }
        if (fields.has_data) {
            envelope += ",\"data\":";
            envelope += fields.data;
        }
        envelope += ",\"message_id\":\"";
        const auto id = uuid4();
        envelope.append(id.data(), id.size());
        envelope += "\"}";
    }
    scratch->records.clear();
    for (size_t i = 0; i < scratch->envelopes.size(); ++i)
        scratch->records.push_back(RawRecord{scratch->envelopes[i].data(), scratch->envelopes[i].size(), 0,
                                             static_cast<int64_t>(i)});
    scratch->decoder.decode(scratch->records, scratch->decoded);

    results.resize(scratch->items.size());
    for (const Rejection &rejection : scratch->decoded.rejections()) {
        IngestResult &result = results[rejection.input_index];
        const bool too_large = rejection.reason == reject_reason::too_large;
        result.status = too_large ? IOTS_INGEST_TOO_LARGE : IOTS_INGEST_INVALID;
        result.reason = static_reason(rejection.reason);
        result.detail = rejection.detail;
    }

    const iots_batch_view_t &view = scratch->decoded.view();
    const auto rows = scratch->decoded.input_indices();
    bool forbidden = false;
    if (own_sensor_ids_only_) {
        const iots_str_t *foreign = nullptr;
        for (uint32_t row = 0; row < view.count && foreign == nullptr; ++row)
            if (std::string_view(view.sensor_ids[row].data, view.sensor_ids[row].len) != device_id)
                foreign = &view.sensor_ids[row];
        if (foreign != nullptr) {
            forbidden = true;
            const std::string detail = "device '" + std::string(device_id) + "' may send only its own readings; " +
                                       "the payload names sensor_id '" + std::string(foreign->data, foreign->len) +
                                       "', so none of it is produced";
            for (uint32_t row = 0; row < view.count; ++row)
                results[rows[row]] = {IOTS_INGEST_FORBIDDEN, kForeignSensor, detail};
        }
    }

    if (!forbidden && view.count > 0) {
        const auto grant = limiter_->take(device_id, view.count, steady_ms());
        send_granted(device_id, *scratch, grant.granted, results);
        for (uint32_t rest = grant.granted; rest < view.count; ++rest)
            results[rows[rest]] = {IOTS_INGEST_RATE_LIMITED, kRateLimited,
                                   "device '" + std::string(device_id) + "' is over its rate; retry in " +
                                       std::to_string(grant.retry_after_ms) + " ms",
                                   grant.retry_after_ms};
    }

    if (!dead_letter_topic_.empty())
        for (size_t i = 0; i < results.size(); ++i)
            if (results[i].status == IOTS_INGEST_INVALID || results[i].status == IOTS_INGEST_TOO_LARGE)
                dead_letter(device_id, scratch->items[i], results[i]);
    count(results);
}

// Produces the first `granted` decoded rows. A send failure is one reading's answer, never
// the whole call's: a reading the producer refuses for good (over message.max.bytes) gets
// too_large or invalid and the rest go on; a full queue or any other failure answers
// backpressure for it and the rest (the cluster or queue may take them later). Every token of
// a reading not sent goes back to the device.
void Ingestor::send_granted(std::string_view device_id, Scratch &scratch, uint32_t granted,
                            std::vector<IngestResult> &results) {
    const iots_batch_view_t &view = scratch.decoded.view();
    const auto rows = scratch.decoded.input_indices();
    uint32_t refunded = 0;
    uint32_t row = 0;
    IngestResult stop;
    for (; row < granted; ++row) {
        const size_t index = rows[row];
        try {
            producer_->send(topic_, std::string_view(view.sensor_ids[row].data, view.sensor_ids[row].len),
                            scratch.envelopes[index], {}, nullptr);
            continue;
        } catch (const KafkaSendError &e) {
            if (classify_output_failure(e.kafka_error()) == OutputFailure::refused) {
                const bool size = e.kafka_error() == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE ||
                                  e.kafka_error() == RD_KAFKA_RESP_ERR_INVALID_MSG_SIZE ||
                                  e.kafka_error() == RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE;
                results[index] = size ? IngestResult{IOTS_INGEST_TOO_LARGE, kTooLarge, e.what()}
                                      : IngestResult{IOTS_INGEST_INVALID, kProducerRefused, e.what()};
                ++refunded;
                continue;
            }
            stop = {IOTS_INGEST_BACKPRESSURE, kSendFailed, e.what()};
        } catch (const Error &e) {
            if (e.code() != IOTS_ERR_QUEUE_FULL) throw;  // a closed producer: the caller's error
            stop = {IOTS_INGEST_BACKPRESSURE, kQueueFull, e.what()};
        }
        break;
    }
    for (uint32_t rest = row; rest < granted; ++rest) results[rows[rest]] = stop;
    limiter_->give_back(device_id, refunded + (granted - row));
}

void Ingestor::dead_letter(std::string_view device_id, std::string_view item, const IngestResult &result) {
    const std::string source = "ingest:" + std::string(device_id);
    const KafkaHeader headers[] = {{"iotstream.reason", result.reason},
                                   {"iotstream.detail", result.detail},
                                   {"iotstream.source", source}};
    try {
        producer_->send(dead_letter_topic_, device_id, item, headers, nullptr);
    } catch (const Error &e) {
        // The device has its answer either way; a full queue or a refusal (a reading over
        // message.max.bytes is as large here) only costs the DLQ copy.
        if (e.code() != IOTS_ERR_QUEUE_FULL && e.code() != IOTS_ERR_KAFKA) throw;
        logger("ingest")->warn("dead letter for device '{}' dropped: {}", device_id, e.what());
    }
}

void Ingestor::count(const std::vector<IngestResult> &results) {
    for (const IngestResult &result : results) by_status_[result.status].fetch_add(1, std::memory_order_relaxed);
}

iots_ingest_stats_t Ingestor::stats() const {
    iots_ingest_stats_t s{};
    s.struct_size = sizeof s;
    s.payloads = payloads_.load(std::memory_order_relaxed);
    s.accepted = by_status_[IOTS_INGEST_ACCEPTED].load(std::memory_order_relaxed);
    s.invalid = by_status_[IOTS_INGEST_INVALID].load(std::memory_order_relaxed);
    s.rate_limited = by_status_[IOTS_INGEST_RATE_LIMITED].load(std::memory_order_relaxed);
    s.backpressure = by_status_[IOTS_INGEST_BACKPRESSURE].load(std::memory_order_relaxed);
    s.too_large = by_status_[IOTS_INGEST_TOO_LARGE].load(std::memory_order_relaxed);
    s.forbidden = by_status_[IOTS_INGEST_FORBIDDEN].load(std::memory_order_relaxed);
    s.devices_tracked = limiter_->tracked();
    s.buckets_evicted_idle = limiter_->evicted_idle();
    s.buckets_evicted_early = limiter_->evicted_early();
    return s;
}

}  // namespace iotstream
