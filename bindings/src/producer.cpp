// Producer: readings (as JSON text or as columns) wrapped in the seed's envelope by the core,
// raw records, flush and delivery failures. Rows are copied out of Python with the GIL held,
// then built and sent without it, a slice at a time: producing a DataFrame never loops in
// Python and Ctrl-C still interrupts it.
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include <nlohmann/json.hpp>

#include "columns.hpp"
#include "iotstream/plugin.h"  // IOTS_MIN_EVENT_TIME_MS, IOTS_MAX_EVENT_TIME_MS: the core's one range
#include "native.hpp"

namespace iotstream_native {
namespace {

constexpr size_t kRowsPerSlice = 16384;  // rows sent between two signal checks


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
    explicit Producer(const std::string &config_json)
        : failures_(std::make_unique<DeliveryFailures>()),
          handle_("producer", create<iots_producer_t>("creating the producer", [&](auto *out, char *e, size_t n) {
              return iots_producer_new(config_json.c_str(), &DeliveryFailures::on_delivery, failures_.get(), out, e, n);
          })) {}
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
            call({}, [&](char *e, size_t n) {
                return iots_producer_send(p, topic ? topic->c_str() : nullptr, key ? k.data() : nullptr, k.size(),
                                          v.data(), v.size(), nullptr, e, n);
            });
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
    // (path, kind, values); see column_from_spec().
    size_t send_columns(const std::optional<std::string> &topic, const py::sequence &sensor_ids,
                        const std::optional<py::array_t<int64_t>> &timestamps_ms, const py::list &columns_in) {
        const auto rows = static_cast<size_t>(py::len(sensor_ids));
        StringColumn ids = copy_strings(sensor_ids, "sensor_id", false);
        const int64_t *ts = timestamp_pointer(timestamps_ms, rows);
        std::vector<Column> columns;
        columns.reserve(py::len(columns_in));
        for (py::handle spec : columns_in) columns.push_back(column_from_spec(spec, rows));
        const DataNode layout = build_layout(columns);
        for (size_t row = 0; row < rows; ++row) check_row(ids, ts, row);
        return send_rows(topic, rows, ids, ts,
                         [&](std::string &out, size_t row) { write_data(out, layout, columns, row); });
    }

    void flush(int timeout_ms) {
        const bool flushed = in_slices(timeout_ms, [&](int slice_ms) {
            const iots_err_t err = handle_.use(
                [&](iots_producer_t *p) { return without_gil([&] { return iots_producer_flush(p, slice_ms); }); });
            if (err != IOTS_OK && err != IOTS_ERR_TIMED_OUT) fail(err, nullptr, "flush");
            return err == IOTS_OK;
        });
        if (!flushed)
            throw NativeError(IOTS_ERR_TIMED_OUT,
                              "flush: messages still undelivered after " + std::to_string(timeout_ms) + " ms");
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
        handle_.close([&](iots_producer_t *p) { err = iots_producer_close(p, 0); });
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
        if (ts && (ts[row] < IOTS_MIN_EVENT_TIME_MS || ts[row] > IOTS_MAX_EVENT_TIME_MS))
            throw py::value_error("timestamp in row " + std::to_string(row) + " (" + std::to_string(ts[row]) +
                                  " ms) is outside years 0000..9999");
    }

    // Sends `rows` readings: build_data writes row's "data" object; the core wraps it in the
    // seed's envelope (event time ts[row], or now) and keys it by the sensor id. Rows are built
    // and sent without the GIL, a slice at a time, checking signals between slices. On failure
    // the message names the row and how many rows went before it.
    template <typename BuildData>
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
                without_gil([&] {
                    for (; sent < end; ++sent) {
                        data.clear();
                        build_data(data, sent);
                        sensor.assign(ids.at(sent));  // NUL-terminated for the C API
                        err = ts ? iots_producer_send_reading_at(p, topic_name, sensor.c_str(), data.c_str(),
                                                                 ts[sent], errstr, sizeof errstr)
                                 : iots_producer_send_reading(p, topic_name, sensor.c_str(), data.c_str(), errstr,
                                                              sizeof errstr);
                        if (err != IOTS_OK) break;
                    }
                });
            });
            if (err != IOTS_OK)
                fail(err, errstr, "row " + std::to_string(sent) + " (" + std::to_string(sent) + " of " +
                                      std::to_string(rows) + " rows were accepted before it)");
            check_signals();
        }
        return sent;
    }

    std::unique_ptr<DeliveryFailures> failures_;  // outlives the handle: the callback uses it
    Guarded<iots_producer_t> handle_;
};

}  // namespace

void bind_producer(py::module_ &m) {
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
}

}  // namespace iotstream_native
