#include "support/reading_batch.hpp"

#include <algorithm>
#include <span>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "decode/decoder.hpp"
#include "decode/timestamp.hpp"

namespace iotstream::test {

std::vector<std::string> default_reading_fields() { return DecoderSchema::defaults().fields; }

namespace {

std::shared_ptr<const DecoderSchema> optional_fields(const std::vector<std::string> &fields) {
    auto schema = std::make_shared<DecoderSchema>();
    schema->fields = fields;
    schema->required.assign(fields.size(), false);
    return schema;
}

bool decodable_time(int64_t epoch_ms) { return epoch_ms >= kMinTimestampMs && epoch_ms <= kMaxTimestampMs; }

// The seed's envelope; NaN values are left out, as a sensor that lacks the field sends it.
std::string envelope(const Reading &r) {
    nlohmann::json data = nlohmann::json::object();
    auto put = [](nlohmann::json &object, const char *key, double value) {
        if (value == value) object[key] = value;
    };
    put(data, "temperature", r.temperature);
    put(data, "humidity", r.humidity);
    put(data, "pressure", r.pressure);
    put(data, "battery_level", r.battery_level);
    nlohmann::json location = nlohmann::json::object();
    put(location, "lat", r.lat);
    put(location, "lon", r.lon);
    if (!location.empty()) data["location"] = location;
    return nlohmann::json{{"sensor_id", r.sensor}, {"timestamp", decodable_time(r.event_time_ms) ? r.event_time_ms : 0}, {"data", data}}.dump();
}

}  // namespace

struct ReadingBatch::Decoded {
    explicit Decoded(const std::vector<std::string> &fields) : decoder(optional_fields(fields)) {}
    Decoder decoder;
    DecodedBatch batch;
    std::vector<std::string> envelopes;  // the records' text: payloads point into it
    // batch's view, with every reading's own event time when one is outside what the decoder
    // reads (e.g. IOTS_NO_VALUE): plugins must survive such times from other hosts.
    iots_batch_view_t view{};
    std::vector<int64_t> event_times;
    bool current = false;                // batch holds every reading added
};

ReadingBatch::ReadingBatch(const std::vector<std::string> &fields) : decoded_(std::make_unique<Decoded>(fields)) {}

ReadingBatch::ReadingBatch(const std::vector<Reading> &readings, const std::vector<std::string> &fields)
    : ReadingBatch(fields) {
    for (const Reading &r : readings) add(r);
}

ReadingBatch::~ReadingBatch() = default;

void ReadingBatch::add(const Reading &reading) {
    readings_.push_back(reading);
    decoded_->current = false;
}

void ReadingBatch::add(const std::string &sensor, int64_t event_time_ms, double temperature, uint32_t stream) {
    Reading r{sensor, event_time_ms};
    r.temperature = temperature;
    r.stream = stream;
    r.offset = static_cast<int64_t>(readings_.size());
    add(r);
}

const iots_batch_view_t &ReadingBatch::view() {
    Decoded &d = *decoded_;
    if (!d.current) {
        d.envelopes.clear();
        for (const Reading &r : readings_) d.envelopes.push_back(envelope(r));
        std::vector<RawRecord> records;
        for (size_t i = 0; i < readings_.size(); ++i)
            records.push_back(RawRecord{d.envelopes[i].data(), d.envelopes[i].size(), readings_[i].stream,
                                        readings_[i].offset});
        d.decoder.decode(std::span<const RawRecord>(records), d.batch);
        if (!d.batch.rejections().empty()) {
            const Rejection &first = d.batch.rejections().front();
            throw std::invalid_argument("reading " + std::to_string(first.input_index) + " was refused by the decoder (" +
                                        std::string(first.reason) + "): " + first.detail);
        }
        for (size_t i = 0; i < readings_.size(); ++i) d.batch.anomaly_bits()[i] = readings_[i].anomaly_bits;
        d.view = d.batch.view();
        d.event_times.clear();
        for (const Reading &r : readings_) d.event_times.push_back(r.event_time_ms);
        if (!std::all_of(d.event_times.begin(), d.event_times.end(), decodable_time))
            d.view.event_time_ms = d.event_times.data();
        d.current = true;
    }
    return d.view;
}

uint64_t *ReadingBatch::anomaly_bits() {
    view();
    return decoded_->batch.anomaly_bits();
}

}  // namespace iotstream::test
