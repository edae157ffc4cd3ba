// Sensor id -> slot number, for plugins that keep per-sensor state in a slot array.
// Header-only, plugin-internal (nothing here crosses plugin.h).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string_view>
#include <vector>

namespace iotstream::plugin {

// The 32-bit hash FlatIndex is keyed by. Callers hash an id once and pass the hash to every
// FlatIndex call for it.
inline uint32_t hash_id(std::string_view id) noexcept {
    return static_cast<uint32_t>(std::hash<std::string_view>{}(id));
}

// Open addressing with linear probing over 8-byte {hash, slot} entries, kept at most half
// full; ids live once, in the caller's slots, and are read back only to confirm a hash match.
// Deletion shifts the following entries back (no tombstones), so probe runs stay short under
// churn. Unlike std::unordered_map it never re-hashes stored strings while probing and costs
// no node allocation per sensor.
class FlatIndex {
public:
    static constexpr uint32_t kNotFound = UINT32_MAX;

    // The slot whose id equals `id`, or kNotFound. `slot_id(uint32_t slot)` returns the id
    // stored in `slot` (anything comparable with std::string_view).
    template <typename SlotId>
    uint32_t find(std::string_view id, uint32_t hash, SlotId &&slot_id) const {
        if (table_.empty()) return kNotFound;
        for (size_t i = hash & mask_;; i = (i + 1) & mask_) {
            const Entry &e = table_[i];
            if (e.slot == kEmpty) return kNotFound;
            if (e.hash == hash && slot_id(e.slot) == id) return e.slot;
        }
    }

    // Starts loading the cache line a later find() with this hash probes first.
    void prefetch(uint32_t hash) const noexcept {
        if (!table_.empty()) __builtin_prefetch(&table_[hash & mask_]);
    }

    // Adds `slot` under `hash`; the caller has checked that its id is not present.
    void insert(uint32_t hash, uint32_t slot) {
        if ((size_ + 1) * 2 > table_.size()) grow();
        place(Entry{hash, slot});
        ++size_;
    }

    // Removes `slot`, which must be present under `hash`.
    void erase(uint32_t hash, uint32_t slot) noexcept {
        size_t i = hash & mask_;
        while (table_[i].slot != slot) i = (i + 1) & mask_;
        // Move back every following entry whose home is not within (i, j].
        for (size_t j = (i + 1) & mask_; table_[j].slot != kEmpty; j = (j + 1) & mask_) {
            size_t home = table_[j].hash & mask_;
            bool home_in_gap = i <= j ? (i < home && home <= j) : (i < home || home <= j);
            if (!home_in_gap) {
                table_[i] = table_[j];
                i = j;
            }
        }
        table_[i] = Entry{};
        --size_;
    }

    size_t size() const noexcept { return size_; }

private:
    static constexpr uint32_t kEmpty = kNotFound;  // an entry's slot when the entry is unused

    struct Entry {
        uint32_t hash = 0;
        uint32_t slot = kEmpty;
    };
    static_assert(sizeof(Entry) == 8);

    void place(Entry entry) noexcept {
        size_t i = entry.hash & mask_;
        while (table_[i].slot != kEmpty) i = (i + 1) & mask_;
        table_[i] = entry;
    }

    void grow() {
        std::vector<Entry> old(std::max<size_t>(16, table_.size() * 2));
        old.swap(table_);
        mask_ = table_.size() - 1;
        for (const Entry &e : old)
            if (e.slot != kEmpty) place(e);
    }

    std::vector<Entry> table_;
    size_t mask_ = 0;
    size_t size_ = 0;
};

}  // namespace iotstream::plugin
