// The pipeline's host functions refuse a batch outside the process() call that received it
// (issue 12, defect 9): a stage that keeps the batch pointer and calls dead_letter() or
// report_anomaly() from tick() or flush() gets an error, never a record of a later (or freed)
// batch. Driven through the C API: embedded broker, bounded run, a C fixture stage.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <regex>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "iotstream/iotstream.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// A fresh 0755 folder holding only the given fixture, removed afterwards.
class FixtureFolder {
public:
    explicit FixtureFolder(const std::string &fixture) {
        std::string pattern = (fs::temp_directory_path() / "iots-host-api.XXXXXX").string();
        if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
        path_ = pattern;
        fs::permissions(path_, fs::perms(0755));
        fs::copy_file(fs::path(HOST_API_FIXTURE_DIR) / (fixture + ".so"), path_ / (fixture + ".so"));
        fs::permissions(path_ / (fixture + ".so"), fs::perms(0755));
    }
    ~FixtureFolder() {
        std::error_code ec;
        fs::remove_all(path_, ec);
    }
    const fs::path &path() const { return path_; }

private:
    fs::path path_;
};

// Every library log line while alive.
class LogCapture {
public:
    LogCapture() { iots_log_set_callback(&LogCapture::receive, this); }
    ~LogCapture() { iots_log_set_callback(nullptr, nullptr); }
    std::vector<std::string> lines() {
        std::lock_guard lock(mutex_);
        return lines_;
    }

private:
    static void receive(void *opaque, iots_log_level_t, const char *component, const char *message) {
        auto *self = static_cast<LogCapture *>(opaque);
        std::lock_guard lock(self->mutex_);
        self->lines_.push_back(std::string(component) + ": " + message);
    }
    std::mutex mutex_;
    std::vector<std::string> lines_;
};

json stats_of(iots_pipeline_t *pipeline) {
    std::string buf(1 << 16, '\0');
    size_t needed = 0;
    EXPECT_EQ(iots_pipeline_stats_json(pipeline, buf.data(), buf.size(), &needed), IOTS_OK);
    return json::parse(buf.c_str());
}

TEST(HostApi, DeadLetterAndReportAnomalyAreRefusedOutsideProcessOfTheirBatch) {
    char errstr[512] = {};
    iots_broker_t *broker = nullptr;
    ASSERT_EQ(iots_broker_new(R"({"topics": [{"name": "iot-readings", "partitions": 1}]})", &broker, errstr,
                              sizeof errstr),
              IOTS_OK)
        << errstr;
    const std::string bootstrap = iots_broker_bootstrap(broker);

    iots_producer_t *producer = nullptr;
    json producer_config = {{"kafka", {{"bootstrap.servers", bootstrap}}}};
    ASSERT_EQ(iots_producer_new(producer_config.dump().c_str(), nullptr, nullptr, &producer, errstr, sizeof errstr),
              IOTS_OK)
        << errstr;
    const int64_t t0 = 1'700'000'000'000;
    for (const char *sensor : {"good-1", "bad", "good-2"})
        ASSERT_EQ(iots_producer_send_reading_at(producer, "iot-readings", sensor, R"({"temperature": 21.5, "humidity": 40.0, "pressure": 1010.0, "battery_level": 80.0})", t0,
                                                errstr, sizeof errstr),
                  IOTS_OK)
            << errstr;
    ASSERT_EQ(iots_producer_close(producer, 10000), IOTS_OK);

    FixtureFolder plugins("stale_batch");
    LogCapture logs;
    json config = {{"kafka", {{"bootstrap.servers", bootstrap}}},
                   {"input", {{"group_id", "host-api-stale"}}},
                   {"stages", {{{"plugin", "stale_batch"}}}},
                   {"plugins", {{"dir", plugins.path().string()}, {"watch", false}}}};
    iots_pipeline_t *pipeline = nullptr;
    ASSERT_EQ(iots_pipeline_new(config.dump().c_str(), &pipeline, errstr, sizeof errstr), IOTS_OK) << errstr;
    ASSERT_EQ(iots_pipeline_run_bounded(pipeline, 60000, errstr, sizeof errstr), IOTS_OK) << errstr;
    json stats = stats_of(pipeline);
    iots_pipeline_destroy(pipeline);
    iots_broker_destroy(broker);

    // Inside process() the same call works: the one "bad" record is dead-lettered.
    EXPECT_EQ(stats["decoded"], 3) << stats.dump();
    EXPECT_EQ(stats["dead_lettered"]["stages"], 1) << stats.dump();
    EXPECT_EQ(stats["dead_lettered"]["by_reason"].value("stale_batch", 0), 0) << stats.dump();
    EXPECT_EQ(stats["alerts"], 0) << stats.dump();

    // From tick() and from flush(), with the batch kept from process(): both refused.
    const std::regex answer("stale (tick|flush): dead_letter=(-?[0-9]+) report_anomaly=(-?[0-9]+)");
    std::vector<std::string> callbacks_seen;
    size_t refusals_logged = 0;
    for (const std::string &line : logs.lines()) {
        std::smatch m;
        if (std::regex_search(line, m, answer)) {
            callbacks_seen.push_back(m[1]);
            EXPECT_NE(m[2], "0") << line;
            EXPECT_NE(m[3], "0") << line;
        }
        if (line.find("refused: called outside process()") != std::string::npos) ++refusals_logged;
    }
    EXPECT_NE(std::find(callbacks_seen.begin(), callbacks_seen.end(), "tick"), callbacks_seen.end());
    EXPECT_NE(std::find(callbacks_seen.begin(), callbacks_seen.end(), "flush"), callbacks_seen.end());
    EXPECT_EQ(refusals_logged, 2 * callbacks_seen.size()) << "each refusal says why";
}

}  // namespace
