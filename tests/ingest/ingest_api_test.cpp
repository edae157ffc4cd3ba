// iots_ingest_* through the real libiotstream.so against the embedded broker: per-reading
// results for every payload form, rate limits, sensor ownership, backpressure, and readings
// arriving in the topic in the seed's envelope.
#include <cstring>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "kafka_test_util.hpp"

using namespace kafka_test;

namespace {

struct Item {
    iots_ingest_status_t status;
    std::string reason;
    std::string detail;
    int64_t retry_after_ms;
};

class Ingest {
public:
    Ingest(Broker &broker, json config, iots_producer_t *producer = nullptr) {
        if (!producer && !config.contains("producer")) config["producer"] = producer_config(broker, "iot-readings");
        char errstr[512];
        std::string text = config.dump();
        iots_err_t err = iots_ingest_new(text.c_str(), producer, &ingest_, errstr, sizeof errstr);
        if (err != IOTS_OK) throw std::runtime_error(std::string("ingest: ") + errstr);
    }
    ~Ingest() { iots_ingest_close(ingest_, 10000); }
    iots_ingest_t *get() { return ingest_; }

    std::vector<Item> submit(const std::string &device, const std::string &payload) {
        iots_ingest_reply_t *reply = nullptr;
        char errstr[512];
        EXPECT_EQ(iots_ingest_submit(ingest_, device.c_str(), payload.data(), payload.size(), &reply, errstr,
                                     sizeof errstr),
                  IOTS_OK)
            << errstr;
        std::vector<Item> items;
        for (size_t i = 0; i < iots_ingest_reply_count(reply); ++i) {
            const iots_ingest_item_t *item = iots_ingest_reply_item(reply, i);
            items.push_back({item->status, item->reason, item->detail, item->retry_after_ms});
        }
        EXPECT_EQ(iots_ingest_reply_item(reply, items.size()), nullptr);
        iots_ingest_reply_destroy(reply);
        return items;
    }

    iots_ingest_stats_t stats() {
        iots_ingest_stats_t stats{};
        stats.struct_size = sizeof stats;
        EXPECT_EQ(iots_ingest_get_stats(ingest_, &stats), IOTS_OK);
        return stats;
    }

private:
    iots_ingest_t *ingest_ = nullptr;
};

std::string reading(const std::string &sensor, double temperature = 21.5) {
    return json{{"sensor_id", sensor},
                {"data", {{"temperature", temperature}, {"humidity", 40.0}, {"pressure", 1013.0}}}}
        .dump();
}
const std::string kData = R"("data":{"temperature":21.5,"humidity":40,"pressure":1013})";

std::vector<std::string> statuses(const std::vector<Item> &items) {
    std::vector<std::string> out;
    for (const auto &item : items)
        out.push_back(std::string(iots_ingest_status_name(item.status)) + (item.reason.empty() ? "" : ":" + item.reason));
    return out;
}

// Reads `count` records from `topic` (or what arrives within 20 s).
std::vector<std::pair<std::string, std::string>> consume(Broker &broker, const std::string &topic, size_t count) {
    iots_consumer_t *consumer = new_consumer(consumer_config(broker, "ingest-test-" + topic, topic));
    std::vector<std::pair<std::string, std::string>> records;
    char errstr[256];
    for (auto deadline = deadline_in(std::chrono::seconds(20)); records.size() < count && before(deadline);) {
        iots_batch_t *batch = nullptr;
        EXPECT_EQ(iots_consumer_poll_batch(consumer, 100, 200, &batch, errstr, sizeof errstr), IOTS_OK) << errstr;
        for (size_t i = 0; i < iots_batch_count(batch); ++i) {
            const iots_record_t *record = iots_batch_record(batch, i);
            records.emplace_back(std::string(static_cast<const char *>(record->key), record->key_len),
                                 record_value(record));
        }
        iots_batch_destroy(batch);
    }
    iots_consumer_close(consumer);
    return records;
}

}  // namespace

