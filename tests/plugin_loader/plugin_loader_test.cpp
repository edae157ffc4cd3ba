// The plugin loader: every rejection names the file and the reason, the host keeps working
// after rejections, instances keep their library loaded, and hot add / replace / remove
// neither lose nor duplicate a batch.
#include <dlfcn.h>

#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "iotstream/iotstream.h"
#include "loader_test_support.hpp"

namespace iotstream::test {
namespace {

using ::testing::HasSubstr;

TEST(PluginLoader, LoadsAGoodRulePlugin) {
    TempDir dir;
    const fs::path file = install("good_rule", dir.path(), "good_rule.so");
    PluginDirectory plugins(dir.path());
    EXPECT_TRUE(plugins.rejections().empty());
    ASSERT_EQ(plugins.plugins().size(), 1u);
    const PluginRef plugin = plugins.find("test_threshold");
    ASSERT_NE(plugin, nullptr);
    EXPECT_EQ(plugin->version(), "1.0.0");
    EXPECT_TRUE(plugin->is_rule());
    EXPECT_EQ(plugin->file(), file);

    const Json described = plugin->describe();
    EXPECT_EQ(described["name"], "test_threshold");
    EXPECT_EQ(described["kind"], "rule");
    EXPECT_EQ(described["file"], file.string());
    ASSERT_EQ(described["config"].size(), 2u);
    EXPECT_EQ(described["config"][0]["name"], "threshold");
    EXPECT_EQ(described["config"][0]["type"], "double");
    EXPECT_EQ(described["config"][0]["default"], 30);
    EXPECT_EQ(described["config"][0]["required"], false);
}

struct RejectionCase {
    const char *fixture;  // nullptr: the test writes the file itself
    const char *file_name;
    const char *reason;
};

void PrintTo(const RejectionCase &c, std::ostream *os) { *os << c.file_name; }

class Rejection : public ::testing::TestWithParam<RejectionCase> {};

TEST_P(Rejection, NamesTheFileAndTheReason) {
    const RejectionCase &c = GetParam();
    TempDir dir;
    const fs::path file = dir / c.file_name;
    if (std::string(c.file_name) == "bad.so") {
        std::ofstream(file) << "this is not a library\n";
    } else if (std::string(c.file_name) == "truncated.so") {
        const auto size = fs::file_size(fixture("good_rule"));
        install("good_rule", dir.path(), c.file_name);
        fs::resize_file(file, size / 2);
    } else if (std::string(c.file_name) == "executable.so") {
        fs::copy_file("/proc/self/exe", file);
        fs::permissions(file, fs::perms(0755));
    } else {
        install(c.fixture, dir.path(), c.file_name);
    }
    const std::string reason = the_rejection(dir.path());
    EXPECT_THAT(reason, HasSubstr(file.string())) << reason;
    EXPECT_THAT(reason, HasSubstr(c.reason)) << reason;
}

INSTANTIATE_TEST_SUITE_P(
    PluginLoader, Rejection,
    ::testing::Values(
        RejectionCase{nullptr, "bad.so", "not a shared library: not an ELF file (22 bytes, beginning \"this is not a li\")"},
        RejectionCase{nullptr, "truncated.so", "truncated ELF file"},
        RejectionCase{nullptr, "executable.so", "executable"},
        RejectionCase{"missing_entry", "missing_entry.so",
                      "does not export the entry symbol 'iots_plugin_descriptors'"},
        RejectionCase{"zero_descriptors", "zero_descriptors.so", "returned no descriptors (count 0)"},
        RejectionCase{"abi_major_2", "abi_major_2.so", "built for plugin ABI 2.0, but this host speaks ABI 1.x (major 2 differs)"},
        RejectionCase{"abi_minor_newer", "abi_minor_newer.so", "built for plugin ABI 1.5, newer than this host's 1.4 (minor 5 is newer); upgrade iotstream"},
        RejectionCase{"struct_too_small", "struct_too_small.so", "is too small for ABI 1.4, which needs at least"},
        RejectionCase{"null_process", "null_process.so", "plugin 'test_null': required callback process() is NULL"},
        RejectionCase{"bad_name", "bad_name.so", "plugin name 'Bad-Name' is not 1 to 64 characters of [a-z0-9_]"},
        RejectionCase{"key_size_too_small", "key_size_too_small.so",
                      "plugin 'test_narrow': config_key_size 24 is smaller than an ABI 1.0 config key (32 bytes)"},
        RejectionCase{"unresolved_symbol", "unresolved_symbol.so",
                      "undefined symbol: iots_fixture_function_defined_nowhere"}),
    [](const ::testing::TestParamInfo<RejectionCase> &param) {
        return fs::path(param.param.file_name).stem().string();
    });

TEST(PluginLoader, RejectsAFileWritableByOthers) {
    TempDir dir;
    const fs::path file = install("good_rule", dir.path(), "good_rule.so", fs::perms(0666));
    const std::string reason = the_rejection(dir.path());
    EXPECT_THAT(reason, HasSubstr(file.string()));
    EXPECT_THAT(reason, HasSubstr("the file is writable by group and others (mode 0666)"));
}

TEST(PluginLoader, RejectsEveryFileOfAFolderWritableByOthers) {
    TempDir dir;
    install("good_rule", dir.path(), "good_rule.so");
    fs::permissions(dir.path(), fs::perms(0703));
    const std::string reason = the_rejection(dir.path());
    EXPECT_THAT(reason, HasSubstr((dir / "good_rule.so").string()));
    EXPECT_THAT(reason, HasSubstr("the plugin folder is writable by others (mode 0703)"));
    EXPECT_THAT(reason, HasSubstr(dir.path().string()));
}

TEST(PluginLoader, SecondFileWithATakenNameIsRejectedNamingBoth) {
    TempDir dir;
    const fs::path first = install("good_rule", dir.path(), "a_rules.so");
    const fs::path second = install("same_name_other_file", dir.path(), "b_rules.so");
    PluginDirectory plugins(dir.path());
    ASSERT_EQ(plugins.plugins().size(), 1u);
    EXPECT_EQ(plugins.plugins()[0]->version(), "1.0.0");
    ASSERT_EQ(plugins.rejections().size(), 1u);
    const std::string reason = plugins.rejections()[0].reason;
    EXPECT_EQ(plugins.rejections()[0].file, second);
    EXPECT_THAT(reason, HasSubstr(second.string() + ": plugin 'test_threshold' is already loaded from " +
                                  first.string()));

    // When the owner goes, the newcomer takes the name in the same poll.
    fs::remove(first);
    const auto events = plugins.poll();
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].type, PluginEvent::Type::replaced);
    EXPECT_EQ(events[0].plugin->version(), "9.9.9");
    EXPECT_EQ(events[0].previous->version(), "1.0.0");
    EXPECT_TRUE(plugins.rejections().empty());
}

