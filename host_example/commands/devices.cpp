// `iotstream-host gateway` and `iotstream-host devices`: the two ends of the device path, each
// on its own (`run --via` puts them in one process).
#include <fstream>
#include <stdexcept>

#include "app/job.hpp"
#include "app/library.hpp"
#include "app/signals.hpp"
#include "commands/commands.hpp"
#include "gateway/gateway.hpp"

namespace iotstream_host {

using Json = nlohmann::json;

int command_gateway(const Options &o) {
    Json file = read_config_file(o);
    iots_broker_t *broker = nullptr;
    const std::string bootstrap = start_broker(o, file, &broker);
    int code = 0;
    try {
        code = iotstream_host::gateway::serve_gateway(api, o.gateway, bootstrap, file.value("ingest", Json::object()),
                                                      g_stop, o.run_for_s, o.summary_json);
    } catch (const std::runtime_error &e) {
        std::fprintf(stderr, "iotstream-host: %s\n", e.what());
        code = 2;
    }
    if (broker) api->broker_destroy(broker);
    return code;
}

iotstream_host::devices::DeviceLoadOptions device_options(const Options &o) {
    iotstream_host::devices::DeviceLoadOptions d;
    d.via = o.via.empty() ? "mqtt" : o.via;
    d.mqtt_broker = o.gateway.mqtt.broker;
    d.qos = o.gateway.mqtt.qos;
    d.http_url = o.url;
    d.rate = o.rate;
    d.duration_s = o.duration_s;
    d.count = o.count;
    d.sensors = o.sensors;
    d.connections = o.threads;
    d.batch = o.batch;
    d.anomaly_share = o.anomaly_share;
    d.seed = o.seed;
    return d;
}

std::string first_line(const std::string &path) {
    std::ifstream in(path);
    std::string line;
    if (!in || !std::getline(in, line)) die("cannot read " + path);
    return line;
}

// `iotstream-host devices`: the load client; needs a running gateway (and broker).
int command_devices(const Options &o) {
    iotstream_host::devices::DeviceLoadOptions d = device_options(o);
    if (d.via == "mqtt" && (d.mqtt_broker.empty() || d.mqtt_broker == "start"))
        die("devices --via mqtt needs --mqtt HOST:PORT (the broker the gateway subscribes to)");
    if (d.via == "http") {
        if (o.url.empty() || o.token_file.empty()) die("devices --via http needs --url http://HOST:PORT and --token-file");
        d.token = first_line(o.token_file);
    }
    if (d.duration_s <= 0 && d.count == 0) die("devices needs --duration or --count");
    try {
        return iotstream_host::devices::run_devices_command(d, g_stop, o.summary_json);
    } catch (const std::runtime_error &e) {
        die(e.what());
    }
}

}  // namespace iotstream_host
