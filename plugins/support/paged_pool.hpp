// Numbered objects in fixed pages, with a free list. Header-only, plugin-internal.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

namespace iotstream::plugin {

// Growing never moves existing objects and wastes at most one page, where a doubling vector
// would hold up to half its capacity unused. allocate() hands back a released number first;
// such an object keeps whatever state it was released with, so callers reset what they use.
template <typename T, uint32_t PageBits>
class PagedPool {
public:
    static constexpr uint32_t kPageSize = 1u << PageBits;

    T &operator[](uint32_t n) noexcept { return pages_[n >> PageBits][n & (kPageSize - 1)]; }
    const T &operator[](uint32_t n) const noexcept {
        return pages_[n >> PageBits][n & (kPageSize - 1)];
    }

    // Numbers ever handed out are [0, size()); released ones among them are reused first.
    uint32_t size() const noexcept { return size_; }
    uint32_t released() const noexcept { return static_cast<uint32_t>(free_.size()); }

    uint32_t allocate() {
        if (!free_.empty()) {
            uint32_t n = free_.back();
            free_.pop_back();
            return n;
        }
        if ((size_ & (kPageSize - 1)) == 0) pages_.push_back(std::make_unique<T[]>(kPageSize));
        return size_++;
    }

    void release(uint32_t n) { free_.push_back(n); }

private:
    std::vector<std::unique_ptr<T[]>> pages_;
    std::vector<uint32_t> free_;
    uint32_t size_ = 0;
};

}  // namespace iotstream::plugin
