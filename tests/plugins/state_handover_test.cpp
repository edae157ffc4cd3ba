// State hand-over on hot replace (plugin.h ABI 1.2, issue 12 defect 2): each bundled stateful
// stage exports a stream's open state and a fresh instance imports it, after which the pair
// behaves exactly like one instance that never stopped: no window split, re-emitted or
// skipped, no reading aggregated twice or lost. Truncated or foreign state is refused.
#include <gtest/gtest.h>

#include <map>
#include <random>

#include "hosted_plugin.hpp"

namespace iotstream::test {
namespace {

using Json = nlohmann::json;
constexpr int64_t kBase = 1'767'225'600'000;  // 2026-01-01, a window boundary

// Readings of 12 sensors on 3 streams, every 700 ms for 200 s, hot now and then (anomaly bits).
std::vector<Reading> readings() {
    std::mt19937_64 rng(12);
    std::uniform_real_distribution<double> temperature(-5, 45), humidity(30, 80);
    std::vector<Reading> all;
    std::vector<int64_t> offsets(3, 0);
    for (int n = 0; n < 300; ++n) {
        const int sensor = n % 12;
        Reading r{"sensor_" + std::to_string(sensor), kBase + n * 700};
        r.stream = static_cast<uint32_t>(sensor % 3);
        r.offset = offsets[r.stream]++;
        r.temperature = temperature(rng);
        r.humidity = n % 17 == 0 ? kAbsent : humidity(rng);
        r.anomaly_bits = n % 23 == 0 ? 1u : 0u;
        all.push_back(r);
    }
    return all;
}

std::vector<Reading> slice(const std::vector<Reading> &all, size_t from, size_t to) {
    return {all.begin() + static_cast<long>(from), all.begin() + static_cast<long>(to)};
}

// Every emitted value by key: "<sensor> <window_start>" for windows.
std::multimap<std::string, std::string> windows(const std::vector<Emitted> &emitted) {
    std::multimap<std::string, std::string> out;
    for (const Emitted &e : emitted)
        out.emplace(e.key + " " + std::to_string(e.json()["window_start"].get<int64_t>()), e.value);
    return out;
}

// One instance that never stops, against one replaced after `cut` readings: the replaced pair
// must emit exactly what the single instance emits (values byte for byte), and checkpoint alike.
void expect_window_handover_is_seamless(const Json &config, size_t cut) {
    const std::vector<Reading> all = readings();
    const std::vector<std::string> rules = {"hot"};
    HostedPlugin single("window", config, rules), before("window", config, rules), after("window", config, rules);
    for (uint32_t s = 0; s < 3; ++s) {
        single.on_assign(s, IOTS_NO_VALUE);
        before.on_assign(s, IOTS_NO_VALUE);
        after.on_assign(s, IOTS_NO_VALUE);
    }
    single.process(slice(all, 0, cut));
    before.process(slice(all, 0, cut));
    for (uint32_t s = 0; s < 3; ++s) {
        const std::string state = before.export_state(s);
        EXPECT_FALSE(state.empty());
        EXPECT_EQ(before.export_state(s), state) << "export_state must not change the instance";
        ASSERT_EQ(after.import_state(s, state, 1), "");
        EXPECT_EQ(after.checkpoint(s), single.checkpoint(s)) << "stream " << s;
    }
    single.process(slice(all, cut, all.size()));
    after.process(slice(all, cut, all.size()));
    ASSERT_EQ(single.flush(1), 0);
    ASSERT_EQ(after.flush(1), 0);
    std::vector<Emitted> replaced = before.emitted;
    replaced.insert(replaced.end(), after.emitted.begin(), after.emitted.end());
    EXPECT_FALSE(before.emitted.empty()) << "some windows closed before the swap";
    EXPECT_FALSE(after.emitted.empty()) << "some windows were open across it";
    EXPECT_EQ(windows(replaced), windows(single.emitted));
    EXPECT_EQ(replaced.size(), single.emitted.size());
    for (uint32_t s = 0; s < 3; ++s) EXPECT_EQ(after.checkpoint(s), single.checkpoint(s));
}

TEST(StateHandover, BundledStatefulStagesDeclareIt) {
    for (const char *name : {"window", "aggregate"}) {
        const iots_plugin_descriptor_t &d = HostedPlugin::descriptor(name);
        EXPECT_EQ(d.abi_minor, IOTS_PLUGIN_ABI_MINOR) << name;
        EXPECT_EQ(d.state_version, 1u) << name;
        EXPECT_EQ(d.state_min_version, 1u) << name;
        EXPECT_NE(d.export_state, nullptr) << name;
        EXPECT_NE(d.import_state, nullptr) << name;
        EXPECT_NE(d.checkpoint, nullptr) << name;
    }
    // The anomaly rules hold nothing between batches: no checkpoint, no state to hand over, so
    // a new version simply takes over at a batch boundary.
    const iots_plugin_descriptor_t &anomaly = HostedPlugin::descriptor("anomaly");
    EXPECT_EQ(anomaly.state_version, 0u);
    EXPECT_EQ(anomaly.export_state, nullptr);
    EXPECT_EQ(anomaly.import_state, nullptr);
    EXPECT_EQ(anomaly.checkpoint, nullptr);
}

TEST(StateHandover, TumblingWindowsOpenAcrossASwapAreEmittedOnceAndComplete) {
    expect_window_handover_is_seamless(Json{{"size_s", 60}, {"grace_s", 5}}, 150);
}

TEST(StateHandover, HoppingWindowsOpenAcrossASwapAreEmittedOnceAndComplete) {
    expect_window_handover_is_seamless(Json{{"type", "hopping"}, {"size_s", 60}, {"hop_s", 20}, {"grace_s", 5}}, 137);
}

TEST(StateHandover, SessionsOpenAcrossASwapAreEmittedOnceAndComplete) {
    expect_window_handover_is_seamless(Json{{"type", "session"}, {"gap_s", 6}, {"grace_s", 2}}, 151);
}

TEST(StateHandover, WindowStateOfOtherSettingsTruncatedOrTrailingIsRefused) {
    const std::vector<Reading> all = readings();
    HostedPlugin before("window", Json{{"size_s", 60}, {"grace_s", 5}});
    before.on_assign(0, IOTS_NO_VALUE);
    before.process(slice(all, 0, 100));
    const std::string state = before.export_state(0);

    HostedPlugin other("window", Json{{"size_s", 30}, {"grace_s", 5}});
    other.on_assign(0, IOTS_NO_VALUE);
    EXPECT_NE(other.import_state(0, state, 1).find("configured differently"), std::string::npos);

    // Every proper prefix, and the state with a byte more, is refused; none crashes.
    HostedPlugin same("window", Json{{"size_s", 60}, {"grace_s", 5}});
    same.on_assign(0, IOTS_NO_VALUE);
    for (size_t len = 1; len < state.size(); ++len)
        EXPECT_NE(same.import_state(0, state.substr(0, len), 1), "") << "prefix of " << len << " bytes";
    EXPECT_NE(same.import_state(0, state + '\0', 1).find("unread"), std::string::npos);
    EXPECT_NE(same.import_state(0, state, 2).find("format 2"), std::string::npos);
    // A refused import leaves the instance as on_assign made it: it holds nothing.
    EXPECT_EQ(same.checkpoint(0).first, IOTS_NO_VALUE);
    EXPECT_EQ(same.import_state(0, state, 1), "");
    EXPECT_EQ(same.checkpoint(0), before.checkpoint(0));
}

TEST(StateHandover, AStreamWithoutStateExportsNothing) {
    HostedPlugin window("window", Json::object()), aggregate("aggregate", Json::object());
    EXPECT_EQ(window.export_state(7), "");
    EXPECT_EQ(aggregate.export_state(7), "");
    EXPECT_EQ(window.import_state(7, "", 1), "");
    EXPECT_EQ(aggregate.import_state(7, "", 1), "");
}

// Sample counts per sensor over every aggregate emitted.
std::map<std::string, int64_t> counts(const std::vector<Emitted> &emitted) {
    std::map<std::string, int64_t> out;
    for (const Emitted &e : emitted) out[e.key] += e.json()["sample_count"].get<int64_t>();
    return out;
}

TEST(StateHandover, AggregateSumsCarryOverAndCountEachReadingOnce) {
    const std::vector<Reading> all = readings();
    const Json config{{"interval_ms", 1000}};
    HostedPlugin single("aggregate", config), before("aggregate", config), after("aggregate", config);
    single.process(slice(all, 0, 120));
    before.process(slice(all, 0, 120));
    for (uint32_t s = 0; s < 3; ++s) {
        const std::string state = before.export_state(s);
        ASSERT_EQ(after.import_state(s, state, 1), "");
        EXPECT_EQ(after.checkpoint(s), before.checkpoint(s)) << "stream " << s;
    }
    single.process(slice(all, 120, all.size()));
    after.process(slice(all, 120, all.size()));
    ASSERT_EQ(single.flush(1), 0);
    ASSERT_EQ(after.flush(1), 0);
    EXPECT_TRUE(before.emitted.empty());
    ASSERT_EQ(after.emitted.size(), single.emitted.size());
    std::map<std::string, Json> want, got;
    for (const Emitted &e : single.emitted) want[e.key] = e.json();
    for (const Emitted &e : after.emitted) got[e.key] = e.json();
    for (auto &[sensor, w] : want) {
        for (const char *key : {"sample_count", "avg_temperature", "avg_humidity", "avg_pressure", "latest_timestamp"})
            EXPECT_EQ(got[sensor][key], w[key]) << sensor << " " << key;
    }
}

TEST(StateHandover, AggregateSwappedMidEmissionEmitsTheRestAtOnce) {
    // 2100 sensors on one stream: an emission pass emits at most 512 per tick, so the swap
    // comes while the pass is under way. The new version starts a pass at once for the rest.
    std::vector<Reading> first, second;
    for (int n = 0; n < 2100; ++n) first.push_back(Reading{"s" + std::to_string(n), kBase + n, 20.0});
    for (int n = 0; n < 2100; n += 7) second.push_back(Reading{"s" + std::to_string(n), kBase + 5000 + n, 21.0});
    for (size_t i = 0; i < first.size(); ++i) first[i].offset = static_cast<int64_t>(i);
    for (size_t i = 0; i < second.size(); ++i) second[i].offset = static_cast<int64_t>(first.size() + i);
    const Json config{{"interval_ms", 1000}};
    HostedPlugin before("aggregate", config), after("aggregate", config);
    before.process(first);
    EXPECT_EQ(before.tick(0), 0);
    EXPECT_EQ(before.tick(1000), 0);  // the pass begins: 512 of 2100 emitted
    EXPECT_EQ(before.emitted.size(), 512u);
    before.process(second);
    ASSERT_EQ(after.import_state(0, before.export_state(0), 1), "");
    // Exact after the import: the oldest reading of a sensor the pass had not reached yet.
    EXPECT_EQ(after.checkpoint(0).first, 512);
    // Due at once: the rest of the pass, and the new readings, 512 a tick.
    for (int t = 0; t < 5; ++t) EXPECT_EQ(after.tick(1100 + t), 0);
    std::map<std::string, int64_t> total = counts(before.emitted);
    for (auto &[sensor, n] : counts(after.emitted)) total[sensor] += n;
    std::map<std::string, int64_t> want;
    for (const Reading &r : first) ++want[r.sensor];
    for (const Reading &r : second) ++want[r.sensor];
    EXPECT_EQ(total, want);
    EXPECT_EQ(after.checkpoint(0).first, IOTS_NO_VALUE);
}

TEST(StateHandover, AggregateStateTruncatedIsRefused) {
    const std::vector<Reading> all = readings();
    HostedPlugin before("aggregate", Json::object()), after("aggregate", Json::object());
    before.process(slice(all, 0, 50));
    const std::string state = before.export_state(0);
    for (size_t len = 1; len < state.size(); ++len)
        EXPECT_NE(after.import_state(0, state.substr(0, len), 1), "") << "prefix of " << len << " bytes";
    EXPECT_EQ(after.checkpoint(0).first, IOTS_NO_VALUE);
}

}  // namespace
}  // namespace iotstream::test
