// iotstream._native: the pybind11 module under the `iotstream` Python package. It reaches the
// engine only through the public C API (iotstream.h); the pure-Python layer in
// bindings/python/iotstream turns these handles into the documented, Pythonic API.
//
// Rules kept throughout:
//  - Every blocking C call runs with the GIL released.
//  - Long waits are cut into short slices; between slices the GIL is taken back and
//    PyErr_CheckSignals() runs, so Ctrl-C interrupts them.
//  - Column data is copied out of Python objects while the GIL is held, then envelopes are
//    built and sent without it: producing a DataFrame never loops in Python.
//  - A handle is freed once, under an exclusive lock, so a Python thread closing an object
//    never frees it under another thread that is using it.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <shared_mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "iotstream/iotstream.h"

namespace py = pybind11;

namespace {

constexpr int kSliceMs = 100;            // longest time a blocking call runs without a signal check
constexpr size_t kRowsPerSlice = 16384;  // rows sent between two signal checks
constexpr size_t kErrstrSize = 1024;

// A failed C call, carried to the translator that raises the matching Python exception.
struct NativeError : std::runtime_error {
    NativeError(iots_err_t code_, const std::string &message) : std::runtime_error(message), code(code_) {}
    iots_err_t code;
};

[[noreturn]] void fail(iots_err_t err, const char *errstr, const std::string &context = {}) {
    std::string message = (errstr && *errstr) ? errstr : iots_err_str(err);
    throw NativeError(err, context.empty() ? message : context + ": " + message);
}

void check(iots_err_t err, const char *errstr, const std::string &context = {}) {
    if (err != IOTS_OK) fail(err, errstr, context);
}

// Must be called with the GIL held. Raises KeyboardInterrupt (or whatever the handler raised).
void check_signals() {
    if (PyErr_CheckSignals() != 0) throw py::error_already_set();
}

// Milliseconds left until `deadline` (timeout_ms < 0 means no deadline), capped to one slice.
struct SliceClock {
    explicit SliceClock(int timeout_ms)
        : unbounded(timeout_ms < 0),
          deadline(std::chrono::steady_clock::now() + std::chrono::milliseconds(std::max(timeout_ms, 0))) {}
    int next_slice_ms() const {
        if (unbounded) return kSliceMs;
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        return static_cast<int>(std::clamp<int64_t>(left.count(), 0, kSliceMs));
    }
    bool expired() const { return !unbounded && std::chrono::steady_clock::now() >= deadline; }
    bool unbounded;
    std::chrono::steady_clock::time_point deadline;
};

// Reads a JSON document the library writes into a caller buffer, growing it when asked to.
template <typename Call>
std::string read_json_out(Call &&call) {
    std::string buf(16384, '\0');
    size_t needed = 0;
    char errstr[kErrstrSize] = "";
    iots_err_t err = call(buf.data(), buf.size(), &needed, errstr);
    if (err == IOTS_ERR_BUFFER_TOO_SMALL) {
        buf.assign(needed, '\0');
        err = call(buf.data(), buf.size(), &needed, errstr);
    }
    check(err, errstr);
    buf.resize(std::strlen(buf.c_str()));
    return buf;
}

// A handle freed exactly once, never while another thread is inside a call on it.
template <typename Handle>
class Guarded {
public:
    explicit Guarded(const char *what) : what_(what) {}

    // Runs body(handle) under the shared lock; StateError if closed.
    template <typename Body>
    auto use(Body &&body) {
        std::shared_lock lock(mutex_);
        if (!handle_) throw NativeError(IOTS_ERR_STATE, std::string(what_) + " is closed");
        return body(handle_);
    }
    // Takes the handle for freeing (nullptr if already closed); waits for calls in flight.
    Handle *take() {
        std::unique_lock lock(mutex_);
        return std::exchange(handle_, nullptr);
    }
    void set(Handle *handle) { handle_ = handle; }
    bool closed() const {
        std::shared_lock lock(mutex_);
        return handle_ == nullptr;
    }

private:
    const char *what_;
    mutable std::shared_mutex mutex_;
    Handle *handle_ = nullptr;
};

// ---- envelope text ------------------------------------------------------------------------

void append_escaped(std::string &out, std::string_view text) {
    static constexpr char kHex[] = "0123456789abcdef";
    for (char c : text) {
        auto u = static_cast<unsigned char>(c);
        if (c == '"' || c == '\\') {
            out += '\\';
            out += c;
        } else if (u < 0x20) {
            switch (c) {
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            default:
                out += "\\u00";
                out += kHex[u >> 4];
                out += kHex[u & 0xf];
            }
        } else {
            out += c;
        }
    }
}

void append_double(std::string &out, double value) {
    char buf[32];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value);
    out.append(buf, end);
}

void append_int(std::string &out, int64_t value) {
    char buf[24];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value);
    out.append(buf, end);
}

// Epoch milliseconds the ISO-8601 text can spell with four year digits (0000..9999).
constexpr int64_t kMinTimestampMs = -62'167'219'200'000;
constexpr int64_t kMaxTimestampMs = 253'402'300'799'999;

