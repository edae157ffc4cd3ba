// PYBIND11_MODULE(_native): library-wide functions here; each handle type binds itself in its
// own file (native.hpp lists them).
#include <string>

#include "native.hpp"

namespace py = pybind11;
using namespace iotstream_native;

PYBIND11_MODULE(_native, m) {
    m.doc() = "Native core of the iotstream package: thin handles over libiotstream's C API. "
              "Use the `iotstream` package, not this module.";

    m.def("version", &iots_version, "Library version as hex MM.mm.rr.xx.");
    m.def("version_str", [] { return std::string(iots_version_str()); }, "Library version, e.g. '0.1.0'.");
    m.attr("ABI_MAJOR") = IOTS_ABI_MAJOR;
    m.attr("ABI_MINOR") = IOTS_ABI_MINOR;
    m.def("defaults_json", [] { return std::string(iots_defaults_json()); },
          "Topic names, default stages and every pipeline key (path, type, default, help, range) as JSON.");
    m.def("log_set_level", [](int level) {
        check(iots_log_set_level(static_cast<iots_log_level_t>(level)), nullptr, "log level " + std::to_string(level));
    });
    m.def("log_get_level", [] { return static_cast<int>(iots_log_get_level()); });

    bind_errors(m);
    bind_broker(m);
    bind_producer(m);
    bind_consumer(m);
    bind_pipeline(m);
    bind_load_generator(m);
    bind_ingest(m);
    bind_topic_reader(m);
}
