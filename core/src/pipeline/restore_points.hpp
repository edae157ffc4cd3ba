// Per-stage restore points: what the commit metadata of one partition tells its next owner,
// so that on replay each stage skips exactly what it already emitted (docs/pipeline.md,
// "Commit metadata"). Version 1, one line of ASCII:
//
//     iots1 wm=<ms> n=<offset> r=<stage>:<offset>,<stage>:<offset>,...
//
// wm   the partition's event-time watermark: windows closing at or before it were emitted.
// n    every record before this offset was read and decoded (its decoder dead letter, if any,
//      was sent): a replay does not dead-letter it again.
// r    per stage (plugin name), the offset before which the stage already handled every record
//      (its results emitted): the host does not hand those records to it again. A stage that is
//      not listed (a new stage, or one whose offset is the commit offset) sees the whole replay.
// Every key is optional; unknown keys are ignored (a later 1.x may add some). Metadata in any
// other form is no restore point (a replay then reaches every stage, at least once), except the
// format before version 1, "iotstream:wm=<ms>", which is read as its watermark alone.
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "iotstream/plugin.h"

namespace iotstream {

struct RestorePoint {
    int64_t watermark_ms = IOTS_NO_VALUE;
    int64_t read_through = -1;                     // n; -1: unknown
    std::map<std::string, int64_t, std::less<>> stages;  // r
};

// Kafka's default offset.metadata.max.bytes is 4096; a longer restore point drops its stage
// entries (those stages then replay at least once) rather than having the commit refused.
constexpr size_t kMaxRestorePointBytes = 4000;

std::string format_restore_point(const RestorePoint &point);

enum class RestorePointForm { none, v1, legacy, unrecognised };
// The restore point in commit metadata; `form` says how it was read. Never throws: anything
// malformed is `unrecognised` and yields an empty restore point.
RestorePoint parse_restore_point(std::string_view metadata, RestorePointForm *form = nullptr);

// The rows of a batch view a stage has not handled yet, as a view of their own (columns
// copied). Built only while a partition is being replayed.
class BatchSubset {
public:
    // Keeps row i of `batch` when keep(i); returns the subset's view.
    template <typename Keep>
    const iots_batch_view_t &select(const iots_batch_view_t &batch, Keep &&keep) {
        rows_.clear();
        for (uint32_t i = 0; i < batch.count; ++i)
            if (keep(i)) rows_.push_back(i);
        return build(batch);
    }
    // Row `index` of the subset as a row of the original batch.
    uint32_t original_row(uint32_t index) const { return rows_[index]; }

private:
    const iots_batch_view_t &build(const iots_batch_view_t &batch);

    std::vector<uint32_t> rows_;
    std::vector<std::vector<double>> columns_;
    std::vector<const double *> column_pointers_;
    std::vector<iots_str_t> sensor_ids_, payloads_;
    std::vector<int64_t> event_times_, offsets_;
    std::vector<uint32_t> streams_;
    std::vector<uint64_t> anomaly_bits_;
    iots_batch_view_t view_{};
};

}  // namespace iotstream
