// Wall-clock time in epoch milliseconds, the unit of event times and plugin ticks.
#pragma once

#include <chrono>
#include <cstdint>

namespace iotstream {

inline int64_t wall_clock_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

}  // namespace iotstream
