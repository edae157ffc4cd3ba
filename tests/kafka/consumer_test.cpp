// Consumer groups through the C API against the embedded broker: exactly-once round trip with one
// member, commit-after-success and redelivery, restarts, rebalances, pause/resume and lag.
#include <atomic>
#include <cstring>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <unordered_set>
#include <vector>

#include "kafka_test_util.hpp"

using namespace kafka_test;
using namespace std::chrono_literals;

namespace {

using PartitionSet = std::set<std::pair<std::string, int32_t>>;

// What the rebalance callback saw; it runs on the polling thread.
struct RebalanceLog {
    std::vector<std::pair<iots_rebalance_t, size_t>> events;  // kind, partition count
    PartitionSet owned;

    static void callback(void *opaque, iots_rebalance_t kind, const iots_topic_partition_t *parts, size_t count) {
        auto *log = static_cast<RebalanceLog *>(opaque);
        log->events.emplace_back(kind, count);
        for (size_t i = 0; i < count; ++i) {
            if (kind == IOTS_REBALANCE_ASSIGN)
                log->owned.emplace(parts[i].topic, parts[i].partition);
            else
                log->owned.erase({parts[i].topic, parts[i].partition});
        }
    }
};

// Polls one batch and hands each record to `each`; returns the record count.
size_t poll_each(iots_consumer_t *consumer, size_t max, int timeout_ms,
                 const std::function<void(const iots_record_t *)> &each, bool commit = false) {
    iots_batch_t *batch = nullptr;
    char errstr[512];
    iots_err_t err = iots_consumer_poll_batch(consumer, max, timeout_ms, &batch, errstr, sizeof errstr);
    EXPECT_EQ(err, IOTS_OK) << errstr;
    if (err != IOTS_OK) return 0;
    size_t n = iots_batch_count(batch);
    for (size_t i = 0; i < n; ++i) each(iots_batch_record(batch, i));
    EXPECT_EQ(iots_batch_record(batch, n), nullptr);
    if (commit && n > 0) {
        EXPECT_EQ(iots_consumer_commit_batch(consumer, batch, errstr, sizeof errstr), IOTS_OK) << errstr;
    }
    iots_batch_destroy(batch);
    return n;
}

void produce_raw(const Broker &broker, const std::string &topic, size_t from, size_t to) {
    iots_producer_t *producer = new_producer(producer_config(broker, topic));
    ASSERT_NE(producer, nullptr);
    for (size_t i = from; i < to; ++i) {
        std::string key = "sensor-" + std::to_string(i % 97), value = std::to_string(i);
        ASSERT_EQ(iots_producer_send(producer, nullptr, key.data(), key.size(), value.data(), value.size(), nullptr,
                                     nullptr, 0),
                  IOTS_OK);
    }
    ASSERT_EQ(iots_producer_close(producer, 30000), IOTS_OK);
}

std::string message_id_of(std::string_view envelope) {
    static constexpr std::string_view marker = "\"message_id\":\"";
    auto at = envelope.find(marker);
    if (at == std::string_view::npos || at + marker.size() + 36 > envelope.size()) return {};
    return std::string(envelope.substr(at + marker.size(), 36));
}

}  // namespace

