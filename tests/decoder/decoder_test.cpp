// The reading decoder: columns, rejections with their exact reason codes, schema handling.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "decode/decoder.hpp"

using namespace iotstream;

namespace {

const char *const kSeedReading =
    R"({"sensor_id": "sensor_3_17", "timestamp": "2026-11-26T23:34:43.123456", "data": )"
    R"({"temperature": 27.31, "humidity": 55.2, "pressure": 1010.4, "battery_level": 87.5, )"
    R"("location": {"lat": 37.512345, "lon": -121.5}}, )"
    R"("message_id": "6f1c2d5e-8a4b-4c3d-9e2f-1a2b3c4d5e6f"})";
constexpr int64_t kSeedTimeMs = 1795736083123;  // Python: 2026-11-26T23:34:43.123 UTC

// Owns payload strings and the RawRecords pointing into them.
struct Input {
    std::vector<std::string> payloads;
    std::vector<RawRecord> records;

    explicit Input(std::vector<std::string> texts) : payloads(std::move(texts)) {
        for (size_t i = 0; i < payloads.size(); ++i)
            records.push_back(RawRecord{payloads[i].data(), payloads[i].size(), 7,
                                        static_cast<int64_t>(1000 + i)});
    }
};

std::string_view str(const iots_str_t &s) { return {s.data, s.len}; }

// Decodes one payload; returns the reason code ("" when accepted) and the detail.
struct Outcome {
    std::string reason;
    std::string detail;
};
Outcome decode_one(const std::string &payload, Decoder &decoder) {
    Input input({payload});
    DecodedBatch batch;
    decoder.decode(input.records, batch);
    EXPECT_EQ(batch.size() + batch.rejections().size(), 1u);
    if (batch.size() == 1) return {"", ""};
    return {std::string(batch.rejections()[0].reason), batch.rejections()[0].detail};
}
Outcome decode_one(const std::string &payload) {
    Decoder decoder(DecoderSchema::defaults());
    return decode_one(payload, decoder);
}

std::string with_data(const std::string &data, const std::string &timestamp = "\"2026-01-01T00:00:00Z\"") {
    return R"({"sensor_id": "s1", "timestamp": )" + timestamp + R"(, "data": )" + data + "}";
}

}  // namespace

TEST(Decoder, SeedReadingBecomesOneRow) {
    Decoder decoder(DecoderSchema::defaults());
    Input input({kSeedReading});
    DecodedBatch batch;
    decoder.decode(input.records, batch);
    ASSERT_EQ(batch.size(), 1u);
    ASSERT_TRUE(batch.rejections().empty());
    const iots_batch_view_t &v = batch.view();
    EXPECT_EQ(v.struct_size, sizeof(iots_batch_view_t));
    EXPECT_EQ(v.count, 1u);
    ASSERT_EQ(v.field_count, 6u);
    EXPECT_STREQ(v.field_names[0], "temperature");
    EXPECT_STREQ(v.field_names[4], "location.lat");
    EXPECT_EQ(v.fields[0][0], 27.31);
    EXPECT_EQ(v.fields[1][0], 55.2);
    EXPECT_EQ(v.fields[2][0], 1010.4);
    EXPECT_EQ(v.fields[3][0], 87.5);
    EXPECT_EQ(v.fields[4][0], 37.512345);
    EXPECT_EQ(v.fields[5][0], -121.5);
    EXPECT_EQ(str(v.sensor_ids[0]), "sensor_3_17");
    // Zero-copy: the id points into the caller's payload.
    EXPECT_GE(v.sensor_ids[0].data, input.payloads[0].data());
    EXPECT_LT(v.sensor_ids[0].data, input.payloads[0].data() + input.payloads[0].size());
    EXPECT_EQ(v.event_time_ms[0], kSeedTimeMs);
    EXPECT_EQ(v.streams[0], 7u);
    EXPECT_EQ(v.offsets[0], 1000);
    EXPECT_EQ(v.payloads[0].data, input.payloads[0].data());
    EXPECT_EQ(v.payloads[0].len, input.payloads[0].size());
    EXPECT_EQ(v.anomaly_bits[0], 0u);
    EXPECT_EQ(batch.input_indices()[0], 0u);
}

