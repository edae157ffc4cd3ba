// White-box tests of the reading envelope: JSON shape, escaping, timestamp and UUIDv4 format.
#include <chrono>
#include <regex>
#include <unordered_set>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/error.hpp"
#include "kafka/envelope.hpp"

using namespace iotstream;
using namespace std::chrono;

TEST(Envelope, TimestampIsIso8601UtcWithMicroseconds) {
    auto t = sys_days{year{2026} / 11 / 26} + hours{23} + minutes{34} + seconds{43} + microseconds{123456};
    char out[kIso8601Length];
    ASSERT_EQ(format_iso8601_utc(t, out), kIso8601Length);
    EXPECT_EQ(std::string(out, kIso8601Length), "2026-11-26T23:34:43.123456Z");
    // The per-second cache must not leak into the next second or a previous one.
    char next[kIso8601Length];
    format_iso8601_utc(t + seconds{1} + microseconds{1}, next);
    EXPECT_EQ(std::string(next, kIso8601Length), "2026-11-26T23:34:44.123457Z");
    format_iso8601_utc(sys_days{year{1999} / 12 / 31} + hours{23} + minutes{59} + seconds{59}, next);
    EXPECT_EQ(std::string(next, kIso8601Length), "1999-12-31T23:59:59.000000Z");
}

TEST(Envelope, Uuid4HasVersionAndVariantBitsAndIsUnique) {
    const std::regex shape("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}");
    std::unordered_set<std::string> seen;
    int variant_counts[4] = {0, 0, 0, 0};
    for (int i = 0; i < 100000; ++i) {
        auto id = uuid4();
        std::string text(id.data(), id.size());
        if (i < 1000) {
            ASSERT_TRUE(std::regex_match(text, shape)) << text;
        }
        ASSERT_TRUE(seen.insert(text).second) << "duplicate " << text;
        variant_counts[std::string("89ab").find(text[19])]++;
    }
    for (int count : variant_counts) EXPECT_GT(count, 20000);  // the two free variant bits are random
}

TEST(Envelope, BuildsTheSeedsEnvelope) {
    EnvelopeWriter writer;
    auto t = sys_days{year{2026} / 1 / 2} + hours{3} + minutes{4} + seconds{5} + microseconds{6};
    std::string text(writer.build("temp-\"42\"\\\n\x01", R"({"temperature": 21.5, "unit": "C"})", t));
    auto doc = nlohmann::json::parse(text);
    EXPECT_EQ(doc.size(), 4u);
    EXPECT_EQ(doc["sensor_id"], "temp-\"42\"\\\n\x01");
    EXPECT_EQ(doc["timestamp"], "2026-01-02T03:04:05.000006Z");
    EXPECT_EQ(doc["data"]["temperature"], 21.5);
    EXPECT_EQ(doc["data"]["unit"], "C");
    EXPECT_EQ(doc["message_id"].get<std::string>().size(), 36u);
    // The buffer is reused: a shorter envelope must not carry leftovers of the longer one.
    std::string second(writer.build("s", "{}", t));
    EXPECT_EQ(nlohmann::json::parse(second)["sensor_id"], "s");
    EXPECT_NE(nlohmann::json::parse(second)["message_id"], doc["message_id"]);
}

TEST(Envelope, DataMustBeOneJsonObject) {
    EXPECT_NO_THROW(require_json_object(R"({"a": [1, {"b": null}]})", "data_json"));
    EXPECT_NO_THROW(require_json_object(" {} ", "data_json"));
    auto code_and_text = [](std::string_view input) -> std::pair<iots_err_t, std::string> {
        try {
            require_json_object(input, "data_json");
        } catch (const Error &e) {
            return {e.code(), e.what()};
        }
        return {IOTS_OK, ""};
    };
    for (std::string_view bad : {"[1,2]", "42", "\"text\"", "null", "true"}) {
        auto [code, text] = code_and_text(bad);
        EXPECT_EQ(code, IOTS_ERR_INVALID_ARG) << bad;
        EXPECT_NE(text.find("data_json must be a JSON object"), std::string::npos) << text;
    }
    for (std::string_view bad : {"", "{", "{\"a\":}", "{} {}", "{\"a\":1}x"}) {
        auto [code, text] = code_and_text(bad);
        EXPECT_EQ(code, IOTS_ERR_INVALID_ARG) << bad;
        EXPECT_NE(text.find("data_json is not valid JSON"), std::string::npos) << text;
    }
}

TEST(Envelope, SensorIdMustBeUtf8) {
    EXPECT_NO_THROW(require_utf8("capteur-température", "sensor_id"));
    EXPECT_THROW(require_utf8("bad\xff", "sensor_id"), Error);
}
