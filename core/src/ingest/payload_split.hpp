// Internal to the ingestor's files: Ingestor::Scratch, the per-call buffers (pooled), with the
// parsers that validate a payload and read the source texts of its readings and of their
// "sensor_id", "timestamp" and "data" members; and the reasons the ingestor gives that are not
// the decoder's. payload_split.cpp splits a payload into readings; ingestor.cpp does the rest.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <simdjson.h>

#include "decode/decoder.hpp"
#include "ingest/ingestor.hpp"

namespace iotstream {

namespace ingest_reason {
constexpr const char *kRateLimited = "rate_limited";
constexpr const char *kQueueFull = "queue_full";
constexpr const char *kTooLarge = "too_large";
constexpr const char *kForeignSensor = "foreign_sensor_id";
constexpr const char *kProducerRefused = "producer_refused";
constexpr const char *kSendFailed = "send_failed";
}  // namespace ingest_reason

struct Ingestor::Scratch {
    explicit Scratch(std::shared_ptr<const DecoderSchema> schema) : decoder(std::move(schema)) {}
    simdjson::dom::parser parser;
    simdjson::ondemand::parser raw_parser;  // source texts (raw_json) of what `parser` validated
    std::string padded;
    std::vector<std::string> items;      // each reading's own text (for the DLQ)
    std::vector<std::string> envelopes;  // what the decoder checks and the producer sends
    std::vector<RawRecord> records;
    Decoder decoder;
    DecodedBatch decoded;

    // Parses `text` with the reused parser; the element lives until the next parse.
    simdjson::error_code parse(std::string_view text, simdjson::dom::element &out) {
        padded.assign(text);
        padded.resize(text.size() + simdjson::SIMDJSON_PADDING, '\0');
        raw_length = text.size();
        return parser.parse(padded.data(), text.size(), false).get(out);
    }

    // The source text of each element of the JSON array in `padded` (which `parse` has just
    // validated), appended to `items` as they are: no reformatting of numbers.
    bool raw_elements() {
        simdjson::ondemand::document doc;
        simdjson::ondemand::array array;
        if (raw_parser.iterate(padded.data(), raw_length, padded.size()).get(doc) || doc.get_array().get(array))
            return false;
        for (auto element : array) {
            simdjson::ondemand::value value;
            if (element.get(value)) return false;
            std::string_view raw;
            if (!raw_value(value, raw)) return false;
            items.emplace_back(raw);
        }
        return true;
    }

    // The source texts of the first "sensor_id", "timestamp" and "data" members of the JSON
    // object `text` (valid JSON: validated before), in one pass; false when it is no object.
    struct Fields {
        std::string_view sensor_id, timestamp, data;
        bool has_sensor_id = false, has_timestamp = false, has_data = false;
    };
    bool raw_fields(std::string_view text, Fields &out) {
        if (text.data() != padded.data() || raw_length != text.size()) {
            padded.assign(text);
            padded.resize(text.size() + simdjson::SIMDJSON_PADDING, '\0');
            raw_length = text.size();
        }
        out = Fields{};
        simdjson::ondemand::document doc;
        simdjson::ondemand::object object;
        if (raw_parser.iterate(padded.data(), raw_length, padded.size()).get(doc) || doc.get_object().get(object))
            return false;
        for (auto field : object) {
            std::string_view key;
            if (field.unescaped_key().get(key)) return false;
            std::string_view *slot = nullptr;
            bool *seen = nullptr;
            if (key == "sensor_id") slot = &out.sensor_id, seen = &out.has_sensor_id;
            else if (key == "timestamp") slot = &out.timestamp, seen = &out.has_timestamp;
            else if (key == "data") slot = &out.data, seen = &out.has_data;
            if (slot == nullptr || *seen) continue;  // the first of duplicate keys, as the DOM's lookup
            simdjson::ondemand::value value;
            if (field.value().get(value) || !raw_value(value, *slot)) return false;
            *seen = true;
        }
        return true;
    }

    size_t raw_length = 0;        // of the text in `padded`
    bool items_validated = false;  // `items` are a validated array's elements

private:
    static bool raw_value(simdjson::ondemand::value &value, std::string_view &out) {
        simdjson::ondemand::json_type type;
        if (value.type().get(type)) return false;
        if (type == simdjson::ondemand::json_type::object) {
            simdjson::ondemand::object object;
            return !value.get_object().get(object) && !object.raw_json().get(out);
        }
        if (type == simdjson::ondemand::json_type::array) {
            simdjson::ondemand::array array;
            return !value.get_array().get(array) && !array.raw_json().get(out);
        }
        out = value.raw_json_token();  // a scalar, with the whitespace after it
        while (!out.empty() && (out.back() == ' ' || out.back() == '\t' || out.back() == '\r' || out.back() == '\n'))
            out.remove_suffix(1);
        return true;
    }
};

}  // namespace iotstream
