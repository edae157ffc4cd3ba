// The foundation of the C API: versions, errors, logging, configuration errors, embedded broker.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <mutex>
#include <string>
#include <vector>

#include "iotstream/iotstream.h"

namespace {

TEST(Version, NumberAndStringAgree) {
    int v = iots_version();
    std::string expected = std::to_string((v >> 24) & 0xff) + "." + std::to_string((v >> 16) & 0xff) +
                           "." + std::to_string((v >> 8) & 0xff);
    EXPECT_EQ(expected, iots_version_str());
    EXPECT_EQ(v, IOTS_VERSION);
}

TEST(Errors, EveryCodeHasANameAndDescription) {
    for (int code = 0; code > IOTS_ERR__END; --code) {
        auto err = static_cast<iots_err_t>(code);
        std::string name = iots_err_name(err);
        EXPECT_EQ(name.rfind("IOTS_", 0), 0u) << code;
        EXPECT_NE(std::string(iots_err_str(err)), "unknown error code") << code;
    }
    EXPECT_STREQ(iots_err_name(IOTS_ERR_QUEUE_FULL), "IOTS_ERR_QUEUE_FULL");
    EXPECT_STREQ(iots_err_str(static_cast<iots_err_t>(-15)), "unknown error code");
    EXPECT_STREQ(iots_err_str(static_cast<iots_err_t>(5)), "unknown error code");
}

struct CapturedLog {
    std::mutex mutex;
    std::vector<std::pair<std::string, std::string>> lines;  // component, message
    std::vector<iots_log_level_t> levels;
};

void capture(void *opaque, iots_log_level_t level, const char *component, const char *message) {
    auto *log = static_cast<CapturedLog *>(opaque);
    std::lock_guard<std::mutex> lock(log->mutex);
    log->lines.emplace_back(component, message);
    log->levels.push_back(level);
}

TEST(Logging, CallbackReceivesLinesAndLevelFilters) {
    CapturedLog log;
    iots_log_set_callback(capture, &log);
    ASSERT_EQ(iots_log_set_level(IOTS_LOG_INFO), IOTS_OK);
    EXPECT_EQ(iots_log_get_level(), IOTS_LOG_INFO);

    iots_broker_t *broker = nullptr;
    char errstr[256];
    ASSERT_EQ(iots_broker_new("{\"topics\": []}", &broker, errstr, sizeof errstr), IOTS_OK) << errstr;
    iots_broker_destroy(broker);
    {
        std::lock_guard<std::mutex> lock(log.mutex);
        ASSERT_FALSE(log.lines.empty());
        EXPECT_EQ(log.lines.back().first, "broker");
        EXPECT_NE(log.lines.back().second.find("embedded broker up"), std::string::npos);
        EXPECT_EQ(log.levels.back(), IOTS_LOG_INFO);
        log.lines.clear();
    }

    ASSERT_EQ(iots_log_set_level(IOTS_LOG_WARN), IOTS_OK);
    ASSERT_EQ(iots_broker_new("{\"topics\": []}", &broker, errstr, sizeof errstr), IOTS_OK) << errstr;
    iots_broker_destroy(broker);
    {
        std::lock_guard<std::mutex> lock(log.mutex);
        EXPECT_TRUE(log.lines.empty()) << "info lines must be filtered at WARN";
    }
    EXPECT_EQ(iots_log_set_level(static_cast<iots_log_level_t>(7)), IOTS_ERR_INVALID_ARG);
    iots_log_set_callback(nullptr, nullptr);
    iots_log_set_level(IOTS_LOG_INFO);
}

TEST(Config, ErrorsNameTheProblem) {
    iots_broker_t *broker = nullptr;
    char errstr[256];
    EXPECT_EQ(iots_broker_new("{not json", &broker, errstr, sizeof errstr), IOTS_ERR_CONFIG);
    EXPECT_NE(std::string(errstr).find("not valid JSON"), std::string::npos) << errstr;
    EXPECT_EQ(broker, nullptr);

    EXPECT_EQ(iots_broker_new("[1,2]", &broker, errstr, sizeof errstr), IOTS_ERR_CONFIG);
    EXPECT_NE(std::string(errstr).find("must be a JSON object"), std::string::npos) << errstr;

    EXPECT_EQ(iots_broker_new("{\"brokers\": \"two\"}", &broker, errstr, sizeof errstr), IOTS_ERR_CONFIG);
    EXPECT_NE(std::string(errstr).find("'brokers' must be an integer"), std::string::npos) << errstr;

    EXPECT_EQ(iots_broker_new("{\"brokers\": 99}", &broker, errstr, sizeof errstr), IOTS_ERR_CONFIG);
    EXPECT_NE(std::string(errstr).find("[1, 16]"), std::string::npos) << errstr;

    EXPECT_EQ(iots_broker_new("{\"topics\": [{\"name\": \"a\", \"partitons\": 2}]}", &broker, errstr,
                              sizeof errstr),
              IOTS_ERR_CONFIG);
    EXPECT_NE(std::string(errstr).find("'partitons' is not a known key"), std::string::npos) << errstr;

    // A tiny caller buffer is truncated, never overrun.
    char tiny[8];
    std::memset(tiny, 'x', sizeof tiny);
    EXPECT_EQ(iots_broker_new("{\"nope\": 1}", &broker, tiny, sizeof tiny), IOTS_ERR_CONFIG);
    EXPECT_EQ(std::strlen(tiny), sizeof tiny - 1);
    EXPECT_EQ(iots_broker_new("{\"nope\": 1}", &broker, nullptr, 0), IOTS_ERR_CONFIG);
}

TEST(Broker, NullArgumentsAreRefusedNotCrashes) {
    char errstr[128];
    EXPECT_EQ(iots_broker_new("{}", nullptr, errstr, sizeof errstr), IOTS_ERR_INVALID_ARG);
    EXPECT_NE(std::string(errstr).find("brokerp"), std::string::npos);
    EXPECT_EQ(iots_broker_set_down(nullptr, 1, 1), IOTS_ERR_INVALID_ARG);
    EXPECT_EQ(iots_broker_create_topic(nullptr, "t", 1, errstr, sizeof errstr), IOTS_ERR_INVALID_ARG);
    EXPECT_STREQ(iots_broker_bootstrap(nullptr), "");
    iots_broker_destroy(nullptr);
}

TEST(Broker, DefaultTopicsAndFaultInjection) {
    iots_broker_t *broker = nullptr;
    char errstr[256];
    ASSERT_EQ(iots_broker_new("{\"brokers\": 3}", &broker, errstr, sizeof errstr), IOTS_OK) << errstr;
    EXPECT_EQ(std::string(iots_broker_bootstrap(broker)).rfind("127.0.0.1:", 0), 0u);
    // The default topics exist already with 8 partitions: creating again with another count fails.
    EXPECT_NE(iots_broker_create_topic(broker, "iot-readings", 3, errstr, sizeof errstr), IOTS_OK);
    EXPECT_EQ(iots_broker_create_topic(broker, "extra", 3, errstr, sizeof errstr), IOTS_OK) << errstr;
    EXPECT_EQ(iots_broker_create_topic(broker, "extra2", 0, errstr, sizeof errstr), IOTS_ERR_INVALID_ARG);
    EXPECT_EQ(iots_broker_set_down(broker, 3, 1), IOTS_OK);
    EXPECT_EQ(iots_broker_set_down(broker, 3, 0), IOTS_OK);
    EXPECT_EQ(iots_broker_set_down(broker, 0, 1), IOTS_ERR_INVALID_ARG);
    EXPECT_EQ(iots_broker_set_rtt(broker, 1, 5), IOTS_OK);
    EXPECT_EQ(iots_broker_push_request_errors(broker, 0, 2, 7), IOTS_OK);
    EXPECT_EQ(iots_broker_push_request_errors(broker, 0, 0, 7), IOTS_ERR_INVALID_ARG);
    EXPECT_EQ(iots_broker_set_partition_leader(broker, "iot-readings", 0, 2), IOTS_OK);
    EXPECT_EQ(iots_broker_set_partition_leader(broker, "iot-readings", 0, -1), IOTS_OK);
    EXPECT_EQ(iots_broker_set_partition_leader(broker, "iot-readings", 0, 4), IOTS_ERR_INVALID_ARG);
    EXPECT_EQ(iots_broker_set_partition_leader(broker, nullptr, 0, 1), IOTS_ERR_INVALID_ARG);
    EXPECT_EQ(iots_broker_set_coordinator(broker, "group", "g", 2), IOTS_OK);
    EXPECT_EQ(iots_broker_set_coordinator(broker, "transaction", "t", 3), IOTS_OK);
    EXPECT_EQ(iots_broker_set_coordinator(broker, "cluster", "g", 1), IOTS_ERR_INVALID_ARG);
    EXPECT_EQ(iots_broker_set_coordinator(broker, "group", "g", 0), IOTS_ERR_INVALID_ARG);
    iots_broker_destroy(broker);
}

TEST(ApiTable, ServesThisHeadersAbi) {
    char errstr[256];
    const iots_api_t *api = iots_get_api(IOTS_ABI_MAJOR, IOTS_ABI_MINOR, errstr, sizeof errstr);
    ASSERT_NE(api, nullptr) << errstr;
    EXPECT_EQ(api->struct_size, sizeof(iots_api_t));
    EXPECT_EQ(api->abi_minor, IOTS_ABI_MINOR);
    EXPECT_EQ(api->version, &iots_version);
    EXPECT_EQ(api->broker_new, &iots_broker_new);
    EXPECT_EQ(api->defaults_json, &iots_defaults_json);  // ABI 1.5
    EXPECT_EQ(api->parse_int, &iots_parse_int);  // ABI 1.7, the last entry
    EXPECT_EQ(iots_get_api(IOTS_ABI_MAJOR - 1, 0, errstr, sizeof errstr), nullptr);
    EXPECT_NE(std::string(errstr).find("ABI major"), std::string::npos);
    EXPECT_EQ(iots_get_api(IOTS_ABI_MAJOR, -1, errstr, sizeof errstr), nullptr);
}

// iots_parse_int: the library's one integer rule (common/checked_int.hpp), as hosts' flags
// get it. A refusal leaves *out alone and says why, for the caller to prefix with a name.
struct Parsed {
    std::optional<int64_t> value;
    std::string why;
};
Parsed parse(const char *text, int64_t min = std::numeric_limits<int64_t>::min(),
             int64_t max = std::numeric_limits<int64_t>::max()) {
    int64_t out = 42;
    char errstr[256] = "untouched";
    iots_err_t err = iots_parse_int(text, min, max, &out, errstr, sizeof errstr);
    if (err == IOTS_OK) {
        EXPECT_STREQ(errstr, "") << text;
        return {out, ""};
    }
    EXPECT_EQ(err, IOTS_ERR_INVALID_ARG) << text;
    EXPECT_EQ(out, 42) << text << ": a refusal must not write *out";
    return {std::nullopt, errstr};
}

TEST(ParseInt, Int64BoundsAreExactAndNeverWrap) {
    constexpr int64_t kMin = std::numeric_limits<int64_t>::min(), kMax = std::numeric_limits<int64_t>::max();
    EXPECT_EQ(parse("9223372036854775807").value, kMax);
    EXPECT_EQ(parse("-9223372036854775808").value, kMin);
    EXPECT_EQ(parse("9223372036854775808").value, std::nullopt);
    EXPECT_EQ(parse("-9223372036854775809").value, std::nullopt);
    const Parsed wrapped = parse("18446744073709551615");  // 2^64 - 1 is not -1
    EXPECT_EQ(wrapped.value, std::nullopt);
    EXPECT_EQ(wrapped.why, "must be an integer, got 18446744073709551615");
    EXPECT_EQ(parse("0").value, 0);
}

TEST(ParseInt, RangeIsInclusiveAndNamedInTheReason) {
    EXPECT_EQ(parse("1", 1, 16).value, 1);
    EXPECT_EQ(parse("16", 1, 16).value, 16);
    const Parsed over = parse("17", 1, 16);
    EXPECT_EQ(over.value, std::nullopt);
    EXPECT_EQ(over.why, "must be an integer in [1, 16], got 17");
    // A negative minimum.
    EXPECT_EQ(parse("-5", -10, -1).value, -5);
    EXPECT_EQ(parse("-10", -10, -1).value, -10);
    EXPECT_EQ(parse("0", -10, -1).why, "must be an integer in [-10, -1], got 0");
    EXPECT_EQ(parse("-11", -10, -1).value, std::nullopt);
}

TEST(ParseInt, FractionsAndNonNumbersAreRefused) {
    EXPECT_EQ(parse("1.5").why, "must be an integer, got 1.5");
    EXPECT_EQ(parse("", 0, 10).why, "must be an integer in [0, 10], got \"\"");
    for (const char *text : {"abc", "12abc", "0x10", "+5", "5 6", "1e300", "-0.5", "1e-7", "true", "null", "\"5\""})
        EXPECT_EQ(parse(text).value, std::nullopt) << text;
}

// Not new rules: what the library's config documents have always accepted (JSON numbers that
// are exact integers, with JSON's whitespace), so a flag takes what a config file takes.
TEST(ParseInt, ExactIntegerFloatsAndJsonWhitespaceAreAccepted) {
    EXPECT_EQ(parse("1e3").value, 1000);
    EXPECT_EQ(parse("5.0").value, 5);
    EXPECT_EQ(parse("-3e2").value, -300);
    EXPECT_EQ(parse(" 1").value, 1);
    EXPECT_EQ(parse("1e3", 0, 999).why, "must be an integer in [0, 999], got 1000.0");
}

TEST(ParseInt, BadArgumentsAreRefused) {
    int64_t out = 0;
    char errstr[128];
    EXPECT_EQ(iots_parse_int(nullptr, 0, 1, &out, errstr, sizeof errstr), IOTS_ERR_INVALID_ARG);
    EXPECT_EQ(iots_parse_int("1", 0, 1, nullptr, errstr, sizeof errstr), IOTS_ERR_INVALID_ARG);
    EXPECT_EQ(iots_parse_int("1", 2, 1, &out, errstr, sizeof errstr), IOTS_ERR_INVALID_ARG);
    EXPECT_NE(std::string(errstr).find("min 2 is greater than max 1"), std::string::npos) << errstr;
    EXPECT_EQ(iots_parse_int("7", 0, 10, &out, nullptr, 0), IOTS_OK);  // errstr is optional
    EXPECT_EQ(out, 7);
}

}  // namespace
