// LoadGenerator: the seed's synthetic sensor load at a target rate, on the library's threads.
#include <string>

#include "native.hpp"

namespace iotstream_native {
namespace {

class LoadGenerator {
public:
    explicit LoadGenerator(const std::string &config_json)
        : handle_("load generator",
                  create<iots_loadgen_t>("creating the load generator", [&](auto *out, char *e, size_t n) {
                      return iots_loadgen_new(config_json.c_str(), out, e, n);
                  })) {}
    ~LoadGenerator() { close(); }

    void start() {
        handle_.use([](iots_loadgen_t *g) {
            call("starting the load generator", [&](char *e, size_t n) { return iots_loadgen_start(g, e, n); });
        });
    }
    // True when the run ended, False when timeout_ms passed first.
    bool wait(int timeout_ms) {
        return in_slices(timeout_ms, [&](int slice_ms) {
            const iots_err_t err = handle_.use(
                [&](iots_loadgen_t *g) { return without_gil([&] { return iots_loadgen_wait(g, slice_ms); }); });
            if (err != IOTS_OK && err != IOTS_ERR_TIMED_OUT) fail(err, nullptr, "waiting for the load generator");
            return err == IOTS_OK;
        });
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
    void close() { handle_.close(iots_loadgen_destroy); }

private:
    Guarded<iots_loadgen_t> handle_;
};

}  // namespace

void bind_load_generator(py::module_ &m) {
    py::class_<LoadGenerator>(m, "LoadGenerator")
        .def(py::init<const std::string &>(), py::arg("config_json"))
        .def("start", &LoadGenerator::start)
        .def("wait", &LoadGenerator::wait, py::arg("timeout_ms"))
        .def("stop", &LoadGenerator::stop)
        .def("stats", &LoadGenerator::stats)
        .def_property_readonly("closed", &LoadGenerator::closed)
        .def("close", &LoadGenerator::close);
}

}  // namespace iotstream_native