TEST(Decoder, EveryRejectionReasonHasItsExactCode) {
    struct Case {
        std::string payload;
        std::string reason;
        std::string detail_mentions;
    };
    const std::vector<Case> cases = {
        {"", "not_json", "empty"},
        {"{\"sensor_id\": \"s1\", ", "not_json", "invalid JSON"},
        {"hello", "not_json", "invalid JSON"},
        {"{\"sensor_id\": \"s1\"} trailing", "not_json", "invalid JSON"},
        {"{\"sensor_id\": \"s1\"}}", "not_json", "invalid JSON"},
        {"{\"sensor_id\" \"s1\"}", "not_json", "invalid JSON"},
        {with_data("{\"temperature\": 1, \"humidity\": 2, \"pressure\": tru}"), "not_json", ""},
        {with_data("{\"temperature\": 1, \"humidity\": 2, \"pressure\": 01}"), "not_json", ""},
        {"{\"message_id\": nul, " + with_data("{}").substr(1), "not_json", ""},
        {"{\"bad\": \"\\x\", " + with_data("{}").substr(1), "not_json", ""},
        {"[1, 2, 3]", "wrong_type", "array"},
        {"42", "wrong_type", "a number"},
        {"\"just a string\"", "wrong_type", "a string"},
        {"[1, tru]", "not_json", "invalid JSON"},
        {"42 43", "not_json", "invalid JSON"},
        {" true\n", "wrong_type", "a boolean"},
        {"[1, 2] 3", "not_json", "invalid JSON"},
        {R"({"timestamp": "2026-01-01T00:00:00Z", "data": {"temperature": 1, "humidity": 2, "pressure": 3}})",
         "missing_sensor_id", "sensor_id"},
        {R"({"sensor_id": "", "timestamp": "2026-01-01T00:00:00Z", "data": {"temperature": 1, "humidity": 2, "pressure": 3}})",
         "missing_sensor_id", "empty"},
        {R"({"sensor_id": null, "timestamp": "2026-01-01T00:00:00Z", "data": {"temperature": 1, "humidity": 2, "pressure": 3}})",
         "missing_sensor_id", "sensor_id"},
        {R"({"sensor_id": 17, "timestamp": "2026-01-01T00:00:00Z", "data": {"temperature": 1, "humidity": 2, "pressure": 3}})",
         "wrong_type", "sensor_id is a number"},
        {R"({"sensor_id": "s1", "data": {"temperature": 1, "humidity": 2, "pressure": 3}})",
         "missing_timestamp", "timestamp"},
        {with_data(R"({"temperature": 1, "humidity": 2, "pressure": 3})", "\"2026-13-01T00:00:00\""),
         "bad_timestamp", "2026-13-01T00:00:00"},
        {with_data(R"({"temperature": 1, "humidity": 2, "pressure": 3})", "\"2026-02-30T00:00:00\""),
         "bad_timestamp", "day out of range"},
        {with_data(R"({"temperature": 1, "humidity": 2, "pressure": 3})", "\"2026-01-01T25:00:00\""),
         "bad_timestamp", "hour"},
        {with_data(R"({"temperature": 1, "humidity": 2, "pressure": 3})", "\"yesterday\""),
         "bad_timestamp", "yesterday"},
        {with_data(R"({"temperature": 1, "humidity": 2, "pressure": 3})", "1.7e12"),
         "bad_timestamp", "integer"},
        {with_data(R"({"temperature": 1, "humidity": 2, "pressure": 3})", "true"),
         "wrong_type", "timestamp is a boolean"},
        {with_data(R"({"temperature": 1, "humidity": 2})"), "missing_field", "data.pressure"},
        {with_data(R"({"temperature": 1, "humidity": 2, "pressure": null})"), "missing_field",
         "data.pressure"},
        {R"({"sensor_id": "s1", "timestamp": "2026-01-01T00:00:00Z"})", "missing_field",
         "data.temperature"},
        {with_data(R"({"temperature": "27.3", "humidity": 2, "pressure": 3})"), "wrong_type",
         "data.temperature is a string"},
        {with_data(R"({"temperature": 1, "humidity": [2], "pressure": 3})"), "wrong_type",
         "data.humidity is an array"},
        {with_data(R"({"temperature": 1, "humidity": 2, "pressure": 3, "location": 5})"),
         "wrong_type", "data.location is a number"},
        {with_data(R"({"temperature": 1, "humidity": 2, "pressure": 3, "location": {"lat": false}})"),
         "wrong_type", "data.location.lat is a boolean"},
        {with_data("[1, 2]"), "wrong_type", "data is an array"},
        {with_data(R"({"temperature": NaN, "humidity": 2, "pressure": 3})"), "non_finite",
         "data.temperature is NaN"},
        {with_data(R"({"temperature": 1, "humidity": Infinity, "pressure": 3})"), "non_finite",
         "data.humidity is Infinity"},
        {with_data(R"({"temperature": 1, "humidity": 2, "pressure": -Infinity})"), "non_finite",
         "data.pressure is -Infinity"},
        {with_data(R"({"temperature": 1e400, "humidity": 2, "pressure": 3})"), "non_finite",
         "overflows"},
        {with_data(R"({"temperature": 1, "humidity": 2, "pressure": 3, "extra": NaN})"),
         "non_finite", "NaN"},
        {std::string(70000, ' '), "too_large", "70000"},
        {R"({"sensor_id": "s1", "sensor_id": "s2", "timestamp": "2026-01-01T00:00:00Z", "data": {"temperature": 1, "humidity": 2, "pressure": 3}})",
         "duplicate_key", "\"sensor_id\" appears twice"},
        {R"({"sensor_id": "s1", "timestamp": 1, "timestamp": "2026-01-01T00:00:00Z", "data": {"temperature": 1, "humidity": 2, "pressure": 3}})",
         "duplicate_key", "\"timestamp\""},
        {with_data(R"({"temperature": 1, "humidity": 2, "pressure": 3, "temperature": 99})"),
         "duplicate_key", "\"data.temperature\" appears twice"},
        {with_data(R"({"temperature": 1, "humidity": 2, "pressure": 3, "location": {"lat": 1, "lat": 2}})"),
         "duplicate_key", "data.location.lat"},
        {with_data(R"({"temperature": 1, "humidity": 2, "pressure": 3, "location": {"lat": 1}, "location": {}})"),
         "duplicate_key", "data.location"},
    };
    for (const auto &c : cases) {
        Outcome outcome = decode_one(c.payload);
        EXPECT_EQ(outcome.reason, c.reason) << c.payload << " -> " << outcome.detail;
        EXPECT_NE(outcome.detail.find(c.detail_mentions), std::string::npos)
            << c.payload << " -> " << outcome.detail;
    }
}

