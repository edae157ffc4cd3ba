// The bytes a bundled stage hands to its next version on a hot replace (plugin.h, "State
// hand-over"): fixed-width little-endian integers, IEEE-754 doubles and length-prefixed strings,
// written and read field by field. A reader never reads past the end: truncated or malformed
// state is a PluginError (the host then keeps the running version).
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "plugin_support.hpp"

namespace iotstream::plugin {

class StateWriter {
public:
    void u8(uint8_t v) { bytes_.push_back(static_cast<char>(v)); }
    void u32(uint32_t v) { put(v, 4); }
    void u64(uint64_t v) { put(v, 8); }
    void i64(int64_t v) { put(static_cast<uint64_t>(v), 8); }
    void f64(double v) {
        uint64_t bits;
        std::memcpy(&bits, &v, sizeof bits);
        put(bits, 8);
    }
    void str(std::string_view s) {
        u32(static_cast<uint32_t>(s.size()));
        bytes_.append(s);
    }
    const std::string &bytes() const { return bytes_; }

private:
    void put(uint64_t v, int width) {
        for (int b = 0; b < width; ++b) bytes_.push_back(static_cast<char>(v >> (8 * b) & 0xff));
    }
    std::string bytes_;
};

class StateReader {
public:
    StateReader(const void *data, size_t len) : p_(static_cast<const unsigned char *>(data)), end_(p_ + len) {}
    bool empty() const { return p_ == end_; }
    uint8_t u8() { return static_cast<uint8_t>(get(1)); }
    uint32_t u32() { return static_cast<uint32_t>(get(4)); }
    uint64_t u64() { return get(8); }
    int64_t i64() { return static_cast<int64_t>(get(8)); }
    double f64() {
        uint64_t bits = get(8);
        double v;
        std::memcpy(&v, &bits, sizeof v);
        return v;
    }
    std::string_view str() {
        const uint32_t n = u32();
        need(n);
        std::string_view s(reinterpret_cast<const char *>(p_), n);
        p_ += n;
        return s;
    }
    // A count of items each at least `min_item_bytes` long: refuses counts the bytes cannot hold.
    uint32_t count(size_t min_item_bytes) {
        const uint32_t n = u32();
        if (min_item_bytes > 0 && n > static_cast<size_t>(end_ - p_) / min_item_bytes)
            throw PluginError("state says " + std::to_string(n) + " items but holds " +
                              std::to_string(end_ - p_) + " bytes");
        return n;
    }
    void expect_end() const {
        if (p_ != end_) throw PluginError("state has " + std::to_string(end_ - p_) + " unread bytes at its end");
    }

private:
    void need(size_t n) const {
        if (static_cast<size_t>(end_ - p_) < n) throw PluginError("state is truncated");
    }
    uint64_t get(int width) {
        need(static_cast<size_t>(width));
        uint64_t v = 0;
        for (int b = 0; b < width; ++b) v |= static_cast<uint64_t>(p_[b]) << (8 * b);
        p_ += width;
        return v;
    }
    const unsigned char *p_;
    const unsigned char *end_;
};

}  // namespace iotstream::plugin