TEST(PluginLoader, CreateFailureNamesFilePluginAndItsMessage) {
    TempDir dir;
    const fs::path file = install("create_fails", dir.path(), "create_fails.so");
    PluginDirectory plugins(dir.path());
    FakeHost host{kTemperatureOnly};
    try {
        host.instantiate(plugins.find("test_fail"));
        FAIL() << "create() failure was not reported";
    } catch (const Error &e) {
        EXPECT_EQ(e.code(), IOTS_ERR_PLUGIN);
        EXPECT_EQ(std::string(e.what()), file.string() +
                                             ": plugin 'test_fail' create() failed: sensor calibration "
                                             "table missing");
    }
}

TEST(PluginLoader, StageConfigIsValidatedNamingFilePluginAndKey) {
    TempDir dir;
    const fs::path file = install("good_rule", dir.path(), "good_rule.so");
    PluginDirectory plugins(dir.path());
    FakeHost host{kTemperatureOnly};
    const PluginRef plugin = plugins.find("test_threshold");
    for (const auto &[config, key] : {std::pair{Json{{"treshold", 5}}, "treshold"},
                                      std::pair{Json{{"threshold", "hot"}}, "threshold"}}) {
        try {
            host.instantiate(plugin, config);
            FAIL() << "config " << config.dump() << " was accepted";
        } catch (const Error &e) {
            EXPECT_EQ(e.code(), IOTS_ERR_CONFIG);
            EXPECT_THAT(e.what(), HasSubstr(file.string()));
            EXPECT_THAT(e.what(), HasSubstr("plugin 'test_threshold'"));
            EXPECT_THAT(e.what(), HasSubstr(std::string("config key '") + key + "'"));
        }
    }
    // Defaults are filled, integers accepted for a double key.
    auto instance = host.instantiate(plugin, Json{{"threshold", 40}});
    EXPECT_EQ(instance->config()["threshold"], 40);
    EXPECT_EQ(instance->config()["field"], "temperature");
}