TEST(Consumer, RoundTrip200kReadingsEachMessageIdOnce) {
    // 16 partitions keep every partition well under the mock broker's ~5 MB retention.
    Broker broker(json{{"topics", topics({{"roundtrip", 16}})}});
    const size_t n = 200000, per_batch = 1000;
    iots_producer_t *producer = new_producer(producer_config(broker, "roundtrip"));
    ASSERT_NE(producer, nullptr);
    std::vector<std::string> ids(per_batch), data(per_batch);
    std::vector<iots_reading_t> readings(per_batch);
    for (size_t base = 0; base < n; base += per_batch) {
        for (size_t i = 0; i < per_batch; ++i) {
            ids[i] = "sensor-" + std::to_string((base + i) % 5000);
            data[i] = R"({"temperature": 21.5, "humidity": 40, "seq": )" + std::to_string(base + i) + "}";
            readings[i] = {ids[i].c_str(), data[i].c_str()};
        }
        size_t ok = 0, failed = 0;
        char errstr[256];
        ASSERT_EQ(iots_producer_send_batch(producer, nullptr, readings.data(), per_batch, &ok, &failed, errstr,
                                           sizeof errstr),
                  IOTS_OK)
            << errstr;
        ASSERT_EQ(ok, per_batch);
    }
    ASSERT_EQ(iots_producer_flush(producer, 60000), IOTS_OK);
    auto pstats = producer_stats(producer);
    EXPECT_EQ(pstats.sent, n);
    EXPECT_EQ(pstats.delivered, n);
    EXPECT_EQ(pstats.failed, 0u);
    ASSERT_EQ(iots_producer_close(producer, 10000), IOTS_OK);

    iots_consumer_t *consumer = new_consumer(consumer_config(broker, "roundtrip-group", "roundtrip"));
    ASSERT_NE(consumer, nullptr);
    std::unordered_set<std::string> seen;
    seen.reserve(n);
    std::vector<char> seq_seen(n, 0);
    size_t duplicates = 0, total = 0;
    bool checked_shape = false;
    auto deadline = deadline_in(60s);
    while (total < n && before(deadline)) {
        total += poll_each(consumer, 20000, 1000, [&](const iots_record_t *r) {
            std::string_view value(static_cast<const char *>(r->value), r->value_len);
            if (!seen.insert(message_id_of(value)).second) ++duplicates;
            if (!checked_shape) {
                auto doc = json::parse(value);
                EXPECT_EQ(doc["sensor_id"], std::string(static_cast<const char *>(r->key), r->key_len));
                EXPECT_EQ(doc["timestamp"].get<std::string>().size(), 27u);
                EXPECT_EQ(doc["data"]["humidity"], 40);
                EXPECT_GE(r->timestamp_ms, 0);
                checked_shape = true;
            }
            auto seq_at = value.find("\"seq\": ");
            size_t seq = std::stoul(std::string(value.substr(seq_at + 7)));
            if (seq < n) seq_seen[seq] = 1;
        }, true);
    }
    EXPECT_EQ(total, n);
    EXPECT_EQ(duplicates, 0u);
    EXPECT_EQ(seen.size(), n);
    EXPECT_EQ(seen.count(""), 0u);
    EXPECT_EQ(std::count(seq_seen.begin(), seq_seen.end(), 1), static_cast<long>(n));
    auto cstats = consumer_stats(consumer);
    EXPECT_EQ(cstats.consumed, n);
    EXPECT_EQ(cstats.committed, n);
    EXPECT_GT(cstats.bytes, n * 100);
    EXPECT_EQ(iots_consumer_close(consumer), IOTS_OK);
}

TEST(Consumer, FailedHandlerRewindsAndTheBatchComesBack) {
    Broker broker(json{{"topics", topics({{"redo", 3}})}});
    produce_raw(broker, "redo", 0, 300);
    iots_consumer_t *consumer = new_consumer(consumer_config(broker, "redo-group", "redo"));
    ASSERT_NE(consumer, nullptr);
    struct Handler {
        int calls = 0;
        std::vector<std::pair<int32_t, int64_t>> first_seen, second_seen;
        static int run(void *opaque, const iots_batch_t *batch) {
            auto *self = static_cast<Handler *>(opaque);
            auto &into = self->calls == 0 ? self->first_seen : self->second_seen;
            for (size_t i = 0; i < iots_batch_count(batch); ++i)
                into.emplace_back(iots_batch_record(batch, i)->partition, iots_batch_record(batch, i)->offset);
            return self->calls++ == 0 ? 7 : 0;  // fail the first batch only
        }
    } handler;
    size_t processed = 99;
    char errstr[256];
    iots_err_t err = IOTS_OK;
    auto deadline = deadline_in(30s);
    while (handler.calls == 0 && before(deadline))
        err = iots_consumer_process(consumer, 100, 500, Handler::run, &handler, &processed, errstr, sizeof errstr);
    ASSERT_EQ(err, IOTS_ERR_HANDLER);
    EXPECT_NE(std::strstr(errstr, "handler returned 7"), nullptr) << errstr;
    EXPECT_EQ(processed, 0u);
    EXPECT_EQ(consumer_stats(consumer).redelivered, handler.first_seen.size());
    EXPECT_EQ(consumer_stats(consumer).commits, 0u);

    // The next batches start again at the first record of every partition of the failed batch.
    std::set<std::pair<int32_t, int64_t>> redelivered;
    auto all_back = [&] {
        for (auto &record : handler.first_seen)
            if (redelivered.count(record) == 0) return false;
        return true;
    };
    while (!all_back() && before(deadline)) {
        ASSERT_EQ(iots_consumer_process(consumer, 100, 500, Handler::run, &handler, &processed, errstr, sizeof errstr),
                  IOTS_OK)
            << errstr;
        for (auto &record : handler.second_seen) redelivered.insert(record);
        handler.second_seen.clear();
    }
    for (auto &record : handler.first_seen) EXPECT_EQ(redelivered.count(record), 1u) << record.second;
    EXPECT_GT(consumer_stats(consumer).commits, 0u);
    EXPECT_EQ(iots_consumer_process(consumer, 10, 0, nullptr, nullptr, nullptr, errstr, sizeof errstr),
              IOTS_ERR_INVALID_ARG);
    EXPECT_EQ(iots_consumer_close(consumer), IOTS_OK);
}

