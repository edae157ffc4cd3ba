// Readings for plugin tests, turned into the iots_batch_view_t a plugin sees by the core's own
// decoder: each reading becomes the seed's JSON envelope and is decoded, so a test batch has
// exactly the layout, absent values (NaN), sensor ids and payloads a pipeline batch has.
#pragma once

#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "iotstream/plugin.h"

namespace iotstream::test {

inline constexpr double kAbsent = std::numeric_limits<double>::quiet_NaN();  // leaves the field out

// One input reading. Its numeric fields are written under "data"; a batch keeps those its
// schema names (in the schema's order).
struct Reading {
    std::string sensor;
    int64_t event_time_ms = 0;
    double temperature = 25.0;
    double humidity = 50.0;
    double pressure = 1010.0;
    double battery_level = 80.0;
    uint32_t stream = 0;
    int64_t offset = 0;
    uint64_t anomaly_bits = 0;  // bits already set when the batch reaches the plugin
    double lat = 37.5;
    double lon = -121.5;
};

// The core's default reading fields: temperature, humidity, pressure, battery_level,
// location.lat, location.lon.
std::vector<std::string> default_reading_fields();

// A batch of readings, decoded with the given field schema (none of them required, so a
// kAbsent value stays a NaN in its row). A reading the decoder refuses throws
// std::invalid_argument: a test never loses a row silently.
class ReadingBatch {
public:
    explicit ReadingBatch(const std::vector<std::string> &fields = default_reading_fields());
    explicit ReadingBatch(const std::vector<Reading> &readings,
                          const std::vector<std::string> &fields = default_reading_fields());
    ~ReadingBatch();
    ReadingBatch(const ReadingBatch &) = delete;
    ReadingBatch &operator=(const ReadingBatch &) = delete;

    void add(const Reading &reading);
    // A reading of one sensor's temperature; its offset is its position in the batch.
    void add(const std::string &sensor, int64_t event_time_ms, double temperature, uint32_t stream = 0);
    size_t size() const { return readings_.size(); }

    // The plugin-facing view; decodes what was added since the last call. Valid until the
    // next add() or the batch's destruction. Event times the decoder refuses (outside years
    // 0000..9999, e.g. IOTS_NO_VALUE) are put in after decoding, as another host might send
    // them.
    const iots_batch_view_t &view();
    // view().anomaly_bits, writable as the host's are.
    uint64_t *anomaly_bits();
    uint64_t anomaly_bits(uint32_t row) { return anomaly_bits()[row]; }

private:
    struct Decoded;
    std::vector<Reading> readings_;
    std::unique_ptr<Decoded> decoded_;
};

}  // namespace iotstream::test
