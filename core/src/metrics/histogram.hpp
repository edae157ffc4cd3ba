// A latency histogram for the Prometheus page: fixed buckets in seconds, atomic counts, so the
// thread that times something records it without a lock and any thread may read it.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>

#include <nlohmann/json.hpp>

namespace iotstream::metrics {

class Histogram {
public:
    // Upper bounds (seconds) of the buckets: 50 µs (a small batch through a cheap stage) to 5 s
    // (a stalled one); above the last is +Inf.
    static constexpr std::array<double, 14> kBounds{0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                                    0.01,    0.025,  0.05,    0.1,    0.25,  1.0,   5.0};

    void observe(std::chrono::nanoseconds elapsed) noexcept {
        const double seconds = std::chrono::duration<double>(elapsed).count();
        size_t bucket = 0;
        while (bucket < kBounds.size() && seconds > kBounds[bucket]) ++bucket;
        counts_[bucket].fetch_add(1, std::memory_order_relaxed);
        sum_ns_.fetch_add(static_cast<uint64_t>(elapsed.count() > 0 ? elapsed.count() : 0), std::memory_order_relaxed);
    }

    // {"buckets": [[upper bound, cumulative count], ...], "sum_s": seconds, "count": n}; the
    // +Inf bucket is "count". Read without a lock: sum and counts may differ by observations
    // made while reading, never the buckets from the count (both come from the same reads).
    nlohmann::json to_json() const {
        nlohmann::json buckets = nlohmann::json::array();
        uint64_t cumulative = 0;
        for (size_t i = 0; i < kBounds.size(); ++i) {
            cumulative += counts_[i].load(std::memory_order_relaxed);
            buckets.push_back({kBounds[i], cumulative});
        }
        cumulative += counts_[kBounds.size()].load(std::memory_order_relaxed);
        return {{"buckets", buckets},
                {"sum_s", static_cast<double>(sum_ns_.load(std::memory_order_relaxed)) / 1e9},
                {"count", cumulative}};
    }

private:
    std::array<std::atomic<uint64_t>, kBounds.size() + 1> counts_{};  // per bucket, not cumulative
    std::atomic<uint64_t> sum_ns_{0};
};

}  // namespace iotstream::metrics