TEST(Consumer, RestartedMemberResumesAfterTheLastCommitLosingNothing) {
    Broker broker(json{{"topics", topics({{"restart", 4}})}});
    const size_t n = 20000;
    produce_raw(broker, "restart", 0, n);
    std::multiset<size_t> committed_values, uncommitted_values, second_values;
    {
        iots_consumer_t *first = new_consumer(consumer_config(broker, "restart-group", "restart"));
        ASSERT_NE(first, nullptr);
        auto deadline = deadline_in(30s);
        while (committed_values.size() < 8000 && before(deadline))
            poll_each(first, 1000, 500, [&](const iots_record_t *r) { committed_values.insert(std::stoul(record_value(r))); },
                      true);
        // One more batch, handled but never committed, then the member goes away.
        while (uncommitted_values.empty() && before(deadline))
            poll_each(first, 1000, 500, [&](const iots_record_t *r) { uncommitted_values.insert(std::stoul(record_value(r))); });
        EXPECT_EQ(consumer_stats(first).committed, committed_values.size());
        ASSERT_EQ(iots_consumer_close(first), IOTS_OK);
    }
    iots_consumer_t *second = new_consumer(consumer_config(broker, "restart-group", "restart"));
    ASSERT_NE(second, nullptr);
    auto deadline = deadline_in(30s);
    while (second_values.size() < n - committed_values.size() && before(deadline))
        poll_each(second, 5000, 500, [&](const iots_record_t *r) { second_values.insert(std::stoul(record_value(r))); }, true);
    // Give a stray duplicate the chance to show up.
    poll_each(second, 5000, 300, [&](const iots_record_t *r) { second_values.insert(std::stoul(record_value(r))); });
    EXPECT_EQ(second_values.size(), n - committed_values.size());
    for (size_t v : uncommitted_values) EXPECT_EQ(second_values.count(v), 1u) << "uncommitted record " << v << " redelivered";
    for (size_t v : committed_values) EXPECT_EQ(second_values.count(v), 0u) << "committed record " << v << " came back";
    for (size_t v = 0; v < n; ++v)
        ASSERT_EQ(committed_values.count(v) + second_values.count(v), 1u) << "record " << v;
    EXPECT_EQ(iots_consumer_close(second), IOTS_OK);
}

