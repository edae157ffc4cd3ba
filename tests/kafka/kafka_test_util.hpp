// Shared helpers for the C-API Kafka tests: an embedded broker per test, JSON configs.
#pragma once

#include <chrono>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "iotstream/iotstream.h"

namespace kafka_test {

using nlohmann::json;

// One embedded broker (mock cluster) for one test.
class Broker {
public:
    explicit Broker(const json &config) {
        char errstr[512];
        std::string text = config.dump();
        iots_err_t err = iots_broker_new(text.c_str(), &broker_, errstr, sizeof errstr);
        if (err != IOTS_OK) throw std::runtime_error(std::string("broker: ") + errstr);
    }
    ~Broker() { iots_broker_destroy(broker_); }
    Broker(const Broker &) = delete;
    Broker &operator=(const Broker &) = delete;
    iots_broker_t *get() { return broker_; }
    std::string bootstrap() const { return iots_broker_bootstrap(broker_); }

private:
    iots_broker_t *broker_ = nullptr;
};

inline json topics(std::initializer_list<std::pair<const char *, int>> list) {
    json out = json::array();
    for (auto &[name, partitions] : list) out.push_back({{"name", name}, {"partitions", partitions}});
    return out;
}

inline json producer_config(const Broker &broker, const std::string &topic, json kafka = json::object()) {
    kafka["bootstrap.servers"] = broker.bootstrap();
    return {{"topic", topic}, {"kafka", kafka}};
}

inline json consumer_config(const Broker &broker, const std::string &group, const std::string &topic,
                            json kafka = json::object()) {
    kafka["bootstrap.servers"] = broker.bootstrap();
    // Fast group joins in tests; the mock coordinator honours these.
    if (!kafka.contains("session.timeout.ms")) kafka["session.timeout.ms"] = 6000;
    if (!kafka.contains("heartbeat.interval.ms")) kafka["heartbeat.interval.ms"] = 500;
    return {{"group_id", group}, {"topics", json::array({topic})}, {"kafka", kafka}};
}

inline iots_producer_t *new_producer(const json &config, iots_delivery_cb_t cb = nullptr, void *opaque = nullptr) {
    char errstr[512];
    iots_producer_t *producer = nullptr;
    std::string text = config.dump();
    iots_err_t err = iots_producer_new(text.c_str(), cb, opaque, &producer, errstr, sizeof errstr);
    EXPECT_EQ(err, IOTS_OK) << errstr;
    return producer;
}

inline iots_consumer_t *new_consumer(const json &config, iots_rebalance_cb_t cb = nullptr, void *opaque = nullptr) {
    char errstr[512];
    iots_consumer_t *consumer = nullptr;
    std::string text = config.dump();
    iots_err_t err = iots_consumer_new(text.c_str(), cb, opaque, &consumer, errstr, sizeof errstr);
    EXPECT_EQ(err, IOTS_OK) << errstr;
    return consumer;
}

inline iots_producer_stats_t producer_stats(iots_producer_t *producer) {
    iots_producer_stats_t stats{};
    stats.struct_size = sizeof stats;
    EXPECT_EQ(iots_producer_get_stats(producer, &stats), IOTS_OK);
    return stats;
}

inline iots_consumer_stats_t consumer_stats(iots_consumer_t *consumer) {
    iots_consumer_stats_t stats{};
    stats.struct_size = sizeof stats;
    EXPECT_EQ(iots_consumer_get_stats(consumer, &stats), IOTS_OK);
    return stats;
}

inline std::string record_value(const iots_record_t *record) {
    return {static_cast<const char *>(record->value), record->value_len};
}

// Deadline for loops that wait on the broker: generous, so slow machines do not fail tests.
inline auto deadline_in(std::chrono::seconds s) { return std::chrono::steady_clock::now() + s; }
inline bool before(std::chrono::steady_clock::time_point deadline) {
    return std::chrono::steady_clock::now() < deadline;
}

}  // namespace kafka_test