TEST(PluginLoader, HostKeepsWorkingAfterRejections) {
    TempDir dir;
    std::ofstream(dir / "bad.so") << "garbage";
    for (const char *name : {"abi_major_2", "abi_minor_newer", "struct_too_small", "missing_entry",
                             "zero_descriptors", "null_process", "bad_name", "same_name_other_file"})
        install(name, dir.path(), std::string(name) + ".so");
    install("good_rule", dir.path(), "a_good_rule.so");  // sorts first: keeps its name
    install("good_rule", dir.path(), "world_writable.so", fs::perms(0646));

    PluginDirectory plugins(dir.path());
    EXPECT_EQ(plugins.rejections().size(), 10u);
    ASSERT_EQ(plugins.plugins().size(), 1u);

    FakeHost host{kTemperatureOnly};
    auto instance = host.instantiate(plugins.find("test_threshold"), Json{{"threshold", 25}});
    ReadingBatch batch(kTemperatureOnly);
    batch.add("s1", 1000, 20.0);
    batch.add("s2", 1000, 26.5);
    instance->process(batch.view());
    const FakeContext &ctx = *host.contexts().back();
    ASSERT_EQ(ctx.anomalies.size(), 1u);
    EXPECT_EQ(ctx.anomalies[0].sensor, "s2");
    EXPECT_EQ(ctx.anomalies[0].value, 26.5);
    EXPECT_EQ(host.rule(ctx.anomalies[0].rule_id), "test_threshold");

    // Rejections are reported once per version of a file, not on every poll.
    EXPECT_TRUE(plugins.poll().empty());
    EXPECT_TRUE(plugins.poll().empty());
}

TEST(PluginLoader, NewerPluginsLargerDescriptorIsAcceptedAndItsTailIgnored) {
    TempDir dir;
    install("struct_larger", dir.path(), "struct_larger.so");
    PluginDirectory plugins(dir.path());
    ASSERT_TRUE(plugins.rejections().empty()) << plugins.rejections()[0].reason;
    const PluginRef plugin = plugins.find("test_larger");
    ASSERT_NE(plugin, nullptr);
    EXPECT_EQ(plugin->descriptor().struct_size, sizeof(iots_plugin_descriptor_t) + 4 * sizeof(void *));
    FakeHost host{kTemperatureOnly};
    auto instance = host.instantiate(plugin);
    ReadingBatch batch(kTemperatureOnly);
    batch.add("s1", 1, 35.0);
    instance->process(batch.view());
    EXPECT_EQ(host.contexts().back()->anomalies.size(), 1u);
}

// The fixture's key table as the host must read it, whatever the plugin's layout.
void expect_fixture_keys(const Plugin &plugin) {
    const Json keys = plugin.describe()["config"];
    ASSERT_EQ(keys.size(), 2u) << keys.dump();
    EXPECT_EQ(keys[0]["name"], "threshold");
    EXPECT_EQ(keys[0]["default"], 30);
    EXPECT_EQ(keys[0]["help"], "report readings above this");
    EXPECT_EQ(keys[1]["name"], "field");
    EXPECT_EQ(keys[1]["type"], "string");
    EXPECT_EQ(keys[1]["default"], "temperature");
}

// An instance made with the default config reports a reading above the default threshold (30).
void expect_fixture_runs(const PluginRef &plugin) {
    FakeHost host;
    auto instance = host.instantiate(plugin);
    ReadingBatch batch(kTemperatureOnly);
    batch.add("s1", 1, 35.0);
    batch.add("s1", 2, 25.0);
    instance->process(batch.view());
    EXPECT_EQ(host.contexts().back()->anomalies.size(), 1u);
}

TEST(PluginLoader, OlderPluginsShorterDescriptorReadsZerosPastItsSize) {
    TempDir dir;
    install("struct_minimal", dir.path(), "struct_minimal.so");
    PluginDirectory plugins(dir.path());
    const PluginRef plugin = plugins.find("test_minimal");
    // Past its struct_size the plugin holds config_key_size 1, which would be refused: the host
    // must read a zero there (the 1.0 key size) instead.
    ASSERT_NE(plugin, nullptr) << plugins.rejections()[0].reason;
    EXPECT_EQ(plugin->descriptor().struct_size, offsetof(iots_plugin_descriptor_t, config_key_size));
    expect_fixture_keys(*plugin);
}

