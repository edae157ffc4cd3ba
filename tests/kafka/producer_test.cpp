// Producer through the C API against the embedded broker: partitioning, faults, full queues,
// configuration errors, and counters that always reconcile.
#include <atomic>
#include <cstring>
#include <mutex>
#include <vector>

#include "kafka_test_util.hpp"

using namespace kafka_test;
using namespace std::chrono_literals;

namespace {

// Every report, indexed by the msg_opaque the test passed (1-based index).
struct DeliveryLog {
    explicit DeliveryLog(size_t n) : reports(n + 1), partitions(n + 1, -2), errors(n + 1, IOTS_OK) {}
    std::vector<std::atomic<int>> reports;
    std::vector<int32_t> partitions;
    std::vector<iots_err_t> errors;
    std::atomic<size_t> total{0}, failed{0}, without_opaque{0};
    std::mutex mutex;
    std::vector<std::pair<std::string, int32_t>> reading_partitions;  // key, partition (no opaque)

    static void callback(void *opaque, const iots_delivery_report_t *report) {
        auto *log = static_cast<DeliveryLog *>(opaque);
        log->total++;
        if (report->err != IOTS_OK) log->failed++;
        auto index = reinterpret_cast<uintptr_t>(report->msg_opaque);
        if (index == 0) {
            log->without_opaque++;
            std::lock_guard lock(log->mutex);
            log->reading_partitions.emplace_back(
                std::string(static_cast<const char *>(report->key), report->key_len), report->partition);
            return;
        }
        if (index >= log->reports.size()) return;
        log->reports[index]++;
        log->partitions[index] = report->partition;
        log->errors[index] = report->err;
    }
};

void *opaque_of(size_t index) { return reinterpret_cast<void *>(static_cast<uintptr_t>(index)); }

// The Java client's murmur2, written from its specification (seed 0x9747b28c, m 0x5bd1e995, r 24).
int32_t java_murmur2(const std::string &key) {
    const uint32_t m = 0x5bd1e995;
    const size_t length = key.size();
    uint32_t h = 0x9747b28cu ^ static_cast<uint32_t>(length);
    const auto *data = reinterpret_cast<const unsigned char *>(key.data());
    for (size_t i = 0; i + 4 <= length; i += 4) {
        uint32_t k = data[i] | (uint32_t(data[i + 1]) << 8) | (uint32_t(data[i + 2]) << 16) |
                     (uint32_t(data[i + 3]) << 24);
        k *= m;
        k ^= k >> 24;
        k *= m;
        h *= m;
        h ^= k;
    }
    const size_t tail = length & ~size_t(3);
    switch (length % 4) {
        case 3: h ^= uint32_t(data[tail + 2]) << 16; [[fallthrough]];
        case 2: h ^= uint32_t(data[tail + 1]) << 8; [[fallthrough]];
        case 1:
            h ^= data[tail];
            h *= m;
    }
    h ^= h >> 13;
    h *= m;
    h ^= h >> 15;
    return static_cast<int32_t>(h);
}

int32_t java_partition(const std::string &key, int partitions) {
    return static_cast<int32_t>((static_cast<uint32_t>(java_murmur2(key)) & 0x7fffffffu) %
                                static_cast<uint32_t>(partitions));
}

}  // namespace