TEST(Decoder, KeysTheDecoderDoesNotReadMayRepeat) {
    // Only keys whose meaning the decoder relies on are checked: a repeated unknown key is
    // carried along untouched, as before. The per-record bookkeeping resets between records.
    Decoder decoder(DecoderSchema::defaults());
    EXPECT_EQ(decode_one(with_data(R"({"temperature": 1, "humidity": 2, "pressure": 3, "x": 1, "x": 2})"), decoder).reason, "");
    EXPECT_EQ(decode_one(with_data(R"({"temperature": 1, "humidity": 2, "pressure": 3})"), decoder).reason, "");
    EXPECT_EQ(decode_one(with_data(R"({"temperature": 1, "humidity": 2, "pressure": 3})"), decoder).reason, "");
}

TEST(Decoder, MalformedJsonWinsOverAnEarlierTypeProblem) {
    // The type problem is seen first, but the record is not JSON at all.
    Outcome outcome =
        decode_one(with_data(R"({"temperature": "hot", "humidity": 2, "pressure": 3)"));
    EXPECT_EQ(outcome.reason, "not_json") << outcome.detail;
}

TEST(Decoder, KeyOrderPermutationsDecodeTheSame) {
    std::vector<std::string> top = {R"("sensor_id": "sensor_9")",
                                    R"("timestamp": "2026-11-26T23:34:43.123456")",
                                    R"("data": DATA)", R"("message_id": "m-1")"};
    std::vector<std::string> inner = {R"("temperature": 21.5)", R"("humidity": 40)",
                                      R"("pressure": 1001.25)", R"("battery_level": 3.5)",
                                      R"("location": {"lon": -121.25, "lat": 37.5})"};
    std::sort(top.begin(), top.end());
    std::vector<std::string> payloads;
    size_t inner_rotation = 0;
    do {
        std::string data = "{";
        for (size_t k = 0; k < inner.size(); ++k) {
            if (k) data += ", ";
            data += inner[(k + inner_rotation) % inner.size()];
        }
        data += "}";
        ++inner_rotation;
        std::string payload = "{";
        for (size_t k = 0; k < top.size(); ++k) {
            if (k) payload += ", ";
            std::string part = top[k];
            if (auto at = part.find("DATA"); at != std::string::npos) part.replace(at, 4, data);
            payload += part;
        }
        payloads.push_back(payload + "}");
    } while (std::next_permutation(top.begin(), top.end()));
    ASSERT_EQ(payloads.size(), 24u);
    // Reverse the inner keys too: every order must land in the same columns.
    std::reverse(inner.begin(), inner.end());
    std::string reversed = "{\"data\": {";
    for (size_t k = 0; k < inner.size(); ++k) reversed += (k ? ", " : "") + inner[k];
    payloads.push_back(reversed +
                       R"(}, "timestamp": "2026-11-26T23:34:43.123456", "sensor_id": "sensor_9"})");

    Decoder decoder(DecoderSchema::defaults());
    Input input(payloads);
    DecodedBatch batch;
    decoder.decode(input.records, batch);
    ASSERT_EQ(batch.size(), payloads.size()) << batch.rejections()[0].detail;
    const auto &v = batch.view();
    for (uint32_t i = 0; i < v.count; ++i) {
        SCOPED_TRACE(payloads[i]);
        EXPECT_EQ(str(v.sensor_ids[i]), "sensor_9");
        EXPECT_EQ(v.event_time_ms[i], kSeedTimeMs);
        EXPECT_EQ(v.fields[0][i], 21.5);
        EXPECT_EQ(v.fields[1][i], 40.0);
        EXPECT_EQ(v.fields[2][i], 1001.25);
        EXPECT_EQ(v.fields[3][i], 3.5);
        EXPECT_EQ(v.fields[4][i], 37.5);
        EXPECT_EQ(v.fields[5][i], -121.25);
    }
}

