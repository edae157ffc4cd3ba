// window plugin: statistics against an independent two-pass computation, watermarks, grace,
// lateness, hopping and session semantics, idle closing, restores, checkpoints and flush.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>

#include "hosted_plugin.hpp"

namespace iotstream::test {
namespace {

using Json = nlohmann::json;
constexpr int64_t kSecond = 1000;

Reading at(const std::string &sensor, int64_t t, int64_t offset = 0, uint32_t stream = 0) {
    Reading r{sensor, t};
    r.offset = offset;
    r.stream = stream;
    return r;
}

// (sensor, window_start) -> emitted window; fails the test on a duplicate.
std::map<std::pair<std::string, int64_t>, Json> windows_of(const HostedPlugin &host) {
    std::map<std::pair<std::string, int64_t>, Json> out;
    for (auto &e : host.emitted) {
        EXPECT_EQ(e.output, "windows");
        EXPECT_EQ(e.flags, IOTS_EMIT_ENVELOPE);
        Json w = e.json();
        EXPECT_EQ(e.key, w["sensor_id"]);
        bool fresh = out.emplace(std::make_pair(e.key, w["window_start"].get<int64_t>()), w).second;
        EXPECT_TRUE(fresh) << "window emitted twice: " << e.value;
    }
    return out;
}

void expect_stats(const Json &actual, const std::vector<double> &values, bool with_std) {
    ReferenceStats ref = reference_stats(values);
    ASSERT_TRUE(actual.is_object()) << actual;
    EXPECT_NEAR(actual["min"].get<double>(), ref.min, 1e-9);
    EXPECT_NEAR(actual["max"].get<double>(), ref.max, 1e-9);
    EXPECT_NEAR(actual["avg"].get<double>(), ref.mean, 1e-9);
    if (with_std) {
        EXPECT_NEAR(actual["std"].get<double>(), ref.std, 1e-9);
    } else {
        EXPECT_FALSE(actual.contains("std"));
    }
}

TEST(WindowPlugin, TumblingStatsMatchTwoPassReferenceOnOutOfOrderData) {
    HostedPlugin host("window", Json{{"size_s", 300}, {"grace_s", 10}});
    std::mt19937_64 rng(20260101);
    std::uniform_real_distribution<double> temperature(-5, 45), humidity(30, 80), pressure(1000, 1020);
    std::uniform_int_distribution<int64_t> jitter(0, 9 * kSecond);  // within grace: none late
    constexpr int kStreams = 3, kSensors = 40, kRecords = 30'000;
    const int64_t base = 1'767'225'600'000;  // 2026-01-01, a window boundary

    std::vector<Reading> all;
    std::vector<int64_t> next_offset(kStreams, 0);
    for (int n = 0; n < kRecords; ++n) {
        int sensor = n % kSensors;
        // Time advances 100 ms per record; each record is shifted back by up to 9 s.
        Reading r = at("sensor_" + std::to_string(sensor), base + n * 100 - jitter(rng));
        r.stream = static_cast<uint32_t>(sensor % kStreams);
        r.offset = next_offset[r.stream]++;
        r.temperature = temperature(rng);
        r.humidity = n % 97 == 0 ? kAbsent : humidity(rng);
        r.pressure = pressure(rng);
        all.push_back(r);
    }
    for (size_t from = 0; from < all.size(); from += 1000)
        host.process(std::vector<Reading>(all.begin() + static_cast<long>(from),
                                          all.begin() + static_cast<long>(std::min(all.size(), from + 1000))));
    EXPECT_TRUE(host.dead_letters.empty());
    EXPECT_FALSE(host.emitted.empty());  // windows closed while data was flowing
    EXPECT_EQ(host.flush(1), 0);

    struct Expected {
        std::vector<double> t, h, p;
    };
    std::map<std::pair<std::string, int64_t>, Expected> expected;
    for (auto &r : all) {
        auto &e = expected[{r.sensor, (r.event_time_ms / (300 * kSecond)) * 300}];
        e.t.push_back(r.temperature);
        if (!std::isnan(r.humidity)) e.h.push_back(r.humidity);
        e.p.push_back(r.pressure);
    }
    auto actual = windows_of(host);
    ASSERT_EQ(actual.size(), expected.size());
    for (auto &[key, e] : expected) {
        SCOPED_TRACE(key.first + " @ " + std::to_string(key.second));
        ASSERT_EQ(actual.count(key), 1u);
        const Json &w = actual[key];
        EXPECT_EQ(w["window_end"], key.second + 300);
        EXPECT_EQ(w["sample_count"], e.t.size());
        expect_stats(w["temperature"], e.t, true);
        expect_stats(w["humidity"], e.h, false);
        expect_stats(w["pressure"], e.p, false);
        EXPECT_EQ(w["anomalies"], Json::array());
    }
}

TEST(WindowPlugin, SingleReadingHasZeroStdAndAbsentFieldIsNull) {
    HostedPlugin host("window", nullptr);
    Reading r = at("a", 1000);
    r.pressure = kAbsent;
    host.process({r});
    EXPECT_TRUE(host.emitted.empty());
    EXPECT_EQ(host.flush(0), 0);  // not final: windows stay open
    EXPECT_TRUE(host.emitted.empty());
    EXPECT_EQ(host.flush(1), 0);
    ASSERT_EQ(host.emitted.size(), 1u);
    Json w = host.emitted[0].json();
    EXPECT_EQ(w["temperature"]["std"], 0.0);
    EXPECT_TRUE(w["pressure"].is_null());
    EXPECT_EQ(w["window_start"], 0);
    EXPECT_EQ(w["window_end"], 300);
}

TEST(WindowPlugin, GraceKeepsWindowOpenThenLateRecordIsDeadLettered) {
    HostedPlugin host("window", Json{{"size_s", 300}, {"grace_s", 10}});
    host.process({at("a", 1 * kSecond, 0), at("a", 305 * kSecond, 1)});
    host.process({at("a", 290 * kSecond, 2)});  // watermark 305 s < 300 + 10: still counts
    EXPECT_TRUE(host.emitted.empty());
    EXPECT_TRUE(host.dead_letters.empty());

    host.process({at("b", 310 * kSecond, 3)});  // watermark reaches end + grace: closes
    ASSERT_EQ(host.emitted.size(), 1u);
    Json w = host.emitted[0].json();
    EXPECT_EQ(w["window_start"], 0);
    EXPECT_EQ(w["sample_count"], 2);

    host.process({at("a", 299 * kSecond, 4), at("c", 311'500, 5), at("a", 5 * kSecond, 6)});
    ASSERT_EQ(host.dead_letters.size(), 2u);
    EXPECT_EQ(host.dead_letters[0].reason, "late");
    EXPECT_EQ(host.dead_letters[0].offset, 4);
    EXPECT_EQ(host.dead_letters[0].detail.rfind("0 ms late", 0), 0u) << host.dead_letters[0].detail;
    // Lateness is measured against the watermark when the record is reached (311.5 s).
    EXPECT_EQ(host.dead_letters[1].detail.rfind("1500 ms late", 0), 0u) << host.dead_letters[1].detail;
    EXPECT_NE(host.dead_letters[1].detail.find("[0, 300000)"), std::string::npos);
    EXPECT_EQ(host.emitted.size(), 1u);  // the closed window is never emitted again

    EXPECT_EQ(host.flush(1), 0);
    auto all = windows_of(host);
    EXPECT_EQ(all.size(), 4u);  // a@0, then a, b and c in [300 s, 600 s)
}

TEST(WindowPlugin, HoppingRecordJoinsEveryOpenWindowAndIsLateOnlyWhenNoneIsOpen) {
    HostedPlugin host("window", Json{{"type", "hopping"}, {"size_s", 60}, {"hop_s", 20}, {"grace_s", 0}});
    host.process({at("a", 50 * kSecond)});  // in [0,60), [20,80), [40,100)
    host.process({at("z", 85 * kSecond)});  // closes [0,60) and [20,80) (close at end + 0)
    host.process({at("a", 45 * kSecond)});  // only [40,100) is open: joins it, not late
    EXPECT_TRUE(host.dead_letters.empty());
    host.process({at("z", 100 * kSecond), at("a", 55 * kSecond)});  // all three closed: late
    ASSERT_EQ(host.dead_letters.size(), 1u);
    EXPECT_NE(host.dead_letters[0].detail.find("hopping window [40000, 100000)"), std::string::npos)
        << host.dead_letters[0].detail;
    EXPECT_EQ(host.flush(1), 0);
    auto w = windows_of(host);
    EXPECT_EQ(w[std::make_pair(std::string("a"), int64_t{0})]["sample_count"], 1);
    EXPECT_EQ(w[std::make_pair(std::string("a"), int64_t{20})]["sample_count"], 1);
    EXPECT_EQ(w[std::make_pair(std::string("a"), int64_t{40})]["sample_count"], 2);
    EXPECT_EQ(w[std::make_pair(std::string("a"), int64_t{40})]["window_end"], 100);
    EXPECT_EQ(w.count({"a", 60}), 0u);
}

TEST(WindowPlugin, SessionsExtendMergeAndCloseAfterGapPlusGrace) {
    HostedPlugin host("window", Json{{"type", "session"}, {"gap_s", 60}, {"grace_s", 60}});
    Reading a0 = at("a", 0, 0), a1 = at("a", 50 * kSecond, 1), b0 = at("a", 150 * kSecond, 2);
    a0.temperature = 10;
    a1.temperature = 20;
    b0.temperature = 30;
    host.process({a0, a1, b0});  // two sessions: [0, 110 s) and [150 s, 210 s)
    EXPECT_TRUE(host.emitted.empty());  // the first closes at 110 + 60 s, watermark is 150 s
    Reading bridge = at("a", 100 * kSecond, 3);
    bridge.temperature = 40;
    host.process({bridge});  // within 60 s of both: one session [0, 210 s)
    host.process({at("other", 269 * kSecond, 4)});
    EXPECT_TRUE(host.emitted.empty());  // 210 + 60 grace not yet reached
    host.process({at("other", 270 * kSecond, 5)});
    ASSERT_EQ(host.emitted.size(), 1u);
    Json w = host.emitted[0].json();
    EXPECT_EQ(w["sensor_id"], "a");
    EXPECT_EQ(w["window_start"], 0);
    EXPECT_EQ(w["window_end"], 210);
    EXPECT_EQ(w["sample_count"], 4);
    expect_stats(w["temperature"], {10, 20, 30, 40}, true);
    // A record whose would-be session [140 s, 200 s) has already closed is late.
    host.process({at("a", 140 * kSecond, 6)});
    ASSERT_EQ(host.dead_letters.size(), 1u);
    EXPECT_EQ(host.dead_letters[0].offset, 6);
    EXPECT_EQ(host.dead_letters[0].detail.rfind("10000 ms late", 0), 0u) << host.dead_letters[0].detail;
    EXPECT_EQ(host.checkpoint(0), std::make_pair(int64_t{4}, int64_t{270 * kSecond}));
}

TEST(WindowPlugin, IdleStreamClosesItsWindowsAfterTheTimeout) {
    HostedPlugin host("window", Json{{"size_s", 300}, {"grace_s", 10}, {"idle_timeout_ms", 30'000}});
    EXPECT_EQ(host.tick(1'000'000), 0);
    host.process({at("a", 1 * kSecond, 0), at("b", 299 * kSecond, 1), at("b", 301 * kSecond, 2)});
    EXPECT_EQ(host.tick(1'000'100), 0);  // the records' wall clock
    EXPECT_EQ(host.tick(1'020'000), 0);  // silent 19.9 s: not idle yet
    EXPECT_TRUE(host.emitted.empty());
    EXPECT_EQ(host.checkpoint(0).second, 301 * kSecond);
    EXPECT_EQ(host.tick(1'030'100), 0);  // silent 30 s: every open window closes
    ASSERT_EQ(host.emitted.size(), 3u);
    EXPECT_EQ(host.checkpoint(0), std::make_pair(IOTS_NO_VALUE, int64_t{610 * kSecond}));
    // A straggler for a closed window is late (dead-lettered), a new window opens normally.
    host.process({at("a", 302 * kSecond, 3), at("a", 700 * kSecond, 4)});
    ASSERT_EQ(host.dead_letters.size(), 1u);
    EXPECT_EQ(host.dead_letters[0].offset, 3);
    EXPECT_EQ(host.checkpoint(0).first, 4);
}

TEST(WindowPlugin, RestoredWatermarkSkipsReplaysButNotLateRecords) {
    HostedPlugin host("window", Json{{"size_s", 300}, {"grace_s", 10}});
    host.on_assign(2, 310 * kSecond);  // window [0, 300 s) was emitted by the previous owner
    EXPECT_EQ(host.checkpoint(2), std::make_pair(IOTS_NO_VALUE, int64_t{310 * kSecond}));
    host.process({at("a", 5 * kSecond, 100, 2), at("a", 305 * kSecond, 101, 2)});
    EXPECT_TRUE(host.dead_letters.empty());  // the replay is skipped silently
    EXPECT_EQ(host.checkpoint(2).first, 101);

    host.process({at("a", 620 * kSecond, 102, 2), at("a", 400 * kSecond, 103, 2)});
    ASSERT_EQ(host.dead_letters.size(), 1u);  // closed after the restore point: really late
    EXPECT_EQ(host.dead_letters[0].offset, 103);
    EXPECT_EQ(host.flush(1), 0);
    auto w = windows_of(host);
    ASSERT_EQ(w.size(), 2u);
    EXPECT_EQ(w[std::make_pair(std::string("a"), int64_t{300})]["sample_count"], 1);
    EXPECT_EQ(w[std::make_pair(std::string("a"), int64_t{600})]["sample_count"], 1);
}

TEST(WindowPlugin, SessionRestoreRebuildsFromReplayAndDiscardsEmittedSessions) {
    HostedPlugin host("window", Json{{"type", "session"}, {"gap_s", 60}, {"grace_s", 0}});
    host.on_assign(0, 200 * kSecond);
    // "a" ended at 100 s: its session closed at 160 s <= 200 s, already emitted.
    // "b" runs from 10 s to 165 s: still open at 200 s, so rebuilt in full from the replay.
    host.process({at("b", 10 * kSecond, 0), at("b", 60 * kSecond, 1), at("a", 100 * kSecond, 2),
                  at("b", 110 * kSecond, 3), at("b", 165 * kSecond, 4)});
    host.process({at("c", 300 * kSecond, 5)});
    EXPECT_TRUE(host.dead_letters.empty());
    ASSERT_EQ(host.emitted.size(), 1u);
    Json w = host.emitted[0].json();
    EXPECT_EQ(w["sensor_id"], "b");
    EXPECT_EQ(w["window_start"], 10);
    EXPECT_EQ(w["sample_count"], 4);
}

TEST(WindowPlugin, FinalFlushMovesTheCheckpointWatermarkPastEveryWindowItClosed) {
    // A closing stop (bounded run, in-process broker) emits open windows before their time;
    // the watermark it commits must say so, or the next owner emits them again (issue 12,
    // defect 1). Replaying everything from the start then emits nothing twice.
    const Json config{{"size_s", 300}, {"grace_s", 10}};
    const std::vector<Reading> input = {at("a", 1 * kSecond, 0), at("b", 290 * kSecond, 1),
                                        at("a", 310 * kSecond, 2)};
    HostedPlugin first("window", config);
    first.on_assign(0, IOTS_NO_VALUE);
    first.process(input);
    EXPECT_EQ(first.flush(1), 0);
    ASSERT_EQ(first.emitted.size(), 3u);  // [0, 300) of a and b, [300, 600) of a
    auto [oldest, watermark] = first.checkpoint(0);
    EXPECT_EQ(oldest, IOTS_NO_VALUE);
    EXPECT_EQ(watermark, 610 * kSecond);

    HostedPlugin next("window", config);
    next.on_assign(0, watermark);
    next.process(input);
    next.process({at("a", 700 * kSecond, 3)});
    EXPECT_EQ(next.flush(1), 0);
    ASSERT_EQ(next.emitted.size(), 1u);
    EXPECT_EQ(next.emitted[0].json()["window_start"], 600);
    EXPECT_TRUE(next.dead_letters.empty());
}

TEST(WindowPlugin, CheckpointReportsOldestOffsetInOpenWindows) {
    HostedPlugin host("window", Json{{"size_s", 300}, {"grace_s", 10}});
    host.process({at("a", 1 * kSecond, 10), at("b", 301 * kSecond, 11), at("a", 2 * kSecond, 12)});
    EXPECT_EQ(host.checkpoint(0), std::make_pair(int64_t{10}, int64_t{301 * kSecond}));
    host.process({at("b", 320 * kSecond, 13)});  // closes a's window [0, 300 s)
    EXPECT_EQ(host.checkpoint(0), std::make_pair(int64_t{11}, int64_t{320 * kSecond}));
    EXPECT_EQ(host.flush(1), 0);
    EXPECT_EQ(host.checkpoint(0).first, IOTS_NO_VALUE);
    EXPECT_EQ(host.checkpoint(9), std::make_pair(IOTS_NO_VALUE, IOTS_NO_VALUE));
}

TEST(WindowPlugin, StreamsHaveTheirOwnWatermarksAndRevokeDropsWithoutEmitting) {
    HostedPlugin host("window", Json{{"size_s", 300}, {"grace_s", 10}});
    host.process({at("a", 1 * kSecond, 0, 0), at("b", 1 * kSecond, 0, 1)});
    host.process({at("a", 400 * kSecond, 1, 0)});  // stream 0 closes its window only
    ASSERT_EQ(host.emitted.size(), 1u);
    EXPECT_EQ(host.emitted[0].key, "a");
    host.process({at("b", 2 * kSecond, 1, 1)});  // stream 1's watermark is still 1 s: not late
    EXPECT_TRUE(host.dead_letters.empty());
    host.on_revoke(1);
    EXPECT_EQ(host.flush(1), 0);
    for (auto &e : host.emitted) EXPECT_NE(e.key, "b");
}

TEST(WindowPlugin, AnomalyNamesAreDistinctAndSorted) {
    HostedPlugin host("window", nullptr, {"temperature_out_of_range", "humidity_out_of_range", "low_battery"});
    Reading r1 = at("a", 1000), r2 = at("a", 2000), r3 = at("a", 3000);
    r1.anomaly_bits = 0b100;  // low_battery
    r2.anomaly_bits = 0b101;  // + temperature
    r3.anomaly_bits = 0b100;
    host.process({r1, r2, r3});
    EXPECT_EQ(host.flush(1), 0);
    ASSERT_EQ(host.emitted.size(), 1u);
    EXPECT_EQ(host.emitted[0].json()["anomalies"],
              Json::parse(R"(["low_battery","temperature_out_of_range"])"));
}

TEST(WindowPlugin, RefusedEmitLeavesWindowOpenUntilItSucceeds) {
    HostedPlugin host("window", Json{{"size_s", 60}, {"grace_s", 0}});
    host.refuse_emits = true;
    host.process({at("a", 1 * kSecond, 3), at("b", 61 * kSecond, 4)});  // process still succeeds
    EXPECT_NE(host.tick(0), 0);
    EXPECT_EQ(host.checkpoint(0).first, 3);  // the commit stays behind the unemitted window
    host.refuse_emits = false;
    EXPECT_EQ(host.tick(100), 0);
    auto w = windows_of(host);
    ASSERT_EQ(w.size(), 1u);
    EXPECT_EQ(w.begin()->second["sample_count"], 1);
}

TEST(WindowPlugin, BadEventTimeIsDeadLettered) {
    HostedPlugin host("window", nullptr);
    host.process({at("a", IOTS_NO_VALUE, 7)});
    ASSERT_EQ(host.dead_letters.size(), 1u);
    EXPECT_EQ(host.dead_letters[0].reason, "bad_event_time");
}

// The decoder's range (years 0000-9999, plugin.h) is windowed to its last millisecond at
// both ends; a millisecond outside it is bad_event_time.
TEST(WindowPlugin, WindowsTheWholeDecodedRangeAndOnlyIt) {
    HostedPlugin host("window", Json{{"size_s", 60}, {"grace_s", 0}});
    host.process({at("a", IOTS_MIN_EVENT_TIME_MS, 1), at("a", IOTS_MIN_EVENT_TIME_MS - 1, 2),
                  at("b", IOTS_MAX_EVENT_TIME_MS, 3), at("b", IOTS_MAX_EVENT_TIME_MS + 1, 4)});
    ASSERT_EQ(host.dead_letters.size(), 2u);
    for (auto &d : host.dead_letters) {
        EXPECT_EQ(d.reason, "bad_event_time");
        EXPECT_TRUE(d.offset == 2 || d.offset == 4) << d.offset;
    }
    EXPECT_EQ(host.flush(1), 0);
    auto w = windows_of(host);
    ASSERT_EQ(w.size(), 2u);
    // 0000-01-01T00:00:00 and 9999-12-31T23:59:00, in epoch seconds (Python's datetime agrees).
    const int64_t first = -62'167'219'200, last = 253'402'300'740;
    ASSERT_TRUE(w.count({"a", first})) << w.begin()->first.second;
    EXPECT_EQ(w.at({"a", first})["window_end"], first + 60);
    ASSERT_TRUE(w.count({"b", last}));
    EXPECT_EQ(w.at({"b", last})["window_end"], last + 60);
    EXPECT_EQ(w.at({"b", last})["sample_count"], 1);
}

// process() works in chunks (lookups first, then the records in order); a record's sensor may
// be created by an earlier record of the same chunk, and its lateness depends on the watermark
// those earlier records moved. One large batch must therefore give exactly what the same
// records give one per batch: the same windows and the same dead letters.
TEST(WindowPlugin, LargeBatchMatchesRecordAtATimeInEveryMode) {
    const int64_t base = 1'767'225'600'000;
    std::mt19937_64 rng(7);
    std::vector<Reading> records;
    for (int64_t n = 0; n < 3000; ++n) {
        // Few sensors, so most chunks repeat a sensor, and new ones keep appearing; streams
        // interleave within the batch; 5% of records jump far back (late), a few lack a time.
        std::string sensor = "s" + std::to_string(rng() % (n < 1500 ? 12 : 40));
        int64_t t = base + n * 400 - static_cast<int64_t>(rng() % 20'000);
        if (rng() % 20 == 0) t -= 90 * kSecond;
        if (rng() % 500 == 0) t = IOTS_NO_VALUE;
        Reading r = at(sensor, t, n, static_cast<uint32_t>(rng() % 3));
        r.temperature = static_cast<double>(rng() % 1000) / 10.0;
        records.push_back(r);
    }
    auto outcome = [&](const Json &config, bool one_batch) {
        HostedPlugin host("window", config);
        if (one_batch) {
            host.process(records);
        } else {
            for (const Reading &r : records) host.process(std::vector<Reading>{r});
        }
        EXPECT_EQ(host.flush(1), 0);
        std::vector<std::string> results;
        for (const Emitted &e : host.emitted) results.push_back("emit " + e.key + " " + e.value);
        for (const DeadLettered &d : host.dead_letters)
            results.push_back("dead " + d.sensor + "@" + std::to_string(d.offset) + " " + d.reason +
                              ": " + d.detail);
        std::sort(results.begin(), results.end());
        return results;
    };
    for (const Json &config : {Json{{"size_s", 30}, {"grace_s", 5}},
                               Json{{"type", "hopping"}, {"size_s", 30}, {"hop_s", 10}, {"grace_s", 5}},
                               Json{{"type", "session"}, {"gap_s", 3}, {"grace_s", 5}}}) {
        std::vector<std::string> batched = outcome(config, true);
        std::vector<std::string> single = outcome(config, false);
        size_t late = static_cast<size_t>(std::count_if(batched.begin(), batched.end(), [](const std::string &line) {
            return line.find(" late: ") != std::string::npos;
        }));
        EXPECT_GT(late, 10u) << config;  // the comparison covers lateness decisions
        EXPECT_EQ(batched, single) << config;
    }
}

TEST(WindowPlugin, ConfigValidation) {
    struct Case {
        Json config;
        const char *expected;
    } cases[] = {
        {{{"type", "sliding"}}, "config key 'type' must be"},
        {{{"type", "hopping"}, {"size_s", 60}, {"hop_s", 120}}, "must not exceed size_s"},
        {{{"type", "hopping"}, {"size_s", 600}, {"hop_s", 1}}, "at most 100"},
        {{{"hop_s", 60}}, "use type \"hopping\""},
        {{{"type", "session"}, {"hop_s", 60}}, "does not apply to session"},
        {{{"size_s", 0}}, "config key 'size_s' must be in [1,"},
        {{{"grace_s", -1}}, "config key 'grace_s' must be in [0,"},
        {{{"gap_s", "1m"}}, "config key 'gap_s' must be an integer"},
        {{{"idle_timeout_ms", 0}}, "idle_timeout_ms"},
        {{{"output", ""}}, "'output' must not be empty"},
        {{{"windows", 5}}, "config key 'windows' is not known"},
    };
    for (auto &c : cases) {
        std::string error = HostedPlugin::create_error("window", c.config);
        EXPECT_NE(error.find(c.expected), std::string::npos) << c.config << " -> " << error;
    }
    EXPECT_EQ(HostedPlugin::create_error("window", Json{{"type", "hopping"}, {"size_s", 300}, {"hop_s", 60}}), "");
    EXPECT_EQ(HostedPlugin::create_error("window", Json{{"hop_s", 300}}), "");
}

}  // namespace
}  // namespace iotstream::test