// UTF-8 of a Python str (GIL held). Lone surrogates cannot be encoded: ValueError naming `what`.
std::string_view utf8_of(PyObject *object, const std::string &what) {
    if (!PyUnicode_Check(object))
        throw py::type_error(what + " must be a str, got " + std::string(Py_TYPE(object)->tp_name));
    Py_ssize_t size = 0;
    const char *data = PyUnicode_AsUTF8AndSize(object, &size);
    if (!data) {
        PyErr_Clear();
        throw py::value_error(what + " cannot be encoded as UTF-8");
    }
    return {data, static_cast<size_t>(size)};
}

// Strings copied out of Python objects into one arena, so they outlive the GIL.
struct StringColumn {
    std::string arena;
    std::vector<size_t> ends;    // ends[i]: one past string i in arena
    std::vector<uint8_t> present; // 0 where the object was None (or a float NaN)

    std::string_view at(size_t i) const {
        size_t begin = i == 0 ? 0 : ends[i - 1];
        return {arena.data() + begin, ends[i] - begin};
    }
};

bool is_missing(PyObject *object) {
    if (object == Py_None) return true;
    return PyFloat_Check(object) && std::isnan(PyFloat_AS_DOUBLE(object));
}

StringColumn copy_strings(const py::sequence &values, const std::string &what, bool allow_missing) {
    StringColumn column;
    const auto n = static_cast<size_t>(py::len(values));
    column.ends.reserve(n);
    column.present.reserve(n);
    for (size_t i = 0; i < n; ++i) {
        py::object item = values[i];
        if (is_missing(item.ptr())) {
            if (!allow_missing) throw py::value_error(what + " is missing in row " + std::to_string(i));
            column.present.push_back(0);
        } else {
            column.arena += utf8_of(item.ptr(), what + " in row " + std::to_string(i));
            column.present.push_back(1);
        }
        column.ends.push_back(column.arena.size());
    }
    return column;
}

// ---- the "data" object of each row, from columns -------------------------------------------

enum class Kind { Float, Int, Bool, String };

struct Column {
    std::string path;  // dotted, e.g. "location.lat"
    Kind kind;
    py::array_t<double> floats;   // Kind::Float (NaN: absent in that row)
    py::array_t<int64_t> ints;    // Kind::Int
    py::array_t<uint8_t> bools;   // Kind::Bool
    StringColumn strings;         // Kind::String (None: absent)
    const double *f = nullptr;
    const int64_t *i = nullptr;
    const uint8_t *b = nullptr;
};

// The shape of "data": dotted paths become nested objects, written in first-seen order.
struct DataNode {
    std::string key;
    int column = -1;  // leaf: index into the columns
    std::vector<DataNode> children;
};

DataNode build_layout(const std::vector<Column> &columns) {
    DataNode root;
    for (size_t c = 0; c < columns.size(); ++c) {
        const std::string &path = columns[c].path;
        DataNode *node = &root;
        size_t begin = 0;
        while (true) {
            size_t dot = path.find('.', begin);
            std::string key = path.substr(begin, dot == std::string::npos ? std::string::npos : dot - begin);
            if (key.empty()) throw py::value_error("column path '" + path + "' has an empty segment");
            auto it = std::find_if(node->children.begin(), node->children.end(),
                                   [&](const DataNode &child) { return child.key == key; });
            const bool leaf = dot == std::string::npos;
            if (it == node->children.end()) {
                node->children.push_back(DataNode{key, leaf ? static_cast<int>(c) : -1, {}});
                it = node->children.end() - 1;
            } else if (leaf || it->column >= 0) {
                throw py::value_error("column path '" + path + "' collides with another column at '" +
                                      path.substr(0, dot) + "'");
            }
            if (leaf) break;
            node = &*it;
            begin = dot + 1;
        }
    }
    return root;
}

// Writes a node's members; returns false (and writes nothing) when every leaf is absent.
bool write_members(std::string &out, const DataNode &node, const std::vector<Column> &columns, size_t row) {
    const size_t start = out.size();
    bool any = false;
    for (const DataNode &child : node.children) {
        const size_t before = out.size();
        if (any) out += ',';
        out += '"';
        append_escaped(out, child.key);
        out += "\":";
        bool written = true;
        if (child.column < 0) {
            out += '{';
            written = write_members(out, child, columns, row);
            out += '}';
        } else {
            const Column &col = columns[static_cast<size_t>(child.column)];
            switch (col.kind) {
            case Kind::Float:
                if (std::isnan(col.f[row])) written = false;
                else append_double(out, col.f[row]);
                break;
            case Kind::Int: append_int(out, col.i[row]); break;
            case Kind::Bool: out += col.b[row] ? "true" : "false"; break;
            case Kind::String:
                if (!col.strings.present[row]) {
                    written = false;
                } else {
                    out += '"';
                    append_escaped(out, col.strings.at(row));
                    out += '"';
                }
                break;
            }
        }
        if (written) any = true;
        else out.resize(before);
    }
    if (!any) out.resize(start);
    return any;
}

// ---- broker -------------------------------------------------------------------------------

class Broker {
public:
    explicit Broker(const std::string &config_json) : handle_("broker") {
        iots_broker_t *broker = nullptr;
        char errstr[kErrstrSize] = "";
        iots_err_t err;
        {
            py::gil_scoped_release release;
            err = iots_broker_new(config_json.c_str(), &broker, errstr, sizeof errstr);
        }
        check(err, errstr, "starting the embedded broker");
        handle_.set(broker);
        bootstrap_ = iots_broker_bootstrap(broker);
    }
    ~Broker() { close(); }