TEST(Producer, Murmur2MatchesTheJavaClient) {
    Broker broker(json{{"topics", topics({{"m2", 12}})}});
    const size_t n = 3000;
    DeliveryLog log(n);
    iots_producer_t *producer = new_producer(producer_config(broker, "m2"), DeliveryLog::callback, &log);
    ASSERT_NE(producer, nullptr);
    std::vector<std::string> keys;
    for (size_t i = 1; i <= n; ++i) {
        std::string key = i % 3 == 0 ? "sensor-" + std::to_string(i) : std::string(i % 11 + 1, char('a' + i % 26));
        if (i % 7 == 0) key += std::string("\x00\xff\x80", 3);  // bytes, not text
        keys.push_back(key);
        ASSERT_EQ(iots_producer_send(producer, nullptr, key.data(), key.size(), "v", 1, opaque_of(i), nullptr, 0),
                  IOTS_OK);
    }
    for (int i = 0; i < 200; ++i) {
        std::string sensor = "temp-" + std::to_string(i);
        ASSERT_EQ(iots_producer_send_reading(producer, nullptr, sensor.c_str(), R"({"t": 1})", nullptr, 0), IOTS_OK);
    }
    ASSERT_EQ(iots_producer_flush(producer, 30000), IOTS_OK);
    for (size_t i = 1; i <= n; ++i) {
        ASSERT_EQ(log.reports[i].load(), 1) << i;
        ASSERT_EQ(log.errors[i], IOTS_OK);
        EXPECT_EQ(log.partitions[i], java_partition(keys[i - 1], 12)) << "key #" << i;
    }
    ASSERT_EQ(log.reading_partitions.size(), 200u);
    for (auto &[key, partition] : log.reading_partitions) EXPECT_EQ(partition, java_partition(key, 12)) << key;
    EXPECT_EQ(iots_producer_close(producer, 10000), IOTS_OK);
}

TEST(Producer, CountersReconcileThroughBrokerDownAndProduceErrors) {
    Broker broker(json{{"brokers", 3}, {"topics", topics({{"faults", 8}})}});
    const size_t n = 30000;
    DeliveryLog log(n);
    iots_producer_t *producer = new_producer(
        producer_config(broker, "faults", {{"statistics.interval.ms", 100}, {"message.timeout.ms", 30000}}),
        DeliveryLog::callback, &log);
    ASSERT_NE(producer, nullptr);
    auto send_range = [&](size_t from, size_t to) {
        for (size_t i = from; i <= to; ++i) {
            std::string key = "sensor-" + std::to_string(i % 500);
            ASSERT_EQ(iots_producer_send(producer, nullptr, key.data(), key.size(), key.data(), key.size(),
                                         opaque_of(i), nullptr, 0),
                      IOTS_OK);
        }
    };
    send_range(1, 10000);
    ASSERT_EQ(iots_broker_set_down(broker.get(), 2, 1), IOTS_OK);
    send_range(10001, 20000);
    std::this_thread::sleep_for(2s);
    ASSERT_EQ(iots_broker_set_down(broker.get(), 2, 0), IOTS_OK);
    // Retriable produce failures: REQUEST_TIMED_OUT then NOT_LEADER_OR_FOLLOWER.
    ASSERT_EQ(iots_broker_push_request_errors(broker.get(), 0, 4, 7), IOTS_OK);
    ASSERT_EQ(iots_broker_push_request_errors(broker.get(), 0, 4, 6), IOTS_OK);
    send_range(20001, n);
    ASSERT_EQ(iots_producer_flush(producer, 60000), IOTS_OK);

    auto stats = producer_stats(producer);
    EXPECT_EQ(stats.sent, n);
    EXPECT_EQ(stats.delivered + stats.failed, stats.sent);
    EXPECT_EQ(stats.queue_depth, 0);
    EXPECT_EQ(stats.failed, log.failed.load());
    EXPECT_EQ(log.total.load(), n);
    for (size_t i = 1; i <= n; ++i) ASSERT_EQ(log.reports[i].load(), 1) << "message " << i << " reported";
    EXPECT_GT(stats.delivered, n / 2);
    // Retries show up in librdkafka's statistics, emitted every 100 ms here.
    auto deadline = deadline_in(10s);
    while (producer_stats(producer).retried == 0 && before(deadline)) std::this_thread::sleep_for(50ms);
    EXPECT_GT(producer_stats(producer).retried, 0u);
    EXPECT_EQ(iots_producer_close(producer, 10000), IOTS_OK);
}

