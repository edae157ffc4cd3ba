// aggregate plugin: interval emission of per-sensor averages, reset, checkpoint and revoke.
#include <gtest/gtest.h>

#include <malloc.h>

#include <map>

#include "hosted_plugin.hpp"

namespace iotstream::test {
namespace {

using Json = nlohmann::json;

std::map<std::string, Json> by_sensor(const std::vector<Emitted> &emitted, size_t from = 0) {
    std::map<std::string, Json> out;
    for (size_t e = from; e < emitted.size(); ++e) {
        Json value = emitted[e].json();
        EXPECT_EQ(emitted[e].key, value["sensor_id"]);
        EXPECT_TRUE(out.emplace(emitted[e].key, value).second) << "sensor emitted twice";
    }
    return out;
}

Reading reading(const std::string &sensor, int64_t t, double temperature, int64_t offset) {
    Reading r{sensor, t};
    r.temperature = temperature;
    r.humidity = temperature * 2;
    r.pressure = 1000 + temperature;
    r.offset = offset;
    return r;
}

TEST(AggregatePlugin, EmitsEveryIntervalAndResets) {
    HostedPlugin host("aggregate", Json{{"interval_ms", 5000}});
    EXPECT_EQ(host.tick(0), 0);  // starts the schedule
    host.process({reading("a", 1'767'225'600'123, 20.0, 0), reading("b", 1'767'225'600'000, 30.0, 1),
                  reading("a", 1'767'225'599'000, 22.5, 2)});
    EXPECT_EQ(host.tick(4999), 0);
    EXPECT_TRUE(host.emitted.empty());
    EXPECT_EQ(host.tick(5000), 0);
    auto first = by_sensor(host.emitted);
    ASSERT_EQ(first.size(), 2u);
    EXPECT_EQ(host.emitted[0].output, "aggregates");
    EXPECT_EQ(host.emitted[0].flags, IOTS_EMIT_RAW);
    const Json &a = first["a"];
    EXPECT_DOUBLE_EQ(a["avg_temperature"].get<double>(), 21.25);
    EXPECT_DOUBLE_EQ(a["avg_humidity"].get<double>(), 42.5);
    EXPECT_DOUBLE_EQ(a["avg_pressure"].get<double>(), 1021.25);
    EXPECT_EQ(a["sample_count"], 2);
    EXPECT_EQ(a["latest_timestamp"], "2026-01-01T00:00:00.123Z");  // the later event, not the last
    EXPECT_EQ(a["processed_at"], "1970-01-01T00:00:05.000Z");
    EXPECT_EQ(first["b"]["sample_count"], 1);

    // Only sensors with readings since the last emission appear, with fresh sums.
    size_t before = host.emitted.size();
    host.process({reading("a", 1'767'225'601'000, 10.0, 3)});
    EXPECT_EQ(host.tick(9999), 0);
    EXPECT_EQ(host.emitted.size(), before);
    EXPECT_EQ(host.tick(10'000), 0);
    auto second = by_sensor(host.emitted, before);
    ASSERT_EQ(second.size(), 1u);
    EXPECT_EQ(second["a"]["sample_count"], 1);
    EXPECT_DOUBLE_EQ(second["a"]["avg_temperature"].get<double>(), 10.0);
    EXPECT_EQ(second["a"]["latest_timestamp"], "2026-01-01T00:00:01.000Z");
}

TEST(AggregatePlugin, AbsentFieldIsLeftOutOfItsAverage) {
    HostedPlugin host("aggregate", nullptr);
    Reading with = reading("a", 0, 20.0, 0), without = reading("a", 0, 30.0, 1);
    without.pressure = kAbsent;
    Reading none = reading("b", 0, 1.0, 2);
    none.humidity = kAbsent;
    host.process({with, without, none});
    EXPECT_EQ(host.flush(1), 0);
    auto out = by_sensor(host.emitted);
    EXPECT_DOUBLE_EQ(out["a"]["avg_pressure"].get<double>(), 1020.0);
    EXPECT_DOUBLE_EQ(out["a"]["avg_temperature"].get<double>(), 25.0);
    EXPECT_TRUE(out["b"]["avg_humidity"].is_null());
    EXPECT_EQ(out["b"]["sample_count"], 1);
}

TEST(AggregatePlugin, CheckpointHoldsTheOldestPendingOffset) {
    HostedPlugin host("aggregate", nullptr);
    EXPECT_EQ(host.checkpoint(0).first, IOTS_NO_VALUE);
    Reading r1 = reading("a", 0, 1, 40), r2 = reading("b", 0, 1, 41), r3 = reading("c", 0, 1, 7);
    r3.stream = 1;
    host.process({r1, r2, r3});
    EXPECT_EQ(host.checkpoint(0), std::make_pair(int64_t{40}, IOTS_NO_VALUE));
    EXPECT_EQ(host.checkpoint(1).first, 7);

    // A revoked stream's sums are dropped, not emitted: the new owner re-reads from offset 7.
    host.on_revoke(1);
    EXPECT_EQ(host.checkpoint(1).first, IOTS_NO_VALUE);
    EXPECT_EQ(host.flush(0), 0);
    auto out = by_sensor(host.emitted);
    EXPECT_EQ(out.size(), 2u);
    EXPECT_EQ(out.count("c"), 0u);
    EXPECT_EQ(host.checkpoint(0).first, IOTS_NO_VALUE);
}

TEST(AggregatePlugin, RefusedEmitKeepsTheSums) {
    HostedPlugin host("aggregate", Json{{"interval_ms", 100}});
    host.tick(0);
    host.process({reading("a", 0, 10, 5)});
    host.refuse_emits = true;
    EXPECT_NE(host.tick(100), 0);
    EXPECT_EQ(host.checkpoint(0).first, 5);  // still held back
    host.refuse_emits = false;
    host.process({reading("a", 0, 20, 6)});
    EXPECT_EQ(host.tick(200), 0);
    ASSERT_EQ(host.emitted.size(), 1u);
    EXPECT_EQ(host.emitted[0].json()["sample_count"], 2);
    EXPECT_DOUBLE_EQ(host.emitted[0].json()["avg_temperature"].get<double>(), 15.0);
}

TEST(AggregatePlugin, StreamsEmitAtDifferentPhasesOfTheInterval) {
    HostedPlugin host("aggregate", Json{{"interval_ms", 1600}});
    host.tick(0);
    Reading r0 = reading("a", 0, 1, 0), r1 = reading("b", 0, 1, 0);
    r1.stream = 1;
    host.process({r0, r1});
    EXPECT_EQ(host.tick(50), 0);
    EXPECT_TRUE(host.emitted.empty());
    EXPECT_EQ(host.tick(100), 0);  // stream 1's phase: 1/16 of the interval
    ASSERT_EQ(host.emitted.size(), 1u);
    EXPECT_EQ(host.emitted[0].json()["sensor_id"], "b");
    EXPECT_EQ(host.tick(1600), 0);  // stream 0 at the interval itself
    ASSERT_EQ(host.emitted.size(), 2u);
    EXPECT_EQ(host.emitted[1].json()["sensor_id"], "a");
}

// Sensor k of the churn tests: every 7th has an id longer than the plugin's inline buffer, so
// slots pass between short and long ids.
std::string churn_id(int k) {
    std::string id = "sensor_" + std::to_string(k);
    if (k % 7 == 0) id += "_with_a_long_suffix_beyond_inline_storage";
    return id;
}

// Round r: sensors [r * step, r * step + active) mod universe send 1 to 3 readings of
// temperature k + r, at offsets counting up per round. Sensors leave the set, go idle, get
// evicted and (with universe < rounds * step) come back into reused slots.
std::vector<Reading> churn_round(int r, int step, int active, int universe, int64_t first_offset) {
    std::vector<Reading> readings;
    int64_t offset = first_offset;
    for (int j = 0; j < active; ++j) {
        int k = (r * step + j) % universe;
        for (int n = 0; n <= (k + r) % 3; ++n)
            readings.push_back(reading(churn_id(k), 1'767'225'600'000 + r * 1000 + n, k + r, offset++));
    }
    return readings;
}

// Every 4th emission is refused, so sensors keep sums across emissions that evict others:
// a lookup broken by an eviction would split a sensor over two slots (emitted twice).
TEST(AggregatePlugin, IdleSensorsAreEvictedAndTheirSlotsReusedWithoutMixingSums) {
    HostedPlugin host("aggregate", Json{{"interval_ms", 100}});
    host.tick(0);
    const int kStep = 40, kActive = 120, kUniverse = 600, kRounds = 80;
    struct Expected {
        int count = 0;
        double temperature_sum = 0;
    };
    std::map<std::string, Expected> pending;  // what the next accepted emission must carry
    int64_t offset = 0, oldest_pending = IOTS_NO_VALUE;
    for (int r = 0; r < kRounds; ++r) {
        std::vector<Reading> readings = churn_round(r, kStep, kActive, kUniverse, offset);
        for (const Reading &reading : readings) {
            pending[reading.sensor].count += 1;
            pending[reading.sensor].temperature_sum += reading.temperature;
        }
        if (oldest_pending == IOTS_NO_VALUE) oldest_pending = offset;
        offset += static_cast<int64_t>(readings.size());
        host.process(readings);
        ASSERT_EQ(host.checkpoint(0).first, oldest_pending) << "round " << r;

        size_t from = host.emitted.size();
        host.refuse_emits = r % 4 == 3;
        ASSERT_EQ(host.tick((r + 1) * 100), host.refuse_emits ? 1 : 0);
        if (host.refuse_emits) continue;
        auto out = by_sensor(host.emitted, from);  // also fails on a sensor emitted twice
        ASSERT_EQ(out.size(), pending.size()) << "round " << r;
        for (const auto &[sensor, expected] : pending) {
            auto it = out.find(sensor);
            ASSERT_NE(it, out.end()) << sensor << " round " << r;
            EXPECT_EQ(it->second["sample_count"], expected.count) << sensor;
            EXPECT_DOUBLE_EQ(it->second["avg_temperature"].get<double>(),
                             expected.temperature_sum / expected.count) << sensor;
        }
        pending.clear();
        oldest_pending = IOTS_NO_VALUE;
        EXPECT_EQ(host.checkpoint(0).first, IOTS_NO_VALUE);
    }
}

// Sensors that stop sending must not hold memory: with always-new ids the live heap stays at
// what the active set needs (without eviction it would grow by ~100 bytes per id).
TEST(AggregatePlugin, ChurningSensorIdsDoNotGrowTheHeap) {
    HostedPlugin host("aggregate", Json{{"interval_ms", 100}});
    host.store_emits = false;
    host.tick(0);
    const int kStep = 1000, kActive = 3000, kUniverse = 1 << 30;
    auto run_rounds = [&](int first, int last) {
        for (int r = first; r < last; ++r) {
            host.process(churn_round(r, kStep, kActive, kUniverse, 0));
            ASSERT_EQ(host.tick((r + 1) * 100), 0);
            // 3000 sensors a round, 512 emitted per tick: the pass ends within six ticks.
            for (int t = 1; t < 6; ++t) ASSERT_EQ(host.tick((r + 1) * 100 + t * 10), 0);
        }
    };
    auto live_heap = [] {
        malloc_trim(0);
        struct mallinfo2 info = mallinfo2();
        return info.uordblks + info.hblkhd;  // large blocks (an index table) are mmapped
    };
    run_rounds(0, 10);  // the active set's slots, pages and index reach their size
    size_t warm = live_heap();
    run_rounds(10, 210);  // 200,000 ids that each come and go
    size_t after = live_heap();
    EXPECT_LT(after, warm + 1'000'000) << "live heap grew from " << warm << " to " << after;
    EXPECT_EQ(host.emit_count, 210u * kActive);
}

TEST(AggregatePlugin, IdsLongerThanTheInlineBufferSurviveEmissionRefusalAndReuse) {
    HostedPlugin host("aggregate", Json{{"interval_ms", 100}});
    host.tick(0);
    const std::vector<std::string> ids = {
        std::string(22, 'a'), std::string(23, 'b'),
        "quote\"and\\backslash-" + std::string(30, 'c'),
        // Long ids stay within decoder.max_sensor_id_bytes (256 by default): longer ones never
        // reach a stage (sensor_id_too_long).
        std::string(250, 'd') + "\xc3\xa9",  // UTF-8 passes through
    };
    std::vector<Reading> readings;
    for (size_t s = 0; s < ids.size(); ++s)
        readings.push_back(reading(ids[s], 0, static_cast<double>(s), static_cast<int64_t>(s)));
    host.process(readings);
    host.refuse_emits = true;
    EXPECT_NE(host.tick(100), 0);  // every aggregate refused: kept
    host.refuse_emits = false;
    host.process(readings);
    EXPECT_EQ(host.tick(200), 0);
    auto out = by_sensor(host.emitted);
    ASSERT_EQ(out.size(), ids.size());
    for (size_t s = 0; s < ids.size(); ++s) {
        ASSERT_EQ(out.count(ids[s]), 1u) << ids[s].size() << "-byte id";
        EXPECT_EQ(out[ids[s]]["sample_count"], 2);
        EXPECT_DOUBLE_EQ(out[ids[s]]["avg_temperature"].get<double>(), static_cast<double>(s));
    }
    // Two empty emissions evict all four; new long ids of other lengths take their slots.
    EXPECT_EQ(host.tick(300), 0);
    EXPECT_EQ(host.tick(400), 0);
    const std::vector<std::string> next = {std::string(200, 'e'), std::string(24, 'f'), "g",
                                           std::string(256, 'h')};
    readings.clear();
    for (size_t s = 0; s < next.size(); ++s)
        readings.push_back(reading(next[s], 0, 10.0 + static_cast<double>(s), 10));
    readings.push_back(reading(ids[3], 0, 99.0, 11));  // an evicted id comes back
    size_t from = host.emitted.size();
    host.process(readings);
    EXPECT_EQ(host.tick(500), 0);
    auto again = by_sensor(host.emitted, from);
    ASSERT_EQ(again.size(), next.size() + 1);
    for (size_t s = 0; s < next.size(); ++s) {
        ASSERT_EQ(again.count(next[s]), 1u) << next[s].size() << "-byte id";
        EXPECT_EQ(again[next[s]]["sample_count"], 1);
        EXPECT_DOUBLE_EQ(again[next[s]]["avg_temperature"].get<double>(), 10.0 + static_cast<double>(s));
    }
    EXPECT_EQ(again[ids[3]]["sample_count"], 1);
    EXPECT_DOUBLE_EQ(again[ids[3]]["avg_temperature"].get<double>(), 99.0);
}

TEST(AggregatePlugin, LatestTimestampAcrossTheCalendar) {
    HostedPlugin host("aggregate", nullptr);
    host.process({reading("before_1970", -1, 1, 0), reading("year_0", -62'167'219'200'000, 1, 1),
                  reading("year_9999", 253'402'300'799'999, 1, 2)});
    Reading missing = reading("no_time", 0, 1, 3);
    missing.event_time_ms = IOTS_NO_VALUE;
    host.process({missing});
    EXPECT_EQ(host.flush(1), 0);
    auto out = by_sensor(host.emitted);
    EXPECT_EQ(out["before_1970"]["latest_timestamp"], "1969-12-31T23:59:59.999Z");
    EXPECT_EQ(out["year_0"]["latest_timestamp"], "0000-01-01T00:00:00.000Z");
    EXPECT_EQ(out["year_9999"]["latest_timestamp"], "9999-12-31T23:59:59.999Z");
    EXPECT_TRUE(out["no_time"]["latest_timestamp"].is_null());
}

TEST(AggregatePlugin, LargeEmissionsAreSpreadOverTicks) {
    HostedPlugin host("aggregate", Json{{"interval_ms", 1000}});
    host.tick(0);
    std::vector<Reading> readings;
    for (int n = 0; n < 1250; ++n) readings.push_back(reading("s" + std::to_string(n), 0, 1.0, 100 + n));
    host.process(readings);
    EXPECT_EQ(host.tick(1000), 0);
    EXPECT_EQ(host.emitted.size(), 512u);  // one tick's budget
    EXPECT_EQ(host.checkpoint(0).first, 100);  // the pass is not done: the commit stays back
    host.process({reading("s0", 0, 2.0, 9000)});  // s0 was emitted already: next interval
    EXPECT_EQ(host.tick(1100), 0);
    EXPECT_EQ(host.emitted.size(), 1024u);
    EXPECT_EQ(host.tick(1200), 0);
    ASSERT_EQ(host.emitted.size(), 1250u);
    EXPECT_EQ(by_sensor(host.emitted).size(), 1250u);  // each sensor once
    EXPECT_EQ(host.checkpoint(0).first, 9000);  // only the reading that came during the pass
    EXPECT_EQ(host.tick(1300), 0);
    EXPECT_EQ(host.emitted.size(), 1250u);  // nothing until the next interval
    EXPECT_EQ(host.flush(1), 0);
    ASSERT_EQ(host.emitted.size(), 1251u);
    EXPECT_EQ(host.emitted.back().json()["sensor_id"], "s0");
    EXPECT_EQ(host.checkpoint(0).first, IOTS_NO_VALUE);
}

TEST(AggregatePlugin, ConfigValidation) {
    EXPECT_NE(HostedPlugin::create_error("aggregate", Json{{"interval_ms", 0}}).find("must be > 0"),
              std::string::npos);
    EXPECT_NE(HostedPlugin::create_error("aggregate", Json{{"interval_ms", "5s"}})
                  .find("config key 'interval_ms' must be an integer"),
              std::string::npos);
}

}  // namespace
}  // namespace iotstream::test
