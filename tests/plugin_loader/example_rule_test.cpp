// The out-of-tree examples (docs/examples/rule_plugin/), built exactly as the guide says, loaded
// through the real loader and run through a fake host: spike_rule.c is dropped into a watched
// folder and picked up by poll(); minimal_rule.c is the short rule the guide opens with.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <iterator>

#include <gtest/gtest.h>

#include "loader_test_support.hpp"

namespace iotstream::test {
namespace {

// Compiles docs/examples/rule_plugin/<source> with the guide's command line into `out`.
void build_example(const std::string &source, const fs::path &out) {
    const std::string command = std::string(IOTSTREAM_C_COMPILER) +
                                " -std=c99 -Wall -Wextra -Werror -O2 -shared -fPIC -I" +
                                IOTSTREAM_TEST_SOURCE_DIR "/core/include -o '" + out.string() + "' " +
                                IOTSTREAM_TEST_SOURCE_DIR "/docs/examples/rule_plugin/" + source;
    ASSERT_EQ(std::system(command.c_str()), 0) << command;
}

class ExampleRule : public ::testing::Test {
protected:
    void SetUp() override {
        build_example("spike_rule.c", build / "spike_rule.so");
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
    FakeHost host{kTemperatureOnly};
};

TEST_F(ExampleRule, FiresOnAJumpBetweenConsecutiveReadingsOfASensor) {
    const PluginRef plugin = drop_and_pick_up();
    ASSERT_NE(plugin, nullptr);
    EXPECT_EQ(plugin->name(), "spike_rule");
    EXPECT_TRUE(plugin->is_rule());

    auto rule = host.instantiate(plugin, Json{{"max_jump", 5}});
    ReadingBatch batch(kTemperatureOnly);
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
    ReadingBatch later(kTemperatureOnly);
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
    ReadingBatch first(kTemperatureOnly), second(kTemperatureOnly);
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

class MinimalRule : public ::testing::Test {
protected:
    void SetUp() override {
        build_example("minimal_rule.c", folder_dir / "minimal_rule.so");
        folder = std::make_unique<PluginDirectory>(folder_dir.path());
        plugin = folder->find("minimal_rule");
        ASSERT_NE(plugin, nullptr) << (folder->rejections().empty() ? "" : folder->rejections()[0].reason);
    }

    TempDir folder_dir;
    std::unique_ptr<PluginDirectory> folder;
    PluginRef plugin;
    FakeHost host{kTemperatureOnly};
};

std::string read_text(const fs::path &file) {
    std::ifstream in(file);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

TEST_F(MinimalRule, IsShorterThan35LinesAndTheGuideShowsItVerbatim) {
    const std::string source = read_text(IOTSTREAM_TEST_SOURCE_DIR "/docs/examples/rule_plugin/minimal_rule.c");
    const auto lines = std::count(source.begin(), source.end(), '\n');
    EXPECT_GT(lines, 0);
    EXPECT_LT(lines, 35) << "the guide promises a rule in under 35 lines";
    // The guide quotes everything after the file comment.
    const std::string body = source.substr(source.find('\n') + 1);
    EXPECT_NE(read_text(IOTSTREAM_TEST_SOURCE_DIR "/docs/writing-a-rule-plugin.md").find("```c\n" + body + "```"),
              std::string::npos)
        << "docs/writing-a-rule-plugin.md must show minimal_rule.c as it is";
}

TEST_F(MinimalRule, DescribesItsKeysAndLeavesUnnamedCallbacksNull) {

    EXPECT_TRUE(plugin->is_rule());
    const Json described = plugin->describe();
    EXPECT_EQ(described["abi"], std::to_string(IOTS_PLUGIN_ABI_MAJOR) + "." + std::to_string(IOTS_PLUGIN_ABI_MINOR));
    ASSERT_EQ(described["config"].size(), 2u);
    EXPECT_EQ(described["config"][0]["name"], "field");
    EXPECT_EQ(described["config"][0]["default"], "temperature");
    EXPECT_EQ(described["config"][1]["name"], "threshold");
    EXPECT_EQ(described["config"][1]["default"], 50);
    // Callbacks left out of the designated initializer are NULL.
    const iots_plugin_descriptor_t &d = plugin->descriptor();
    EXPECT_EQ(d.tick, nullptr);
    EXPECT_EQ(d.on_assign, nullptr);
    EXPECT_EQ(d.on_revoke, nullptr);
    EXPECT_EQ(d.checkpoint, nullptr);
    EXPECT_EQ(d.flush, nullptr);
}

TEST_F(MinimalRule, AlertsOnReadingsAboveTheThreshold) {
    auto rule = host.instantiate(plugin, Json{{"threshold", 30}});
    ReadingBatch batch(kTemperatureOnly);
    batch.add("thermo-1", 1'000, 29.5);
    batch.add("thermo-2", 1'000, 31.0);        // fires
    batch.add("thermo-3", 1'000, std::nan(""));  // no temperature: never above
    batch.add("thermo-1", 2'000, 30.0);        // equal is not above
    batch.add("thermo-1", 3'000, 45.5);        // fires
    rule->process(batch.view());

    const FakeContext &ctx = *host.contexts().back();
    ASSERT_EQ(ctx.anomalies.size(), 2u);
    EXPECT_EQ(ctx.anomalies[0].sensor, "thermo-2");
    EXPECT_DOUBLE_EQ(ctx.anomalies[0].value, 31.0);
    EXPECT_EQ(ctx.anomalies[1].index, 4u);
    EXPECT_DOUBLE_EQ(ctx.anomalies[1].value, 45.5);
    EXPECT_EQ(host.rule(ctx.anomalies[0].rule_id), "above_threshold");
    rule.reset();
    EXPECT_EQ(ctx.live_allocations, 0) << "the plugin leaked host memory";
}

TEST_F(MinimalRule, UsesItsDefaultThresholdAndRefusesAnUnknownField) {
    auto rule = host.instantiate(plugin);
    ReadingBatch batch(kTemperatureOnly);
    batch.add("thermo-1", 1'000, 49.0);
    batch.add("thermo-1", 2'000, 51.0);
    rule->process(batch.view());
    ASSERT_EQ(host.contexts().back()->anomalies.size(), 1u);
    EXPECT_DOUBLE_EQ(host.contexts().back()->anomalies[0].value, 51.0);

    try {
        host.instantiate(plugin, Json{{"field", "humidity"}});
        FAIL() << "a field the readings lack was accepted";
    } catch (const Error &e) {
        EXPECT_EQ(std::string(e.what()), (folder_dir / "minimal_rule.so").string() +
                                             ": plugin 'minimal_rule' create() failed: readings have no field "
                                             "'humidity', or 64 rules exist already");
    }
    EXPECT_EQ(host.contexts().back()->live_allocations, 0);
}

}  // namespace
}  // namespace iotstream::test