TEST(Decoder, OptionalFieldsAbsentAreNaN) {
    Decoder decoder(DecoderSchema::defaults());
    Input input({with_data(R"({"temperature": 1, "humidity": 2, "pressure": 3})"),
                 with_data(R"({"temperature": 1, "humidity": 2, "pressure": 3, "location": null})"),
                 with_data(R"({"temperature": 1, "humidity": 2, "pressure": 3, "location": {"lat": 5}, "battery_level": null})")});
    DecodedBatch batch;
    decoder.decode(input.records, batch);
    ASSERT_EQ(batch.size(), 3u);
    const auto &v = batch.view();
    for (uint32_t i = 0; i < 3; ++i) {
        EXPECT_EQ(v.fields[2][i], 3.0);
        EXPECT_TRUE(std::isnan(v.fields[3][i]));
        EXPECT_TRUE(std::isnan(v.fields[5][i]));
    }
    EXPECT_TRUE(std::isnan(v.fields[4][0]));
    EXPECT_EQ(v.fields[4][2], 5.0);
}

TEST(Decoder, CustomSchemaWithDeepPathsAndRequired) {
    DecoderSchema schema = DecoderSchema::from_json(
        Json::parse(R"({"fields": ["power.ac.volts", "power.ac.amps", "rssi"],
                        "required": ["power.ac.volts"], "max_record_bytes": 512})"));
    Decoder decoder(schema);
    Outcome ok = decode_one(with_data(R"({"rssi": -70, "power": {"dc": 1, "ac": {"amps": 2.5, "volts": 230}}})"),
                            decoder);
    EXPECT_EQ(ok.reason, "") << ok.detail;
    Outcome missing = decode_one(with_data(R"({"power": {"ac": {"amps": 2.5}}})"), decoder);
    EXPECT_EQ(missing.reason, "missing_field");
    EXPECT_NE(missing.detail.find("data.power.ac.volts"), std::string::npos);
    Outcome large = decode_one(with_data(R"({"power": {"ac": {"volts": 1}}, "pad": ")" +
                                         std::string(600, 'x') + "\"}"),
                               decoder);
    EXPECT_EQ(large.reason, "too_large");

    Input input({with_data(R"({"power": {"ac": {"volts": 230, "amps": 1}}, "rssi": -60})")});
    DecodedBatch batch;
    decoder.decode(input.records, batch);
    ASSERT_EQ(batch.size(), 1u);
    EXPECT_EQ(batch.view().fields[0][0], 230.0);
    EXPECT_EQ(batch.view().fields[1][0], 1.0);
    EXPECT_EQ(batch.view().fields[2][0], -60.0);
}

