// window: the seed's StreamProcessor done properly. Per-sensor statistics over event-time
// windows (tumbling, hopping or session) that close on a per-stream watermark, each emitted
// exactly once, late records dead-lettered, idle streams' windows closed by wall clock.
//
// Event time and watermarks. Each stream (one Kafka partition) has a watermark: the largest
// event time it has delivered. A window [start, end) closes when watermark >= end + grace.
// A record is checked against the watermark as it stands when the record is reached, so
// lateness does not depend on how records were cut into batches. Closed windows are emitted
// at the end of process() and in tick().
//
// Layout and cost. Everything is per stream, so revoking a stream is dropping one object.
// Open windows live in a paged pool with a free list and are threaded per sensor into a short
// list (newest first: records mostly hit the current window); sensors are found through a
// flat open-addressing index keyed by a 32-bit hash of the id. A min-heap orders windows by
// close time, so closing touches only due windows, never all sensors. Nothing is allocated
// per record once sensors and windows exist: a record is one index probe, a walk of that
// sensor's few open windows, and three Welford updates. Records are looked up in chunks of 16
// (index bucket, then sensor and newest window prefetched) and applied in order afterwards, so
// a chunk's cache misses overlap: with 100K sensors in random order, tumbling 3.2M -> 8.4M
// records/s, sessions 2.7M -> 6.5M, hopping (5 windows per record) 0.7M -> 0.9M.
//
// Memory per open sensor-window: OpenWindow is 144 bytes, plus 16 in the close heap and 8 in
// the creation FIFO; a sensor with open windows adds its 40-byte slot (id inline up to 15
// characters) and 16 bytes of index. Measured: 251 heap bytes per open sensor-window with
// 100K sensors in tumbling mode (one window each).
//
// Restores. on_assign(stream, W) says windows closing at or before W were emitted by the
// previous owner. Tumbling and hopping windows are aligned, so a replayed record is skipped
// at once when every window holding it closes at or before W. A session's extent depends on
// records yet to come, so session mode rebuilds sessions from the replay (its watermark starts
// empty) and silently discards any session that closes at or before W.
#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <deque>
#include <limits>
#include <memory>
#include <iterator>
#include <string>
#include <unordered_map>
#include <vector>

#include "../support/compact_id.hpp"
#include "../support/field_columns.hpp"
#include "../support/flat_index.hpp"
#include "../support/paged_pool.hpp"
#include "../support/plugin_adapter.hpp"
#include "../support/plugin_support.hpp"