TEST(Ingest, EveryPayloadFormGetsOneResultPerReading) {
    Broker broker(json{{"topics", topics({{"iot-readings", 2}})}});
    Ingest ingest(broker, json{{"rate", 1000}, {"burst", 1000}});

    EXPECT_EQ(statuses(ingest.submit("s1", reading("s1"))), std::vector<std::string>{"accepted"});
    // sensor_id and timestamp may be left out: the device id and the gateway's clock fill in.
    EXPECT_EQ(statuses(ingest.submit("s1", "{" + kData + "}")), std::vector<std::string>{"accepted"});
    EXPECT_EQ(statuses(ingest.submit("s1", "{\n  " + kData + "\n}\n")), std::vector<std::string>{"accepted"});

    const std::string array = "[" + reading("s1") + R"(, {"data": {"temperature": "hot", "humidity": 1, "pressure": 2}},)" +
                              R"( {"data": {"humidity": 1, "pressure": 2}}, 42, {"timestamp": "yesterday", )" + kData +
                              "}]";
    EXPECT_EQ(statuses(ingest.submit("s1", array)),
              (std::vector<std::string>{"accepted", "invalid:wrong_type", "invalid:missing_field",
                                        "invalid:wrong_type", "invalid:bad_timestamp"}));

    const std::string ndjson = reading("s1") + "\n\n{not json}\n" + reading("s1") + "\r\n";
    auto items = ingest.submit("s1", ndjson);
    EXPECT_EQ(statuses(items), (std::vector<std::string>{"accepted", "invalid:not_json", "accepted"}));
    EXPECT_FALSE(items[1].detail.empty());

    EXPECT_EQ(statuses(ingest.submit("s1", "[1, 2")), std::vector<std::string>{"invalid:not_json"});
    EXPECT_EQ(statuses(ingest.submit("s1", "")), std::vector<std::string>{"invalid:not_json"});
    // An array with no readings is still answered (fuzz_ingest: it once got no result at all).
    items = ingest.submit("s1", " [ ] ");
    ASSERT_EQ(items.size(), 1u);
    EXPECT_EQ(items[0].status, IOTS_INGEST_INVALID);
    EXPECT_FALSE(items[0].detail.empty());

    auto stats = ingest.stats();
    EXPECT_EQ(stats.payloads, 8u);
    EXPECT_EQ(stats.accepted, 6u);
    EXPECT_EQ(stats.invalid, 8u);
}

TEST(Ingest, SizeLimitsAnswerTooLarge) {
    Broker broker(json{{"topics", topics({{"iot-readings", 2}})}});
    Ingest ingest(broker, json{{"max_payload_bytes", 4096}, {"max_readings", 3},
                               {"decoder", {{"max_record_bytes", 512}}}, {"rate", 1000}, {"burst", 1000}});
    const std::string big = "{" + kData + R"(, "note": ")" + std::string(600, 'x') + "\"}";
    EXPECT_EQ(statuses(ingest.submit("s1", "[" + reading("s1") + "," + big + "]")),
              (std::vector<std::string>{"accepted", "too_large:too_large"}));
    EXPECT_EQ(statuses(ingest.submit("s1", std::string(5000, ' '))), std::vector<std::string>{"too_large:too_large"});
    std::string four = reading("s1") + "\n" + reading("s1") + "\n" + reading("s1") + "\n" + reading("s1");
    EXPECT_EQ(statuses(ingest.submit("s1", four)), std::vector<std::string>{"too_large:too_large"});
    EXPECT_EQ(statuses(ingest.submit("s1", "[" + reading("s1") + "," + reading("s1") + "," + reading("s1") + "," +
                                               reading("s1") + "]")),
              std::vector<std::string>{"too_large:too_large"});
    EXPECT_EQ(ingest.stats().too_large, 4u);
}

TEST(Ingest, RateLimitedReadingsCarryRetryAfter) {
    Broker broker(json{{"topics", topics({{"iot-readings", 2}})}});
    Ingest ingest(broker, json{{"rate", 2}, {"burst", 3}, {"devices", {{"vip", {{"rate", 100}, {"burst", 10}}}}}});
    std::string payload = "[";
    for (int i = 0; i < 5; ++i) payload += (i ? "," : "") + std::string("{") + kData + "}";
    payload += "]";
    auto items = ingest.submit("s1", payload);
    EXPECT_EQ(statuses(items), (std::vector<std::string>{"accepted", "accepted", "accepted", "rate_limited:rate_limited",
                                                         "rate_limited:rate_limited"}));
    EXPECT_GT(items[3].retry_after_ms, 0);
    EXPECT_LE(items[3].retry_after_ms, 500);
    // The override gives "vip" its own, larger bucket.
    EXPECT_EQ(statuses(ingest.submit("vip", payload + "\n")).size(), 5u);
    EXPECT_EQ(ingest.stats().accepted, 8u);
    EXPECT_EQ(ingest.stats().rate_limited, 2u);
    EXPECT_EQ(ingest.stats().devices_tracked, 2u);
}

