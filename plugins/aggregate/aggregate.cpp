// aggregate: the seed's RealTimeAnalyticsConsumer. Per sensor, since its last emission: the
// reading count, sums of temperature/humidity/pressure and the latest event time. Every
// interval_ms of wall clock (driven by tick) one record per sensor that received readings is
// emitted on "output" and that sensor's state is reset.
//
// State is kept per input stream (Kafka partition), then per sensor. Sensors are keyed to one
// partition by the producer, so a sensor normally lives in one stream; were a sensor to appear
// in two streams, each stream emits its own aggregate for it.
//
// Layout and cost. A stream's sensors are 80-byte slots in a paged pool (sums, counts and the
// id inline up to 22 bytes), found through a flat open-addressing index of 8-byte {hash, slot}
// entries. A record is one hash, one index probe and one slot update, with the index bucket and
// the slot prefetched a few records ahead; nothing is allocated per record once its sensor has
// a slot. A sensor without readings in two consecutive emissions is evicted: its index entry is
// erased and its slot reused by the next new sensor. Measured: 103 heap bytes per sensor with
// 100K sensors on 8 streams (the slot, ~21 bytes of index, a share of the last page).
//
// Rebalance choice: on_revoke drops the stream's un-emitted sums. checkpoint() never lets a
// commit pass the oldest record still in those sums, so the new owner re-reads exactly those
// records and emits them itself: nothing is lost and nothing is counted twice.
//
// An absent field (NaN) is left out of that field's average, so one reading without pressure
// does not turn the sensor's average into NaN; a field absent in every reading averages to null.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <memory>
#include <iterator>
#include <string>
#include <unordered_map>

#include "../support/compact_id.hpp"
#include "../support/field_columns.hpp"
#include "../support/flat_index.hpp"
#include "../support/paged_pool.hpp"
#include "../support/plugin_adapter.hpp"
#include "../support/plugin_support.hpp"

namespace {

using iotstream::plugin::CompactId;
using iotstream::plugin::FlatIndex;
using iotstream::plugin::JsonWriter;
using iotstream::plugin::PluginError;

constexpr const char *kPluginName = "aggregate";
constexpr int kFieldCount = 3;
constexpr const char *kFieldNames[kFieldCount] = {"temperature", "humidity", "pressure"};
constexpr const char *kAverageKeys[kFieldCount] = {"avg_temperature", "avg_humidity",
                                                   "avg_pressure"};

enum class SlotState : uint8_t {
    free,    // on the pool's free list, not in the index
    active,  // had readings since the last emission that found it without any
    idle,    // the last emission found it without readings: the next such one evicts it
};

// One sensor's sums since its last emission. Counts are 32-bit: a sensor reaching 2^32 - 1
// readings within one interval is emitted early (see emit_early()).
struct SensorSlot {
    uint32_t count = 0;
    uint32_t present[kFieldCount] = {};  // readings that carried the field
    double sum[kFieldCount] = {};
    int64_t latest_event_ms = IOTS_NO_VALUE;
    int64_t oldest_offset = IOTS_NO_VALUE;
    CompactId id;
    SlotState state = SlotState::free;

    void reset_sums() {
        count = 0;
        std::fill(std::begin(present), std::end(present), uint32_t{0});
        std::fill(std::begin(sum), std::end(sum), 0.0);
        latest_event_ms = IOTS_NO_VALUE;
        oldest_offset = IOTS_NO_VALUE;
    }
};
static_assert(sizeof(SensorSlot) == 80, "the documented per-sensor state size");

class StreamSums {
public:
    // Starts loading the index bucket slot_for(id, hash) probes first.
    void prefetch(uint32_t hash) const { index_.prefetch(hash); }

    // The slot of `id` (hash: hash_id(id)), added with empty sums when the sensor is new to
    // this stream.
    SensorSlot &slot_for(std::string_view id, uint32_t hash) {
        uint32_t n = index_.find(id, hash, [this](uint32_t slot) { return slots_[slot].id.view(); });
        if (n != FlatIndex::kNotFound) return slots_[n];
        n = slots_.allocate();
        SensorSlot &slot = slots_[n];
        try {
            slot.id.assign(id);
            index_.insert(hash, n);
        } catch (...) {
            slots_.release(n);
            throw;
        }
        slot.reset_sums();
        slot.state = SlotState::active;
        return slot;
    }

