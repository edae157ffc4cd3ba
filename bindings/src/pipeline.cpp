// Pipeline: a pipeline document run on the library's threads (start/stop) or bounded; and the
// descriptions of the plugins in a folder.
#include <pybind11/stl.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "native.hpp"

namespace iotstream_native {
namespace {

class Pipeline {
public:
    explicit Pipeline(const std::string &config_json)
        : handle_("pipeline", create<iots_pipeline_t>("creating the pipeline", [&](auto *out, char *e, size_t n) {
              return iots_pipeline_new(config_json.c_str(), out, e, n);
          })) {}
    ~Pipeline() { close(); }

    void start() {
        use_idle([](iots_pipeline_t *p) {
            call("starting the pipeline", [&](char *e, size_t n) { return iots_pipeline_start(p, e, n); });
        });
    }

    // close_windows: None follows the pipeline document's stop.close_windows.
    void stop(std::optional<bool> close_windows, int timeout_ms) {
        use_idle([&](iots_pipeline_t *p) {
            call("stopping the pipeline", [&](char *e, size_t n) {
                int how = close_windows ? (*close_windows ? 1 : 0) : IOTS_STOP_AS_CONFIGURED;
                return iots_pipeline_stop(p, how, timeout_ms, e, n);
            });
        });
    }

    // The library's bounded run cannot be cancelled, so it runs on a worker thread while this
    // thread waits in slices. Ctrl-C returns control at once; the run then finishes in the
    // background (the pipeline refuses other calls until it has) and close() waits for it.
    void run_bounded(int timeout_ms) {
        handle_.use([&](iots_pipeline_t *p) {
            claim_bounded_run();
            without_gil([&] {
                std::lock_guard join_lock(join_mutex_);
                if (worker_.joinable()) worker_.join();  // the previous run has ended: it released its claim
                worker_ = std::thread([this, p, timeout_ms] {
                    char errstr[kErrstrSize] = "";
                    iots_err_t err = iots_pipeline_run_bounded(p, timeout_ms, errstr, sizeof errstr);
                    std::lock_guard lock(bounded_.mutex);
                    bounded_.err = err;
                    bounded_.errstr = errstr;
                    bounded_.running = false;
                    bounded_.done_cv.notify_all();
                });
            });
        });
        iots_err_t err = IOTS_OK;
        std::string errstr;
        in_slices(-1, [&](int slice_ms) {
            return without_gil([&] {
                std::unique_lock lock(bounded_.mutex);
                if (!bounded_.done_cv.wait_for(lock, std::chrono::milliseconds(slice_ms),
                                               [&] { return !bounded_.running; }))
                    return false;
                err = bounded_.err;
                errstr = bounded_.errstr;
                return true;
            });
        });
        without_gil([&] { join_worker(); });
        check(err, errstr.c_str(), "bounded run");
    }

    std::string stats_json() {
        return handle_.use([](iots_pipeline_t *p) {
            return without_gil([&] {
                return read_json_out([&](char *buf, size_t size, size_t *needed, char *) {
                    return iots_pipeline_stats_json(p, buf, size, needed);
                });
            });
        });
    }

    std::string metrics() {
        return handle_.use([](iots_pipeline_t *p) {
            return without_gil([&] {
                return read_json_out([&](char *buf, size_t size, size_t *needed, char *) {
                    return iots_metrics_prometheus(p, nullptr, buf, size, needed);
                });
            });
        });
    }

    bool closed() const { return handle_.closed(); }

    // Waits for a bounded run still finishing in the background, then frees the pipeline.
    void close() {
        handle_.close([&](iots_pipeline_t *p) {
            join_worker();
            iots_pipeline_destroy(p);
        });
    }

private:
    // Runs body(pipeline) unless closed or a bounded run is still finishing (StateError).
    template <typename Body>
    void use_idle(Body &&body) {
        handle_.use([&](iots_pipeline_t *p) {
            {
                std::lock_guard lock(bounded_.mutex);
                refuse_while_bounded_run();
            }
            body(p);
        });
    }

    // Marks a bounded run as started, unless one is still running (StateError).
    void claim_bounded_run() {
        std::lock_guard lock(bounded_.mutex);
        refuse_while_bounded_run();
        bounded_.running = true;
    }

    void refuse_while_bounded_run() const {  // with bounded_.mutex held
        if (bounded_.running)
            throw NativeError(IOTS_ERR_STATE, "an interrupted bounded run is still finishing in the background");
    }

    // Waits for the bounded run's thread to end. Call it without the GIL.
    void join_worker() {
        std::lock_guard join_lock(join_mutex_);
        if (worker_.joinable()) worker_.join();
    }

    // The outcome of the latest bounded run, written by its worker thread.
    struct BoundedRun {
        std::mutex mutex;
        std::condition_variable done_cv;
        bool running = false;
        iots_err_t err = IOTS_OK;
        std::string errstr;
    };

    Guarded<iots_pipeline_t> handle_;
    BoundedRun bounded_;
    std::mutex join_mutex_;  // one thread at a time starts or joins worker_
    std::thread worker_;
};

std::string describe_plugins(const std::optional<std::string> &dir) {
    return without_gil([&] {
        return read_json_out([&](char *buf, size_t size, size_t *needed, char *errstr) {
            return iots_plugins_describe_json(dir ? dir->c_str() : nullptr, buf, size, needed, errstr, kErrstrSize);
        });
    });
}

}  // namespace

void bind_pipeline(py::module_ &m) {
    m.def("describe_plugins", &describe_plugins, py::arg("dir") = py::none(),
          "JSON text describing the plugins in `dir` (None: the built-in folder).");

    py::class_<Pipeline>(m, "Pipeline")
        .def(py::init<const std::string &>(), py::arg("config_json"))
        .def("start", &Pipeline::start)
        .def("stop", &Pipeline::stop, py::arg("close_windows"), py::arg("timeout_ms"))
        .def("run_bounded", &Pipeline::run_bounded, py::arg("timeout_ms"))
        .def("stats_json", &Pipeline::stats_json)
        .def("metrics", &Pipeline::metrics)
        .def_property_readonly("closed", &Pipeline::closed)
        .def("close", &Pipeline::close);
}

}  // namespace iotstream_native
