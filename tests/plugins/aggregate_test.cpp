// aggregate plugin: interval emission of per-sensor averages, reset, checkpoint and revoke.
#include <gtest/gtest.h>

#include <map>

#include "fake_host.hpp"

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
    FakeHost host("aggregate", Json{{"interval_ms", 5000}});
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
    FakeHost host("aggregate", nullptr);
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
    FakeHost host("aggregate", nullptr);
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
    FakeHost host("aggregate", Json{{"interval_ms", 100}});
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
    FakeHost host("aggregate", Json{{"interval_ms", 1600}});
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

TEST(AggregatePlugin, ConfigValidation) {
    EXPECT_NE(FakeHost::create_error("aggregate", Json{{"interval_ms", 0}}).find("must be > 0"),
              std::string::npos);
    EXPECT_NE(FakeHost::create_error("aggregate", Json{{"interval_ms", "5s"}})
                  .find("config key 'interval_ms' must be an integer"),
              std::string::npos);
}

}  // namespace
}  // namespace iotstream::test