    // One step of an emission pass: calls visit(SensorSlot &) for sensors with readings from the
    // pass cursor on, until `budget` of them were visited, evicting on the way those that were
    // idle for two emissions. True when the pass reached the last slot.
    template <typename Visit>
    bool emission_step(size_t &budget, Visit &&visit) {
        uint32_t n = pass_cursor;
        for (; n < slots_.size() && budget > 0; ++n) {
            SensorSlot &slot = slots_[n];
            if (slot.state == SlotState::free) continue;
            if (slot.count == 0) {
                if (slot.state == SlotState::idle)
                    evict(n);
                else
                    slot.state = SlotState::idle;
                continue;
            }
            visit(slot);
            --budget;
        }
        pass_cursor = n;
        return n >= slots_.size();
    }

    // Every sensor slot in use, in slot order (state hand-over).
    template <typename Visit>
    void for_each_slot(Visit &&visit) const {
        for (uint32_t n = 0; n < slots_.size(); ++n)
            if (slots_[n].state != SlotState::free) visit(slots_[n]);
    }

    bool pass_in_progress() const { return pass_cursor != kNoPass; }
    void begin_pass(int64_t wall_clock_ms) {
        pass_cursor = 0;
        pass_wall_ms = wall_clock_ms;
        pass_oldest = IOTS_NO_VALUE;
        added_during_pass = IOTS_NO_VALUE;
        pass_refused = 0;
        pass_first_refused.clear();
    }

    int64_t oldest_offset = IOTS_NO_VALUE;  // min over sensors with readings (never too new)
    int64_t next_emission_ms = IOTS_NO_VALUE;
    // The emission in progress: it is spread over ticks so a stream of many sensors never stalls
    // the pipeline thread (event-to-alert latency); kNoPass when none.
    static constexpr uint32_t kNoPass = UINT32_MAX;
    uint32_t pass_cursor = kNoPass;
    int64_t pass_wall_ms = 0;                  // processed_at of every aggregate of the pass
    int64_t pass_oldest = IOTS_NO_VALUE;       // oldest offset kept by refused sensors
    int64_t added_during_pass = IOTS_NO_VALUE; // oldest offset added while the pass ran
    size_t pass_refused = 0;
    std::string pass_first_refused;

private:
    void evict(uint32_t n) {
        SensorSlot &slot = slots_[n];
        index_.erase(iotstream::plugin::hash_id(slot.id.view()), n);
        slot.state = SlotState::free;  // the id keeps its heap block (if any) for the next one
        slots_.release(n);
    }

