// The foundation of the C API: versions, errors, logging, configuration errors, embedded broker.
#include <gtest/gtest.h>

#include <cstring>
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
    EXPECT_EQ(api->defaults_json, &iots_defaults_json);  // ABI 1.5, the last entry
    EXPECT_EQ(iots_get_api(IOTS_ABI_MAJOR - 1, 0, errstr, sizeof errstr), nullptr);
    EXPECT_NE(std::string(errstr).find("ABI major"), std::string::npos);
    EXPECT_EQ(iots_get_api(IOTS_ABI_MAJOR, -1, errstr, sizeof errstr), nullptr);
}

}  // namespace
