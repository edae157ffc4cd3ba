#include "ingest/rate_limiter.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <functional>

namespace iotstream {

namespace {

constexpr size_t kShardCount = 64;  // power of two: the low bits of a key pick the shard
constexpr size_t kShardBits = 6;
constexpr size_t kInitialSlots = 64;
constexpr uint32_t kSweepIntervalMs = 1000;
// A shard untouched for this long is cleared on its next use: its 32-bit times may have wrapped,
// and every bucket in it refilled long ago (refills take at most kMaxRefillSeconds).
constexpr int64_t kStaleShardMs = int64_t{1} << 31;

// Devices are tracked by a 64-bit hash of their id, not the id itself: 16 bytes a bucket. Two
// devices sharing a hash would share a bucket; among a million ids the chance of any such pair
// is about 3e-8.
uint64_t device_key(std::string_view device_id) {
    uint64_t key = std::hash<std::string_view>{}(device_id);
    return key == 0 ? 1 : key;  // 0 marks an empty slot
}

}  // namespace

struct DeviceRateLimiter::Shard {
    struct Slot {
        uint64_t key;      // 0: empty
        float tokens;
        uint32_t last_ms;  // wrapping milliseconds of the last refill
    };
    static_assert(sizeof(Slot) == 16);

    std::mutex mutex;
    std::vector<Slot> slots = std::vector<Slot>(kInitialSlots);  // power-of-two size
    size_t live = 0;
    size_t capacity = 0;  // buckets kept at most (an even share of max_devices, plus slack)
    int64_t last_sweep_ms = INT64_MIN;  // full-width: detects shards idle long enough to wrap
    uint64_t evicted_idle = 0, evicted_early = 0;

    size_t index_of(uint64_t key) const { return (key >> kShardBits) & (slots.size() - 1); }

    // The slot holding `key`, or the empty slot where it would go.
    Slot &probe(uint64_t key) {
        for (size_t i = index_of(key);; i = (i + 1) & (slots.size() - 1))
            if (slots[i].key == key || slots[i].key == 0) return slots[i];
    }