TEST(PluginLoader, PluginsBuiltForAbi1_0KeepLoading) {
    TempDir dir;
    install("abi_1_0", dir.path(), "abi_1_0.so");
    PluginDirectory plugins(dir.path());
    const PluginRef plugin = plugins.find("test_old");
    ASSERT_NE(plugin, nullptr) << plugins.rejections()[0].reason;
    // ABI 1.0's descriptor: the fields through destroy, then void *reserved[8].
    EXPECT_EQ(plugin->descriptor().struct_size,
              offsetof(iots_plugin_descriptor_t, destroy) + sizeof(void (*)(void *)) + 8 * sizeof(void *));
    EXPECT_EQ(plugin->describe()["abi"], std::to_string(IOTS_PLUGIN_ABI_MAJOR) + ".0");
    expect_fixture_keys(*plugin);
    expect_fixture_runs(plugin);
}

TEST(PluginLoader, KeyTableIsSteppedByItsElementSize) {
    TempDir dir;
    install("wide_keys", dir.path(), "wide_keys.so");
    PluginDirectory plugins(dir.path());
    const PluginRef plugin = plugins.find("test_wide");
    ASSERT_NE(plugin, nullptr) << plugins.rejections()[0].reason;
    // Each key is followed by a field a newer plugin.h appended: the host reads what it knows.
    expect_fixture_keys(*plugin);
    expect_fixture_runs(plugin);
    // The host's copy of the table has its own element size.
    EXPECT_EQ(plugin->descriptor().config_key_size, sizeof(iots_config_key_t));
    EXPECT_EQ(plugin->descriptor().config_keys[1].name, std::string("field"));
}

TEST(PluginLoader, AnInstanceKeepsItsLibraryLoadedAndItsCopyIsRemovedAfter) {
    TempDir dir;
    const fs::path file = install("good_rule", dir.path(), "good_rule.so");
    FakeHost host{kTemperatureOnly};
    std::unique_ptr<PluginInstance> instance;
    {
        PluginDirectory plugins(dir.path());
        instance = host.instantiate(plugins.find("test_threshold"));
    }
    fs::remove(file);  // the folder no longer has it; the instance still runs its code

    Dl_info info{};
    ASSERT_NE(::dladdr(reinterpret_cast<void *>(instance->plugin().descriptor().process), &info), 0);
    const fs::path copy = info.dli_fname;
    EXPECT_NE(copy, file);
    EXPECT_TRUE(fs::exists(copy)) << copy;

    ReadingBatch batch(kTemperatureOnly);
    batch.add("s1", 1, 31.0);
    instance->process(batch.view());
    EXPECT_EQ(host.contexts().back()->anomalies.size(), 1u);

    instance.reset();
    EXPECT_FALSE(fs::exists(copy)) << "private copy left behind: " << copy;
    EXPECT_EQ(host.contexts().back()->live_allocations, 0);
}

TEST(PluginLoader, PartialFileIsNotLoadedUntilComplete) {
    TempDir dir;
    PluginDirectory plugins(dir.path(), PluginDirectory::Options{std::chrono::hours(1)});
    const fs::path file = dir / "good_rule.so";
    std::ifstream in(fixture("good_rule"), std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    {
        std::ofstream out(file, std::ios::binary);
        out.write(bytes.data(), static_cast<std::streamsize>(bytes.size() / 2));
    }
    for (int i = 0; i < 3; ++i) EXPECT_TRUE(plugins.poll().empty()) << "a half-written file was acted on";
    {
        std::ofstream out(file, std::ios::binary | std::ios::app);
        out.write(bytes.data() + bytes.size() / 2, static_cast<std::streamsize>(bytes.size() - bytes.size() / 2));
    }
    set_mtime_age(file, std::chrono::hours(2));  // as if renamed into place after writing
    const auto events = plugins.poll();
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].type, PluginEvent::Type::added);
    EXPECT_EQ(events[0].name, "test_threshold");
}

TEST(PluginLoader, HiddenTempFilesAreIgnoredUntilRenamedIntoPlace) {
    TempDir dir;
    PluginDirectory plugins(dir.path(), PluginDirectory::Options{std::chrono::milliseconds(50)});
    fs::copy_file(fixture("good_rule"), dir / ".good_rule.so");
    set_mtime_age(dir / ".good_rule.so", std::chrono::hours(1));
    EXPECT_TRUE(plugins.poll().empty());
    fs::rename(dir / ".good_rule.so", dir / "good_rule.so");
    const auto events = plugins.poll();
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].type, PluginEvent::Type::added);
}

