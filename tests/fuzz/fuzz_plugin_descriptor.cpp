// libFuzzer target: the checks on what a plugin's entry function returns. The bytes choose a
// descriptor (sizes, versions, kind, names, which callbacks are set, a config key table with
// its element size, types and default texts); the host must accept it or refuse it with
// Error(IOTS_ERR_PLUGIN) naming the file, and an accepted copy must satisfy what the host
// relies on later. The target does not lie about memory: every byte struct_size and the key
// table claim is allocated, as in a real plugin.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "plugin_host/descriptor_checks.hpp"

using namespace iotstream;

namespace {

// Reads fuzz bytes as small integers and strings; zeros once they run out.
struct Bytes {
    const uint8_t *data;
    size_t size;
    uint8_t byte() {
        if (size == 0) return 0;
        --size;
        return *data++;
    }
    uint32_t u32() {
        uint32_t out = 0;
        for (int shift = 0; shift < 32; shift += 8) out |= static_cast<uint32_t>(byte()) << shift;
        return out;
    }
    std::string text() {
        std::string out;
        for (size_t n = byte() % 80; n > 0 && size > 0; --n) out.push_back(static_cast<char>(byte()));
        return out;  // may hold NULs: C readers see the prefix, like a plugin's string would
    }
};

[[noreturn]] void fail(const char *what) {
    std::fprintf(stderr, "fuzz_plugin_descriptor: %s\n", what);
    std::abort();
}

int create_stub(const iots_host_api_t *, iots_host_ctx_t *, const iots_config_t *, void **, char *, size_t) { return 0; }
int process_stub(void *, const iots_batch_view_t *, char *, size_t) { return 0; }
void destroy_stub(void *) {}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    Bytes in{data, size};
    std::vector<std::string> texts;  // owns every string the descriptor points at
    texts.reserve(64);
    auto text_or_null = [&](uint8_t selector) -> const char * {
        if (selector % 5 == 0) return nullptr;
        texts.push_back(in.text());
        return texts.back().c_str();
    };

    // The version header first: it decides how the host steps through the key table.
    const uint32_t struct_size = in.byte() % 3 == 0 ? in.u32() : static_cast<uint32_t>(sizeof(iots_plugin_descriptor_t) - in.byte() % 64u);
    iots_plugin_descriptor_t d{};
    d.struct_size = struct_size;
    d.abi_major = in.byte() % 4 == 0 ? static_cast<uint16_t>(in.byte()) : IOTS_PLUGIN_ABI_MAJOR;
    d.abi_minor = static_cast<uint16_t>(in.byte() % (IOTS_PLUGIN_ABI_MINOR + 3u));
    const uint32_t step = in.byte() % 4 == 0 ? 0 : static_cast<uint32_t>(in.byte() % (2 * sizeof(iots_config_key_t) + 1));
    // The stride a consistent plugin uses: its config_key_size when its header has the field
    // (ABI 1.1+, within struct_size), else the 1.0 key size, which is today's sizeof.
    const bool has_step_field =
        d.abi_minor >= 1 && struct_size >= offsetof(iots_plugin_descriptor_t, config_key_size) + sizeof(uint32_t);
    const size_t stride = has_step_field && step != 0 ? step : sizeof(iots_config_key_t);

    // The key table: key_count elements `stride` bytes apart, as the plugin lays them out.
    const uint32_t key_count = in.byte() % 8u;
    std::vector<unsigned char> table(key_count * std::max(stride, sizeof(iots_config_key_t)) + sizeof(iots_config_key_t), 0);
    for (uint32_t k = 0; k < key_count; ++k) {
        iots_config_key_t key{};
        key.name = text_or_null(static_cast<uint8_t>(in.byte() | 1u));
        // Any int, as a C plugin may write it (an out-of-range C++ enum value cannot be formed here).
        const int raw_type = in.byte() % 7;
        key.default_json = text_or_null(in.byte());
        key.help = text_or_null(in.byte());
        std::memcpy(table.data() + k * stride, &key, sizeof key);
        std::memcpy(table.data() + k * stride + offsetof(iots_config_key_t, type), &raw_type, sizeof raw_type);
    }

    // The descriptor, in a buffer as large as its struct_size claims (capped: the host refuses
    // anything over 64 KiB before reading it).
    std::vector<unsigned char> buffer(std::max<size_t>(sizeof(iots_plugin_descriptor_t), std::min<uint32_t>(struct_size, 70000)), 0);
    d.name = text_or_null(in.byte());
    d.version = text_or_null(in.byte());
    d.description = text_or_null(in.byte());
    const int raw_kind = in.byte() % 6;  // 0..5: the kinds and values no kind has
    d.config_keys = in.byte() % 7 == 0 ? nullptr : reinterpret_cast<const iots_config_key_t *>(table.data());
    d.config_key_count = key_count;
    const uint8_t callbacks = in.byte();
    d.create = callbacks & 1 ? create_stub : nullptr;
    d.process = callbacks & 2 ? process_stub : nullptr;
    d.destroy = callbacks & 4 ? destroy_stub : nullptr;
    d.config_key_size = step;
    std::memcpy(buffer.data(), &d, sizeof d);
    std::memcpy(buffer.data() + offsetof(iots_plugin_descriptor_t, kind), &raw_kind, sizeof raw_kind);

    std::vector<iots_config_key_t> keys;
    try {
        iots_plugin_descriptor_t copy = check_descriptor(
            "fuzz.so", 0, reinterpret_cast<const iots_plugin_descriptor_t *>(buffer.data()), keys);
        if (copy.name == nullptr || copy.create == nullptr || copy.process == nullptr || copy.destroy == nullptr)
            fail("accepted a descriptor without a name or a required callback");
        if (copy.config_key_count != keys.size() || (copy.config_key_count && copy.config_keys != keys.data()))
            fail("the accepted copy does not point at the host's key table");
        for (const iots_config_key_t &key : keys)
            if (key.name == nullptr || key.type < IOTS_CONFIG_BOOL || key.type > IOTS_CONFIG_JSON)
                fail("accepted a config key without a name or with an unknown type");
    } catch (const Error &e) {
        if (e.code() != IOTS_ERR_PLUGIN || std::strstr(e.what(), "fuzz.so") == nullptr)
            fail("a refusal that is not IOTS_ERR_PLUGIN naming the file");
    }
    return 0;
}
