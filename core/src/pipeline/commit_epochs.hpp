// Commit epochs: outputs are grouped by the interval in which they were produced, and an
// epoch's input offsets are committed only once every output of it (and of every earlier
// epoch) was acknowledged. The commit metadata carries the partition's restore point: its
// event-time watermark and each stage's progress (restore_points.hpp).
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

}  // namespace iotstream