TEST(Producer, FullQueueWaitsThenRefusesAndCountsIt) {
    Broker broker(json{{"topics", topics({{"full", 2}})}});
    ASSERT_EQ(iots_broker_set_down(broker.get(), 1, 1), IOTS_OK);
    DeliveryLog log(10);
    json config = producer_config(broker, "full", {{"queue.buffering.max.messages", 5}});
    config["queue_full_timeout_ms"] = 300;
    iots_producer_t *producer = new_producer(config, DeliveryLog::callback, &log);
    ASSERT_NE(producer, nullptr);
    for (size_t i = 1; i <= 5; ++i)
        ASSERT_EQ(iots_producer_send(producer, nullptr, "k", 1, "v", 1, opaque_of(i), nullptr, 0), IOTS_OK);
    char errstr[256];
    auto started = std::chrono::steady_clock::now();
    EXPECT_EQ(iots_producer_send(producer, nullptr, "k", 1, "v", 1, opaque_of(6), errstr, sizeof errstr),
              IOTS_ERR_QUEUE_FULL);
    EXPECT_GE(std::chrono::steady_clock::now() - started, 300ms);  // it waited the whole timeout
    EXPECT_NE(std::strstr(errstr, "queue stayed full for 300 ms"), nullptr) << errstr;
    EXPECT_EQ(iots_producer_send_reading(producer, nullptr, "s", "{}", errstr, sizeof errstr), IOTS_ERR_QUEUE_FULL);
    auto stats = producer_stats(producer);
    EXPECT_EQ(stats.queue_full, 2u);
    EXPECT_EQ(stats.sent, 5u);
    EXPECT_EQ(stats.queue_depth, 5);

    ASSERT_EQ(iots_broker_set_down(broker.get(), 1, 0), IOTS_OK);
    ASSERT_EQ(iots_producer_flush(producer, 30000), IOTS_OK);
    stats = producer_stats(producer);
    EXPECT_EQ(stats.delivered, 5u);
    EXPECT_EQ(stats.queue_depth, 0);
    EXPECT_EQ(log.reports[6].load(), 0);  // the refused one was never accepted, so never reported
    // Room again: sends succeed.
    EXPECT_EQ(iots_producer_send(producer, nullptr, "k", 1, "v", 1, opaque_of(7), nullptr, 0), IOTS_OK);
    EXPECT_EQ(iots_producer_close(producer, 10000), IOTS_OK);
    EXPECT_EQ(log.reports[7].load(), 1);
}

TEST(Producer, CloseReportsUndeliverableMessagesAsFailed) {
    Broker broker(json{{"topics", topics({{"gone", 2}})}});
    ASSERT_EQ(iots_broker_set_down(broker.get(), 1, 1), IOTS_OK);
    const size_t n = 100;
    DeliveryLog log(n);
    iots_producer_t *producer = new_producer(producer_config(broker, "gone"), DeliveryLog::callback, &log);
    ASSERT_NE(producer, nullptr);
    for (size_t i = 1; i <= n; ++i)
        ASSERT_EQ(iots_producer_send(producer, nullptr, "k", 1, "v", 1, opaque_of(i), nullptr, 0), IOTS_OK);
    EXPECT_EQ(iots_producer_flush(producer, 200), IOTS_ERR_TIMED_OUT);
    EXPECT_EQ(iots_producer_close(producer, 300), IOTS_ERR_TIMED_OUT);
    EXPECT_EQ(log.total.load(), n);
    EXPECT_EQ(log.failed.load(), n);
    for (size_t i = 1; i <= n; ++i) EXPECT_EQ(log.reports[i].load(), 1);
}

