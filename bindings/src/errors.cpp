// Core errors on their way to Python: a NativeError carries the core's code and message; the
// translator registered here raises it as the iotstream.errors class of that code. The Python
// classes are derived from error_table(), the core's own list of codes.
#include <string>

#include "native.hpp"

namespace iotstream_native {

void fail(iots_err_t err, const char *errstr, const std::string &context) {
    std::string message = (errstr && *errstr) ? errstr : iots_err_str(err);
    throw NativeError(err, context.empty() ? message : context + ": " + message);
}

void check_signals() {
    if (PyErr_CheckSignals() != 0) throw py::error_already_set();
}

void bind_errors(py::module_ &m) {
    // The class for a code is imported lazily: the Python package owns the hierarchy and its
    // docstrings, and importing it while this module initialises would be a cycle.
    py::register_exception_translator([](std::exception_ptr p) {
        try {
            if (p) std::rethrow_exception(p);
        } catch (const NativeError &e) {
            py::object errors = py::module_::import("iotstream.errors");
            py::object exc = errors.attr("error_from_code")(static_cast<int>(e.code), e.what());
            PyErr_SetObject(reinterpret_cast<PyObject *>(Py_TYPE(exc.ptr())), exc.ptr());
        }
    });

    m.def("err_name", [](int code) { return std::string(iots_err_name(static_cast<iots_err_t>(code))); });
    m.def("err_str", [](int code) { return std::string(iots_err_str(static_cast<iots_err_t>(code))); });
    m.def(
        "error_table",
        [] {
            py::list table;
            for (int code = IOTS_OK - 1; code > IOTS_ERR__END; --code) {
                const auto err = static_cast<iots_err_t>(code);
                table.append(py::make_tuple(code, std::string(iots_err_name(err)), std::string(iots_err_str(err))));
            }
            return table;
        },
        "Every core error code (IOTS_OK excluded) as (code, name, description), e.g. "
        "(-2, 'IOTS_ERR_CONFIG', ...): the source of iotstream.errors.");
}

}  // namespace iotstream_native
