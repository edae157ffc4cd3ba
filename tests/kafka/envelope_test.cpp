// White-box tests of the reading envelope: JSON shape, escaping (the core's one escaper,
// common/json_escape), timestamp ("now" included, decode/timestamp) and UUIDv4 format.
#include <chrono>
#include <regex>
#include <thread>
#include <unordered_set>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/error.hpp"
#include "common/json_escape.hpp"
#include "decode/timestamp.hpp"
#include "kafka/envelope.hpp"

using namespace iotstream;
using namespace std::chrono;

// "Now" with microseconds, as the seed wrote it, read back within the system clock's bounds
// around each call: sampled across more than a second, so the per-second cache must follow.
TEST(Envelope, NowIsIso8601UtcWithMicrosecondsAcrossSeconds) {
    auto ms_now = [] { return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count(); };
    const auto until = steady_clock::now() + milliseconds(1200);
    int seconds_seen = 0;
    int64_t last_second = -1;
    while (steady_clock::now() < until) {
        const int64_t before = ms_now();
        char out[kIso8601NowLength];
        ASSERT_EQ(format_now_iso8601(out), kIso8601NowLength);
        const int64_t after = ms_now();
        const std::string text(out, kIso8601NowLength);
        ASSERT_TRUE(std::regex_match(text, std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z)"))) << text;
        auto parsed = parse_iso8601_ms(text);
        ASSERT_EQ(parsed.error, nullptr) << text;
        ASSERT_GE(parsed.epoch_ms, before) << text;
        ASSERT_LE(parsed.epoch_ms, after) << text;
        if (parsed.epoch_ms / 1000 != last_second) ++seconds_seen;
        last_second = parsed.epoch_ms / 1000;
        std::this_thread::sleep_for(milliseconds(3));
    }
    EXPECT_GE(seconds_seen, 2);
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
    const int64_t t = 1'767'323'045'006;  // 2026-01-02T03:04:05.006Z (Python's datetime)
    std::string text(writer.build_at("temp-\"42\"\\\n\x01", R"({"temperature": 21.5, "unit": "C"})", t));
    auto doc = nlohmann::json::parse(text);
    EXPECT_EQ(doc.size(), 4u);
    EXPECT_EQ(doc["sensor_id"], "temp-\"42\"\\\n\x01");
    EXPECT_EQ(doc["timestamp"], "2026-01-02T03:04:05.006000Z");
    EXPECT_EQ(doc["data"]["temperature"], 21.5);
    EXPECT_EQ(doc["data"]["unit"], "C");
    EXPECT_EQ(doc["message_id"].get<std::string>().size(), 36u);
    // The buffer is reused: a shorter envelope must not carry leftovers of the longer one.
    std::string second(writer.build("s", "{}"));
    EXPECT_EQ(nlohmann::json::parse(second)["sensor_id"], "s");
    EXPECT_EQ(nlohmann::json::parse(second)["timestamp"].get<std::string>().size(), kIso8601NowLength);
    EXPECT_NE(nlohmann::json::parse(second)["message_id"], doc["message_id"]);
}

// The documented range's ends are written as they are (no clock overflow: year 9999 once came
// out as 1816-03-30) and read back by the decoder's parser to the same millisecond.
TEST(Envelope, TimestampsAtTheEndsOfTheRange) {
    EnvelopeWriter writer;
    const std::pair<int64_t, const char *> ends[] = {{kMinTimestampMs, "0000-01-01T00:00:00.000000Z"},
                                                     {kMaxTimestampMs, "9999-12-31T23:59:59.999000Z"}};
    for (auto [ms, text] : ends) {
        auto doc = nlohmann::json::parse(writer.build_at("s", "{}", ms));
        EXPECT_EQ(doc["timestamp"], text);
        EXPECT_EQ(parse_iso8601_ms(doc["timestamp"].get<std::string>()).epoch_ms, ms);
    }
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

std::string escaped(std::string_view text) {
    std::string out = "<";  // appends, never replaces
    append_json_escaped(out, text);
    return out;
}

// Byte for byte what every JSON text the core writes holds for a string (envelopes, ingested
// readings, alert records): Python's json.dumps(ensure_ascii=False) spelling.
TEST(JsonEscape, PinsTheSpellingOfEveryEscapedByte) {
    EXPECT_EQ(escaped(""), "<");
    EXPECT_EQ(escaped("plain text"), "<plain text");
    EXPECT_EQ(escaped("say \"hi\" \\ bye"), "<say \\\"hi\\\" \\\\ bye");
    EXPECT_EQ(escaped("\b\f\n\r\t"), "<\\b\\f\\n\\r\\t");
    EXPECT_EQ(escaped(std::string_view("\0\x01\x0b\x0e\x1a\x1f", 6)), "<\\u0000\\u0001\\u000b\\u000e\\u001a\\u001f");
    // DEL, '/', UTF-8 and invalid UTF-8 pass through unchanged (require_utf8 guards the callers).
    EXPECT_EQ(escaped("\x7f/caf\xc3\xa9 \xe2\x82\xac"), "<\x7f/caf\xc3\xa9 \xe2\x82\xac");
    EXPECT_EQ(escaped("bad\xff\xc3"), "<bad\xff\xc3");
    // Every byte below 0x20, each read back by a JSON parser as itself.
    for (int c = 0; c < 0x20; ++c) {
        const std::string one(1, static_cast<char>(c));
        std::string quoted = "\"";
        append_json_escaped(quoted, one);
        quoted += '"';
        EXPECT_EQ(nlohmann::json::parse(quoted).get<std::string>(), one) << c;
        // nlohmann's serializer (the host's and the bindings' escaper) writes the same bytes.
        EXPECT_EQ(quoted, nlohmann::json(one).dump()) << c;
    }
}