    // Rebuilds the table from `keep` into `size` slots (rebuilding avoids tombstones).
    void rebuild(const std::vector<Slot> &keep, size_t size) {
        slots = std::vector<Slot>(size);  // a fresh vector: assign() would keep the old capacity
        for (const Slot &slot : keep) probe(slot.key) = slot;
        live = keep.size();
    }
};

DeviceRateLimiter::DeviceRateLimiter(RateLimits defaults,
                                     const std::unordered_map<std::string, RateLimits> &overrides,
                                     size_t max_devices)
    : defaults_(defaults), max_devices_(max_devices), shards_(new Shard[kShardCount]) {
    for (const auto &[device, limits] : overrides) overrides_[device_key(device)] = limits;
    // Hashes do not spread devices exactly evenly: a shard may hold a quarter more than its
    // share, while the total stays within max_devices.
    const size_t per_shard = (max_devices + kShardCount - 1) / kShardCount;
    for (size_t i = 0; i < kShardCount; ++i) shards_[i].capacity = per_shard + per_shard / 4 + 4;
}

DeviceRateLimiter::~DeviceRateLimiter() = default;

const RateLimits *DeviceRateLimiter::override_for(uint64_t key) const {
    if (overrides_.empty()) return nullptr;
    auto it = overrides_.find(key);
    return it == overrides_.end() ? nullptr : &it->second;
}

RateLimits DeviceRateLimiter::limits_for(std::string_view device_id) const {
    const RateLimits *limits = override_for(device_key(device_id));
    return limits ? *limits : defaults_;
}

DeviceRateLimiter::Shard &DeviceRateLimiter::shard_for(uint64_t key) const {
    return shards_[key & (kShardCount - 1)];
}

DeviceRateLimiter::Grant DeviceRateLimiter::take(std::string_view device_id, uint32_t wanted, int64_t now_ms) {
    const uint64_t key = device_key(device_id);
    const RateLimits *found = override_for(key);
    const RateLimits limits = found ? *found : defaults_;
    const auto now = static_cast<uint32_t>(now_ms);
    Shard &shard = shard_for(key);
    std::lock_guard lock(shard.mutex);

    // Sweep: drop every bucket that has refilled (a fresh one is identical), at most once a
    // second per shard, so the cost is one pass over the shard per second.
    const bool stale = shard.last_sweep_ms == INT64_MIN || now_ms - shard.last_sweep_ms >= kStaleShardMs;
    const int64_t since_sweep = stale ? 0 : now_ms - shard.last_sweep_ms;
    auto refilled = [&](const Shard::Slot &slot) {
        const RateLimits *own = override_for(slot.key);
        const RateLimits &l = own ? *own : defaults_;
        return slot.tokens + (now - slot.last_ms) * l.rate / 1000.0 >= l.burst;
    };
    const bool full = shard.live >= shard.capacity || live_total_.load(std::memory_order_relaxed) >= max_devices_;
    if (stale) {
        shard.evicted_idle += shard.live;
        live_total_.fetch_sub(shard.live, std::memory_order_relaxed);
        shard.rebuild({}, kInitialSlots);
        shard.last_sweep_ms = now_ms;
    } else if ((since_sweep >= kSweepIntervalMs && shard.live > 0) || (full && shard.probe(key).key == 0)) {
        std::vector<Shard::Slot> keep;
        keep.reserve(shard.live);
        for (const auto &slot : shard.slots)
            if (slot.key != 0 && !refilled(slot)) keep.push_back(slot);
        shard.evicted_idle += shard.live - keep.size();
        const bool over_total = live_total_.load(std::memory_order_relaxed) - (shard.live - keep.size()) >= max_devices_;
        if (!keep.empty() && (keep.size() >= shard.capacity || over_total)) {
            // Still full of refilling buckets: drop the longest-unused eighth of this shard.
            const size_t target = keep.size() - std::max<size_t>(1, keep.size() / 8);
            std::nth_element(keep.begin(), keep.begin() + static_cast<std::ptrdiff_t>(target), keep.end(),
                             [now](const Shard::Slot &a, const Shard::Slot &b) {
                                 return now - a.last_ms < now - b.last_ms;
                             });
            shard.evicted_early += keep.size() - target;
            keep.resize(target);
        }
        // Keep the load at most 3/4, shrinking when most buckets went.
        size_t size = kInitialSlots;
        while (size * 3 < (keep.size() + 1) * 4) size *= 2;
        live_total_.fetch_sub(shard.live - keep.size(), std::memory_order_relaxed);
        shard.rebuild(keep, size);
        shard.last_sweep_ms = now_ms;
    }

    Shard::Slot *slot = &shard.probe(key);
    if (slot->key == 0) {
        if ((shard.live + 1) * 4 > shard.slots.size() * 3) {
            std::vector<Shard::Slot> keep;
            keep.reserve(shard.live);
            for (const auto &s : shard.slots)
                if (s.key != 0) keep.push_back(s);
            shard.rebuild(keep, shard.slots.size() * 2);
            slot = &shard.probe(key);
        }
        *slot = Shard::Slot{key, static_cast<float>(limits.burst), now};
        ++shard.live;
        live_total_.fetch_add(1, std::memory_order_relaxed);
    } else {
        const double refilled_tokens = slot->tokens + (now - slot->last_ms) * limits.rate / 1000.0;
        slot->tokens = static_cast<float>(std::min(limits.burst, refilled_tokens));
        slot->last_ms = now;
    }

    const auto available = static_cast<uint32_t>(std::max(0.0, std::floor(static_cast<double>(slot->tokens))));
    Grant grant{std::min(wanted, available), 0};
    slot->tokens -= static_cast<float>(grant.granted);
    if (grant.granted < wanted)
        grant.retry_after_ms = static_cast<int64_t>(std::ceil((1.0 - static_cast<double>(slot->tokens)) * 1000.0 / limits.rate));
    return grant;
}

void DeviceRateLimiter::give_back(std::string_view device_id, uint32_t tokens) {
    if (tokens == 0) return;
    const uint64_t key = device_key(device_id);
    const RateLimits *found = override_for(key);
    const double burst = found ? found->burst : defaults_.burst;
    Shard &shard = shard_for(key);
    std::lock_guard lock(shard.mutex);
    Shard::Slot &slot = shard.probe(key);
    if (slot.key != 0) slot.tokens = static_cast<float>(std::min(burst, static_cast<double>(slot.tokens) + tokens));
}

template <typename Read>
uint64_t DeviceRateLimiter::sum_over_shards(Read read) const {
    uint64_t total = 0;
    for (size_t i = 0; i < kShardCount; ++i) {
        std::lock_guard lock(shards_[i].mutex);
        total += read(shards_[i]);
    }
    return total;
}

size_t DeviceRateLimiter::tracked() const {
    return sum_over_shards([](const Shard &s) { return s.live; });
}
uint64_t DeviceRateLimiter::evicted_idle() const {
    return sum_over_shards([](const Shard &s) { return s.evicted_idle; });
}
uint64_t DeviceRateLimiter::evicted_early() const {
    return sum_over_shards([](const Shard &s) { return s.evicted_early; });
}
size_t DeviceRateLimiter::memory_bytes() const {
    return sum_over_shards([](const Shard &s) { return s.slots.capacity() * sizeof(Shard::Slot); });
}

}  // namespace iotstream
