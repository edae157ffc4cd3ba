// Commit epochs: outputs are grouped by the interval in which they were produced, and an
// epoch's input offsets are committed only once every output of it (and of every earlier
// epoch) was acknowledged. The commit metadata carries the partition's event-time watermark.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "kafka/consumer.hpp"

namespace iotstream {

// Outputs produced between two seals. `outstanding` starts at 1 (the epoch is open) and
// counts every output not yet acknowledged; at 0 the epoch's commit points are durable.
struct CommitEpoch {
    std::atomic<int64_t> outstanding{1};
    std::atomic<bool> delivery_failed{false};
    std::vector<Consumer::CommitPoint> points;
};

// Commit metadata "iotstream:wm=<ms>": the watermark a partition's next owner restores.
std::string watermark_metadata(int64_t watermark_ms);
// The watermark in commit metadata, or IOTS_NO_VALUE when there is none.
int64_t parse_watermark_metadata(const std::string &metadata);

}  // namespace iotstream
