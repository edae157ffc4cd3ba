// The host's side of a hot replace (plugin.h "State hand-over", ABI 1.2; issue 12 defect 2):
// LiveInstances hands each assigned stream's state from the running instance to the new
// version, refuses (keeping the running one, with a log line naming both versions) when the
// state cannot travel, drains stateless stages as before, and refuses removing a required stage.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <mutex>

#include "iotstream/iotstream.h"
#include "loader_test_support.hpp"

namespace iotstream::test {
namespace {

using ::testing::HasSubstr;

// The library's error lines while it lives.
class ErrorLog {
public:
    ErrorLog() { iots_log_set_callback(&ErrorLog::receive, this); }
    ~ErrorLog() { iots_log_set_callback(nullptr, nullptr); }
    std::string text() {
        std::lock_guard lock(mutex_);
        return text_;
    }

private:
    static void receive(void *opaque, iots_log_level_t level, const char *component, const char *message) {
        auto *self = static_cast<ErrorLog *>(opaque);
        if (level < IOTS_LOG_ERROR) return;
        std::lock_guard lock(self->mutex_);
        self->text_ += std::string(component) + ": " + message + "\n";
    }
    std::mutex mutex_;
    std::string text_;
};

// A folder with one fixture as "stage.so", its directory, a fake host and the live set, with
// streams 0 and 1 assigned and `required` telling whether the stage is configured.
struct Swap {
    explicit Swap(const std::string &first, bool required = false)
        : file(install(first, dir.path(), "stage.so")),
          plugins(dir.path(), PluginDirectory::Options{std::chrono::milliseconds(0)}),
          host{kTemperatureOnly},
          live([this](const PluginRef &plugin) { return host.instantiate(plugin); },
               LiveInstances::Hooks{[] { return std::vector<uint32_t>{0, 1}; },
                                    [required](std::string_view) { return required; }}) {
        EXPECT_EQ(live.add(plugins.plugins()).added, 1u);
    }
    // Feeds n records on `stream` to the live instance.
    void feed(uint32_t stream, int n) {
        ReadingBatch batch(kTemperatureOnly);
        for (int i = 0; i < n; ++i) batch.add("s" + std::to_string(i), i, 10.0, stream);
        live.instances().at(0)->process(batch.view());
    }
    LiveInstances::Report drop(const std::string &fixture_name) {
        install_atomically(fixture_name, dir.path(), "stage.so");
        return live.apply(poll_until(plugins, [](const auto &all) { return !all.empty(); }));
    }
    std::string version() const { return std::string(live.instances().at(0)->plugin().version()); }
    // What the live instance says it holds, through its flush(final=1): "final <records>".
    std::string flushed() {
        live.instances().at(0)->flush(true);
        return host.contexts().back()->emitted.empty() ? "" : host.contexts().back()->emitted.back().value;
    }