TEST(Consumer, CooperativeRebalanceAssignsRevokesAndSharesPartitions) {
    Broker broker(json{{"topics", topics({{"share", 6}})}});
    RebalanceLog log_a, log_b;
    iots_consumer_t *a = new_consumer(consumer_config(broker, "share-group", "share"), RebalanceLog::callback, &log_a);
    ASSERT_NE(a, nullptr);
    auto deadline = deadline_in(30s);
    while (log_a.owned.size() < 6 && before(deadline)) poll_each(a, 100, 200, [](const iots_record_t *) {});
    ASSERT_EQ(log_a.owned.size(), 6u);
    ASSERT_FALSE(log_a.events.empty());
    EXPECT_EQ(log_a.events.front(), std::make_pair(IOTS_REBALANCE_ASSIGN, size_t{6}));

    iots_consumer_t *b = new_consumer(consumer_config(broker, "share-group", "share"), RebalanceLog::callback, &log_b);
    ASSERT_NE(b, nullptr);
    while ((log_a.owned.size() != 3 || log_b.owned.size() != 3) && before(deadline)) {
        poll_each(a, 100, 100, [](const iots_record_t *) {});
        poll_each(b, 100, 100, [](const iots_record_t *) {});
    }
    ASSERT_EQ(log_a.owned.size(), 3u);
    ASSERT_EQ(log_b.owned.size(), 3u);
    for (auto &tp : log_a.owned) EXPECT_EQ(log_b.owned.count(tp), 0u);
    // Cooperative: the first member only gave up the moved partitions, incrementally.
    bool saw_incremental_revoke = false;
    for (auto &[kind, count] : log_a.events)
        if (kind == IOTS_REBALANCE_REVOKE && count == 3) saw_incremental_revoke = true;
    EXPECT_TRUE(saw_incremental_revoke);
    EXPECT_GE(consumer_stats(a).rebalances, 2u);

    size_t b_events = log_b.events.size();
    ASSERT_EQ(iots_consumer_close(b), IOTS_OK);
    EXPECT_EQ(log_b.events.size(), b_events + 1);
    EXPECT_EQ(log_b.events.back(), std::make_pair(IOTS_REBALANCE_REVOKE, size_t{3}));  // revoked on close
    while (log_a.owned.size() < 6 && before(deadline)) poll_each(a, 100, 200, [](const iots_record_t *) {});
    EXPECT_EQ(log_a.owned.size(), 6u);
    ASSERT_EQ(iots_consumer_close(a), IOTS_OK);
    EXPECT_EQ(log_a.events.back().first, IOTS_REBALANCE_REVOKE);
    EXPECT_TRUE(log_a.owned.empty());
}

TEST(Consumer, PauseStopsDeliveryAndResumeContinuesWithoutGapsOrRepeats) {
    Broker broker(json{{"topics", topics({{"pause", 2}})}});
    const size_t n = 2000;
    produce_raw(broker, "pause", 0, n);
    iots_consumer_t *consumer = new_consumer(consumer_config(broker, "pause-group", "pause"));
    ASSERT_NE(consumer, nullptr);
    std::multiset<size_t> values;
    auto collect = [&](const iots_record_t *r) { values.insert(std::stoul(record_value(r))); };
    auto deadline = deadline_in(30s);
    while (values.size() < 10 && before(deadline)) poll_each(consumer, 10 - values.size(), 500, collect);
    ASSERT_EQ(values.size(), 10u);
    ASSERT_EQ(iots_consumer_pause(consumer), IOTS_OK);
    for (int i = 0; i < 3; ++i) EXPECT_EQ(poll_each(consumer, 1000, 200, collect), 0u) << "records while paused";
    ASSERT_EQ(iots_consumer_resume(consumer), IOTS_OK);
    while (values.size() < n && before(deadline)) poll_each(consumer, 1000, 500, collect);
    poll_each(consumer, 1000, 200, collect);
    EXPECT_EQ(values.size(), n);
    for (size_t v = 0; v < n; ++v) ASSERT_EQ(values.count(v), 1u) << "record " << v;
    EXPECT_EQ(iots_consumer_close(consumer), IOTS_OK);
}

TEST(Consumer, LagReflectsProducedConsumedAndCommitted) {
    Broker broker(json{{"topics", topics({{"lag", 4}})}});
    const size_t n = 4000, m = 1500;
    produce_raw(broker, "lag", 0, n);
    iots_consumer_t *consumer = new_consumer(consumer_config(broker, "lag-group", "lag"));
    ASSERT_NE(consumer, nullptr);
    size_t consumed = 0;
    auto deadline = deadline_in(30s);
    while (consumed < m && before(deadline)) consumed += poll_each(consumer, m - consumed, 500, [](const iots_record_t *) {}, true);
    ASSERT_EQ(consumed, m);

    size_t count = 0;
    ASSERT_EQ(iots_consumer_lag(consumer, nullptr, 0, &count, 5000), IOTS_OK);
    ASSERT_EQ(count, 4u);
    std::vector<iots_partition_lag_t> lag(count);
    ASSERT_EQ(iots_consumer_lag(consumer, lag.data(), lag.size(), &count, 5000), IOTS_OK);
    int64_t total_lag = 0, total_high = 0;
    for (auto &entry : lag) {
        EXPECT_STREQ(entry.topic, "lag");
        EXPECT_GE(entry.high_watermark, 0);
        EXPECT_GE(entry.position, 0) << "partition " << entry.partition;
        EXPECT_EQ(entry.lag, entry.high_watermark - entry.position);
        if (entry.committed >= 0) {
            EXPECT_EQ(entry.committed, entry.position);  // everything read was committed
        }
        total_lag += entry.lag;
        total_high += entry.high_watermark;
    }
    EXPECT_EQ(total_high, static_cast<int64_t>(n));
    EXPECT_EQ(total_lag, static_cast<int64_t>(n - m));
    auto stats = consumer_stats(consumer);
    EXPECT_EQ(stats.consumed, m);
    EXPECT_EQ(stats.committed, m);
    EXPECT_GE(stats.queue_depth, 0);
    EXPECT_EQ(iots_consumer_close(consumer), IOTS_OK);
}

