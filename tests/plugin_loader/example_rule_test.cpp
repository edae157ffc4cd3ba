// The out-of-tree example (docs/examples/rule_plugin/spike_rule.c), built exactly as the guide
// says, dropped into a watched folder, picked up by poll(), and run through a fake host.
#include <cmath>
#include <cstdlib>

#include <gtest/gtest.h>

#include "loader_test_support.hpp"

namespace iotstream::test {
namespace {

// Compiles the example with the guide's command line into `out`.
void build_example(const fs::path &out) {
    const std::string command = std::string(IOTSTREAM_C_COMPILER) +
                                " -std=c99 -Wall -Wextra -Werror -O2 -shared -fPIC -I" +
                                IOTSTREAM_TEST_SOURCE_DIR "/core/include -o '" + out.string() + "' " +
                                IOTSTREAM_TEST_SOURCE_DIR "/docs/examples/rule_plugin/spike_rule.c";
    ASSERT_EQ(std::system(command.c_str()), 0) << command;
}

class ExampleRule : public ::testing::Test {
protected:
    void SetUp() override {
        build_example(build / "spike_rule.so");
        watched = std::make_unique<PluginDirectory>(watched_dir.path(),
                                                    PluginDirectory::Options{std::chrono::milliseconds(100)});
    }

    // Drops the built plugin into the watched folder and waits for poll() to report it.
    PluginRef drop_and_pick_up() {
        const auto dropped = std::chrono::steady_clock::now();
        fs::copy_file(build / "spike_rule.so", watched_dir / ".spike_rule.so.tmp");
        fs::rename(watched_dir / ".spike_rule.so.tmp", watched_dir / "spike_rule.so");
        const auto events = poll_until(*watched, [](const auto &all) { return !all.empty(); },
                                       std::chrono::seconds(2));
        const auto waited = std::chrono::steady_clock::now() - dropped;
        EXPECT_LE(waited, std::chrono::seconds(2)) << "a new file must be live within 2 s";
        EXPECT_EQ(events.size(), 1u);
        if (events.empty()) return nullptr;
        EXPECT_EQ(events[0].type, PluginEvent::Type::added) << events[0].rejection.reason;
        return events[0].plugin;
    }

    TempDir build_dir, watched_dir;
    const fs::path &build = build_dir.path();
    std::unique_ptr<PluginDirectory> watched;
    FakeHost host;
};

TEST_F(ExampleRule, FiresOnAJumpBetweenConsecutiveReadingsOfASensor) {
    const PluginRef plugin = drop_and_pick_up();
    ASSERT_NE(plugin, nullptr);
    EXPECT_EQ(plugin->name(), "spike_rule");
    EXPECT_TRUE(plugin->is_rule());

    auto rule = host.instantiate(plugin, Json{{"max_jump", 5}});
    TestBatch batch;
    batch.add("thermo-1", 1'000, 21.0);
    batch.add("thermo-2", 1'000, 20.0);
    batch.add("thermo-1", 2'000, 22.5);   // +1.5: normal
    batch.add("thermo-2", 2'000, 24.0);   // +4.0: normal
    batch.add("thermo-1", 3'000, 30.0);   // +7.5: fires
    batch.add("thermo-1", 2'500, 10.0);   // older than the last reading: ignored
    batch.add("thermo-2", 4'000, std::nan(""));  // no temperature: ignored
    batch.add("thermo-2", 5'000, 17.5);   // -6.5: fires
    rule->process(batch.view());

    const FakeContext &ctx = *host.contexts().back();
    ASSERT_EQ(ctx.anomalies.size(), 2u);
    EXPECT_EQ(ctx.anomalies[0].sensor, "thermo-1");
    EXPECT_EQ(ctx.anomalies[0].index, 4u);
    EXPECT_DOUBLE_EQ(ctx.anomalies[0].value, 7.5);
    EXPECT_EQ(ctx.anomalies[1].sensor, "thermo-2");
    EXPECT_DOUBLE_EQ(ctx.anomalies[1].value, -6.5);
    EXPECT_EQ(host.rule(ctx.anomalies[0].rule_id), "temperature_spike");

    // Readings more than max_gap_s apart are not compared.
    TestBatch later;
    later.add("thermo-1", 3'000 + 601'000, 50.0);
    rule->process(later.view());
    EXPECT_EQ(ctx.anomalies.size(), 2u);

    rule.reset();
    EXPECT_EQ(ctx.live_allocations, 0) << "the plugin leaked host memory";
}

TEST_F(ExampleRule, KeepsManySensorsAndForgetsARevokedStream) {
    const PluginRef plugin = drop_and_pick_up();
    ASSERT_NE(plugin, nullptr);
    auto rule = host.instantiate(plugin);
    const FakeContext &ctx = *host.contexts().back();

    // 5000 sensors over two streams: the table grows several times.
    TestBatch first, second;
    for (int s = 0; s < 5000; ++s) {
        const std::string id = "sensor-" + std::to_string(s);
        first.add(id, 1'000, 20.0, static_cast<uint32_t>(s % 2));
        second.add(id, 2'000, 30.0, static_cast<uint32_t>(s % 2));  // +10 for every sensor
    }
    rule->process(first.view());
    EXPECT_TRUE(ctx.anomalies.empty());
    rule->on_revoke(1);  // odd sensors start fresh: their next reading is a first reading
    rule->process(second.view());
    EXPECT_EQ(ctx.anomalies.size(), 2500u);
    for (const auto &anomaly : ctx.anomalies) EXPECT_EQ(anomaly.index % 2, 0u);

    rule.reset();
    EXPECT_EQ(ctx.live_allocations, 0);
}

TEST_F(ExampleRule, RefusesANonPositiveMaxJumpAtCreate) {
    const PluginRef plugin = drop_and_pick_up();
    ASSERT_NE(plugin, nullptr);
    try {
        host.instantiate(plugin, Json{{"max_jump", 0}});
        FAIL() << "max_jump 0 was accepted";
    } catch (const Error &e) {
        EXPECT_EQ(std::string(e.what()), (watched_dir / "spike_rule.so").string() +
                                             ": plugin 'spike_rule' create() failed: max_jump must be "
                                             "greater than 0, got 0");
    }
    EXPECT_EQ(host.contexts().back()->live_allocations, 0);
}

}  // namespace
}  // namespace iotstream::test
