// Issue 12, defect 6, at the plugin level: a window whose emit the host refused has not been
// emitted, so the restore point the window stage reports (checkpoint) must not tell the next
// owner of the stream that it was. The test plays both owners: the first processes and is
// refused, the second is assigned the stream at the first's checkpoint and replays from its
// oldest needed offset, as the pipeline does after a stop, crash or rebalance.
#include <gtest/gtest.h>

#include <map>

#include "hosted_plugin.hpp"

namespace iotstream::test {
namespace {

using Json = nlohmann::json;
constexpr int64_t kSecond = 1000;

Reading at(const std::string &sensor, int64_t t, int64_t offset) {
    Reading r{sensor, t};
    r.offset = offset;
    return r;
}

TEST(WindowRestorePoint, Defect6RefusedEmitIsNotCoveredByTheCheckpointWatermark) {
    const Json config{{"size_s", 10}, {"grace_s", 2}};
    // [0 s, 10 s) holds offsets 0-2; the reading at 30 s (offset 3) closes it.
    const std::vector<Reading> input = {at("s", 1 * kSecond, 0), at("s", 4 * kSecond, 1), at("s", 9 * kSecond, 2),
                                        at("s", 30 * kSecond, 3)};

    HostedPlugin first("window", config);
    first.on_assign(0, IOTS_NO_VALUE);
    first.refuse_emits = true;
    first.process(input);
    ASSERT_TRUE(first.emitted.empty());
    auto [oldest_needed, watermark] = first.checkpoint(0);
    ASSERT_NE(oldest_needed, IOTS_NO_VALUE) << "the refused window's records are still needed";

    HostedPlugin next("window", config);
    next.on_assign(0, watermark);
    std::vector<Reading> replay;
    for (const Reading &r : input)
        if (r.offset >= oldest_needed) replay.push_back(r);
    next.process(replay);
    EXPECT_EQ(next.flush(1), 0);

    std::map<int64_t, Json> windows;
    for (const Emitted &e : next.emitted) windows[e.json()["window_start"].get<int64_t>()] = e.json();
    ASSERT_EQ(windows.count(0), 1u) << "window [0, 10) was refused, never emitted, and then skipped as emitted "
                                       "(checkpoint watermark "
                                    << watermark << " ms)";
    EXPECT_EQ(windows[0]["sample_count"], 3);
}

}  // namespace
}  // namespace iotstream::test
