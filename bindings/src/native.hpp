// iotstream._native: the pybind11 module under the `iotstream` Python package. It reaches the
// engine only through the public C API (iotstream.h) (topic_reader.cpp also uses librdkafka's own
// C API, to read output topics without a consumer group); the pure-Python layer in
// bindings/python/iotstream turns these handles into the documented, Pythonic API.
//
// This header holds how every file of the module calls the core:
//  - call(): a C call that reports through (errstr, errstr_size) runs without the GIL and its
//    failure becomes a NativeError, which the module's translator raises as the
//    iotstream.errors class of its code (check() for calls without errstr);
//  - without_gil(): every blocking C call runs with the GIL released;
//  - create(): a constructor's `iots_x_new(..., &handle, errstr, size)`, into a Guarded handle;
//  - in_slices(): long waits are cut into short slices; between slices the GIL is taken back
//    and PyErr_CheckSignals() runs, so Ctrl-C interrupts them;
//  - Guarded: a handle is freed once, under an exclusive lock, so a Python thread closing an
//    object never frees it under another thread that is using it.
#pragma once

#include <pybind11/pybind11.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <shared_mutex>
#include <stdexcept>
#include <string>
#include <utility>

#include "iotstream/iotstream.h"

namespace iotstream_native {

namespace py = pybind11;

inline constexpr int kSliceMs = 100;  // longest time a blocking call runs without a signal check
inline constexpr size_t kErrstrSize = 1024;

// ---- errors -------------------------------------------------------------------------------

// A failed C call, carried to the translator that raises the matching Python exception.
struct NativeError : std::runtime_error {
    NativeError(iots_err_t code_, const std::string &message) : std::runtime_error(message), code(code_) {}
    iots_err_t code;
};

// Raises `err` with the core's message (errstr, or the code's fixed text), prefixed by context.
[[noreturn]] void fail(iots_err_t err, const char *errstr, const std::string &context = {});

inline void check(iots_err_t err, const char *errstr, const std::string &context = {}) {
    if (err != IOTS_OK) fail(err, errstr, context);
}

// Must be called with the GIL held. Raises KeyboardInterrupt (or whatever the handler raised).
void check_signals();

// ---- calling the core ---------------------------------------------------------------------

// Runs body() with the GIL released and returns its result. body must not touch Python.
template <typename Body>
auto without_gil(Body &&body) {
    py::gil_scoped_release release;
    return body();
}

// Runs c_call(errstr, errstr_size) -> iots_err_t without the GIL; a failure is raised, its
// message prefixed by context.
template <typename CCall>
void call(const std::string &context, CCall &&c_call) {
    char errstr[kErrstrSize] = "";
    const iots_err_t err = without_gil([&] { return c_call(errstr, sizeof errstr); });
    check(err, errstr, context);
}

// The handle a constructor makes: make(&handle, errstr, errstr_size) -> iots_err_t, run as call().
template <typename Handle, typename Make>
Handle *create(const std::string &context, Make &&make) {
    Handle *handle = nullptr;
    call(context, [&](char *errstr, size_t errstr_size) { return make(&handle, errstr, errstr_size); });
    return handle;
}

// Milliseconds left until `deadline` (timeout_ms < 0 means no deadline), capped to one slice.
class SliceClock {
public:
    explicit SliceClock(int timeout_ms)
        : unbounded_(timeout_ms < 0),
          deadline_(std::chrono::steady_clock::now() + std::chrono::milliseconds(std::max(timeout_ms, 0))) {}
    int next_slice_ms() const {
        if (unbounded_) return kSliceMs;
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline_ - std::chrono::steady_clock::now());
        return static_cast<int>(std::clamp<int64_t>(left.count(), 0, kSliceMs));
    }
    bool expired() const { return !unbounded_ && std::chrono::steady_clock::now() >= deadline_; }

private:
    bool unbounded_;
    std::chrono::steady_clock::time_point deadline_;
};

// Waits up to timeout_ms (< 0: forever) by calling step(slice_ms) -> bool (true: done) with the
// GIL held, checking signals between steps. False when the time ran out first. step runs at
// least once, so a zero timeout still looks once.
template <typename Step>
bool in_slices(int timeout_ms, Step &&step) {
    SliceClock clock(timeout_ms);
    while (!step(clock.next_slice_ms())) {
        if (clock.expired()) return false;
        check_signals();
    }
    return true;
}

// A JSON document the library writes into a caller buffer:
// write(buf, size, &needed, errstr) -> iots_err_t, retried once with the size it asks for.
// Call it without the GIL.
template <typename Write>
std::string read_json_out(Write &&write) {
    std::string buf(16384, '\0');
    size_t needed = 0;
    char errstr[kErrstrSize] = "";
    iots_err_t err = write(buf.data(), buf.size(), &needed, errstr);
    if (err == IOTS_ERR_BUFFER_TOO_SMALL) {
        buf.assign(needed, '\0');
        err = write(buf.data(), buf.size(), &needed, errstr);
    }
    check(err, errstr);
    buf.resize(std::strlen(buf.c_str()));
    return buf;
}

// ---- handles ------------------------------------------------------------------------------

// A handle freed exactly once, never while another thread is inside a call on it.
template <typename Handle>
class Guarded {
public:
    Guarded(const char *what, Handle *handle) : what_(what), handle_(handle) {}

    // Runs body(handle) under the shared lock; StateError if closed.
    template <typename Body>
    auto use(Body &&body) {
        std::shared_lock lock(mutex_);
        if (!handle_) throw NativeError(IOTS_ERR_STATE, std::string(what_) + " is closed");
        return body(handle_);
    }
    // Takes the handle for freeing (nullptr if already closed); waits for calls in flight.
    // Call it without the GIL: a call in flight may need the GIL to finish.
    Handle *take() {
        std::unique_lock lock(mutex_);
        return std::exchange(handle_, nullptr);
    }
    // Takes the handle without the GIL and frees it with destroy(handle); nothing if closed.
    template <typename Destroy>
    void close(Destroy &&destroy) {
        without_gil([&] {
            if (Handle *handle = take()) destroy(handle);
        });
    }
    bool closed() const {
        std::shared_lock lock(mutex_);
        return handle_ == nullptr;
    }

private:
    const char *what_;
    mutable std::shared_mutex mutex_;
    Handle *handle_;
};

// ---- the module's parts, each defined in its own file -------------------------------------

void bind_errors(py::module_ &m);    // errors.cpp: the translator and the core's error table
void bind_broker(py::module_ &m);    // broker.cpp
void bind_producer(py::module_ &m);  // producer.cpp
void bind_consumer(py::module_ &m);  // consumer.cpp
void bind_pipeline(py::module_ &m);  // pipeline.cpp: pipelines and plugin descriptions
void bind_load_generator(py::module_ &m);  // load_generator.cpp
void bind_ingest(py::module_ &m);          // ingest.cpp: the ingestion service behind a gateway
void bind_topic_reader(py::module_ &m);    // topic_reader.cpp: read_topics(), results as columns

}  // namespace iotstream_native