TEST(PluginLoader, RejectedNewVersionLeavesThePreviousOneLive) {
    TempDir dir;
    const fs::path file = install("good_rule", dir.path(), "good_rule.so");
    PluginDirectory plugins(dir.path(), PluginDirectory::Options{std::chrono::milliseconds(0)});
    std::ofstream(file, std::ios::trunc) << "oops";
    const auto events = poll_until(plugins, [](const auto &all) { return !all.empty(); });
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].type, PluginEvent::Type::rejected);
    EXPECT_THAT(events[0].rejection.reason, HasSubstr("not an ELF file"));
    ASSERT_NE(plugins.find("test_threshold"), nullptr);
    EXPECT_EQ(plugins.find("test_threshold")->version(), "1.0.0");
}

// The pipeline's loop: poll and apply at batch boundaries, process every batch on the live
// instances. Across add, in-place replace and remove, every record fed while a version was
// live is seen exactly once, by exactly one version.
TEST(PluginLoader, HotAddReplaceRemoveNeitherLoseNorDuplicateRecords) {
    TempDir dir;
    PluginDirectory plugins(dir.path(), PluginDirectory::Options{std::chrono::milliseconds(50)});
    FakeHost host{kTemperatureOnly};
    LiveInstances live([&](const PluginRef &plugin) { return host.instantiate(plugin); });

    ReadingBatch batch(kTemperatureOnly);
    for (int i = 0; i < 10; ++i) batch.add("sensor-" + std::to_string(i), i, 50.0);
    const iots_batch_view_t &view = batch.view();

    uint64_t fed_while_live = 0, batches = 0;
    std::vector<PluginEvent> seen;
    auto run_until = [&](PluginEvent::Type type) {
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
        while (std::chrono::steady_clock::now() < deadline) {
            auto events = plugins.poll();
            live.apply(events);
            const bool arrived = has_event(events, type, "test_threshold");
            for (auto &e : events) seen.push_back(std::move(e));
            for (const auto &instance : live.instances()) instance->process(view);
            if (!live.instances().empty()) fed_while_live += view.count;
            ++batches;
            if (arrived) return true;
            std::this_thread::sleep_for(std::chrono::milliseconds(2));
        }
        return false;
    };
    auto run_batches = [&](int n) {
        for (int i = 0; i < n; ++i) {
            live.apply(plugins.poll());
            for (const auto &instance : live.instances()) instance->process(view);
            if (!live.instances().empty()) fed_while_live += view.count;
        }
    };

    run_batches(5);
    install_atomically("good_rule", dir.path(), "rules.so");
    ASSERT_TRUE(run_until(PluginEvent::Type::added));
    run_batches(20);
    install("good_rule_v2", dir.path(), "rules.so");  // overwritten in place: same inode
    ASSERT_TRUE(run_until(PluginEvent::Type::replaced));
    ASSERT_EQ(live.instances().size(), 1u);
    EXPECT_EQ(live.instances()[0]->plugin().version(), "2.0.0");
    run_batches(20);
    fs::remove(dir / "rules.so");
    ASSERT_TRUE(run_until(PluginEvent::Type::removed));
    EXPECT_TRUE(live.instances().empty());
    run_batches(5);

    ASSERT_EQ(host.contexts().size(), 2u);
    const FakeContext &v1 = *host.contexts()[0];
    const FakeContext &v2 = *host.contexts()[1];
    EXPECT_EQ(v1.tag, "test_threshold 1.0.0");
    EXPECT_EQ(v2.tag, "test_threshold 2.0.0");
    EXPECT_GE(v1.anomalies.size(), 20u * view.count);
    EXPECT_GE(v2.anomalies.size(), 20u * view.count);
    EXPECT_EQ(v1.anomalies.size() + v2.anomalies.size(), fed_while_live);
    EXPECT_EQ(v1.live_allocations, 0);
    EXPECT_EQ(v2.live_allocations, 0);
    EXPECT_FALSE(has_event(seen, PluginEvent::Type::rejected));
}