TEST(Decoder, LongAndEscapedKeysMatchExactly) {
    const std::string long_key(40, 'k');  // longer than the 16-byte fast comparison
    DecoderSchema schema = DecoderSchema::from_json(
        Json::parse(R"({"fields": ["sensors.)" + long_key + R"(", "sensors.)" + long_key +
                    R"(x", "t"], "required": []})"));
    Decoder decoder(schema);
    Input input({with_data(R"({"sensors": {")" + long_key + R"(": 1, ")" + long_key + R"(x": 2}})"),
                 // Escaped keys ("\u0074" is "t") and a near-miss prefix of the long key.
                 with_data(R"({"\u0074": 3, "sensors": {")" + long_key.substr(1) + R"(": 9}})"),
                 // Short documents: the matcher must not be fooled by bytes after the key.
                 R"({"sensor_id":"a","timestamp":0,"data":{"t":4}})"});
    DecodedBatch batch;
    decoder.decode(input.records, batch);
    ASSERT_EQ(batch.size(), 3u);
    const auto &v = batch.view();
    EXPECT_EQ(v.fields[0][0], 1.0);
    EXPECT_EQ(v.fields[1][0], 2.0);
    EXPECT_TRUE(std::isnan(v.fields[2][0]));
    EXPECT_TRUE(std::isnan(v.fields[0][1]));
    EXPECT_EQ(v.fields[2][1], 3.0);
    EXPECT_EQ(v.fields[2][2], 4.0);
}

TEST(Decoder, RequiredDefaultsFollowCustomFields) {
    DecoderSchema schema =
        DecoderSchema::from_json(Json::parse(R"({"fields": ["temperature", "rpm"]})"));
    ASSERT_EQ(schema.fields.size(), 2u);
    EXPECT_TRUE(schema.required[0]);   // temperature stays required
    EXPECT_FALSE(schema.required[1]);  // rpm is optional
    DecoderSchema none = DecoderSchema::from_json(Json::parse(R"({"required": []})"));
    EXPECT_EQ(std::count(none.required.begin(), none.required.end(), true), 0);
    DecoderSchema defaults = DecoderSchema::from_json(Json::object());
    EXPECT_EQ(defaults.fields, DecoderSchema::defaults().fields);
    EXPECT_EQ(defaults.required, DecoderSchema::defaults().required);
    EXPECT_EQ(defaults.max_record_bytes, 65536u);
}

TEST(Decoder, SchemaErrorsNameTheKey) {
    auto error_of = [](const char *json) -> std::string {
        try {
            DecoderSchema::from_json(Json::parse(json));
        } catch (const Error &e) {
            EXPECT_EQ(e.code(), IOTS_ERR_CONFIG);
            return e.what();
        }
        return "(accepted)";
    };
    EXPECT_NE(error_of(R"({"feilds": []})").find("'feilds' is not a known key"), std::string::npos);
    EXPECT_NE(error_of(R"({"fields": "temperature"})").find("'fields'"), std::string::npos);
    EXPECT_NE(error_of(R"({"fields": []})").find("'fields'"), std::string::npos);
    EXPECT_NE(error_of(R"({"fields": [3]})").find("'fields'"), std::string::npos);
    EXPECT_NE(error_of(R"({"fields": ["a..b"]})").find("a..b"), std::string::npos);
    EXPECT_NE(error_of(R"({"fields": [".a"]})").find(".a"), std::string::npos);
    EXPECT_NE(error_of(R"({"fields": ["a\\b"]})").find("invalid path"), std::string::npos);
    EXPECT_NE(error_of(R"({"fields": ["a\"b"]})").find("invalid path"), std::string::npos);
    EXPECT_NE(error_of(R"({"fields": ["a", "a"]})").find("twice"), std::string::npos);
    EXPECT_NE(error_of(R"({"fields": ["loc", "loc.lat"]})").find("loc.lat"), std::string::npos);
    EXPECT_NE(error_of(R"({"required": ["rpm"]})").find("rpm"), std::string::npos);
    EXPECT_NE(error_of(R"({"required": "temperature"})").find("'required'"), std::string::npos);
    EXPECT_NE(error_of(R"({"max_record_bytes": 10})").find("'max_record_bytes'"), std::string::npos);
}

TEST(Decoder, HandBuiltSchemasAreCheckedToo) {
    DecoderSchema mismatched = DecoderSchema::defaults();
    mismatched.required.pop_back();
    EXPECT_THROW(Decoder{mismatched}, Error);
    DecoderSchema bad_path = DecoderSchema::defaults();
    bad_path.fields[0] = "a..b";
    EXPECT_THROW(Decoder{bad_path}, Error);
}