TEST(Ingest, ADeviceMayOnlySendItsOwnSensorIds) {
    Broker broker(json{{"topics", topics({{"iot-readings", 2}})}});
    Ingest ingest(broker, json::object());
    auto items = ingest.submit("s1", "[" + reading("s1") + "," + reading("s2") + "]");
    EXPECT_EQ(statuses(items), (std::vector<std::string>{"forbidden:foreign_sensor_id", "forbidden:foreign_sensor_id"}));
    EXPECT_NE(items[0].detail.find("'s2'"), std::string::npos) << items[0].detail;
    EXPECT_EQ(ingest.stats().accepted, 0u);
    EXPECT_EQ(ingest.stats().forbidden, 2u);

    Ingest trusted(broker, json{{"sensor_ids", "any"}});
    EXPECT_EQ(statuses(trusted.submit("s1", reading("s2"))), std::vector<std::string>{"accepted"});
}

TEST(Ingest, AFullProducerQueueAnswersBackpressureAndReturnsTheTokens) {
    Broker broker(json{{"topics", topics({{"iot-readings", 2}})}});
    ASSERT_EQ(iots_broker_set_down(broker.get(), 1, 1), IOTS_OK);
    json config = producer_config(broker, "iot-readings", {{"queue.buffering.max.messages", 2}});
    config["queue_full_timeout_ms"] = 0;
    iots_producer_t *producer = new_producer(config);
    {
        // A bucket of 4 that practically never refills during the test.
        Ingest ingest(broker, json{{"rate", 0.01}, {"burst", 4}}, producer);
        std::string payload;
        for (int i = 0; i < 4; ++i) payload += reading("s1") + "\n";
        EXPECT_EQ(statuses(ingest.submit("s1", payload)),
                  (std::vector<std::string>{"accepted", "accepted", "backpressure:queue_full", "backpressure:queue_full"}));
        EXPECT_EQ(ingest.stats().backpressure, 2u);
        ASSERT_EQ(iots_broker_set_down(broker.get(), 1, 0), IOTS_OK);
        ASSERT_EQ(iots_producer_flush(producer, 20000), IOTS_OK);
        // The two refused readings spent no tokens: two are left, not zero.
        EXPECT_EQ(statuses(ingest.submit("s1", reading("s1") + "\n" + reading("s1"))),
                  (std::vector<std::string>{"accepted", "accepted"}));
        EXPECT_EQ(statuses(ingest.submit("s1", reading("s1"))), std::vector<std::string>{"rate_limited:rate_limited"});
    }
    EXPECT_EQ(iots_producer_close(producer, 10000), IOTS_OK);
}

TEST(Ingest, AReadingTheProducerRefusesFailsAloneAndReturnsItsToken) {
    Broker broker(json{{"topics", topics({{"iot-readings", 2}, {"iot-dlq", 1}})}});
    // librdkafka refuses a message over message.max.bytes at once (KafkaSendError), while the
    // decoder's own limit (64 KiB) lets the reading through to the producer.
    iots_producer_t *producer = new_producer(producer_config(broker, "iot-readings", {{"message.max.bytes", 1000}}));
    const std::string big = json{{"sensor_id", "s1"},
                                 {"data",
                                  {{"temperature", 2.0},
                                   {"humidity", 40.0},
                                   {"pressure", 1013.0},
                                   {"note", std::string(2000, 'x')}}}}
                                .dump();
    {
        // Three tokens that practically never refill; the DLQ copy of the refused reading is
        // as large and is dropped without failing the call.
        Ingest ingest(broker, json{{"rate", 0.01}, {"burst", 3}, {"dead_letter_topic", "iot-dlq"}}, producer);
        auto items = ingest.submit("s1", reading("s1", 1.0) + "\n" + big + "\n" + reading("s1", 3.0));
        EXPECT_EQ(statuses(items), (std::vector<std::string>{"accepted", "too_large:too_large", "accepted"}));
        ASSERT_EQ(items.size(), 3u);
        EXPECT_NE(items[1].detail.find("too large"), std::string::npos) << items[1].detail;
        EXPECT_EQ(ingest.stats().too_large, 1u);
        // The refused reading's token went back: one is left, then the bucket is empty.
        EXPECT_EQ(statuses(ingest.submit("s1", reading("s1", 4.0))), std::vector<std::string>{"accepted"});
        EXPECT_EQ(statuses(ingest.submit("s1", reading("s1", 5.0))), std::vector<std::string>{"rate_limited:rate_limited"});
    }
    ASSERT_EQ(iots_producer_flush(producer, 20000), IOTS_OK);
    ASSERT_EQ(iots_producer_close(producer, 10000), IOTS_OK);
    std::multiset<double> temperatures;
    for (auto &[key, value] : consume(broker, "iot-readings", 3))
        temperatures.insert(json::parse(value)["data"]["temperature"].get<double>());
    EXPECT_EQ(temperatures, (std::multiset<double>{1.0, 3.0, 4.0}));
}