    const std::string &bootstrap() const { return bootstrap_; }

    void create_topic(const std::string &topic, int partitions) {
        handle_.use([&](iots_broker_t *b) {
            char errstr[kErrstrSize] = "";
            iots_err_t err;
            {
                py::gil_scoped_release release;
                err = iots_broker_create_topic(b, topic.c_str(), partitions, errstr, sizeof errstr);
            }
            check(err, errstr, "creating topic '" + topic + "'");
        });
    }
    void set_down(int broker_id, bool down) {
        handle_.use([&](iots_broker_t *b) { check(iots_broker_set_down(b, broker_id, down ? 1 : 0), nullptr, "set_down"); });
    }
    void set_rtt(int broker_id, int rtt_ms) {
        handle_.use([&](iots_broker_t *b) { check(iots_broker_set_rtt(b, broker_id, rtt_ms), nullptr, "set_rtt"); });
    }
    void push_request_errors(int api_key, int count, int kafka_error) {
        handle_.use([&](iots_broker_t *b) {
            check(iots_broker_push_request_errors(b, api_key, count, kafka_error), nullptr, "push_request_errors");
        });
    }
    bool closed() const { return handle_.closed(); }
    void close() {
        py::gil_scoped_release release;
        if (iots_broker_t *b = handle_.take()) iots_broker_destroy(b);
    }

private:
    Guarded<iots_broker_t> handle_;
    std::string bootstrap_;
};

// ---- producer -----------------------------------------------------------------------------

// Delivery failures, kept for Python to read (the callback runs on a library thread and never
// touches Python). The first kMaxKept are kept verbatim; all are counted.
struct DeliveryFailures {
    static constexpr size_t kMaxKept = 100;
    std::mutex mutex;
    std::vector<std::tuple<std::string, int32_t, std::string, std::string>> kept;  // topic, partition, key, reason

    static void on_delivery(void *opaque, const iots_delivery_report_t *report) {
        if (report->err == IOTS_OK) return;
        auto *self = static_cast<DeliveryFailures *>(opaque);
        std::lock_guard lock(self->mutex);
        if (self->kept.size() >= kMaxKept) return;
        self->kept.emplace_back(report->topic ? report->topic : "", report->partition,
                                std::string(static_cast<const char *>(report->key), report->key ? report->key_len : 0),
                                report->errstr ? report->errstr : iots_err_str(report->err));
    }
};

class Producer {
public:
    explicit Producer(const std::string &config_json) : handle_("producer"), failures_(std::make_unique<DeliveryFailures>()) {
        iots_producer_t *producer = nullptr;
        char errstr[kErrstrSize] = "";
        iots_err_t err;
        {
            py::gil_scoped_release release;
            err = iots_producer_new(config_json.c_str(), &DeliveryFailures::on_delivery, failures_.get(), &producer,
                                    errstr, sizeof errstr);
        }
        check(err, errstr, "creating the producer");
        handle_.set(producer);
    }
    ~Producer() {
        try {
            close(5000);
        } catch (...) {
        }
    }

    // One raw record; value and key are bytes.
    void send_raw(const std::optional<std::string> &topic, const std::optional<py::bytes> &key, const py::bytes &value) {
        std::string_view k = key ? std::string_view(*key) : std::string_view();
        std::string_view v(value);
        handle_.use([&](iots_producer_t *p) {
            char errstr[kErrstrSize] = "";
            iots_err_t err;
            {
                py::gil_scoped_release release;
                err = iots_producer_send(p, topic ? topic->c_str() : nullptr, key ? k.data() : nullptr, k.size(),
                                         v.data(), v.size(), nullptr, errstr, sizeof errstr);
            }
            check(err, errstr);
        });
    }

    // Readings whose "data" is already JSON text (one object per row); checked here.
    size_t send_envelopes(const std::optional<std::string> &topic, const py::sequence &sensor_ids,
                          const py::sequence &data_jsons, const std::optional<py::array_t<int64_t>> &timestamps_ms) {
        const auto rows = static_cast<size_t>(py::len(sensor_ids));
        if (static_cast<size_t>(py::len(data_jsons)) != rows)
            throw py::value_error("sensor_ids and data have different lengths");
        StringColumn ids = copy_strings(sensor_ids, "sensor_id", false);
        StringColumn data = copy_strings(data_jsons, "data", false);
        const int64_t *ts = timestamp_pointer(timestamps_ms, rows);
        for (size_t row = 0; row < rows; ++row) {
            check_row(ids, ts, row);
            auto parsed = nlohmann::json::parse(data.at(row), nullptr, false);
            if (!parsed.is_object())
                throw py::value_error("data in row " + std::to_string(row) + " is not a JSON object: " +
                                      std::string(data.at(row).substr(0, 80)));
        }
        return send_rows(topic, rows, ids, ts, [&](std::string &out, size_t row) { out += data.at(row); });
    }