TEST(Decoder, EscapedSensorIdsAreUnescapedAndOwnedByTheBatch) {
    Decoder decoder(DecoderSchema::defaults());
    const std::string data = R"({"temperature": 1, "humidity": 2, "pressure": 3})";
    Input input({R"({"sensor_id": "quote\"d", "timestamp": 0, "data": )" + data + "}",
                 R"({"sensor_id": "caf\u00e9 \ud83d\ude00", "timestamp": 0, "data": )" + data + "}",
                 R"({"sensor_id": "plain", "timestamp": 0, "data": )" + data + "}",
                 R"({"sensor_id": "back\\slash\/", "timestamp": 0, "data": )" + data + "}",
                 R"({"sensor_id": "bad \ud800 surrogate", "timestamp": 0, "data": )" + data + "}",
                 R"({"sens\u006fr_id": "escaped_key", "timestamp": 0, "data": )" + data + "}"});
    DecodedBatch batch;
    decoder.decode(input.records, batch);
    ASSERT_EQ(batch.size(), 5u);
    ASSERT_EQ(batch.rejections().size(), 1u);
    EXPECT_EQ(batch.rejections()[0].input_index, 4u);
    EXPECT_EQ(batch.rejections()[0].reason, "not_json");
    const auto &v = batch.view();
    EXPECT_EQ(str(v.sensor_ids[0]), "quote\"d");
    EXPECT_EQ(str(v.sensor_ids[1]), "caf\xc3\xa9 \xf0\x9f\x98\x80");
    EXPECT_EQ(str(v.sensor_ids[2]), "plain");
    EXPECT_EQ(str(v.sensor_ids[3]), "back\\slash/");
    EXPECT_EQ(str(v.sensor_ids[4]), "escaped_key");
    EXPECT_EQ(batch.input_indices()[4], 5u);
    EXPECT_EQ(v.offsets[4], 1005);
}

TEST(Decoder, EpochMillisecondTimestamps) {
    const std::string data = R"({"temperature": 1, "humidity": 2, "pressure": 3})";
    Decoder decoder(DecoderSchema::defaults());
    Input input({with_data(data, "1795736083123"), with_data(data, "0"), with_data(data, "-1"),
                 with_data(data, "253402300800000"), with_data(data, "99999999999999999999")});
    DecodedBatch batch;
    decoder.decode(input.records, batch);
    ASSERT_EQ(batch.size(), 3u);
    EXPECT_EQ(batch.view().event_time_ms[0], kSeedTimeMs);
    EXPECT_EQ(batch.view().event_time_ms[1], 0);
    EXPECT_EQ(batch.view().event_time_ms[2], -1);
    ASSERT_EQ(batch.rejections().size(), 2u);
    EXPECT_EQ(batch.rejections()[0].reason, "bad_timestamp");
    EXPECT_EQ(batch.rejections()[1].reason, "bad_timestamp");
}

