// The commit metadata's restore points (issue 12, defect 3): written and read back exactly,
// old and foreign forms read safely, batch subsets keep the right rows.
#include <gtest/gtest.h>

#include "pipeline/restore_points.hpp"

namespace iotstream {
namespace {

TEST(RestorePoints, RoundTripKeepsWatermarkReadOffsetAndEveryStage) {
    RestorePoint point;
    point.watermark_ms = 1767225665000;
    point.read_through = 42;
    point.stages = {{"aggregate", 40}, {"anomaly", 42}};
    const std::string text = format_restore_point(point);
    EXPECT_EQ(text, "iots1 wm=1767225665000 n=42 r=aggregate:40,anomaly:42");
    RestorePointForm form{};
    RestorePoint back = parse_restore_point(text, &form);
    EXPECT_EQ(form, RestorePointForm::v1);
    EXPECT_EQ(back.watermark_ms, point.watermark_ms);
    EXPECT_EQ(back.read_through, 42);
    EXPECT_EQ(back.stages, point.stages);
    EXPECT_EQ(format_restore_point(RestorePoint{}), "iots1");
}

TEST(RestorePoints, LegacyIsItsWatermarkAndUnknownKeysAreIgnored) {
    RestorePointForm form{};
    RestorePoint legacy = parse_restore_point("iotstream:wm=-5", &form);
    EXPECT_EQ(form, RestorePointForm::legacy);
    EXPECT_EQ(legacy.watermark_ms, -5);
    EXPECT_TRUE(legacy.stages.empty());
    RestorePoint later = parse_restore_point("iots1 wm=7 x=whatever r=window:3", &form);
    EXPECT_EQ(form, RestorePointForm::v1);
    EXPECT_EQ(later.watermark_ms, 7);
    EXPECT_EQ(later.stages.at("window"), 3);
}

TEST(RestorePoints, AnythingElseIsNoRestorePoint) {
    for (const char *text : {"hello", "iots2 wm=1", "iots1 wm=", "iots1 wm=12x", "iots1 n=-1", "iots1 r=Bad:1",
                             "iots1 r=a:1,", "iots1 r=a:-3", "iots1 wm=1  n=2", "iotstream:wm=1e3",
                             "iots1 wm=-9223372036854775808", "iots1 wm=99999999999999999999"}) {
        RestorePointForm form{};
        RestorePoint point = parse_restore_point(text, &form);
        EXPECT_EQ(form, RestorePointForm::unrecognised) << text;
        EXPECT_EQ(point.watermark_ms, IOTS_NO_VALUE) << text;
        EXPECT_EQ(point.read_through, -1) << text;
        EXPECT_TRUE(point.stages.empty()) << text;
    }
    RestorePointForm form{};
    parse_restore_point("", &form);
    EXPECT_EQ(form, RestorePointForm::none);
}

TEST(RestorePoints, TooManyStagesDropTheirEntriesNotTheCommit) {
    RestorePoint point;
    point.watermark_ms = 1;
    for (int i = 0; i < 200; ++i) point.stages["rule_with_a_long_name_number_" + std::to_string(i)] = 1000000 + i;
    const std::string text = format_restore_point(point);
    EXPECT_LE(text.size(), kMaxRestorePointBytes);
    EXPECT_EQ(text, "iots1 wm=1");
}

TEST(RestorePoints, BatchSubsetKeepsTheSelectedRowsOfEveryColumn) {
    const char *names[] = {"t"};
    double t[] = {1, 2, 3, 4};
    const double *fields[] = {t};
    iots_str_t ids[] = {{"a", 1}, {"b", 1}, {"c", 1}, {"d", 1}};
    int64_t times[] = {10, 20, 30, 40}, offsets[] = {5, 6, 7, 8};
    uint32_t streams[] = {0, 0, 1, 1};
    uint64_t bits[] = {0, 1, 2, 3};
    iots_batch_view_t batch{sizeof(iots_batch_view_t), 4, 1, names, fields, ids, times, streams, offsets, ids, bits};
    BatchSubset subset;
    const iots_batch_view_t &view = subset.select(batch, [&](uint32_t i) { return offsets[i] % 2 == 0; });
    ASSERT_EQ(view.count, 2u);  // rows 1 and 3 (offsets 6 and 8)
    EXPECT_EQ(view.fields[0][1], 4);
    EXPECT_EQ(std::string(view.sensor_ids[1].data, 1), "d");
    EXPECT_EQ(view.offsets[0], 6);
    EXPECT_EQ(view.streams[1], 1u);
    EXPECT_EQ(view.anomaly_bits[1], 3u);
    EXPECT_EQ(subset.original_row(0), 1u);
    EXPECT_EQ(subset.original_row(1), 3u);
}

}  // namespace
}  // namespace iotstream