    // Readings from columns: sensor ids, optional event times (epoch ms), and named columns
    // (kind 'f' float64 with NaN = absent, 'i' int64, 'b' bool, 's' str with None = absent).
    size_t send_columns(const std::optional<std::string> &topic, const py::sequence &sensor_ids,
                        const std::optional<py::array_t<int64_t>> &timestamps_ms, const py::list &columns_in) {
        const auto rows = static_cast<size_t>(py::len(sensor_ids));
        StringColumn ids = copy_strings(sensor_ids, "sensor_id", false);
        const int64_t *ts = timestamp_pointer(timestamps_ms, rows);
        std::vector<Column> columns;
        columns.reserve(py::len(columns_in));
        for (py::handle item : columns_in) {
            auto spec = item.cast<py::tuple>();
            if (spec.size() != 3) throw py::value_error("each column is (path, kind, values)");
            Column col{spec[0].cast<std::string>(), Kind::Float, {}, {}, {}, {}};
            const std::string kind = spec[1].cast<std::string>();
            py::object values = spec[2];
            auto check_length = [&](py::ssize_t n) {
                if (static_cast<size_t>(n) != rows)
                    throw py::value_error("column '" + col.path + "' has " + std::to_string(n) + " values for " +
                                          std::to_string(rows) + " rows");
            };
            if (kind == "f") {
                col.floats = py::array_t<double, py::array::c_style | py::array::forcecast>::ensure(values);
                if (!col.floats) throw py::type_error("column '" + col.path + "' is not convertible to float64");
                check_length(col.floats.size());
                col.f = col.floats.data();
                for (size_t row = 0; row < rows; ++row)
                    if (std::isinf(col.f[row]))
                        throw py::value_error("column '" + col.path + "' is infinite in row " + std::to_string(row) +
                                              " (JSON has no infinity; use NaN for a missing value)");
            } else if (kind == "i") {
                col.kind = Kind::Int;
                col.ints = py::array_t<int64_t, py::array::c_style | py::array::forcecast>::ensure(values);
                if (!col.ints) throw py::type_error("column '" + col.path + "' is not convertible to int64");
                check_length(col.ints.size());
                col.i = col.ints.data();
            } else if (kind == "b") {
                col.kind = Kind::Bool;
                col.bools = py::array_t<uint8_t, py::array::c_style | py::array::forcecast>::ensure(values);
                if (!col.bools) throw py::type_error("column '" + col.path + "' is not convertible to bool");
                check_length(col.bools.size());
                col.b = col.bools.data();
            } else if (kind == "s") {
                col.kind = Kind::String;
                check_length(py::len(values));
                col.strings = copy_strings(values.cast<py::sequence>(), "column '" + col.path + "'", true);
            } else {
                throw py::value_error("column '" + col.path + "': unknown kind '" + kind + "' (f, i, b or s)");
            }
            columns.push_back(std::move(col));
        }
        const DataNode layout = build_layout(columns);
        for (size_t row = 0; row < rows; ++row) check_row(ids, ts, row);
        return send_rows(topic, rows, ids, ts, [&](std::string &out, size_t row) {
            out += '{';
            write_members(out, layout, columns, row);
            out += '}';
        });
    }

    void flush(int timeout_ms) {
        SliceClock clock(timeout_ms);
        while (true) {
            iots_err_t err = handle_.use([&](iots_producer_t *p) {
                py::gil_scoped_release release;
                return iots_producer_flush(p, clock.next_slice_ms());
            });
            if (err == IOTS_OK) return;
            if (err != IOTS_ERR_TIMED_OUT) fail(err, nullptr, "flush");
            if (clock.expired())
                throw NativeError(IOTS_ERR_TIMED_OUT, "flush: messages still undelivered after " +
                                                          std::to_string(timeout_ms) + " ms");
            check_signals();
        }
    }

    py::dict stats() {
        iots_producer_stats_t s{};
        s.struct_size = sizeof s;
        handle_.use([&](iots_producer_t *p) { check(iots_producer_get_stats(p, &s), nullptr, "producer stats"); });
        py::dict d;
        d["sent"] = s.sent;
        d["delivered"] = s.delivered;
        d["failed"] = s.failed;
        d["retried"] = s.retried;
        d["bytes"] = s.bytes;
        d["queue_full"] = s.queue_full;
        d["queue_depth"] = s.queue_depth;
        return d;
    }

    py::list delivery_failures() {
        std::lock_guard lock(failures_->mutex);
        py::list out;
        for (const auto &[topic, partition, key, reason] : failures_->kept)
            out.append(py::make_tuple(topic, partition, py::bytes(key), reason));
        return out;
    }

    bool closed() const { return handle_.closed(); }

    // Flushes (Ctrl-C can cut the wait short), then frees the handle. Messages undelivered at
    // the timeout are reported failed by the library before the handle goes.
    void close(int timeout_ms) {
        if (handle_.closed()) return;
        std::optional<py::error_already_set> interrupted;
        try {
            flush(timeout_ms);
        } catch (const NativeError &) {
        } catch (py::error_already_set &e) {
            interrupted = std::move(e);
        }
        iots_err_t err = IOTS_OK;
        {
            py::gil_scoped_release release;
            if (iots_producer_t *p = handle_.take()) err = iots_producer_close(p, 0);
        }
        if (interrupted) throw *interrupted;
        if (err == IOTS_ERR_TIMED_OUT)
            throw NativeError(err, "producer closed with messages undelivered after " + std::to_string(timeout_ms) +
                                       " ms; they were reported failed");
    }

private:
    static const int64_t *timestamp_pointer(const std::optional<py::array_t<int64_t>> &ts, size_t rows) {
        if (!ts) return nullptr;
        if (ts->ndim() != 1 || static_cast<size_t>(ts->size()) != rows || !(ts->flags() & py::array::c_style))
            throw py::value_error("timestamps must be a contiguous int64 array with one value per row");
        return ts->data();
    }

