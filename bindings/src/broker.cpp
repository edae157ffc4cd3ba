// Broker: the embedded Kafka broker (librdkafka's mock cluster) with its fault injection.
#include <string>

#include "native.hpp"

namespace iotstream_native {
namespace {

class Broker {
public:
    explicit Broker(const std::string &config_json)
        : handle_("broker", create<iots_broker_t>("starting the embedded broker", [&](auto *out, char *e, size_t n) {
              return iots_broker_new(config_json.c_str(), out, e, n);
          })),
          bootstrap_(handle_.use([](iots_broker_t *b) { return std::string(iots_broker_bootstrap(b)); })) {}
    ~Broker() { close(); }

    const std::string &bootstrap() const { return bootstrap_; }

    void create_topic(const std::string &topic, int partitions) {
        handle_.use([&](iots_broker_t *b) {
            call("creating topic '" + topic + "'", [&](char *e, size_t n) {
                return iots_broker_create_topic(b, topic.c_str(), partitions, e, n);
            });
        });
    }
    void set_down(int broker_id, bool down) {
        handle_.use([&](iots_broker_t *b) { check(iots_broker_set_down(b, broker_id, down ? 1 : 0), nullptr, "set_down"); });
    }
    void set_rtt(int broker_id, int rtt_ms) {
        handle_.use([&](iots_broker_t *b) { check(iots_broker_set_rtt(b, broker_id, rtt_ms), nullptr, "set_rtt"); });
    }
    void set_partition_leader(const std::string &topic, int partition, int broker_id) {
        handle_.use([&](iots_broker_t *b) {
            check(iots_broker_set_partition_leader(b, topic.c_str(), partition, broker_id), nullptr,
                  "set_partition_leader");
        });
    }
    void set_coordinator(const std::string &kind, const std::string &key, int broker_id) {
        handle_.use([&](iots_broker_t *b) {
            check(iots_broker_set_coordinator(b, kind.c_str(), key.c_str(), broker_id), nullptr, "set_coordinator");
        });
    }
    void push_request_errors(int api_key, int count, int kafka_error) {
        handle_.use([&](iots_broker_t *b) {
            check(iots_broker_push_request_errors(b, api_key, count, kafka_error), nullptr, "push_request_errors");
        });
    }
    bool closed() const { return handle_.closed(); }
    void close() { handle_.close(iots_broker_destroy); }

private:
    Guarded<iots_broker_t> handle_;
    std::string bootstrap_;
};

}  // namespace

void bind_broker(py::module_ &m) {
    py::class_<Broker>(m, "Broker")
        .def(py::init<const std::string &>(), py::arg("config_json"))
        .def_property_readonly("bootstrap", &Broker::bootstrap)
        .def_property_readonly("closed", &Broker::closed)
        .def("create_topic", &Broker::create_topic, py::arg("topic"), py::arg("partitions"))
        .def("set_down", &Broker::set_down, py::arg("broker_id"), py::arg("down"))
        .def("set_rtt", &Broker::set_rtt, py::arg("broker_id"), py::arg("rtt_ms"))
        .def("push_request_errors", &Broker::push_request_errors, py::arg("api_key"), py::arg("count"),
             py::arg("kafka_error"))
        .def("set_partition_leader", &Broker::set_partition_leader, py::arg("topic"), py::arg("partition"),
             py::arg("broker_id"))
        .def("set_coordinator", &Broker::set_coordinator, py::arg("kind"), py::arg("key"), py::arg("broker_id"))
        .def("close", &Broker::close);
}

}  // namespace iotstream_native
