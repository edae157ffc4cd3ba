// libFuzzer target: the reading decoder. Any bytes must decode to exactly one row or one
// rejection with a known reason; a row's columns must be finite or NaN and its sensor id must
// point inside the record (or into the batch for escaped ids).
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "decode/decoder.hpp"

using namespace iotstream;

namespace {
[[noreturn]] void fail(const char *what) {
    std::fprintf(stderr, "fuzz_decoder: %s\n", what);
    std::abort();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static Decoder decoder(DecoderSchema::defaults());
    static DecodedBatch batch;
    // Exact-size heap copy: reading past the record is the bug ASan must see.
    char *copy = static_cast<char *>(std::malloc(size == 0 ? 1 : size));
    if (size) std::memcpy(copy, data, size);
    RawRecord record{copy, size, 3, 42};
    decoder.decode(std::span<const RawRecord>(&record, 1), batch);
    if (batch.size() + batch.rejections().size() != 1) fail("not exactly one outcome per record");
    if (batch.size() == 1) {
        const iots_batch_view_t &view = batch.view();
        if (view.sensor_ids[0].len == 0) fail("accepted an empty sensor_id");
        // Touch every byte of the id: ASan checks that it points at live memory.
        unsigned sum = 0;
        for (size_t i = 0; i < view.sensor_ids[0].len; ++i) sum += static_cast<unsigned char>(view.sensor_ids[0].data[i]);
        if (sum == 0 && view.sensor_ids[0].data[0] != '\0') fail("unreachable");
        if (view.event_time_ms[0] < IOTS_MIN_EVENT_TIME_MS || view.event_time_ms[0] > IOTS_MAX_EVENT_TIME_MS)
            fail("accepted an event time outside the documented range");
        for (uint32_t f = 0; f < view.field_count; ++f)
            if (std::isinf(view.fields[f][0])) fail("accepted an infinite value");
    } else {
        std::string_view reason = batch.rejections()[0].reason;
        bool known = false;
        for (std::string_view r : reject_reason::all) known |= (r == reason);
        if (!known) fail("rejection with an unknown reason");
        if (batch.rejections()[0].detail.empty()) fail("rejection without a detail");
    }
    std::free(copy);
    return 0;
}
