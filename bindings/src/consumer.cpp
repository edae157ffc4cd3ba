// Consumer: a consumer-group member polling batches (records or JSON values) and committing
// exactly the offsets of a batch it returned.
#include <pybind11/stl.h>

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "json_columns.hpp"
#include "native.hpp"

namespace iotstream_native {
namespace {

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

    // Every value decoded into columns (json_columns.hpp), in C++ without the GIL.
    void add_to(JsonColumns &columns) const {
        for (size_t i = 0; i < size(); ++i) {
            const iots_record_t *r = iots_batch_record(batch_, i);
            columns.add(std::string_view(static_cast<const char *>(r->value), r->value_len));
        }
    }

    py::list columns() const {
        JsonColumns columns;
        without_gil([&] { add_to(columns); });
        return columns.to_python();
    }

private:
    iots_batch_t *batch_;
};

// Values of several batches gathered into one set of columns (Consumer.read_frame).
class Columns {
public:
    void add_batch(const Batch &batch) {
        without_gil([&] {
            std::lock_guard lock(mutex_);
            batch.add_to(columns_);
        });
    }
    size_t rows() {
        std::lock_guard lock(mutex_);
        return columns_.rows();
    }
    py::list to_python() {
        std::unique_lock lock(mutex_, std::defer_lock);
        without_gil([&] { lock.lock(); });
        return columns_.to_python();
    }

private:
    std::mutex mutex_;
    JsonColumns columns_;
};

class Consumer {
    // The C consumer is single-threaded: calls are serialised (stats excepted).
    template <typename Body>
    auto use(Body &&body) {
        std::unique_lock lock(calls_, std::defer_lock);
        without_gil([&] { lock.lock(); });  // never wait for the lock while holding the GIL
        return handle_.use(std::forward<Body>(body));
    }

public:
    explicit Consumer(const std::string &config_json)
        : handle_("consumer", create<iots_consumer_t>("creating the consumer", [&](auto *out, char *e, size_t n) {
              return iots_consumer_new(config_json.c_str(), nullptr, nullptr, out, e, n);
          })) {}
    ~Consumer() { close(); }

    void subscribe(const std::vector<std::string> &topics) {
        std::vector<const char *> names;
        for (const auto &t : topics) names.push_back(t.c_str());
        use([&](iots_consumer_t *c) {
            call("subscribe", [&](char *e, size_t n) { return iots_consumer_subscribe(c, names.data(), names.size(), e, n); });
        });
    }

    // Waits up to timeout_ms (< 0: forever) for records; returns a possibly empty batch.
    std::unique_ptr<Batch> poll(size_t max_records, int timeout_ms) {
        if (max_records == 0) throw py::value_error("max_records must be at least 1");
        std::unique_ptr<Batch> result;
        in_slices(timeout_ms, [&](int slice_ms) {
            iots_batch_t *batch = nullptr;
            use([&](iots_consumer_t *c) {
                call("poll", [&](char *e, size_t n) { return iots_consumer_poll_batch(c, max_records, slice_ms, &batch, e, n); });
            });
            result = std::make_unique<Batch>(batch);
            return result->size() > 0;
        });
        return result;
    }

    void commit(const Batch &batch) {
        if (batch.size() == 0) return;
        use([&](iots_consumer_t *c) {
            call("commit", [&](char *e, size_t n) { return iots_consumer_commit_batch(c, batch.handle(), e, n); });
        });
    }

    void pause() { use([](iots_consumer_t *c) { check(iots_consumer_pause(c), nullptr, "pause"); }); }
    void resume() { use([](iots_consumer_t *c) { check(iots_consumer_resume(c), nullptr, "resume"); }); }

    py::list lag(int timeout_ms) {
        return use([&](iots_consumer_t *c) {
            std::vector<iots_partition_lag_t> entries;
            size_t count = 0;
            const iots_err_t err = without_gil([&] {
                // Sized by a first call; the assignment can grow in between, so retry until it fits.
                while (true) {
                    iots_err_t e = iots_consumer_lag(c, entries.data(), entries.size(), &count, timeout_ms);
                    if (e != IOTS_OK || count <= entries.size()) return e;
                    entries.resize(count);
                }
            });
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
        without_gil([&] {
            std::lock_guard lock(calls_);
            if (iots_consumer_t *c = handle_.take()) iots_consumer_close(c);
        });
    }

private:
    Guarded<iots_consumer_t> handle_;
    std::mutex calls_;
};

}  // namespace

void bind_consumer(py::module_ &m) {
    py::class_<Batch>(m, "Batch")
        .def("__len__", &Batch::size)
        .def("records", &Batch::records)
        .def("values", &Batch::values)
        .def("columns", &Batch::columns, "[(column, values), ...] of the values decoded as JSON (json_columns.hpp)");

    py::class_<Columns>(m, "Columns")
        .def(py::init<>())
        .def("add_batch", &Columns::add_batch, py::arg("batch"))
        .def("__len__", &Columns::rows)
        .def("columns", &Columns::to_python);

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
}

}  // namespace iotstream_native