TEST(Producer, SendBatchCountsSuccessesAndFailures) {
    Broker broker(json{{"topics", topics({{"batch", 4}})}});
    iots_producer_t *producer = new_producer(producer_config(broker, "batch"));
    ASSERT_NE(producer, nullptr);
    iots_reading_t readings[] = {
        {"a", R"({"temperature": 20})"}, {"b", "[1]"}, {"", "{}"}, {"c", "{\"x\":"}, {"d", "{}"}, {nullptr, "{}"},
    };
    size_t succeeded = 99, failed = 99;
    char errstr[256];
    EXPECT_EQ(iots_producer_send_batch(producer, nullptr, readings, 6, &succeeded, &failed, errstr, sizeof errstr),
              IOTS_ERR_INVALID_ARG);
    EXPECT_EQ(succeeded, 2u);
    EXPECT_EQ(failed, 4u);
    EXPECT_NE(std::strstr(errstr, "reading 1: data_json must be a JSON object, got an array"), nullptr) << errstr;
    EXPECT_NE(std::strstr(errstr, "4 of 6 failed"), nullptr) << errstr;
    EXPECT_EQ(iots_producer_send_batch(producer, "batch", readings, 1, &succeeded, &failed, errstr, sizeof errstr),
              IOTS_OK);
    EXPECT_EQ(succeeded, 1u);
    EXPECT_EQ(failed, 0u);
    EXPECT_EQ(iots_producer_flush(producer, 10000), IOTS_OK);
    auto stats = producer_stats(producer);
    EXPECT_EQ(stats.sent, 3u);
    EXPECT_EQ(stats.delivered, 3u);
    EXPECT_EQ(iots_producer_close(producer, 10000), IOTS_OK);
}

TEST(Producer, ConfigAndArgumentErrorsAreNamed) {
    Broker broker(json{{"topics", json::array()}});
    char errstr[512];
    iots_producer_t *producer = nullptr;
    auto try_new = [&](const json &config) {
        std::string text = config.dump();
        return iots_producer_new(text.c_str(), nullptr, nullptr, &producer, errstr, sizeof errstr);
    };
    json unknown = producer_config(broker, "t");
    unknown["lingerr_ms"] = 5;
    EXPECT_EQ(try_new(unknown), IOTS_ERR_CONFIG);
    EXPECT_NE(std::strstr(errstr, "'lingerr_ms' is not a known key"), nullptr) << errstr;
    EXPECT_EQ(producer, nullptr);

    EXPECT_EQ(try_new(producer_config(broker, "t", {{"compression.type", "zip"}})), IOTS_ERR_CONFIG);
    EXPECT_NE(std::strstr(errstr, "kafka property 'compression.type': Invalid value \"zip\" for configuration property"), nullptr)
        << errstr;
    EXPECT_EQ(try_new(producer_config(broker, "t", {{"no.such.property", 1}})), IOTS_ERR_CONFIG);
    EXPECT_NE(std::strstr(errstr, "No such configuration property: \"no.such.property\""), nullptr) << errstr;
    EXPECT_EQ(try_new(json{{"topic", "t"}}), IOTS_ERR_CONFIG);
    EXPECT_NE(std::strstr(errstr, "bootstrap.servers"), nullptr) << errstr;
    EXPECT_EQ(iots_producer_new("{not json", nullptr, nullptr, &producer, errstr, sizeof errstr), IOTS_ERR_CONFIG);
    EXPECT_NE(std::strstr(errstr, "not valid JSON"), nullptr) << errstr;
    json bad_timeout = producer_config(broker, "t");
    bad_timeout["queue_full_timeout_ms"] = "soon";
    EXPECT_EQ(try_new(bad_timeout), IOTS_ERR_CONFIG);
    EXPECT_NE(std::strstr(errstr, "queue_full_timeout_ms"), nullptr) << errstr;

    // Idempotence switches the default acks to all instead of clashing with acks=1.
    ASSERT_EQ(try_new(producer_config(broker, "t", {{"enable.idempotence", true}})), IOTS_OK) << errstr;
    EXPECT_EQ(iots_producer_send_reading(producer, nullptr, "s", "[1, 2]", errstr, sizeof errstr), IOTS_ERR_INVALID_ARG);
    EXPECT_STREQ(errstr, "data_json must be a JSON object, got an array");
    EXPECT_EQ(iots_producer_send_reading(producer, nullptr, "s", "{\"a\": tru}", errstr, sizeof errstr),
              IOTS_ERR_INVALID_ARG);
    EXPECT_NE(std::strstr(errstr, "data_json is not valid JSON"), nullptr) << errstr;
    EXPECT_EQ(iots_producer_send_reading(producer, nullptr, "", "{}", errstr, sizeof errstr), IOTS_ERR_INVALID_ARG);
    EXPECT_EQ(iots_producer_send_reading(producer, nullptr, nullptr, "{}", errstr, sizeof errstr), IOTS_ERR_INVALID_ARG);
    EXPECT_STREQ(errstr, "argument 'sensor_id' is NULL");
    EXPECT_EQ(iots_producer_send(producer, nullptr, nullptr, 3, "v", 1, nullptr, errstr, sizeof errstr),
              IOTS_ERR_INVALID_ARG);
    iots_producer_stats_t old_stats{};
    old_stats.struct_size = sizeof(old_stats) - 8;
    EXPECT_EQ(iots_producer_get_stats(producer, &old_stats), IOTS_ERR_INVALID_ARG);
    EXPECT_EQ(iots_producer_get_stats(producer, nullptr), IOTS_ERR_INVALID_ARG);
    EXPECT_EQ(iots_producer_flush(nullptr, 0), IOTS_ERR_INVALID_ARG);
    EXPECT_EQ(iots_producer_close(producer, 1000), IOTS_OK);
    EXPECT_EQ(iots_producer_close(nullptr, 1000), IOTS_ERR_INVALID_ARG);
}