    TempDir dir;
    fs::path file;
    PluginDirectory plugins;
    FakeHost host;
    LiveInstances live;
};

TEST(StateHandover, ReplacedStatefulStageHandsEachStreamsStateToTheNewVersion) {
    Swap swap("state_v1");
    swap.feed(0, 3);
    swap.feed(1, 4);
    const auto report = swap.drop("state_v2");
    EXPECT_EQ(report.replaced, 1u);
    EXPECT_EQ(report.refused, 0u);
    ASSERT_EQ(swap.version(), "2.0.0");
    ASSERT_EQ(swap.host.contexts().size(), 2u);
    EXPECT_TRUE(swap.host.contexts()[0]->emitted.empty()) << "the old version is not flushed: its state moved";
    EXPECT_EQ(swap.host.contexts()[0]->live_allocations, 0) << "and it was destroyed";
    EXPECT_EQ(swap.flushed(), "final 7");
}

TEST(StateHandover, IncompatibleStateFormatIsRefusedAndTheRunningVersionStays) {
    ErrorLog log;
    Swap swap("state_v1");
    swap.feed(0, 5);
    const auto report = swap.drop("state_format_3");  // reads formats 2..3, the running one writes 1
    EXPECT_EQ(report.refused, 1u);
    EXPECT_EQ(report.replaced, 0u);
    ASSERT_EQ(swap.live.instances().size(), 1u);
    EXPECT_EQ(swap.version(), "1.0.0");
    EXPECT_EQ(swap.host.contexts().size(), 1u) << "nothing of the new version was created";
    EXPECT_EQ(swap.flushed(), "final 5");
    const std::string text = log.text();
    EXPECT_THAT(text, HasSubstr("refused to replace stage plugin 'test_state'"));
    EXPECT_THAT(text, HasSubstr("version 1.0.0"));
    EXPECT_THAT(text, HasSubstr("state format 1) by version 3.0.0"));
    EXPECT_THAT(text, HasSubstr("state formats 2..3"));
    EXPECT_THAT(text, HasSubstr("does not read state format 1"));
}

TEST(StateHandover, StatefulStageOfAnOlderMinorIsNotReplacedWhileItHoldsState) {
    ErrorLog log;
    Swap swap("state_abi_1_1");
    swap.feed(1, 2);
    const auto report = swap.drop("state_v2");
    EXPECT_EQ(report.refused, 1u);
    EXPECT_EQ(swap.version(), "1.1.0");
    EXPECT_EQ(swap.flushed(), "final 2");
    EXPECT_THAT(log.text(), HasSubstr("plugin ABI 1.1, state format 0) by version 2.0.0"));
    EXPECT_THAT(log.text(), HasSubstr("cannot export it"));
}

TEST(StateHandover, NewVersionThatCannotImportIsRefused) {
    ErrorLog log;
    Swap swap("state_v1");
    swap.feed(0, 1);
    EXPECT_EQ(swap.drop("state_abi_1_1").refused, 1u);
    EXPECT_EQ(swap.version(), "1.0.0");
    EXPECT_THAT(log.text(), HasSubstr("the new version cannot import state"));
}

TEST(StateHandover, StatelessStageIsStillDrainedAndReplaced) {
    // No checkpoint: nothing a commit depends on, so the pre-1.2 behaviour stands (flush, then
    // the new version), whatever the ABI minor.
    Swap swap("good_stage");
    swap.feed(0, 2);
    const auto report = swap.drop("good_stage_v2");
    EXPECT_EQ(report.replaced, 1u);
    EXPECT_EQ(swap.version(), "2.0.0");
    ASSERT_EQ(swap.host.contexts()[0]->emitted.size(), 1u);
    EXPECT_EQ(swap.host.contexts()[0]->emitted[0].value, "final 2");
}

TEST(StateHandover, RemovingARequiredStageIsRefusedAndBringingItBackIsAHandOver) {
    ErrorLog log;
    Swap swap("state_v1", /*required=*/true);
    swap.feed(0, 6);
    fs::remove(swap.file);
    auto report = swap.live.apply(poll_until(swap.plugins, [](const auto &all) { return !all.empty(); }));
    EXPECT_EQ(report.refused, 1u);
    EXPECT_EQ(report.removed, 0u);
    ASSERT_EQ(swap.live.instances().size(), 1u);
    EXPECT_TRUE(swap.host.contexts()[0]->emitted.empty()) << "not drained: it keeps running";
    EXPECT_THAT(log.text(), HasSubstr("refused to remove stage plugin 'test_state'"));
    swap.feed(0, 1);  // still processing

    report = swap.drop("state_v2");  // the file comes back: a normal swap
    EXPECT_EQ(report.replaced, 1u);
    EXPECT_EQ(swap.version(), "2.0.0");
    EXPECT_EQ(swap.flushed(), "final 7");
}

TEST(StateHandover, RemovingAStageTheOwnerDoesNotRequireRetiresIt) {
    Swap swap("state_v1", /*required=*/false);
    swap.feed(0, 2);
    fs::remove(swap.file);
    const auto report = swap.live.apply(poll_until(swap.plugins, [](const auto &all) { return !all.empty(); }));
    EXPECT_EQ(report.removed, 1u);
    EXPECT_TRUE(swap.live.instances().empty());
    ASSERT_EQ(swap.host.contexts()[0]->emitted.size(), 1u);
    EXPECT_EQ(swap.host.contexts()[0]->emitted[0].value, "final 2");
}

}  // namespace
}  // namespace iotstream::test