TEST(Consumer, ConfigAndArgumentErrorsAreNamed) {
    Broker broker(json{{"topics", json::array()}});
    char errstr[512];
    iots_consumer_t *consumer = nullptr;
    auto try_new = [&](const json &config) {
        std::string text = config.dump();
        return iots_consumer_new(text.c_str(), nullptr, nullptr, &consumer, errstr, sizeof errstr);
    };
    json no_group = consumer_config(broker, "g", "t");
    no_group.erase("group_id");
    EXPECT_EQ(try_new(no_group), IOTS_ERR_CONFIG);
    EXPECT_NE(std::strstr(errstr, "'group_id' is required"), nullptr) << errstr;
    json unknown = consumer_config(broker, "g", "t");
    unknown["max_poll_records"] = 500;
    EXPECT_EQ(try_new(unknown), IOTS_ERR_CONFIG);
    EXPECT_NE(std::strstr(errstr, "'max_poll_records' is not a known key"), nullptr) << errstr;
    json reset = consumer_config(broker, "g", "t");
    reset["auto_offset_reset"] = "smallest";
    EXPECT_EQ(try_new(reset), IOTS_ERR_CONFIG);
    EXPECT_NE(std::strstr(errstr, "auto_offset_reset"), nullptr) << errstr;
    EXPECT_EQ(try_new(consumer_config(broker, "g", "t", {{"queued.min.messages", "many"}})), IOTS_ERR_CONFIG);
    EXPECT_NE(std::strstr(errstr, "queued.min.messages"), nullptr) << errstr;
    json bad_topics = consumer_config(broker, "g", "t");
    bad_topics["topics"] = json::array({1});
    EXPECT_EQ(try_new(bad_topics), IOTS_ERR_CONFIG);
    EXPECT_EQ(consumer, nullptr);

    json plain = consumer_config(broker, "g", "t");
    plain.erase("topics");
    ASSERT_EQ(try_new(plain), IOTS_OK) << errstr;
    const char *no_topics[] = {nullptr};
    EXPECT_EQ(iots_consumer_subscribe(consumer, no_topics, 1, errstr, sizeof errstr), IOTS_ERR_INVALID_ARG);
    EXPECT_EQ(iots_consumer_subscribe(consumer, nullptr, 0, errstr, sizeof errstr), IOTS_ERR_INVALID_ARG);
    iots_batch_t *batch = nullptr;
    EXPECT_EQ(iots_consumer_poll_batch(consumer, 0, 0, &batch, errstr, sizeof errstr), IOTS_ERR_INVALID_ARG);
    EXPECT_NE(std::strstr(errstr, "max_records"), nullptr) << errstr;
    iots_consumer_stats_t old_stats{};
    old_stats.struct_size = 8;
    EXPECT_EQ(iots_consumer_get_stats(consumer, &old_stats), IOTS_ERR_INVALID_ARG);
    EXPECT_EQ(iots_consumer_lag(consumer, nullptr, 1, nullptr, 0), IOTS_ERR_INVALID_ARG);
    EXPECT_EQ(iots_batch_count(nullptr), 0u);
    EXPECT_EQ(iots_batch_record(nullptr, 0), nullptr);
    iots_batch_destroy(nullptr);
    EXPECT_EQ(iots_consumer_close(consumer), IOTS_OK);
    EXPECT_EQ(iots_consumer_close(nullptr), IOTS_ERR_INVALID_ARG);
}