namespace {

using iotstream::plugin::JsonWriter;
using iotstream::plugin::PluginError;

constexpr const char *kPluginName = "window";
constexpr uint32_t kNone = UINT32_MAX;
// Hopping windows per record are size/hop; bounding it bounds per-record work.
constexpr int64_t kMaxWindowsPerRecord = 100;

enum class WindowType { tumbling, hopping, session };

enum Field : int { kTemperature = 0, kHumidity = 1, kPressure = 2, kFieldCount = 3 };
constexpr const char *kFieldNames[kFieldCount] = {"temperature", "humidity", "pressure"};

int64_t floor_div(int64_t a, int64_t b) {
    int64_t q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

int64_t ceil_div(int64_t a, int64_t b) { return -floor_div(-a, b); }

// Running min/max/mean and (for temperature) the sum of squared deviations, by Welford's
// update; two partial results merge by Chan's formula (session merges).
struct Moments {
    double mean = 0, min = 0, max = 0;
};

struct OpenWindow {
    int64_t start_ms = 0;
    int64_t end_ms = 0;  // exclusive; a session's end is its last event + gap
    int64_t oldest_offset = 0;
    uint64_t anomaly_bits = 0;
    Moments moments[kFieldCount];
    double temperature_m2 = 0;
    uint32_t present[kFieldCount] = {};  // records carrying each field
    uint32_t sample_count = 0;
    uint32_t sensor = kNone;  // kNone: the slot is free
    uint32_t next_in_sensor = kNone;
    uint32_t generation = 0;  // bumped when freed: invalidates heap and FIFO entries

    void add(const double (&values)[kFieldCount], uint64_t bits, int64_t offset) {
        ++sample_count;
        anomaly_bits |= bits;
        if (offset < oldest_offset) oldest_offset = offset;
        for (int f = 0; f < kFieldCount; ++f) {
            double x = values[f];
            if (std::isnan(x)) continue;
            Moments &m = moments[f];
            uint32_t n = ++present[f];
            if (n == 1) {
                m.mean = m.min = m.max = x;
                continue;
            }
            double delta = x - m.mean;
            m.mean += delta / n;
            if (f == kTemperature) temperature_m2 += delta * (x - m.mean);
            if (x < m.min) m.min = x;
            if (x > m.max) m.max = x;
        }
    }

    void merge(const OpenWindow &other) {
        start_ms = std::min(start_ms, other.start_ms);
        end_ms = std::max(end_ms, other.end_ms);
        oldest_offset = std::min(oldest_offset, other.oldest_offset);
        anomaly_bits |= other.anomaly_bits;
        sample_count += other.sample_count;
        for (int f = 0; f < kFieldCount; ++f) {
            uint32_t nb = other.present[f];
            if (nb == 0) continue;
            uint32_t na = present[f];
            const Moments &b = other.moments[f];
            Moments &a = moments[f];
            if (na == 0) {
                a = b;
                if (f == kTemperature) temperature_m2 = other.temperature_m2;
                present[f] = nb;
                continue;
            }
            double n = static_cast<double>(na) + nb;
            double delta = b.mean - a.mean;
            if (f == kTemperature)
                temperature_m2 += other.temperature_m2 + delta * delta * na * nb / n;
            a.mean += delta * nb / n;
            a.min = std::min(a.min, b.min);
            a.max = std::max(a.max, b.max);
            present[f] = na + nb;
        }
    }
};
static_assert(sizeof(OpenWindow) == 144, "the documented per-window state size");

struct SensorSlot {
    iotstream::plugin::CompactId id;  // inline up to 22 bytes: no heap block per sensor
    uint32_t first_window = kNone;
};

using iotstream::plugin::hash_id;
using SensorIndex = iotstream::plugin::FlatIndex;
static_assert(SensorIndex::kNotFound == kNone, "index misses read as kNone");

// Windows in fixed pages: growing never copies existing windows and wastes at most one page.
using WindowPool = iotstream::plugin::PagedPool<OpenWindow, 9>;  // 512 windows (72 KiB) per page

struct HeapEntry {
    int64_t close_at;
    uint32_t window;
    uint32_t generation;
    bool operator>(const HeapEntry &o) const { return close_at > o.close_at; }
};

struct WindowRef {
    uint32_t window;
    uint32_t generation;
};

struct StreamWindows {
    SensorIndex sensor_index;
    std::vector<SensorSlot> sensors;
    std::vector<uint32_t> free_sensors;
    WindowPool windows;
    size_t open_windows = 0;
    std::vector<HeapEntry> close_heap;  // min-heap on close time (lazy: entries may be stale)
    std::deque<WindowRef> created;      // creation order = offset order: front is the oldest

    int64_t watermark = IOTS_NO_VALUE;
    int64_t restored_watermark = IOTS_NO_VALUE;  // windows closing at or before it were emitted
    // Idle detection: the wall clock of the last record (the latest tick before it) and the
    // watermark then; IOTS_NO_VALUE until a tick has been seen.
    int64_t last_record_wall_ms = IOTS_NO_VALUE;
    int64_t watermark_at_last_record = IOTS_NO_VALUE;
    bool record_since_tick = false;

    bool alive(uint32_t w, uint32_t generation) const {
        return windows[w].sensor != kNone && windows[w].generation == generation;
    }
};

// How a stream's sensor index reads the id stored in a slot.
auto sensor_id_of(const StreamWindows &stream) {
    return [&sensors = stream.sensors](uint32_t slot) { return sensors[slot].id.view(); };
}

struct Settings {
    WindowType type = WindowType::tumbling;
    int64_t size_ms = 0;
    int64_t hop_ms = 0;
    int64_t gap_ms = 0;
    int64_t grace_ms = 0;
    int64_t idle_timeout_ms = 0;
    std::string output;
};

const char *type_name(WindowType type) {
    switch (type) {
        case WindowType::tumbling: return "tumbling";
        case WindowType::hopping: return "hopping";
        case WindowType::session: return "session";
    }
    return "?";
}

Settings read_settings(const iots_host_api_t *host, const iots_config_t *cfg) {
    using iotstream::plugin::config_int;
    Settings s;
    std::string type = iotstream::plugin::config_string(host, cfg, "type");
    if (type == "tumbling")
        s.type = WindowType::tumbling;
    else if (type == "hopping")
        s.type = WindowType::hopping;
    else if (type == "session")
        s.type = WindowType::session;
    else
        throw PluginError("config key 'type' must be \"tumbling\", \"hopping\" or \"session\", got \"" +
                          type + "\"");

    constexpr int64_t kMaxSeconds = 366LL * 24 * 3600;  // a year: keeps the arithmetic safe
    auto seconds = [&](const char *key, int64_t value, int64_t min) {
        if (value < min || value > kMaxSeconds)
            throw PluginError(std::string("config key '") + key + "' must be in [" +
                              std::to_string(min) + ", " + std::to_string(kMaxSeconds) +
                              "] seconds, got " + std::to_string(value));
        return value * 1000;
    };
    s.size_ms = seconds("size_s", config_int(host, cfg, "size_s"), 1);
    int64_t hop_s = 0;
    bool hop_given = iotstream::plugin::config_int_optional(host, cfg, "hop_s", hop_s);
    if (hop_given && s.type == WindowType::session)
        throw PluginError("config key 'hop_s' does not apply to session windows");
    if (hop_given && s.type == WindowType::tumbling && hop_s * 1000 != s.size_ms)
        throw PluginError("config key 'hop_s' (" + std::to_string(hop_s) +
                          ") differs from size_s for tumbling windows; use type \"hopping\"");
    s.hop_ms = hop_given ? seconds("hop_s", hop_s, 1) : s.size_ms;
    if (s.hop_ms > s.size_ms)
        throw PluginError("config key 'hop_s' (" + std::to_string(s.hop_ms / 1000) +
                          ") must not exceed size_s (" + std::to_string(s.size_ms / 1000) +
                          "): records between windows would belong to none");
    if (ceil_div(s.size_ms, s.hop_ms) > kMaxWindowsPerRecord)
        throw PluginError("size_s / hop_s must be at most " + std::to_string(kMaxWindowsPerRecord) +
                          " (each record joins that many windows)");
    s.gap_ms = seconds("gap_s", config_int(host, cfg, "gap_s"), 1);
    s.grace_ms = seconds("grace_s", config_int(host, cfg, "grace_s"), 0);
    s.idle_timeout_ms = config_int(host, cfg, "idle_timeout_ms");
    if (s.idle_timeout_ms <= 0 || s.idle_timeout_ms > kMaxSeconds * 1000)
        throw PluginError("config key 'idle_timeout_ms' must be in [1, " +
                          std::to_string(kMaxSeconds * 1000) + "], got " +
                          std::to_string(s.idle_timeout_ms));
    s.output = iotstream::plugin::config_string(host, cfg, "output");
    if (s.output.empty()) throw PluginError("config key 'output' must not be empty");
    return s;
}

class WindowStage {
public:
    // State hand-over (plugin.h, ABI 1.2): format 1 is, per stream, the settings that give its
    // windows their meaning, the watermarks and idle clock, then every open window in creation
    // order (sensor id, extent, oldest offset, anomaly bits, moments, counts).
    static constexpr uint32_t kStateVersion = 1;

    WindowStage(const iots_host_api_t *host, iots_host_ctx_t *ctx, const iots_config_t *cfg)
        : host_(host), ctx_(ctx), settings_(read_settings(host, cfg)) {
        for (const char *field : field_columns_.resolve(host, ctx, kFieldNames))
            log(iotstream::plugin::kLogWarn,
                std::string("field '") + field + "' is not in the decoder schema; its window statistics will be null");
    }

    void process(const iots_batch_view_t *batch) {
        const double *columns[kFieldCount];
        field_columns_.bind(batch, columns);
        // Records go through in chunks: hash every id and prefetch its index bucket, then find
        // the sensors and prefetch each one's newest window, then apply the records strictly in
        // order. A chunk's cache misses overlap instead of stalling one after another (100K
        // sensors' windows are far larger than the L2 cache). The first two passes only read:
        // watermarks, lateness and new sensors are all decided in the last, so results do not
        // depend on the chunking. A sensor found there keeps its slot until close_due_windows()
        // below: nothing in between frees a sensor (a session merge frees a window, never the
        // sensor's last one). A sensor not found may be created by an earlier record of the
        // chunk, so the apply pass looks it up again.
        constexpr uint32_t kChunk = 16;
        StreamWindows *streams[kChunk];
        uint32_t hashes[kChunk];
        uint32_t found_sensors[kChunk];
        StreamWindows *stream = nullptr;
        uint32_t stream_id = 0;
        for (uint32_t base = 0; base < batch->count; base += kChunk) {
            const uint32_t chunk = std::min(kChunk, batch->count - base);
            for (uint32_t j = 0; j < chunk; ++j) {
                const uint32_t i = base + j;
                if (stream == nullptr || batch->streams[i] != stream_id) {
                    stream_id = batch->streams[i];
                    stream = &stream_for(stream_id);
                }
                streams[j] = stream;
                hashes[j] = hash_id(sensor_at(batch, i));
                stream->sensor_index.prefetch(hashes[j]);
            }
            for (uint32_t j = 0; j < chunk; ++j) {
                StreamWindows &s = *streams[j];
                found_sensors[j] = s.sensor_index.find(sensor_at(batch, base + j), hashes[j], sensor_id_of(s));
                if (found_sensors[j] == kNone) continue;
                uint32_t w = s.sensors[found_sensors[j]].first_window;
                if (w != kNone) prefetch_window(s.windows[w]);
            }
            for (uint32_t j = 0; j < chunk; ++j)
                add_record(*streams[j], batch, base + j, columns, hashes[j], found_sensors[j]);
        }
        // The batch is absorbed; an emit the host refuses leaves its window pending for the
        // next call (reported by tick), so a retried batch is never counted twice.
        close_due_windows();
    }

    // The metrics page (plugin.h ABI 1.4): windows open now, and sensors holding one of them.
    void gauges(iots_gauge_put_fn put, void *opaque) const {
        size_t windows = 0, sensors = 0;
        for (const auto &[id, stream] : streams_) {
            windows += stream->open_windows;
            sensors += stream->sensors.size() - stream->free_sensors.size();
        }
        put(opaque, "open_windows", static_cast<double>(windows));
        put(opaque, "open_sensors", static_cast<double>(sensors));
    }

    int tick(int64_t wall_clock_ms) {
        for (auto &[id, stream] : streams_) {
            if (stream->record_since_tick) {
                stream->record_since_tick = false;
                stream->last_record_wall_ms = wall_clock_ms;
                continue;
            }
            if (stream->last_record_wall_ms == IOTS_NO_VALUE) continue;
            int64_t silent_ms = wall_clock_ms - stream->last_record_wall_ms;
            if (silent_ms < settings_.idle_timeout_ms) continue;
            // The stream went quiet (devices do): close every window it holds now, rather than
            // waiting for event time that may never come. The watermark moves to the latest
            // close time, so a straggler for those windows is dead-lettered as late, not lost.
            int64_t latest_close = latest_open_close(*stream);
            if (latest_close != IOTS_NO_VALUE && latest_close > stream->watermark) stream->watermark = latest_close;
        }
        return close_due_windows() ? 0 : 1;
    }

    void on_assign(uint32_t stream_id, int64_t restored_watermark_ms) {
        streams_.erase(stream_id);
        StreamWindows &stream = stream_for(stream_id);
        stream.restored_watermark = restored_watermark_ms;
        // Sessions rebuild their extent from the replay (see the file comment).
        if (settings_.type != WindowType::session) stream.watermark = restored_watermark_ms;
    }

    void on_revoke(uint32_t stream_id) { streams_.erase(stream_id); }

    void checkpoint(uint32_t stream_id, int64_t *oldest_needed_offset, int64_t *watermark_ms) {
        int64_t oldest = IOTS_NO_VALUE, watermark = IOTS_NO_VALUE;
        if (auto it = streams_.find(stream_id); it != streams_.end()) {
            StreamWindows &stream = *it->second;
            drop_stale_front(stream);
            if (!stream.created.empty()) oldest = stream.windows[stream.created.front().window].oldest_offset;
            watermark = std::max(stream.watermark, stream.restored_watermark);
            // A window the host refused is still open although the watermark passed its close
            // time; the next owner treats every window closing at or before the restored
            // watermark as emitted, so report one just below the first pending close.
            if (int64_t pending = first_pending_close(stream); pending != IOTS_NO_VALUE && pending <= watermark)
                watermark = pending - 1;
        }
        if (oldest_needed_offset) *oldest_needed_offset = oldest;
        if (watermark_ms) *watermark_ms = watermark;
    }

    int flush(int final) {
        if (!final) return 0;
        bool all_emitted = true;
        for (auto &[id, stream] : streams_) {
            // The watermark moves to the latest close time, as when a stream goes idle, so the
            // checkpoint's watermark covers every window closed here and a later owner never
            // emits them again (a refused one stays below it: see checkpoint()).
            int64_t latest_close = latest_open_close(*stream);
            all_emitted &= close_until(*stream, std::numeric_limits<int64_t>::max());
            if (latest_close > stream->watermark)  // IOTS_NO_VALUE is INT64_MIN
                stream->watermark = latest_close;
        }
        return all_emitted ? 0 : 1;
    }

    void export_state(uint32_t stream_id, iotstream::plugin::StateWriter &out) const {
        auto it = streams_.find(stream_id);
        if (it == streams_.end()) return;  // nothing held: the new version's on_assign state stands
        const StreamWindows &stream = *it->second;
        write_settings(out);
        out.i64(stream.watermark);
        out.i64(stream.restored_watermark);
        out.i64(stream.last_record_wall_ms);
        out.i64(stream.watermark_at_last_record);
        out.u8(stream.record_since_tick ? 1 : 0);
        uint32_t live = 0;
        for (const WindowRef &ref : stream.created) live += stream.alive(ref.window, ref.generation);
        out.u32(live);
        for (const WindowRef &ref : stream.created) {
            if (!stream.alive(ref.window, ref.generation)) continue;
            const OpenWindow &w = stream.windows[ref.window];
            out.str(stream.sensors[w.sensor].id.view());
            out.i64(w.start_ms);
            out.i64(w.end_ms);
            out.i64(w.oldest_offset);
            out.u64(w.anomaly_bits);
            for (int f = 0; f < kFieldCount; ++f) {
                out.f64(w.moments[f].mean);
                out.f64(w.moments[f].min);
                out.f64(w.moments[f].max);
                out.u32(w.present[f]);
            }
            out.f64(w.temperature_m2);
            out.u32(w.sample_count);
        }
    }

    void import_state(uint32_t stream_id, iotstream::plugin::StateReader &in, uint32_t /*state_version*/) {
        if (in.empty()) return;
        check_settings(in);
        auto fresh = std::make_unique<StreamWindows>();
        StreamWindows &stream = *fresh;
        stream.watermark = in.i64();
        stream.restored_watermark = in.i64();
        stream.last_record_wall_ms = in.i64();
        stream.watermark_at_last_record = in.i64();
        stream.record_since_tick = in.u8() != 0;
        constexpr size_t kMinWindowBytes = 4 + 3 * 8 + 8 + kFieldCount * (3 * 8 + 4) + 8 + 4;
        const uint32_t count = in.count(kMinWindowBytes);
        for (uint32_t n = 0; n < count; ++n) {
            const std::string_view sensor_id = in.str();
            const int64_t start = in.i64(), end = in.i64(), oldest = in.i64();
            if (end <= start) throw PluginError("state holds a window that ends before it starts");
            const uint32_t sensor = sensor_slot(stream, sensor_id, hash_id(sensor_id));
            OpenWindow &w = stream.windows[open_window(stream, sensor, start, end, oldest)];
            w.anomaly_bits = in.u64();
            for (int f = 0; f < kFieldCount; ++f) {
                w.moments[f].mean = in.f64();
                w.moments[f].min = in.f64();
                w.moments[f].max = in.f64();
                w.present[f] = in.u32();
            }
            w.temperature_m2 = in.f64();
            w.sample_count = in.u32();
        }
        in.expect_end();
        streams_[stream_id] = std::move(fresh);  // only once all of it was read
    }

private:
    void write_settings(iotstream::plugin::StateWriter &out) const {
        out.u32(static_cast<uint32_t>(settings_.type));
        out.i64(settings_.size_ms);
        out.i64(settings_.hop_ms);
        out.i64(settings_.gap_ms);
        out.i64(settings_.grace_ms);
    }

    // Windows of another type, size, hop, gap or grace mean something else: refused.
    void check_settings(iotstream::plugin::StateReader &in) const {
        const uint32_t type = in.u32();
        const int64_t size = in.i64(), hop = in.i64(), gap = in.i64(), grace = in.i64();
        if (type != static_cast<uint32_t>(settings_.type) || size != settings_.size_ms || hop != settings_.hop_ms ||
            gap != settings_.gap_ms || grace != settings_.grace_ms)
            throw PluginError("the running version's windows are configured differently (type " +
                              std::to_string(type) + ", size " + std::to_string(size) + " ms, hop " +
                              std::to_string(hop) + " ms, gap " + std::to_string(gap) + " ms, grace " +
                              std::to_string(grace) + " ms)");
    }

    static std::string_view sensor_at(const iots_batch_view_t *batch, uint32_t i) {
        return {batch->sensor_ids[i].data, batch->sensor_ids[i].len};
    }

    // The latest close time among the stream's open windows (IOTS_NO_VALUE: none).
    int64_t latest_open_close(const StreamWindows &stream) const {
        int64_t latest = IOTS_NO_VALUE;
        for (const HeapEntry &entry : stream.close_heap)
            if (stream.alive(entry.window, entry.generation))
                latest = std::max(latest, stream.windows[entry.window].end_ms + settings_.grace_ms);
        return latest;
    }

    // The earliest close time among the stream's open windows (IOTS_NO_VALUE: none). Settles
    // the top of the lazy heap on the way: stale entries go, a grown session is re-queued.
    int64_t first_pending_close(StreamWindows &stream) {
        auto &heap = stream.close_heap;
        while (!heap.empty()) {
            const HeapEntry top = heap.front();
            const bool alive = stream.alive(top.window, top.generation);
            if (alive && stream.windows[top.window].end_ms + settings_.grace_ms == top.close_at) return top.close_at;
            std::pop_heap(heap.begin(), heap.end(), std::greater<>{});
            heap.pop_back();
            if (alive) push_close(stream, top.window);
        }
        return IOTS_NO_VALUE;
    }

    // Starts loading every cache line of `window` (144 bytes span three or four).
    static void prefetch_window(const OpenWindow &window) {
        const char *bytes = reinterpret_cast<const char *>(&window);
        __builtin_prefetch(bytes);
        __builtin_prefetch(bytes + 64);
        __builtin_prefetch(bytes + 128);
        __builtin_prefetch(bytes + sizeof(OpenWindow) - 1);
    }

    // One record, against its stream's watermark as it stands now. `hash` is hash_id of its
    // sensor id; `found_sensor` the sensor's slot if it existed before the chunk, else kNone.
    void add_record(StreamWindows &stream, const iots_batch_view_t *batch, uint32_t i,
                    const double *const (&columns)[kFieldCount], uint32_t hash, uint32_t found_sensor) {
        int64_t t = batch->event_time_ms[i];
        // The decoder's range (plugin.h), so every decoded reading is windowed. Within it, window
        // arithmetic cannot overflow: |t| < 2.6e14 ms, sizes and grace under a year (3.2e10 ms).
        if (t == IOTS_NO_VALUE || t < IOTS_MIN_EVENT_TIME_MS || t > IOTS_MAX_EVENT_TIME_MS) {
            dead_letter(batch, i, "bad_event_time",
                        "event time " + std::to_string(t) + " ms is missing or outside years 0000-9999");
            return;
        }
        if (stream.watermark == IOTS_NO_VALUE || t > stream.watermark) stream.watermark = t;
        stream.watermark_at_last_record = stream.watermark;
        stream.record_since_tick = true;

        double values[kFieldCount];
        for (int f = 0; f < kFieldCount; ++f)
            values[f] = columns[f] ? columns[f][i] : std::numeric_limits<double>::quiet_NaN();
        uint64_t bits = batch->anomaly_bits ? batch->anomaly_bits[i] : 0;
        if (settings_.type == WindowType::session)
            add_to_session(stream, batch, i, sensor_at(batch, i), hash, found_sensor, t, values, bits);
        else
            add_to_aligned(stream, batch, i, sensor_at(batch, i), hash, found_sensor, t, values, bits);
    }

    void log(int level, const std::string &message) {
        host_->log(ctx_, level, (std::string(kPluginName) + ": " + message).c_str());
    }

    StreamWindows &stream_for(uint32_t stream_id) {
        auto it = streams_.find(stream_id);
        if (it == streams_.end())
            it = streams_.emplace(stream_id, std::make_unique<StreamWindows>()).first;
        return *it->second;
    }

    void dead_letter(const iots_batch_view_t *batch, uint32_t index, const char *reason,
                     const std::string &detail) {
        if (host_->dead_letter(ctx_, batch, index, reason, detail.c_str()) != 0)
            throw PluginError(std::string("the host refused to dead-letter record ") +
                              std::to_string(index) + " (" + reason + ": " + detail + ")");
    }

    void report_late(const StreamWindows &stream, const iots_batch_view_t *batch, uint32_t index,
                     int64_t t, int64_t window_start, int64_t window_end) {
        int64_t close_at = window_end + settings_.grace_ms;
        char detail[256];
        std::snprintf(detail, sizeof detail,
                      "%" PRId64 " ms late: event time %" PRId64 " ms falls in %s window [%" PRId64
                      ", %" PRId64 ") ms, closed at watermark %" PRId64 " (end + grace %" PRId64
                      " ms); stream watermark is %" PRId64,
                      stream.watermark - close_at, t, type_name(settings_.type), window_start,
                      window_end, close_at, settings_.grace_ms, stream.watermark);
        dead_letter(batch, index, "late", detail);
    }

    uint32_t sensor_slot(StreamWindows &stream, std::string_view sensor, uint32_t hash) {
        uint32_t found = stream.sensor_index.find(sensor, hash, sensor_id_of(stream));
        if (found != kNone) return found;
        uint32_t slot;
        if (!stream.free_sensors.empty()) {
            slot = stream.free_sensors.back();
            stream.free_sensors.pop_back();
        } else {
            slot = static_cast<uint32_t>(stream.sensors.size());
            stream.sensors.emplace_back();
        }
        // assign() reuses a freed slot's string buffer when the new id fits.
        stream.sensors[slot].id.assign(sensor);
        stream.sensors[slot].first_window = kNone;
        stream.sensor_index.insert(hash, slot);
        return slot;
    }

    uint32_t open_window(StreamWindows &stream, uint32_t sensor, int64_t start, int64_t end,
                         int64_t offset) {
        uint32_t w = stream.windows.allocate();
        OpenWindow &window = stream.windows[w];
        uint32_t generation = window.generation;
        window = OpenWindow{};
        window.generation = generation;
        window.start_ms = start;
        window.end_ms = end;
        window.oldest_offset = offset;
        window.sensor = sensor;
        window.next_in_sensor = stream.sensors[sensor].first_window;
        stream.sensors[sensor].first_window = w;
        ++stream.open_windows;
        push_close(stream, w);
        stream.created.push_back(WindowRef{w, generation});
        return w;
    }

    void push_close(StreamWindows &stream, uint32_t w) {
        const OpenWindow &window = stream.windows[w];
        stream.close_heap.push_back(
            HeapEntry{window.end_ms + settings_.grace_ms, w, window.generation});
        std::push_heap(stream.close_heap.begin(), stream.close_heap.end(), std::greater<>{});
    }

    // Unlinks and frees a window; frees its sensor when that was the sensor's last window.
    void free_window(StreamWindows &stream, uint32_t w) {
        OpenWindow &window = stream.windows[w];
        SensorSlot &sensor = stream.sensors[window.sensor];
        uint32_t *link = &sensor.first_window;
        while (*link != w) link = &stream.windows[*link].next_in_sensor;
        *link = window.next_in_sensor;
        if (sensor.first_window == kNone) {
            stream.sensor_index.erase(hash_id(sensor.id.view()), window.sensor);
            stream.free_sensors.push_back(window.sensor);
        }
        window.sensor = kNone;
        ++window.generation;
        --stream.open_windows;
        stream.windows.release(w);
    }

    // Tumbling and hopping: windows are aligned to the epoch, starts every hop_ms.
    void add_to_aligned(StreamWindows &stream, const iots_batch_view_t *batch, uint32_t i,
                        std::string_view sensor_id, uint32_t hash, uint32_t found_sensor, int64_t t,
                        const double (&values)[kFieldCount], uint64_t bits) {
        const int64_t size = settings_.size_ms, hop = settings_.hop_ms;
        const int64_t first_start = (floor_div(t - size, hop) + 1) * hop;  // first with end > t
        const int64_t last_start = floor_div(t, hop) * hop;
        int64_t latest_closed_start = IOTS_NO_VALUE;  // the last window that closed, after restore
        bool added = false;
        uint32_t sensor = kNone;
        for (int64_t start = first_start; start <= last_start; start += hop) {
            int64_t close_at = start + size + settings_.grace_ms;
            if (close_at <= stream.watermark) {
                if (stream.restored_watermark == IOTS_NO_VALUE || close_at > stream.restored_watermark)
                    latest_closed_start = start;
                continue;
            }
            if (sensor == kNone)
                sensor = found_sensor != kNone ? found_sensor : sensor_slot(stream, sensor_id, hash);
            uint32_t w = stream.sensors[sensor].first_window;
            while (w != kNone && stream.windows[w].start_ms != start) w = stream.windows[w].next_in_sensor;
            if (w == kNone) w = open_window(stream, sensor, start, start + size, batch->offsets[i]);
            stream.windows[w].add(values, bits, batch->offsets[i]);
            added = true;
        }
        if (added) return;
        // Every window holding the record has closed: late, unless all of them closed before
        // this member's restore point (a replay of something already emitted).
        if (latest_closed_start != IOTS_NO_VALUE)
            report_late(stream, batch, i, t, latest_closed_start, latest_closed_start + size);
    }

    // Sessions: per sensor, records less than gap apart share a session [first, last + gap).
    void add_to_session(StreamWindows &stream, const iots_batch_view_t *batch, uint32_t i,
                        std::string_view sensor_id, uint32_t hash, uint32_t found_sensor, int64_t t,
                        const double (&values)[kFieldCount], uint64_t bits) {
        const int64_t gap = settings_.gap_ms, grace = settings_.grace_ms;
        const int64_t offset = batch->offsets[i];
        uint32_t sensor = found_sensor != kNone
                              ? found_sensor
                              : stream.sensor_index.find(sensor_id, hash, sensor_id_of(stream));
        uint32_t survivor = kNone;
        if (sensor != kNone) {
            // The record's own extent [t, t + gap) overlaps each session it joins; sessions
            // never overlap each other, so only these can merge.
            uint32_t w = stream.sensors[sensor].first_window;
            while (w != kNone) {
                OpenWindow &window = stream.windows[w];
                uint32_t next = window.next_in_sensor;
                bool open = window.end_ms + grace > stream.watermark;
                if (open && t < window.end_ms && window.start_ms < t + gap) {
                    if (survivor == kNone) {
                        survivor = w;
                    } else {
                        // Keep the older window (creation FIFO order) and fold the other in.
                        uint32_t keep = stream.windows[survivor].oldest_offset <= window.oldest_offset ? survivor : w;
                        uint32_t fold = keep == w ? survivor : w;
                        stream.windows[keep].merge(stream.windows[fold]);
                        free_window(stream, fold);
                        survivor = keep;
                    }
                }
                w = next;
            }
        }
        if (survivor == kNone) {
            if (t + gap + grace <= stream.watermark) {
                if (stream.restored_watermark == IOTS_NO_VALUE ||
                    t + gap + grace > stream.restored_watermark)
                    report_late(stream, batch, i, t, t, t + gap);
                return;
            }
            if (sensor == kNone) sensor = sensor_slot(stream, sensor_id, hash);
            survivor = open_window(stream, sensor, t, t + gap, offset);
        }
        OpenWindow &window = stream.windows[survivor];
        window.start_ms = std::min(window.start_ms, t);
        // A later end leaves the heap entry early; close_until() re-queues it when it comes up.
        window.end_ms = std::max(window.end_ms, t + gap);
        window.add(values, bits, offset);
    }

    void drop_stale_front(StreamWindows &stream) {
        while (!stream.created.empty() &&
               !stream.alive(stream.created.front().window, stream.created.front().generation))
            stream.created.pop_front();
    }

    // Rebuilds the lazy structures when stale entries outnumber live ones (long-lived
    // sessions can hold stale entries behind them); amortised O(1) per window.
    void compact(StreamWindows &stream) {
        const size_t limit = 2 * stream.open_windows + 1024;
        if (stream.close_heap.size() > limit) {
            stream.close_heap.clear();
            for (uint32_t w = 0; w < stream.windows.size(); ++w)
                if (stream.windows[w].sensor != kNone) push_close(stream, w);
        }
        if (stream.created.size() > limit) {
            std::deque<WindowRef> live;
            for (const WindowRef &ref : stream.created)
                if (stream.alive(ref.window, ref.generation)) live.push_back(ref);
            stream.created.swap(live);
        }
    }

    bool close_due_windows() {
        bool all_emitted = true;
        for (auto &[id, stream] : streams_) {
            if (stream->watermark != IOTS_NO_VALUE) all_emitted &= close_until(*stream, stream->watermark);
        }
        return all_emitted;
    }

    // Emits (or, when the previous owner already did, discards) every window with close time
    // <= limit, in close order. Stops at the first window the host refuses, leaving it open.
    bool close_until(StreamWindows &stream, int64_t limit) {
        auto &heap = stream.close_heap;
        bool emitted_all = true;
        while (!heap.empty() && heap.front().close_at <= limit) {
            std::pop_heap(heap.begin(), heap.end(), std::greater<>{});
            HeapEntry entry = heap.back();
            heap.pop_back();
            if (!stream.alive(entry.window, entry.generation)) continue;
            OpenWindow &window = stream.windows[entry.window];
            int64_t close_at = window.end_ms + settings_.grace_ms;
            if (close_at != entry.close_at) {  // a session grew since it was queued
                push_close(stream, entry.window);
                continue;
            }
            bool already_emitted = stream.restored_watermark != IOTS_NO_VALUE &&
                                   close_at <= stream.restored_watermark;
            if (!already_emitted && !emit(stream, window)) {
                push_close(stream, entry.window);
                emitted_all = false;
                break;
            }
            free_window(stream, entry.window);
        }
        drop_stale_front(stream);
        compact(stream);
        return emitted_all;
    }

    const char *rule_name(int rule) {
        if (!rule_names_[rule]) rule_names_[rule] = host_->rule_name(ctx_, rule);
        return rule_names_[rule];
    }

    void write_field(const OpenWindow &window, int f, bool with_std) {
        if (window.present[f] == 0) {
            writer_.raw("null");
            return;
        }
        const Moments &m = window.moments[f];
        writer_.raw("{");
        writer_.key("min");
        writer_.number(m.min);
        writer_.raw(",");
        writer_.key("max");
        writer_.number(m.max);
        writer_.raw(",");
        writer_.key("avg");
        writer_.number(m.mean);
        if (with_std) {
            writer_.raw(",");
            writer_.key("std");
            // Sample standard deviation (n - 1), 0.0 below two readings, as the seed.
            uint32_t n = window.present[f];
            writer_.number(n < 2 ? 0.0 : std::sqrt(std::max(0.0, window.temperature_m2) / (n - 1)));
        }
        writer_.raw("}");
    }

    // The seed's window result, as the "data" of an envelope keyed by sensor.
    bool emit(const StreamWindows &stream, const OpenWindow &window) {
        const std::string_view sensor = stream.sensors[window.sensor].id.view();
        writer_.clear();
        writer_.raw("{");
        writer_.key("sensor_id");
        writer_.string(sensor);
        writer_.raw(",");
        writer_.key("window_start");
        writer_.integer(floor_div(window.start_ms, 1000));
        writer_.raw(",");
        writer_.key("window_end");
        writer_.integer(ceil_div(window.end_ms, 1000));
        writer_.raw(",");
        writer_.key("sample_count");
        writer_.integer(window.sample_count);
        writer_.raw(",");
        writer_.key("temperature");
        write_field(window, kTemperature, true);
        writer_.raw(",");
        writer_.key("humidity");
        write_field(window, kHumidity, false);
        writer_.raw(",");
        writer_.key("pressure");
        write_field(window, kPressure, false);
        writer_.raw(",");
        writer_.key("anomalies");
        writer_.raw("[");
        const char *names[64];
        size_t name_count = 0;
        for (int rule = 0; rule < 64; ++rule) {
            if ((window.anomaly_bits >> rule & 1u) == 0) continue;
            const char *name = rule_name(rule);
            if (name != nullptr) names[name_count++] = name;
        }
        std::sort(names, names + name_count,
                  [](const char *a, const char *b) { return std::strcmp(a, b) < 0; });
        for (size_t n = 0; n < name_count; ++n) {
            if (n > 0) writer_.raw(",");
            writer_.string(names[n]);
        }
        writer_.raw("]}");
        const std::string &value = writer_.str();
        if (host_->emit(ctx_, settings_.output.c_str(), sensor.data(), sensor.size(), value.data(),
                        value.size(), IOTS_EMIT_ENVELOPE) == 0)
            return true;
        log(iotstream::plugin::kLogError,
            "output '" + settings_.output + "' refused the window of sensor '" + std::string(sensor) +
                "' [" + std::to_string(window.start_ms) + ", " + std::to_string(window.end_ms) +
                ") ms; it stays open and is retried");
        return false;
    }

    const iots_host_api_t *host_;
    iots_host_ctx_t *ctx_;
    Settings settings_;
    iotstream::plugin::FieldColumns<kFieldCount> field_columns_;
    std::unordered_map<uint32_t, std::unique_ptr<StreamWindows>> streams_;
    const char *rule_names_[64] = {};
    JsonWriter writer_;
};

const iots_config_key_t kConfigKeys[] = {
    {"type", IOTS_CONFIG_STRING, "\"tumbling\"", "\"tumbling\", \"hopping\" or \"session\""},
    {"size_s", IOTS_CONFIG_INT, "300", "window length in seconds (tumbling, hopping)"},
    {"hop_s", IOTS_CONFIG_INT, "null", "hopping advance in seconds, <= size_s (default size_s)"},
    {"gap_s", IOTS_CONFIG_INT, "60", "session windows: inactivity gap in seconds"},
    {"grace_s", IOTS_CONFIG_INT, "10", "seconds after a window's end that late records still count"},
    {"idle_timeout_ms", IOTS_CONFIG_INT, "30000",
     "wall-clock silence after which a stream closes all its open windows"},
    {"output", IOTS_CONFIG_STRING, "\"windows\"", "output name the window results are emitted on"},
};

constexpr iotstream::plugin::PluginInfo kInfo = {
    .name = kPluginName,
    .version = "1.0.0",
    .description = "Per-sensor min/max/avg/std over event-time windows with watermarks",
    .kind = IOTS_PLUGIN_STAGE,
    .config_keys = kConfigKeys,
    .config_key_count = static_cast<uint32_t>(std::size(kConfigKeys)),
};

const iots_plugin_descriptor_t kDescriptor = iotstream::plugin::PluginAdapter<WindowStage, kInfo>::descriptor();

}  // namespace

IOTS_PLUGIN_DEFINE(&kDescriptor);