TEST(Ingest, AcceptedReadingsReachTheTopicInTheEnvelopeAndInvalidOnesTheDeadLetterTopic) {
    Broker broker(json{{"topics", topics({{"iot-readings", 2}, {"iot-dlq", 1}})}});
    char errstr[256];
    iots_producer_t *producer = new_producer(producer_config(broker, "iot-readings"));
    {
        Ingest ingest(broker, json{{"dead_letter_topic", "iot-dlq"}, {"sensor_ids", "any"}}, producer);
        const std::string payload = R"({"sensor_id": "s\"1", "timestamp": "2026-01-01T00:00:00.5Z", )" + kData +
                                    R"(, "extra": 1})" "\n" + reading("s2") + "\n" + R"({"data": 5})";
        EXPECT_EQ(statuses(ingest.submit("gw", payload)),
                  (std::vector<std::string>{"accepted", "accepted", "invalid:wrong_type"}));
    }
    ASSERT_EQ(iots_producer_flush(producer, 20000), IOTS_OK);
    EXPECT_EQ(producer_stats(producer).delivered, 3u);
    ASSERT_EQ(iots_producer_close(producer, 10000), IOTS_OK);

    std::map<std::string, json> by_key;
    for (auto &[key, value] : consume(broker, "iot-readings", 2)) by_key[key] = json::parse(value);
    ASSERT_EQ(by_key.size(), 2u);
    const json &first = by_key.at("s\"1");
    EXPECT_EQ(first["sensor_id"], "s\"1");
    EXPECT_EQ(first["timestamp"], "2026-01-01T00:00:00.5Z");
    EXPECT_EQ(first["data"]["temperature"], 21.5);
    EXPECT_EQ(first["message_id"].get<std::string>().size(), 36u);
    EXPECT_FALSE(first.contains("extra"));
    EXPECT_EQ(by_key.at("s2")["timestamp"].get<std::string>().size(), 27u);  // the gateway's clock

    auto dead = consume(broker, "iot-dlq", 1);
    ASSERT_EQ(dead.size(), 1u);
    EXPECT_EQ(dead[0].first, "gw");
    EXPECT_EQ(dead[0].second, R"({"data": 5})");
    (void)errstr;
}

TEST(Ingest, ArgumentsConfigAndTheApiTable) {
    Broker broker(json{{"topics", topics({{"iot-readings", 2}})}});
    char errstr[512];
    iots_ingest_t *ingest = nullptr;
    EXPECT_EQ(iots_ingest_new(R"({"rate": 0})", nullptr, &ingest, errstr, sizeof errstr), IOTS_ERR_CONFIG);
    EXPECT_NE(std::strstr(errstr, "'rate'"), nullptr) << errstr;
    EXPECT_EQ(iots_ingest_new(R"({"sensor_ids": "some"})", nullptr, &ingest, errstr, sizeof errstr), IOTS_ERR_CONFIG);
    EXPECT_EQ(iots_ingest_new(R"({"bogus": 1})", nullptr, &ingest, errstr, sizeof errstr), IOTS_ERR_CONFIG);
    EXPECT_NE(std::strstr(errstr, "bogus"), nullptr) << errstr;
    EXPECT_EQ(ingest, nullptr);

    const iots_api_t *api = iots_get_api(1, 2, errstr, sizeof errstr);
    ASSERT_NE(api, nullptr) << errstr;
    ASSERT_GE(api->struct_size, offsetof(iots_api_t, ingest_close) + sizeof(void *));
    EXPECT_EQ(api->ingest_submit, &iots_ingest_submit);
    std::string config = json{{"producer", producer_config(broker, "iot-readings")}}.dump();
    ASSERT_EQ(api->ingest_new(config.c_str(), nullptr, &ingest, errstr, sizeof errstr), IOTS_OK) << errstr;
    iots_ingest_reply_t *reply = nullptr;
    EXPECT_EQ(api->ingest_submit(ingest, "", "{}", 2, &reply, errstr, sizeof errstr), IOTS_ERR_INVALID_ARG);
    EXPECT_EQ(api->ingest_submit(ingest, "d", nullptr, 3, &reply, errstr, sizeof errstr), IOTS_ERR_INVALID_ARG);
    EXPECT_EQ(reply, nullptr);
    EXPECT_STREQ(api->ingest_status_name(IOTS_INGEST_RATE_LIMITED), "rate_limited");
    EXPECT_EQ(api->ingest_close(ingest, 10000), IOTS_OK);
}
