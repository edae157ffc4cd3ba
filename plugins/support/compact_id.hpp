// A sensor id in 23 bytes with byte alignment. Header-only, plugin-internal.
#pragma once

#include <cstddef>
#include <cstring>
#include <string_view>

namespace iotstream::plugin {

// Ids up to kInlineCapacity bytes (typical: "sensor_12345") live inside the object; longer ones
// in one heap block owned by it. Byte alignment lets a slot pack it next to a 1-byte field
// in 24 bytes, where std::string takes 32 and inlines only 15.
class CompactId {
public:
    static constexpr size_t kInlineCapacity = 22;

    CompactId() noexcept { bytes_[kTagByte] = 0; }
    ~CompactId() { free_heap(); }
    CompactId(const CompactId &) = delete;
    CompactId &operator=(const CompactId &) = delete;
    CompactId(CompactId &&other) noexcept {
        std::memcpy(bytes_, other.bytes_, sizeof bytes_);
        other.bytes_[kTagByte] = 0;
    }
    CompactId &operator=(CompactId &&other) noexcept {
        if (this != &other) {
            free_heap();
            std::memcpy(bytes_, other.bytes_, sizeof bytes_);
            other.bytes_[kTagByte] = 0;
        }
        return *this;
    }

    // Replaces the id. Allocates only for an id longer than kInlineCapacity and than the
    // long id held before (whose block is reused).
    void assign(std::string_view id) {
        if (id.size() <= kInlineCapacity) {
            free_heap();
            std::memcpy(bytes_, id.data(), id.size());
            bytes_[kTagByte] = static_cast<char>(id.size());
            return;
        }
        if (on_heap() && heap_size() >= id.size()) {
            std::memmove(heap_data(), id.data(), id.size());
            store_heap(heap_data(), id.size());
            return;
        }
        char *block = new char[id.size()];  // may throw: the old id is still intact
        std::memcpy(block, id.data(), id.size());
        free_heap();
        store_heap(block, id.size());
    }

    std::string_view view() const noexcept {
        if (on_heap()) return {heap_data(), heap_size()};
        return {bytes_, static_cast<unsigned char>(bytes_[kTagByte])};
    }

    bool operator==(std::string_view id) const noexcept { return view() == id; }
    bool on_heap() const noexcept { return bytes_[kTagByte] == kHeapTag; }

private:
    // Inline: bytes [0, n) hold the id and the tag byte holds n. Heap: the tag byte is
    // kHeapTag and the first bytes hold the block pointer and the id's size; the block is at
    // least that large (a shorter long id reuses it).
    static constexpr size_t kTagByte = kInlineCapacity;
    static constexpr char kHeapTag = static_cast<char>(0xff);
    static constexpr size_t kSizeOffset = sizeof(char *);
    static_assert(kSizeOffset + sizeof(size_t) <= kTagByte);

    template <typename T>
    T load(size_t offset) const noexcept {
        T value;
        std::memcpy(&value, bytes_ + offset, sizeof value);
        return value;
    }

    char *heap_data() const noexcept { return load<char *>(0); }
    size_t heap_size() const noexcept { return load<size_t>(kSizeOffset); }

    void store_heap(char *block, size_t size) noexcept {
        std::memcpy(bytes_, &block, sizeof block);
        std::memcpy(bytes_ + kSizeOffset, &size, sizeof size);
        bytes_[kTagByte] = kHeapTag;
    }

    void free_heap() noexcept {
        if (on_heap()) delete[] heap_data();
        bytes_[kTagByte] = 0;
    }

    char bytes_[kInlineCapacity + 1];
};
static_assert(sizeof(CompactId) == CompactId::kInlineCapacity + 1 && alignof(CompactId) == 1);

}  // namespace iotstream::plugin