    static void check_row(const StringColumn &ids, const int64_t *ts, size_t row) {
        if (ids.at(row).empty()) throw py::value_error("sensor_id is empty in row " + std::to_string(row));
        if (ts && (ts[row] < kMinTimestampMs || ts[row] > kMaxTimestampMs))
            throw py::value_error("timestamp in row " + std::to_string(row) + " (" + std::to_string(ts[row]) +
                                  " ms) is outside years 0000..9999");
    }

    // Builds and sends every row without the GIL, a slice at a time, checking signals between
    // slices. On failure the message names the row and how many rows went before it.
    template <typename BuildData>
    // Sends `rows` readings: build_data writes row's "data" object; the core wraps it in the
    // seed's envelope (event time ts[row], or now) and keys it by the sensor id.
    size_t send_rows(const std::optional<std::string> &topic, size_t rows, const StringColumn &ids,
                     const int64_t *ts, BuildData &&build_data) {
        const char *topic_name = topic ? topic->c_str() : nullptr;
        std::string data, sensor;
        data.reserve(512);
        size_t sent = 0;
        while (sent < rows) {
            const size_t end = std::min(rows, sent + kRowsPerSlice);
            iots_err_t err = IOTS_OK;
            char errstr[kErrstrSize] = "";
            handle_.use([&](iots_producer_t *p) {
                py::gil_scoped_release release;
                for (; sent < end; ++sent) {
                    data.clear();
                    build_data(data, sent);
                    sensor.assign(ids.at(sent));  // NUL-terminated for the C API
                    err = ts ? iots_producer_send_reading_at(p, topic_name, sensor.c_str(), data.c_str(), ts[sent],
                                                             errstr, sizeof errstr)
                             : iots_producer_send_reading(p, topic_name, sensor.c_str(), data.c_str(), errstr,
                                                          sizeof errstr);
                    if (err != IOTS_OK) break;
                }
            });
            if (err != IOTS_OK)
                fail(err, errstr, "row " + std::to_string(sent) + " (" + std::to_string(sent) + " of " +
                                      std::to_string(rows) + " rows were accepted before it)");
            check_signals();
        }
        return sent;
    }

    Guarded<iots_producer_t> handle_;
    std::unique_ptr<DeliveryFailures> failures_;  // outlives the handle: the callback uses it
};

// ---- consumer -----------------------------------------------------------------------------

// One poll's records; owns the C batch so the consumer can commit exactly these offsets.
class Batch {
public:
    explicit Batch(iots_batch_t *batch) : batch_(batch) {}
    ~Batch() { iots_batch_destroy(batch_); }
    Batch(const Batch &) = delete;
    Batch &operator=(const Batch &) = delete;

    size_t size() const { return batch_ ? iots_batch_count(batch_) : 0; }
    const iots_batch_t *handle() const { return batch_; }

    // (topic, partition, offset, timestamp_ms, key or None, value)
    py::list records() const {
        py::list out;
        for (size_t i = 0; i < size(); ++i) {
            const iots_record_t *r = iots_batch_record(batch_, i);
            py::object key = r->key ? py::object(py::bytes(static_cast<const char *>(r->key), r->key_len)) : py::none();
            out.append(py::make_tuple(r->topic, r->partition, r->offset, r->timestamp_ms, key,
                                      py::bytes(static_cast<const char *>(r->value), r->value_len)));
        }
        return out;
    }

    // The values only, as a list of str (envelopes are UTF-8 JSON); for fast json decoding.
    py::list values() const {
        py::list out;
        for (size_t i = 0; i < size(); ++i) {
            const iots_record_t *r = iots_batch_record(batch_, i);
            PyObject *text = PyUnicode_DecodeUTF8(static_cast<const char *>(r->value),
                                                  static_cast<Py_ssize_t>(r->value_len), "replace");
            if (!text) throw py::error_already_set();
            out.append(py::reinterpret_steal<py::object>(text));
        }
        return out;
    }

private:
    iots_batch_t *batch_;
};

class Consumer {
    // The C consumer is single-threaded: calls are serialised (stats excepted).
    template <typename Body>
    auto use(Body &&body) {
        std::unique_lock lock(calls_, std::defer_lock);
        {
            py::gil_scoped_release release;  // never wait for the lock while holding the GIL
            lock.lock();
        }
        return handle_.use(std::forward<Body>(body));
    }

public:
    explicit Consumer(const std::string &config_json) : handle_("consumer") {
        iots_consumer_t *consumer = nullptr;
        char errstr[kErrstrSize] = "";
        iots_err_t err;
        {
            py::gil_scoped_release release;
            err = iots_consumer_new(config_json.c_str(), nullptr, nullptr, &consumer, errstr, sizeof errstr);
        }
        check(err, errstr, "creating the consumer");
        handle_.set(consumer);
    }
    ~Consumer() { close(); }