TEST(Producer, ApiTableServesTheProducerAndConsumer) {
    const iots_api_t *api = iots_get_api(IOTS_ABI_MAJOR, 0, nullptr, 0);
    ASSERT_NE(api, nullptr);
    EXPECT_EQ(api->producer_new, &iots_producer_new);
    EXPECT_EQ(api->producer_close, &iots_producer_close);
    EXPECT_EQ(api->consumer_process, &iots_consumer_process);
    EXPECT_EQ(api->batch_destroy, &iots_batch_destroy);
    EXPECT_EQ(api->consumer_close, &iots_consumer_close);
}

TEST(Producer, SendReadingAtWritesTheGivenEventTime) {
    Broker broker(json{{"topics", topics({{"at", 1}})}});
    iots_producer_t *producer = new_producer(producer_config(broker, "at"));
    char errstr[256];
    // ABI 1.1: reached through the table too, and only when 1.1 is asked for.
    const iots_api_t *api = iots_get_api(IOTS_ABI_MAJOR, 1, errstr, sizeof errstr);
    ASSERT_NE(api, nullptr) << errstr;
    ASSERT_GE(api->struct_size, offsetof(iots_api_t, producer_send_reading_at) + sizeof(void *));
    ASSERT_EQ(api->producer_send_reading_at, &iots_producer_send_reading_at);
    ASSERT_EQ(api->producer_send_reading_at(producer, nullptr, "s-1", "{\"temperature\": 21.5}",
                                            1767225600123, errstr, sizeof errstr),
              IOTS_OK)
        << errstr;
    EXPECT_EQ(iots_producer_send_reading_at(producer, nullptr, "s-1", "{}", INT64_MIN, errstr, sizeof errstr),
              IOTS_ERR_INVALID_ARG);
    EXPECT_NE(std::string(errstr).find("outside the years 0000..9999"), std::string::npos) << errstr;
    EXPECT_EQ(iots_producer_send_reading_at(producer, nullptr, "s-1", "[1]", 0, errstr, sizeof errstr),
              IOTS_ERR_INVALID_ARG);
    ASSERT_EQ(iots_producer_close(producer, 10000), IOTS_OK);

    iots_consumer_t *consumer = new_consumer(consumer_config(broker, "at-reader", "at"));
    std::string value;
    for (auto deadline = deadline_in(std::chrono::seconds(20)); value.empty() && before(deadline);) {
        iots_batch_t *batch = nullptr;
        ASSERT_EQ(iots_consumer_poll_batch(consumer, 10, 200, &batch, errstr, sizeof errstr), IOTS_OK) << errstr;
        if (iots_batch_count(batch) > 0) value = record_value(iots_batch_record(batch, 0));
        iots_batch_destroy(batch);
    }
    iots_consumer_close(consumer);
    json envelope = json::parse(value);
    EXPECT_EQ(envelope["timestamp"], "2026-01-01T00:00:00.123000Z");
    EXPECT_EQ(envelope["sensor_id"], "s-1");
    EXPECT_EQ(envelope["data"]["temperature"], 21.5);
}
