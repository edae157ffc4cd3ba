// Ingest: the core's ingestion service (iots_ingest_*) in-process, for notebooks and Python
// gateways: a device's payload in, one result per reading out, rate limits and validation as
// iotstream-host's HTTP and MQTT gateways apply them.
#include <memory>
#include <string>

#include "native.hpp"

namespace iotstream_native {
namespace {

class Ingest {
public:
    explicit Ingest(const std::string &config_json)
        : handle_("ingest", create<iots_ingest_t>("creating the ingestion service", [&](auto *out, char *e, size_t n) {
              return iots_ingest_new(config_json.c_str(), nullptr, out, e, n);
          })) {}
    ~Ingest() { close(0); }

    // One (status name, reason, detail, retry_after_ms) per reading, in payload order.
    py::list submit(const std::string &device_id, const py::bytes &payload) {
        const std::string_view body(payload);  // the bytes object outlives the call
        iots_ingest_reply_t *reply = nullptr;
        handle_.use([&](iots_ingest_t *ingest) {
            call("ingesting a payload of device '" + device_id + "'", [&](char *e, size_t n) {
                return iots_ingest_submit(ingest, device_id.c_str(), body.data(), body.size(), &reply, e, n);
            });
        });
        const std::unique_ptr<iots_ingest_reply_t, void (*)(iots_ingest_reply_t *)> owned(reply,
                                                                                          iots_ingest_reply_destroy);
        py::list results;
        for (size_t i = 0; i < iots_ingest_reply_count(reply); ++i) {
            const iots_ingest_item_t *item = iots_ingest_reply_item(reply, i);
            results.append(py::make_tuple(iots_ingest_status_name(item->status), item->reason, item->detail,
                                          item->retry_after_ms));
        }
        return results;
    }

    py::dict stats() {
        iots_ingest_stats_t s{};
        s.struct_size = sizeof s;
        handle_.use([&](iots_ingest_t *ingest) { check(iots_ingest_get_stats(ingest, &s), nullptr, "ingest stats"); });
        py::dict d;
        d["payloads"] = s.payloads;
        d["accepted"] = s.accepted;
        d["invalid"] = s.invalid;
        d["rate_limited"] = s.rate_limited;
        d["backpressure"] = s.backpressure;
        d["too_large"] = s.too_large;
        d["forbidden"] = s.forbidden;
        d["devices_tracked"] = s.devices_tracked;
        d["buckets_evicted_idle"] = s.buckets_evicted_idle;
        d["buckets_evicted_early"] = s.buckets_evicted_early;
        return d;
    }

    bool closed() const { return handle_.closed(); }

    // Flushes (up to timeout_ms) and frees; False when readings had to be failed.
    bool close(int timeout_ms) {
        iots_err_t err = IOTS_OK;
        handle_.close([&](iots_ingest_t *ingest) { err = iots_ingest_close(ingest, timeout_ms); });
        return err == IOTS_OK;
    }

private:
    Guarded<iots_ingest_t> handle_;
};

}  // namespace

void bind_ingest(py::module_ &m) {
    py::class_<Ingest>(m, "Ingest")
        .def(py::init<const std::string &>(), py::arg("config_json"))
        .def("submit", &Ingest::submit, py::arg("device_id"), py::arg("payload"))
        .def("stats", &Ingest::stats)
        .def_property_readonly("closed", &Ingest::closed)
        .def("close", &Ingest::close, py::arg("timeout_ms"));
}

}  // namespace iotstream_native