    void subscribe(const std::vector<std::string> &topics) {
        std::vector<const char *> names;
        for (const auto &t : topics) names.push_back(t.c_str());
        use([&](iots_consumer_t *c) {
            char errstr[kErrstrSize] = "";
            iots_err_t err;
            {
                py::gil_scoped_release release;
                err = iots_consumer_subscribe(c, names.data(), names.size(), errstr, sizeof errstr);
            }
            check(err, errstr, "subscribe");
        });
    }

    // Waits up to timeout_ms (< 0: forever) for records; returns a possibly empty batch.
    std::unique_ptr<Batch> poll(size_t max_records, int timeout_ms) {
        if (max_records == 0) throw py::value_error("max_records must be at least 1");
        SliceClock clock(timeout_ms);
        while (true) {
            iots_batch_t *batch = nullptr;
            char errstr[kErrstrSize] = "";
            iots_err_t err = use([&](iots_consumer_t *c) {
                py::gil_scoped_release release;
                return iots_consumer_poll_batch(c, max_records, clock.next_slice_ms(), &batch, errstr, sizeof errstr);
            });
            check(err, errstr, "poll");
            auto result = std::make_unique<Batch>(batch);
            if (result->size() > 0 || clock.expired()) return result;
            check_signals();
        }
    }

    void commit(const Batch &batch) {
        if (batch.size() == 0) return;
        use([&](iots_consumer_t *c) {
            char errstr[kErrstrSize] = "";
            iots_err_t err;
            {
                py::gil_scoped_release release;
                err = iots_consumer_commit_batch(c, batch.handle(), errstr, sizeof errstr);
            }
            check(err, errstr, "commit");
        });
    }

    void pause() { use([](iots_consumer_t *c) { check(iots_consumer_pause(c), nullptr, "pause"); }); }
    void resume() { use([](iots_consumer_t *c) { check(iots_consumer_resume(c), nullptr, "resume"); }); }

    py::list lag(int timeout_ms) {
        return use([&](iots_consumer_t *c) {
            std::vector<iots_partition_lag_t> entries;
            size_t count = 0;
            iots_err_t err;
            {
                py::gil_scoped_release release;
                // Sized by a first call; the assignment can grow in between, so retry until it fits.
                while (true) {
                    err = iots_consumer_lag(c, entries.data(), entries.size(), &count, timeout_ms);
                    if (err != IOTS_OK || count <= entries.size()) break;
                    entries.resize(count);
                }
            }
            check(err, nullptr, "lag");
            py::list out;
            for (size_t i = 0; i < count; ++i) {
                const auto &e = entries[i];
                py::dict d;
                d["topic"] = e.topic;
                d["partition"] = e.partition;
                d["position"] = e.position;
                d["committed"] = e.committed;
                d["high_watermark"] = e.high_watermark;
                d["lag"] = e.lag;
                out.append(d);
            }
            return out;
        });
    }

    py::dict stats() {
        iots_consumer_stats_t s{};
        s.struct_size = sizeof s;
        handle_.use([&](iots_consumer_t *c) { check(iots_consumer_get_stats(c, &s), nullptr, "consumer stats"); });
        py::dict d;
        d["consumed"] = s.consumed;
        d["committed"] = s.committed;
        d["commits"] = s.commits;
        d["redelivered"] = s.redelivered;
        d["bytes"] = s.bytes;
        d["rebalances"] = s.rebalances;
        d["queue_depth"] = s.queue_depth;
        return d;
    }

    bool closed() const { return handle_.closed(); }
    void close() {
        py::gil_scoped_release release;
        std::lock_guard lock(calls_);
        if (iots_consumer_t *c = handle_.take()) iots_consumer_close(c);
    }

private:
    Guarded<iots_consumer_t> handle_;
    std::mutex calls_;
};

// ---- pipeline -----------------------------------------------------------------------------

// State shared with a bounded run's worker thread, which may outlive an interrupted wait.
struct PipelineState {
    iots_pipeline_t *pipeline = nullptr;
    std::mutex mutex;
    std::condition_variable done_cv;
    bool bounded_running = false;
    iots_err_t bounded_err = IOTS_OK;
    std::string bounded_errstr;
    std::thread worker;
};

class Pipeline {
public:
    explicit Pipeline(const std::string &config_json) : state_(std::make_shared<PipelineState>()) {
        char errstr[kErrstrSize] = "";
        iots_err_t err;
        {
            py::gil_scoped_release release;
            err = iots_pipeline_new(config_json.c_str(), &state_->pipeline, errstr, sizeof errstr);
        }
        check(err, errstr, "creating the pipeline");
    }
    ~Pipeline() { close(); }

    void start() {
        iots_pipeline_t *p = live();
        char errstr[kErrstrSize] = "";
        iots_err_t err;
        {
            py::gil_scoped_release release;
            err = iots_pipeline_start(p, errstr, sizeof errstr);
        }
        check(err, errstr, "starting the pipeline");
    }