    FlatIndex index_;
    iotstream::plugin::PagedPool<SensorSlot, 9> slots_;  // 512 slots (40 KiB) per page
};

// Streams emit at different phases of the interval, and each tick (the host ticks about every
// 25 ms) emits at most kEmitsPerTick aggregates, ~20K/s: 100K sensors emitted in one go would
// stall the pipeline thread for ~100 ms every interval, and 2048 per 100 ms tick still sent
// bursts that delayed the alerts behind them in the output producer and broker (output hop p99
// 51 ms against 10-12 ms with 512 per 25 ms; docs/benchmarks.md, event-to-alert per hop).
constexpr int64_t kEmissionPhases = 16;
constexpr size_t kEmitsPerTick = 512;

int64_t wall_clock_now_ms() {
    using namespace std::chrono;
    return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

class Aggregator {
public:
    // State hand-over (plugin.h, ABI 1.2): format 1 is, per stream, its next emission time and
    // every sensor's sums since its last emission. An emission pass in progress is not carried
    // over: the new version starts one at once, so its remaining sensors are emitted then.
    static constexpr uint32_t kStateVersion = 1;

    Aggregator(const iots_host_api_t *host, iots_host_ctx_t *ctx, const iots_config_t *cfg)
        : host_(host), ctx_(ctx) {
        interval_ms_ = iotstream::plugin::config_int(host, cfg, "interval_ms");
        if (interval_ms_ <= 0)
            throw PluginError("config key 'interval_ms' must be > 0, got " +
                              std::to_string(interval_ms_));
        output_ = iotstream::plugin::config_string(host, cfg, "output");
        if (output_.empty()) throw PluginError("config key 'output' must not be empty");
        for (const char *field : field_columns_.resolve(host, ctx, kFieldNames))
            log(iotstream::plugin::kLogWarn,
                std::string("field '") + field + "' is not in the decoder schema; its average will be null");
    }

    void process(const iots_batch_view_t *batch) {
        const double *columns[kFieldCount];
        field_columns_.bind(batch, columns);
        // Records go through in chunks: hash every id and prefetch its index bucket, then find
        // the slots and prefetch them, then add. A chunk's cache misses overlap instead of
        // stalling one after another (100K sensors' state is far larger than the L2 cache).
        constexpr uint32_t kChunk = 16;
        StreamSums *streams[kChunk];
        uint32_t hashes[kChunk];
        SensorSlot *slots[kChunk];
        StreamSums *stream = nullptr;
        uint32_t stream_id = 0;
        auto sensor_at = [batch](uint32_t i) {
            return std::string_view(batch->sensor_ids[i].data, batch->sensor_ids[i].len);
        };
        for (uint32_t base = 0; base < batch->count; base += kChunk) {
            const uint32_t chunk = std::min(kChunk, batch->count - base);
            for (uint32_t j = 0; j < chunk; ++j) {
                const uint32_t i = base + j;
                if (stream == nullptr || batch->streams[i] != stream_id) {
                    stream_id = batch->streams[i];
                    stream = &stream_for(stream_id);
                }
                streams[j] = stream;
                hashes[j] = iotstream::plugin::hash_id(sensor_at(i));
                stream->prefetch(hashes[j]);
            }
            for (uint32_t j = 0; j < chunk; ++j) {
                slots[j] = &streams[j]->slot_for(sensor_at(base + j), hashes[j]);
                __builtin_prefetch(slots[j]);
                __builtin_prefetch(reinterpret_cast<const char *>(slots[j] + 1) - 1);
            }
            for (uint32_t j = 0; j < chunk; ++j) add(*streams[j], *slots[j], batch, columns, base + j);
        }
    }

    int tick(int64_t wall_clock_ms) {
        if (schedule_start_ms_ == IOTS_NO_VALUE) schedule_start_ms_ = wall_clock_ms;
        int result = 0;
        size_t budget = kEmitsPerTick;
        for (auto &[stream_id, stream] : streams_) {
            if (stream->next_emission_ms == IOTS_NO_VALUE) {
                // This stream emits at first + k * interval, k the first one not in the past.
                int64_t phase = static_cast<int64_t>(stream_id % kEmissionPhases) * interval_ms_ / kEmissionPhases;
                int64_t first = schedule_start_ms_ + phase;
                int64_t k = wall_clock_ms <= first ? 0 : (wall_clock_ms - first + interval_ms_ - 1) / interval_ms_;
                stream->next_emission_ms = first + k * interval_ms_;
                if (stream->next_emission_ms <= schedule_start_ms_) stream->next_emission_ms += interval_ms_;
            }
            if (!stream->pass_in_progress() && wall_clock_ms >= stream->next_emission_ms) {
                stream->next_emission_ms += interval_ms_;
                // After a long stall, keep the cadence from now instead of emitting back to back.
                if (stream->next_emission_ms <= wall_clock_ms) stream->next_emission_ms = wall_clock_ms + interval_ms_;
                stream->begin_pass(wall_clock_ms);
            }
            if (stream->pass_in_progress()) result |= emit_step(*stream, budget);
        }
        return result;
    }

    // Emits everything pending at once (the end of a bounded run, shutdown).
    int flush() {
        int result = 0;
        const int64_t now = wall_clock_now_ms();
        for (auto &[stream_id, stream] : streams_) {
            size_t unlimited = SIZE_MAX;
            if (stream->pass_in_progress()) result |= emit_step(*stream, unlimited);  // finish it first
            stream->begin_pass(now);
            result |= emit_step(*stream, unlimited);
        }
        return result;
    }

    void on_revoke(uint32_t stream) { streams_.erase(stream); }

    void checkpoint(uint32_t stream, int64_t *oldest_needed_offset, int64_t *watermark_ms) {
        auto it = streams_.find(stream);
        if (oldest_needed_offset != nullptr)
            *oldest_needed_offset = it == streams_.end() ? IOTS_NO_VALUE : it->second->oldest_offset;
        if (watermark_ms != nullptr) *watermark_ms = IOTS_NO_VALUE;
    }

    void export_state(uint32_t stream_id, iotstream::plugin::StateWriter &out) const {
        auto it = streams_.find(stream_id);
        if (it == streams_.end()) return;
        const StreamSums &stream = *it->second;
        out.i64(stream.pass_in_progress() ? stream.pass_wall_ms : stream.next_emission_ms);
        uint32_t count = 0;
        stream.for_each_slot([&](const SensorSlot &) { ++count; });
        out.u32(count);
        stream.for_each_slot([&](const SensorSlot &slot) {
            out.str(slot.id.view());
            out.u8(static_cast<uint8_t>(slot.state));
            out.u32(slot.count);
            for (int f = 0; f < kFieldCount; ++f) {
                out.u32(slot.present[f]);
                out.f64(slot.sum[f]);
            }
            out.i64(slot.latest_event_ms);
            out.i64(slot.oldest_offset);
        });
    }

    void import_state(uint32_t stream_id, iotstream::plugin::StateReader &in, uint32_t /*state_version*/) {
        if (in.empty()) return;
        auto fresh = std::make_unique<StreamSums>();
        StreamSums &stream = *fresh;
        stream.next_emission_ms = in.i64();
        constexpr size_t kMinSlotBytes = 4 + 1 + 4 + kFieldCount * (4 + 8) + 8 + 8;
        const uint32_t count = in.count(kMinSlotBytes);
        for (uint32_t n = 0; n < count; ++n) {
            const std::string_view id = in.str();
            const auto state = static_cast<SlotState>(in.u8());
            if (state != SlotState::active && state != SlotState::idle)
                throw PluginError("state holds a sensor slot in an unknown state");
            SensorSlot &slot = stream.slot_for(id, iotstream::plugin::hash_id(id));
            slot.state = state;
            slot.count = in.u32();
            for (int f = 0; f < kFieldCount; ++f) {
                slot.present[f] = in.u32();
                slot.sum[f] = in.f64();
            }
            slot.latest_event_ms = in.i64();
            slot.oldest_offset = in.i64();
            if (slot.count > 0 && slot.oldest_offset != IOTS_NO_VALUE &&
                (stream.oldest_offset == IOTS_NO_VALUE || slot.oldest_offset < stream.oldest_offset))
                stream.oldest_offset = slot.oldest_offset;
        }
        in.expect_end();
        streams_[stream_id] = std::move(fresh);
    }

private:
    void log(int level, const std::string &message) {
        host_->log(ctx_, level, (std::string(kPluginName) + ": " + message).c_str());
    }

    StreamSums &stream_for(uint32_t stream) {
        auto it = streams_.find(stream);
        if (it == streams_.end()) it = streams_.emplace(stream, std::make_unique<StreamSums>()).first;
        return *it->second;
    }

    void add(StreamSums &stream, SensorSlot &slot, const iots_batch_view_t *batch,
             const double *const (&columns)[kFieldCount], uint32_t i) {
        if (slot.count == std::numeric_limits<uint32_t>::max()) [[unlikely]]
            emit_early(slot);
        slot.state = SlotState::active;
        ++slot.count;
        for (int f = 0; f < kFieldCount; ++f) {
            if (columns[f] == nullptr) continue;
            double value = columns[f][i];
            if (std::isnan(value)) continue;
            slot.sum[f] += value;
            ++slot.present[f];
        }
        slot.latest_event_ms = std::max(slot.latest_event_ms, batch->event_time_ms[i]);
        const int64_t offset = batch->offsets[i];
        if (slot.oldest_offset == IOTS_NO_VALUE || offset < slot.oldest_offset)
            slot.oldest_offset = offset;
        if (stream.oldest_offset == IOTS_NO_VALUE || offset < stream.oldest_offset)
            stream.oldest_offset = offset;
        if (stream.pass_in_progress() &&
            (stream.added_during_pass == IOTS_NO_VALUE || offset < stream.added_during_pass))
            stream.added_during_pass = offset;
    }

    // Emits one sensor's aggregate and resets its sums; false (sums kept) when refused.
    bool emit_sensor(SensorSlot &slot, int64_t wall_clock_ms) {
        std::string_view sensor = slot.id.view();
        write_result(sensor, slot, wall_clock_ms);
        const std::string &value = writer_.str();
        if (host_->emit(ctx_, output_.c_str(), sensor.data(), sensor.size(), value.data(),
                        value.size(), IOTS_EMIT_RAW) != 0)
            return false;
        slot.reset_sums();
        return true;
    }

    // A sensor whose count would pass 2^32 - 1 within one interval is emitted before the next
    // reading (an extra aggregate, not a wrong one). The stream's oldest pending offset may
    // stay older than needed until the next emission, which only delays a commit.
    void emit_early(SensorSlot &slot) {
        if (!emit_sensor(slot, wall_clock_now_ms()))
            throw PluginError("sensor '" + std::string(slot.id.view()) +
                              "' reached 4294967295 readings within one interval and output '" +
                              output_ + "' refused its early aggregate");
    }

    // Continues the stream's emission pass within `budget` aggregates. A sensor whose emit the
    // host refuses keeps its sums (and holds back the commit) and is retried at the next pass.
    // When the pass completes, the stream's oldest pending offset becomes exact again.
    int emit_step(StreamSums &stream, size_t &budget) {
        bool complete = stream.emission_step(budget, [&](SensorSlot &slot) {
            if (emit_sensor(slot, stream.pass_wall_ms)) return;
            if (stream.pass_refused++ == 0) stream.pass_first_refused = slot.id.view();
            if (stream.pass_oldest == IOTS_NO_VALUE || slot.oldest_offset < stream.pass_oldest)
                stream.pass_oldest = slot.oldest_offset;
        });
        if (!complete) return 0;
        stream.oldest_offset = stream.pass_oldest;
        if (stream.added_during_pass != IOTS_NO_VALUE &&
            (stream.oldest_offset == IOTS_NO_VALUE || stream.added_during_pass < stream.oldest_offset))
            stream.oldest_offset = stream.added_during_pass;
        stream.pass_cursor = StreamSums::kNoPass;
        if (stream.pass_refused > 0) {
            log(iotstream::plugin::kLogError, "output '" + output_ + "' refused " + std::to_string(stream.pass_refused) +
                                                  " aggregate(s) (first: sensor '" + stream.pass_first_refused +
                                                  "'); they are kept and retried at the next interval");
            return 1;
        }
        return 0;
    }

    // The seed's analytics_result.
    void write_result(std::string_view sensor, const SensorSlot &sums, int64_t wall_clock_ms) {
        writer_.clear();
        writer_.raw("{");
        writer_.key("sensor_id");
        writer_.string(sensor);
        for (int f = 0; f < kFieldCount; ++f) {
            writer_.raw(",");
            writer_.key(kAverageKeys[f]);
            writer_.number(sums.present[f] == 0
                               ? std::numeric_limits<double>::quiet_NaN()
                               : sums.sum[f] / static_cast<double>(sums.present[f]));
        }
        writer_.raw(",");
        writer_.key("sample_count");
        writer_.integer(static_cast<int64_t>(sums.count));
        writer_.raw(",");
        writer_.key("latest_timestamp");
        if (sums.latest_event_ms == IOTS_NO_VALUE)
            writer_.raw("null");
        else
            writer_.iso8601(sums.latest_event_ms);
        writer_.raw(",");
        writer_.key("processed_at");
        // The same for every sensor of one emission: formatted once.
        if (wall_clock_ms != processed_at_ms_) {
            processed_at_.clear();
            processed_at_.iso8601(wall_clock_ms);
            processed_at_ms_ = wall_clock_ms;
        }
        writer_.raw(processed_at_.str());
        writer_.raw("}");
    }

    const iots_host_api_t *host_;
    iots_host_ctx_t *ctx_;
    int64_t interval_ms_ = 0;
    std::string output_;
    iotstream::plugin::FieldColumns<kFieldCount> field_columns_;
    int64_t schedule_start_ms_ = IOTS_NO_VALUE;  // the first tick: emission phases count from it
    std::unordered_map<uint32_t, std::unique_ptr<StreamSums>> streams_;
    JsonWriter writer_;
    JsonWriter processed_at_;  // the quoted time of processed_at_ms_
    int64_t processed_at_ms_ = IOTS_NO_VALUE;
};

const iots_config_key_t kConfigKeys[] = {
    {"interval_ms", IOTS_CONFIG_INT, "5000",
     "wall-clock milliseconds between emissions of per-sensor aggregates"},
    {"output", IOTS_CONFIG_STRING, "\"aggregates\"", "output name the aggregates are emitted on"},
};

constexpr iotstream::plugin::PluginInfo kInfo = {
    .name = kPluginName,
    .version = "1.0.0",
    .description = "Per-sensor averages emitted every interval (the seed's real-time analytics)",
    .kind = IOTS_PLUGIN_STAGE,
    .config_keys = kConfigKeys,
    .config_key_count = static_cast<uint32_t>(std::size(kConfigKeys)),
};

const iots_plugin_descriptor_t kDescriptor = iotstream::plugin::PluginAdapter<Aggregator, kInfo>::descriptor();

}  // namespace

IOTS_PLUGIN_DEFINE(&kDescriptor);
