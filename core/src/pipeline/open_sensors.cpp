// The open-sensor limit (limits.max_open_sensors_per_partition): per input partition, the host
// counts the distinct sensors some stage may still hold state for, and dead-letters a reading
// of a new sensor beyond the limit (too_many_sensors) before any stage sees it, so input cannot
// make the stages' per-sensor state grow without bound.
//
// A sensor is open from its first reading until every stage has let go of its last one: the
// stages' checkpoints say which offsets they still hold (the oldest record in an open window,
// in un-emitted aggregate sums), and a sensor whose last reading lies before all of them has no
// open window or pending sums any more (its windows closed by the watermark or the idle
// timeout, its aggregate was emitted). The count is pruned only when a partition reaches the
// limit, once per batch, so below it the cost is one hash probe per reading. It is
// conservative: a sensor counts until the oldest held record passes it, so it may count a
// little longer than a stage holds it, never shorter. Stages that keep per-sensor state without
// reporting held offsets (a rule plugin remembering the last value) must bound it themselves.
#include <algorithm>
#include <functional>

#include "common/log.hpp"
#include "pipeline/pipeline.hpp"

namespace iotstream {

namespace {
constexpr auto kWarningInterval = std::chrono::seconds(10);
}  // namespace

void Pipeline::release_closed_sensors(uint32_t id) {
    Stream &stream = streams_[id];
    if (stream.next_offset < 0) return;  // nothing processed yet: every sensor is this batch's
    int64_t released = stream.next_offset;
    for (PluginInstance *instance : execution_order_) {
        PluginInstance::Checkpoint cp = instance->checkpoint(id);
        if (cp.oldest_needed_offset != IOTS_NO_VALUE) released = std::min(released, cp.oldest_needed_offset);
    }
    std::erase_if(stream.open_sensors, [released](const auto &sensor) { return sensor.second < released; });
}

void Pipeline::limit_open_sensors() {
    const size_t limit = static_cast<size_t>(config_.max_open_sensors_per_partition);
    const iots_batch_view_t &view = batch_.view();
    const uint64_t batch_number = counters_.batches.load(std::memory_order_relaxed) + 1;
    std::vector<DecodedBatch::RowRefusal> refused;
    for (uint32_t row = 0; row < view.count; ++row) {
        const uint32_t id = view.streams[row];
        Stream &stream = streams_[id];
        const std::string_view sensor(view.sensor_ids[row].data, view.sensor_ids[row].len);
        const uint64_t key = std::hash<std::string_view>{}(sensor);
        if (auto it = stream.open_sensors.find(key); it != stream.open_sensors.end()) {
            it->second = view.offsets[row];
            continue;
        }
        if (stream.open_sensors.size() >= limit && stream.sensors_pruned_in != batch_number) {
            stream.sensors_pruned_in = batch_number;
            release_closed_sensors(id);
        }
        if (stream.open_sensors.size() < limit) {
            stream.open_sensors.emplace(key, view.offsets[row]);
            continue;
        }
        refused.push_back({row, kTooManySensors,
                           "sensor '" + std::string(sensor.substr(0, 64)) + "' is new on " + stream.topic + "[" +
                               std::to_string(stream.partition) + "], which has " + std::to_string(limit) +
                               " sensors with open state (limits.max_open_sensors_per_partition)"});
        ++stream.sensors_refused;
    }
    if (refused.empty()) return;
    const auto now = std::chrono::steady_clock::now();
    for (const auto &refusal : refused) {
        Stream &stream = streams_[view.streams[refusal.row]];
        if (stream.sensors_refused == 0 || now - stream.sensors_warned_at < kWarningInterval) continue;
        logger("pipeline")->warn("{}[{}]: {} reading(s) of new sensors dead-lettered as {}: {} sensors already have "
                                 "open state (limits.max_open_sensors_per_partition)",
                                 stream.topic, stream.partition, stream.sensors_refused, kTooManySensors, limit);
        stream.sensors_warned_at = now;
        stream.sensors_refused = 0;
    }
    batch_.refuse_rows(std::move(refused));
}

}  // namespace iotstream