    void stop(bool close_windows, int timeout_ms) {
        iots_pipeline_t *p = live();
        char errstr[kErrstrSize] = "";
        iots_err_t err;
        {
            py::gil_scoped_release release;
            err = iots_pipeline_stop(p, close_windows ? 1 : 0, timeout_ms, errstr, sizeof errstr);
        }
        check(err, errstr, "stopping the pipeline");
    }

    // The library's bounded run cannot be cancelled, so it runs on a worker thread while this
    // thread waits in slices. Ctrl-C returns control at once; the run then finishes in the
    // background (the pipeline refuses other calls until it has) and close() waits for it.
    void run_bounded(int timeout_ms) {
        iots_pipeline_t *p = live();
        std::shared_ptr<PipelineState> state = state_;
        {
            std::lock_guard lock(state->mutex);
            if (state->worker.joinable()) state->worker.join();
            state->bounded_running = true;
        }
        state->worker = std::thread([state, p, timeout_ms] {
            char errstr[kErrstrSize] = "";
            iots_err_t err = iots_pipeline_run_bounded(p, timeout_ms, errstr, sizeof errstr);
            std::lock_guard lock(state->mutex);
            state->bounded_err = err;
            state->bounded_errstr = errstr;
            state->bounded_running = false;
            state->done_cv.notify_all();
        });
        while (true) {
            bool finished;
            {
                py::gil_scoped_release release;
                std::unique_lock lock(state->mutex);
                finished = state->done_cv.wait_for(lock, std::chrono::milliseconds(kSliceMs),
                                                   [&] { return !state->bounded_running; });
            }
            if (finished) break;
            check_signals();
        }
        {
            py::gil_scoped_release release;
            state->worker.join();
        }
        check(state->bounded_err, state->bounded_errstr.c_str(), "bounded run");
    }

    std::string stats_json() {
        iots_pipeline_t *p = state_->pipeline;
        if (!p) throw NativeError(IOTS_ERR_STATE, "pipeline is closed");
        return read_json_out([&](char *buf, size_t size, size_t *needed, char *) {
            return iots_pipeline_stats_json(p, buf, size, needed);
        });
    }

    bool closed() const { return state_->pipeline == nullptr; }

    void close() {
        py::gil_scoped_release release;
        if (state_->worker.joinable()) state_->worker.join();
        if (iots_pipeline_t *p = std::exchange(state_->pipeline, nullptr)) iots_pipeline_destroy(p);
    }

private:
    iots_pipeline_t *live() {
        if (!state_->pipeline) throw NativeError(IOTS_ERR_STATE, "pipeline is closed");
        std::lock_guard lock(state_->mutex);
        if (state_->bounded_running)
            throw NativeError(IOTS_ERR_STATE, "an interrupted bounded run is still finishing in the background");
        return state_->pipeline;
    }

    std::shared_ptr<PipelineState> state_;
};

// ---- load generator -----------------------------------------------------------------------

class LoadGenerator {
public:
    explicit LoadGenerator(const std::string &config_json) : handle_("load generator") {
        iots_loadgen_t *gen = nullptr;
        char errstr[kErrstrSize] = "";
        iots_err_t err;
        {
            py::gil_scoped_release release;
            err = iots_loadgen_new(config_json.c_str(), &gen, errstr, sizeof errstr);
        }
        check(err, errstr, "creating the load generator");
        handle_.set(gen);
    }
    ~LoadGenerator() { close(); }

    void start() {
        handle_.use([](iots_loadgen_t *g) {
            char errstr[kErrstrSize] = "";
            check(iots_loadgen_start(g, errstr, sizeof errstr), errstr, "starting the load generator");
        });
    }
    // True when the run ended, False when timeout_ms passed first.
    bool wait(int timeout_ms) {
        SliceClock clock(timeout_ms);
        while (true) {
            iots_err_t err = handle_.use([&](iots_loadgen_t *g) {
                py::gil_scoped_release release;
                return iots_loadgen_wait(g, clock.next_slice_ms());
            });
            if (err == IOTS_OK) return true;
            if (err != IOTS_ERR_TIMED_OUT) fail(err, nullptr, "waiting for the load generator");
            if (clock.expired()) return false;
            check_signals();
        }
    }
    void stop() { handle_.use([](iots_loadgen_t *g) { iots_loadgen_stop(g); }); }
    py::dict stats() {
        iots_loadgen_stats_t s{};
        s.struct_size = sizeof s;
        handle_.use([&](iots_loadgen_t *g) { check(iots_loadgen_get_stats(g, &s), nullptr, "load generator stats"); });
        py::dict d;
        d["sent"] = s.sent;
        d["delivered"] = s.delivered;
        d["failed"] = s.failed;
        d["anomalous"] = s.anomalous;
        d["elapsed_s"] = s.elapsed_s;
        d["achieved_rate"] = s.achieved_rate;
        return d;
    }
    bool closed() const { return handle_.closed(); }
    void close() {
        py::gil_scoped_release release;
        if (iots_loadgen_t *g = handle_.take()) iots_loadgen_destroy(g);
    }

private:
    Guarded<iots_loadgen_t> handle_;
};

std::string describe_plugins(const std::optional<std::string> &dir) {
    py::gil_scoped_release release;
    return read_json_out([&](char *buf, size_t size, size_t *needed, char *errstr) {
        return iots_plugins_describe_json(dir ? dir->c_str() : nullptr, buf, size, needed, errstr, kErrstrSize);
    });
}

}  // namespace