TEST(PluginLoader, ReplacedStageIsDrainedBeforeItIsDestroyed) {
    TempDir dir;
    install("good_stage", dir.path(), "stage.so");
    PluginDirectory plugins(dir.path(), PluginDirectory::Options{std::chrono::milliseconds(0)});
    FakeHost host{kTemperatureOnly};
    LiveInstances live([&](const PluginRef &plugin) { return host.instantiate(plugin); });
    EXPECT_EQ(live.add(plugins.plugins()).added, 1u);

    ReadingBatch batch(kTemperatureOnly);
    batch.add("s1", 1, 10.0);
    batch.add("s2", 1, 10.0);
    live.instances()[0]->process(batch.view());

    install_atomically("good_stage_v2", dir.path(), "stage.so");
    const auto events = poll_until(plugins, [](const auto &all) { return !all.empty(); });
    const auto report = live.apply(events);
    EXPECT_EQ(report.replaced, 1u);
    ASSERT_EQ(host.contexts().size(), 2u);
    ASSERT_EQ(host.contexts()[0]->emitted.size(), 1u);
    EXPECT_EQ(host.contexts()[0]->emitted[0].output, "test");
    EXPECT_EQ(host.contexts()[0]->emitted[0].value, "final 2");
    EXPECT_TRUE(host.contexts()[1]->emitted.empty());
    EXPECT_EQ(live.instances()[0]->plugin().version(), "2.0.0");
}

TEST(PluginLoader, FailedCreateOfANewVersionKeepsTheOldInstance) {
    TempDir dir;
    install("good_rule", dir.path(), "rules.so");
    PluginDirectory plugins(dir.path(), PluginDirectory::Options{std::chrono::milliseconds(0)});
    FakeHost host{kTemperatureOnly};
    bool refuse = false;
    LiveInstances live([&](const PluginRef &plugin) -> std::unique_ptr<PluginInstance> {
        if (refuse) throw Error(IOTS_ERR_PLUGIN, "refused for the test");
        return host.instantiate(plugin);
    });
    live.add(plugins.plugins());
    refuse = true;
    install_atomically("good_rule_v2", dir.path(), "rules.so");
    const auto report = live.apply(poll_until(plugins, [](const auto &all) { return !all.empty(); }));
    EXPECT_EQ(report.failed, 1u);
    ASSERT_EQ(live.instances().size(), 1u);
    EXPECT_EQ(live.instances()[0]->plugin().version(), "1.0.0");
}

TEST(PluginLoader, DescribeJsonThroughTheCApi) {
    TempDir dir;
    install("good_rule", dir.path(), "good_rule.so");
    std::ofstream(dir / "bad.so") << "nope";

    size_t needed = 0;
    char errstr[256];
    char tiny[8];
    ASSERT_EQ(iots_plugins_describe_json(dir.path().c_str(), tiny, sizeof tiny, &needed, errstr, sizeof errstr),
              IOTS_ERR_BUFFER_TOO_SMALL);
    EXPECT_GT(needed, sizeof tiny);
    std::string buf(needed, '\0');
    ASSERT_EQ(iots_plugins_describe_json(dir.path().c_str(), buf.data(), buf.size(), &needed, errstr,
                                         sizeof errstr),
              IOTS_OK)
        << errstr;
    const Json described = Json::parse(buf.c_str());
    ASSERT_EQ(described["plugins"].size(), 1u);
    EXPECT_EQ(described["plugins"][0]["name"], "test_threshold");
    EXPECT_EQ(described["plugins"][0]["config"][1]["default"], "temperature");
    ASSERT_EQ(described["rejected"].size(), 1u);
    EXPECT_EQ(described["rejected"][0]["file"], (dir / "bad.so").string());
    EXPECT_THAT(described["rejected"][0]["reason"].get<std::string>(), HasSubstr("not an ELF file"));

    // NULL dir: $IOTSTREAM_PLUGIN_DIR wins over the built-in folder.
    ::setenv("IOTSTREAM_PLUGIN_DIR", dir.path().c_str(), 1);
    std::string again(needed, '\0');
    const iots_err_t err = iots_plugins_describe_json(nullptr, again.data(), again.size(), nullptr, errstr,
                                                      sizeof errstr);
    ::unsetenv("IOTSTREAM_PLUGIN_DIR");
    ASSERT_EQ(err, IOTS_OK) << errstr;
    EXPECT_EQ(Json::parse(again.c_str())["dir"], dir.path().string());

    EXPECT_EQ(iots_plugins_describe_json((dir / "nowhere").c_str(), buf.data(), buf.size(), nullptr, errstr,
                                         sizeof errstr),
              IOTS_ERR_NOT_FOUND);
    EXPECT_THAT(errstr, HasSubstr("nowhere' does not exist"));
}

}  // namespace
}  // namespace iotstream::test
