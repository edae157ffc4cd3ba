// Per-device token buckets in bounded memory: each device may send `rate` readings per second
// on average and `burst` at once. Built for a million devices: a bucket is 16 bytes in an
// open-addressing table split into shards (one mutex each), and buckets that have refilled
// (idle for burst/rate seconds) are dropped, since a new bucket behaves exactly the same.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace iotstream {

struct RateLimits {
    double rate = 10;   // tokens (readings) per second, > 0
    double burst = 20;  // bucket capacity, >= 1
};

// Bucket times are 32-bit milliseconds (wrapping), so a bucket may take at most this long to
// refill; configurations are checked against it.
inline constexpr double kMaxRefillSeconds = 86400;

class DeviceRateLimiter {
public:
    // `overrides`: per-device limits by device id. `max_devices`: buckets kept at most; when a
    // shard is full of buckets that are still refilling, the longest-unused ones are dropped
    // (counted as evicted_early: their devices get a fresh, full bucket next time).
    DeviceRateLimiter(RateLimits defaults, const std::unordered_map<std::string, RateLimits> &overrides,
                      size_t max_devices);
    ~DeviceRateLimiter();
    DeviceRateLimiter(const DeviceRateLimiter &) = delete;
    DeviceRateLimiter &operator=(const DeviceRateLimiter &) = delete;

    struct Grant {
        uint32_t granted;        // tokens taken, <= wanted
        int64_t retry_after_ms;  // when granted < wanted: ms until the bucket holds one token
    };
    // Takes up to `wanted` whole tokens from the device's bucket at time `now_ms` (any
    // monotonic millisecond clock; tests pass their own). Thread-safe.
    Grant take(std::string_view device_id, uint32_t wanted, int64_t now_ms);
    // Returns tokens taken but not used (e.g. the producer refused the readings). Thread-safe.
    void give_back(std::string_view device_id, uint32_t tokens);

    RateLimits limits_for(std::string_view device_id) const;
    size_t tracked() const;         // live buckets
    uint64_t evicted_idle() const;  // dropped after refilling
    uint64_t evicted_early() const; // dropped while refilling, because max_devices was reached
    size_t memory_bytes() const;    // bytes held by the bucket tables

private:
    struct Shard;
    const RateLimits *override_for(uint64_t key) const;
    Shard &shard_for(uint64_t key) const;
    template <typename Read>
    uint64_t sum_over_shards(Read read) const;

    RateLimits defaults_;
    size_t max_devices_;
    std::atomic<size_t> live_total_{0};  // buckets over all shards
    std::unordered_map<uint64_t, RateLimits> overrides_;  // by device key
    std::unique_ptr<Shard[]> shards_;
};

}  // namespace iotstream