PYBIND11_MODULE(_native, m) {
    m.doc() = "Native core of the iotstream package: thin handles over libiotstream's C API. "
              "Use the `iotstream` package, not this module.";

    // Core errors become the iotstream.errors class for their code (imported lazily: the
    // Python package owns the hierarchy and its docstrings).
    py::register_exception_translator([](std::exception_ptr p) {
        try {
            if (p) std::rethrow_exception(p);
        } catch (const NativeError &e) {
            py::object errors = py::module_::import("iotstream.errors");
            py::object exc = errors.attr("error_from_code")(static_cast<int>(e.code), e.what());
            PyErr_SetObject(reinterpret_cast<PyObject *>(Py_TYPE(exc.ptr())), exc.ptr());
        }
    });

    m.def("version", &iots_version, "Library version as hex MM.mm.rr.xx.");
    m.def("version_str", [] { return std::string(iots_version_str()); }, "Library version, e.g. '0.1.0'.");
    m.attr("ABI_MAJOR") = IOTS_ABI_MAJOR;
    m.attr("ABI_MINOR") = IOTS_ABI_MINOR;
    m.def("err_name", [](int code) { return std::string(iots_err_name(static_cast<iots_err_t>(code))); });
    m.def("err_str", [](int code) { return std::string(iots_err_str(static_cast<iots_err_t>(code))); });
    m.def("log_set_level", [](int level) {
        check(iots_log_set_level(static_cast<iots_log_level_t>(level)), nullptr, "log level " + std::to_string(level));
    });
    m.def("log_get_level", [] { return static_cast<int>(iots_log_get_level()); });
    m.def("describe_plugins", &describe_plugins, py::arg("dir") = py::none(),
          "JSON text describing the plugins in `dir` (None: the built-in folder).");

    py::class_<Broker>(m, "Broker")
        .def(py::init<const std::string &>(), py::arg("config_json"))
        .def_property_readonly("bootstrap", &Broker::bootstrap)
        .def_property_readonly("closed", &Broker::closed)
        .def("create_topic", &Broker::create_topic, py::arg("topic"), py::arg("partitions"))
        .def("set_down", &Broker::set_down, py::arg("broker_id"), py::arg("down"))
        .def("set_rtt", &Broker::set_rtt, py::arg("broker_id"), py::arg("rtt_ms"))
        .def("push_request_errors", &Broker::push_request_errors, py::arg("api_key"), py::arg("count"),
             py::arg("kafka_error"))
        .def("close", &Broker::close);

    py::class_<Producer>(m, "Producer")
        .def(py::init<const std::string &>(), py::arg("config_json"))
        .def("send_raw", &Producer::send_raw, py::arg("topic"), py::arg("key"), py::arg("value"))
        .def("send_envelopes", &Producer::send_envelopes, py::arg("topic"), py::arg("sensor_ids"),
             py::arg("data_jsons"), py::arg("timestamps_ms"))
        .def("send_columns", &Producer::send_columns, py::arg("topic"), py::arg("sensor_ids"),
             py::arg("timestamps_ms"), py::arg("columns"))
        .def("flush", &Producer::flush, py::arg("timeout_ms"))
        .def("stats", &Producer::stats)
        .def("delivery_failures", &Producer::delivery_failures)
        .def_property_readonly("closed", &Producer::closed)
        .def("close", &Producer::close, py::arg("timeout_ms"));

    py::class_<Batch>(m, "Batch")
        .def("__len__", &Batch::size)
        .def("records", &Batch::records)
        .def("values", &Batch::values);

    py::class_<Consumer>(m, "Consumer")
        .def(py::init<const std::string &>(), py::arg("config_json"))
        .def("subscribe", &Consumer::subscribe, py::arg("topics"))
        .def("poll", &Consumer::poll, py::arg("max_records"), py::arg("timeout_ms"))
        .def("commit", &Consumer::commit, py::arg("batch"))
        .def("pause", &Consumer::pause)
        .def("resume", &Consumer::resume)
        .def("lag", &Consumer::lag, py::arg("timeout_ms"))
        .def("stats", &Consumer::stats)
        .def_property_readonly("closed", &Consumer::closed)
        .def("close", &Consumer::close);

    py::class_<Pipeline>(m, "Pipeline")
        .def(py::init<const std::string &>(), py::arg("config_json"))
        .def("start", &Pipeline::start)
        .def("stop", &Pipeline::stop, py::arg("close_windows"), py::arg("timeout_ms"))
        .def("run_bounded", &Pipeline::run_bounded, py::arg("timeout_ms"))
        .def("stats_json", &Pipeline::stats_json)
        .def_property_readonly("closed", &Pipeline::closed)
        .def("close", &Pipeline::close);

    py::class_<LoadGenerator>(m, "LoadGenerator")
        .def(py::init<const std::string &>(), py::arg("config_json"))
        .def("start", &LoadGenerator::start)
        .def("wait", &LoadGenerator::wait, py::arg("timeout_ms"))
        .def("stop", &LoadGenerator::stop)
        .def("stats", &LoadGenerator::stats)
        .def_property_readonly("closed", &LoadGenerator::closed)
        .def("close", &LoadGenerator::close);
}