TEST(Decoder, ColumnsAreValidWhenEmptyAndReusedAcrossBatches) {
    DecodedBatch batch;
    const auto check_pointers = [&batch] {
        const auto &v = batch.view();
        EXPECT_EQ(v.struct_size, sizeof(iots_batch_view_t));
        EXPECT_NE(v.field_names, nullptr);
        EXPECT_NE(v.fields, nullptr);
        EXPECT_NE(v.sensor_ids, nullptr);
        EXPECT_NE(v.event_time_ms, nullptr);
        EXPECT_NE(v.streams, nullptr);
        EXPECT_NE(v.offsets, nullptr);
        EXPECT_NE(v.payloads, nullptr);
        EXPECT_NE(v.anomaly_bits, nullptr);
        for (uint32_t f = 0; f < v.field_count; ++f) EXPECT_NE(v.fields[f], nullptr);
    };
    check_pointers();
    EXPECT_EQ(batch.size(), 0u);

    Decoder decoder(DecoderSchema::defaults());
    std::vector<std::string> texts;
    for (int i = 0; i < 500; ++i) {
        std::string id = "s" + std::to_string(i);
        texts.push_back(i % 10 == 3 ? std::string("not json")
                                    : R"({"sensor_id": ")" + id +
                                          R"(", "timestamp": )" + std::to_string(i) +
                                          R"(, "data": {"temperature": )" + std::to_string(i) +
                                          R"(, "humidity": 1, "pressure": 2}})");
    }
    Input big(texts);
    decoder.decode(big.records, batch);
    check_pointers();
    ASSERT_EQ(batch.size(), 450u);
    ASSERT_EQ(batch.rejections().size(), 50u);
    EXPECT_EQ(batch.input_count(), 500u);
    for (uint32_t row = 0; row < batch.size(); ++row) {
        uint32_t index = batch.input_indices()[row];
        EXPECT_NE(index % 10, 3u);
        EXPECT_EQ(batch.view().offsets[row], 1000 + static_cast<int64_t>(index));
        EXPECT_EQ(batch.view().fields[0][row], static_cast<double>(index));
        EXPECT_EQ(str(batch.view().sensor_ids[row]), "s" + std::to_string(index));
    }
    // The host marks anomalies; the next decode starts from zero again.
    for (uint32_t row = 0; row < batch.size(); ++row) batch.anomaly_bits()[row] = ~uint64_t{0};
    const double *temperature_column = batch.view().fields[0];

    Input small({kSeedReading, "{}"});
    decoder.decode(small.records, batch);
    check_pointers();
    ASSERT_EQ(batch.size(), 1u);
    EXPECT_EQ(batch.rejections().size(), 1u);
    EXPECT_EQ(batch.input_count(), 2u);
    EXPECT_EQ(batch.view().anomaly_bits[0], 0u);
    EXPECT_EQ(batch.view().fields[0], temperature_column);  // capacity kept, no reallocation
    EXPECT_EQ(str(batch.view().sensor_ids[0]), "sensor_3_17");

    batch.clear();
    check_pointers();
    EXPECT_EQ(batch.size(), 0u);
    EXPECT_TRUE(batch.rejections().empty());
}

TEST(Decoder, AcceptedRecordsMayBeAnyValidJsonAroundTheEnvelope) {
    // Unknown keys with nested values, whitespace everywhere, integers for doubles.
    Outcome outcome = decode_one(
        " \n{ \"extra\" : [1, {\"a\": [true, false, null, \"x\\n\"]}, -0.5e-3] ,\t"
        "\"sensor_id\":\"s\",\"timestamp\":\"2026-01-01 00:00:00\",\"data\":{\"temperature\":-0,"
        "\"humidity\":1E2,\"pressure\":3, \"battery_level\": 1e-400}}\r\n");
    EXPECT_EQ(outcome.reason, "") << outcome.detail;
}

TEST(Decoder, DeeplyNestedUnknownValuesAreRefusedNotRecursedForever) {
    std::string deep = with_data(R"({"temperature": 1, "humidity": 2, "pressure": 3})");
    deep.insert(1, "\"deep\": " + std::string(20000, '[') + std::string(20000, ']') + ", ");
    Outcome outcome = decode_one(deep);
    EXPECT_EQ(outcome.reason, "not_json");
}

// Hostile-input bounds (issue 12): stages keep state per sensor, so an id's length is capped
// (default 256 bytes, after unescaping) and a longer one is refused as sensor_id_too_long.
TEST(Decoder, SensorIdsOverTheCapAreRefusedAsTooLong) {
    auto reading = [](const std::string &id) {
        return R"({"sensor_id": ")" + id + R"(", "timestamp": 0, "data": )"
               R"({"temperature": 1, "humidity": 2, "pressure": 3}})";
    };
    EXPECT_EQ(DecoderSchema::defaults().max_sensor_id_bytes, 256u);
    EXPECT_EQ(decode_one(reading(std::string(256, 'a'))).reason, "");
    Outcome over = decode_one(reading(std::string(257, 'a')));
    EXPECT_EQ(over.reason, "sensor_id_too_long");
    EXPECT_NE(over.detail.find("257 bytes"), std::string::npos) << over.detail;
    EXPECT_NE(over.detail.find("max_sensor_id_bytes (256)"), std::string::npos) << over.detail;
    // Counted after unescaping: 128 escapes of 6 bytes are 128 bytes; 257 are over.
    std::string escaped;
    for (int i = 0; i < 128; ++i) escaped += "\\u0041";
    EXPECT_EQ(decode_one(reading(escaped)).reason, "");
    EXPECT_EQ(decode_one(reading(escaped + escaped + "\\u0041")).reason, "sensor_id_too_long");
    // Multi-byte UTF-8 counts in bytes: 86 three-byte characters are 258 bytes.
    std::string wide;
    for (int i = 0; i < 86; ++i) wide += "\xE2\x82\xAC";
    EXPECT_EQ(decode_one(reading(wide)).reason, "sensor_id_too_long");
    // Malformed JSON later in the record still wins, as for every other problem.
    EXPECT_EQ(decode_one(R"({"sensor_id": ")" + std::string(300, 'a') + R"(", "timestamp": 0, "data": {)").reason,
              "not_json");

    // Configurable, and checked like every other decoder key.
    Decoder small(DecoderSchema::from_json(Json::parse(R"({"max_sensor_id_bytes": 4})")));
    EXPECT_EQ(decode_one(reading("abcd"), small).reason, "");
    EXPECT_EQ(decode_one(reading("abcde"), small).reason, "sensor_id_too_long");
    for (const char *bad : {R"({"max_sensor_id_bytes": 0})", R"({"max_sensor_id_bytes": 1.5})",
                            R"({"max_sensor_id_bytes": "256"})"})
        EXPECT_THROW(DecoderSchema::from_json(Json::parse(bad)), Error) << bad;
    DecoderSchema zero = DecoderSchema::defaults();
    zero.max_sensor_id_bytes = 0;
    EXPECT_THROW(Decoder{zero}, Error);
}

TEST(Decoder, RefusedRowsMoveToTheRejectionsAndTheRestKeepTheirOrder) {
    Decoder decoder(DecoderSchema::defaults());
    std::vector<std::string> texts;
    for (int i = 0; i < 6; ++i)
        texts.push_back(R"({"sensor_id": "s)" + std::to_string(i) + R"(", "timestamp": )" + std::to_string(i) +
                        R"(, "data": {"temperature": )" + std::to_string(i) + R"(, "humidity": 2, "pressure": 3}})");
    texts[2] = "not json";
    texts[4] = R"({"sensor_id": "s\u0034", "timestamp": 4, "data": {"temperature": 4, "humidity": 2, "pressure": 3}})";
    Input input(texts);
    DecodedBatch batch;
    decoder.decode(input.records, batch);
    ASSERT_EQ(batch.size(), 5u);  // rows: s0 s1 s3 s4 s5
    std::vector<DecodedBatch::RowRefusal> refusals;
    refusals.push_back({1, "too_many_sensors", "s1"});
    refusals.push_back({2, "too_many_sensors", "s3"});
    batch.refuse_rows(std::move(refusals));
    ASSERT_EQ(batch.size(), 3u);
    EXPECT_EQ(batch.input_count(), 6u);
    const auto &v = batch.view();
    const char *ids[] = {"s0", "s4", "s5"};
    const uint32_t inputs[] = {0, 4, 5};
    for (uint32_t row = 0; row < 3; ++row) {
        EXPECT_EQ(str(v.sensor_ids[row]), ids[row]);
        EXPECT_EQ(batch.input_indices()[row], inputs[row]);
        EXPECT_EQ(v.offsets[row], 1000 + inputs[row]);
        EXPECT_EQ(v.fields[0][row], static_cast<double>(inputs[row]));
        EXPECT_EQ(v.event_time_ms[row], static_cast<int64_t>(inputs[row]));
        EXPECT_EQ(v.payloads[row].data, input.payloads[inputs[row]].data());
    }
    ASSERT_EQ(batch.rejections().size(), 3u);
    EXPECT_EQ(batch.rejections()[0].reason, "not_json");
    EXPECT_EQ(batch.rejections()[1].input_index, 1u);
    EXPECT_EQ(batch.rejections()[1].reason, "too_many_sensors");
    EXPECT_EQ(batch.rejections()[2].input_index, 3u);
    EXPECT_EQ(batch.rejections()[2].detail, "s3");
    // Rows must be ascending rows of the batch; a bad list changes nothing.
    std::vector<DecodedBatch::RowRefusal> bad;
    bad.push_back({2, "x", ""});
    bad.push_back({1, "x", ""});
    EXPECT_THROW(batch.refuse_rows(std::move(bad)), Error);
    std::vector<DecodedBatch::RowRefusal> outside;
    outside.push_back({3, "x", ""});
    EXPECT_THROW(batch.refuse_rows(std::move(outside)), Error);
    EXPECT_EQ(batch.size(), 3u);
}
