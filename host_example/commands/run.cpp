// `iotstream-host run` (the default): the whole IoT job in one process. An embedded broker (or
// --bootstrap), the input (load generator, or devices through the gateway with --via), the
// pipeline as a consumer group, optional /metrics and dashboard servers, live progress, and a
// graceful stop followed by the summary.
#include <cstdio>
#include <functional>
#include <optional>
#include <random>
#include <stdexcept>
#include <thread>

#include <unistd.h>

#include "app/format.hpp"
#include "app/job.hpp"
#include "app/library.hpp"
#include "app/signals.hpp"
#include "commands/commands.hpp"
#include "commands/run.hpp"
#include "metrics/metrics_route.hpp"

namespace iotstream_host {

namespace {

using Json = nlohmann::json;
using Clock = std::chrono::steady_clock;

// --via http without tokens of the user's: a random shared token for our own devices, in a
// file only we can read (the gateway reads tokens from files), removed once read.
std::string make_shared_token(Options &o) {
    std::random_device random;
    char token[33];
    for (int i = 0; i < 32; ++i) token[i] = "0123456789abcdef"[random() % 16];
    token[32] = '\0';
    char path[] = "/tmp/iotstream-token-XXXXXX";
    const int fd = mkstemp(path);
    if (fd < 0 || write(fd, token, 32) != 32) die("cannot write a token file");
    close(fd);
    o.gateway.shared_token_file = path;
    return token;
}

// --via, --gateway-listen or --mqtt: what the gateway needs before it starts.
void plan_gateway(Run &run) {
    const Options &o = run.o;
    run.with_gateway = !o.gateway.listen.empty() || !o.gateway.mqtt.broker.empty() || !o.via.empty();
    if (!run.with_gateway) return;
    Options &g = run.gateway_options;
    if (g.gateway.listen.empty()) g.gateway.listen = "127.0.0.1:0";
    if (o.via == "mqtt" && o.gateway.mqtt.broker.empty()) g.gateway.mqtt.broker = "start";
    if (o.via == "http" && o.gateway.device_tokens.empty() && o.gateway.shared_token_file.empty())
        run.via_token = make_shared_token(g);
    else if (o.via == "http") {
        if (o.gateway.shared_token_file.empty()) die("--via http needs --shared-token-file (the devices use it)");
        run.via_token = first_line(o.gateway.shared_token_file);
    }
}

void start_dashboard(Run &run) {
    const Options &o = run.o;
    if (o.dashboard_listen.empty()) return;
    try {
        run.dashboard = std::make_unique<dashboard::Dashboard>(
            api, run.pipeline, describe_plugins(o),
            // The backlog (produced - consumed) only when this process produces the input.
            o.generate ? std::function<uint64_t()>([&run]() -> uint64_t {
                if (run.gen == nullptr) return 0;
                iots_loadgen_stats_t s{};
                s.struct_size = sizeof s;
                api->loadgen_get_stats(run.gen, &s);
                return s.sent;
            })
                       : nullptr);
        run.dashboard->attach();
        run.dashboard_server = dashboard::serve_dashboard(o.dashboard_listen, *run.dashboard, api, run.pipeline);
    } catch (const std::runtime_error &e) {
        die(e.what());
    }
    std::printf("dashboard at http://%s:%u/\n", http::split_listen(o.dashboard_listen, "--dashboard-listen").first.c_str(),
                static_cast<unsigned>(run.dashboard_server->port()));
}

void start_gateway_and_metrics(Run &run) {
    const Options &o = run.o;
    if (run.with_gateway) {
        try {
            run.gateway = std::make_unique<gateway::Gateway>(
                api, run.gateway_options.gateway, run.bootstrap, run.file.value("ingest", Json::object()),
                [&run](http::Router &router, iots_ingest_t *ingest, const gateway::Gateway &self) {
                    run.gateway_ingest = ingest;
                    metrics::add_metrics_route(router, api, run.pipeline, ingest,
                                               [&self] { return self.metrics_text(); });
                });
        } catch (const std::runtime_error &e) {
            die(e.what());
        }
        if (!run.via_token.empty() && o.gateway.shared_token_file.empty())
            std::remove(run.gateway_options.gateway.shared_token_file.c_str());
        std::printf("gateway listening on %s (POST /v1/readings, GET /metrics)\n", run.gateway->url().c_str());
        if (!run.gateway->mqtt_broker().empty())
            std::printf("gateway subscribing to %s on MQTT broker %s\n", o.gateway.mqtt.topic.c_str(),
                        run.gateway->mqtt_broker().c_str());
    }
    if (!o.metrics_listen.empty()) {
        try {
            metrics::MoreMetrics more;
            if (run.gateway) more = [gateway = run.gateway.get()] { return gateway->metrics_text(); };
            run.metrics_server = metrics::serve_metrics(o.metrics_listen, api, run.pipeline, run.gateway_ingest, more);
        } catch (const std::runtime_error &e) {
            die(e.what());
        }
        std::printf("metrics at http://%s:%u/metrics\n", http::split_listen(o.metrics_listen, "--metrics-listen").first.c_str(),
                    static_cast<unsigned>(run.metrics_server->port()));
    }
}

// The input: devices through the gateway (--via), or the load generator producing to Kafka.
void start_input(Run &run) {
    const Options &o = run.o;
    if (!o.generate) return;
    if (o.duration_s <= 0 && o.count == 0) die("give --duration or --count");
    char errstr[1024];
    if (!o.via.empty()) {
        devices::DeviceLoadOptions d = device_options(o);
        d.mqtt_broker = run.gateway->mqtt_broker();
        d.http_url = run.gateway->url();
        d.token = run.via_token;
        // Devices publish only once the gateway listens: MQTT drops what no one subscribes to.
        if (!run.gateway->wait_mqtt_subscribed(30000)) die("the gateway's MQTT subscription was not granted within 30 s");
        try {
            run.devices = std::make_unique<devices::DeviceLoad>(d);
        } catch (const std::runtime_error &e) {
            die(e.what());
        }
        std::printf("devices sending via %s\n", o.via.c_str());
    } else {
        check(api->loadgen_new(loadgen_config(o, run.file, run.bootstrap).dump().c_str(), &run.gen, errstr,
                               sizeof errstr),
              errstr, "load generator");
        check(api->loadgen_start(run.gen, errstr, sizeof errstr), errstr, "starting the load generator");
    }
}

// One progress row a second until the input is done and consumed, --run-for is up, a signal
// arrives or the pipeline fails.
void show_progress_until_done(Run &run) {
    const Options &o = run.o;
    std::printf("%8s %12s %10s %12s %10s %10s %9s %8s %6s\n", "elapsed", "produced", "prod/s", "consumed", "cons/s",
                "backlog", "windows", "alerts", "dlq");
    uint64_t last_produced = 0, last_consumed = 0;
    auto last = Clock::now();
    bool generating = run.gen != nullptr || run.devices != nullptr;
    std::optional<Clock::time_point> caught_up_deadline;
    while (!g_stop) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1000));
        if (run.gen) api->loadgen_get_stats(run.gen, &run.gen_stats);
        Json s = pipeline_stats(run.pipeline);
        auto now = Clock::now();
        double dt = std::chrono::duration<double>(now - last).count();
        last = now;
        uint64_t consumed = json_u64(s, {"consumed"});
        const uint64_t produced = run.devices ? run.devices->stats().sent.load() : run.gen_stats.sent;
        double elapsed = std::chrono::duration<double>(now - run.started).count();
        std::printf("%7.0fs %12llu %10s %12llu %10s %10lld %9llu %8llu %6llu\n", elapsed,
                    static_cast<unsigned long long>(produced),
                    human_rate(static_cast<double>(produced - last_produced) / dt).c_str(),
                    static_cast<unsigned long long>(consumed),
                    human_rate(static_cast<double>(consumed - last_consumed) / dt).c_str(),
                    run.gen || run.devices ? static_cast<long long>(produced) - static_cast<long long>(consumed) : -1LL,
                    static_cast<unsigned long long>(json_u64(s, {"emitted", "windows"})),
                    static_cast<unsigned long long>(json_u64(s, {"alerts"})),
                    static_cast<unsigned long long>(json_u64(s, {"dead_lettered", "total"})));
        std::fflush(stdout);
        last_produced = produced;
        last_consumed = consumed;
        if (s.value("failed", false)) {
            std::fprintf(stderr, "pipeline failed: %s\n", s.value("error", "").c_str());
            break;
        }
        if (generating && (run.gen ? api->loadgen_wait(run.gen, 0) == IOTS_OK : run.devices->done())) {
            generating = false;
            caught_up_deadline = now + std::chrono::seconds(60);
        }
        // Devices done: stop once the gateway has handled what the broker took (MQTT) and the
        // pipeline has consumed every reading the gateway accepted.
        if (run.devices && !generating) {
            const Json g = run.gateway->stats();
            const uint64_t handled = o.via == "mqtt" ? json_u64(g, {"mqtt", "received"})
                                                     : run.devices->stats().acked.load();
            if ((handled >= run.devices->stats().acked.load() && consumed >= json_u64(g, {"ingest", "accepted"})) ||
                now > *caught_up_deadline)
                break;
        }
        // Generation over: stop once the pipeline has consumed everything (or gave up waiting).
        if (run.gen && !generating && (consumed >= run.gen_stats.delivered || now > *caught_up_deadline)) break;
        if (!run.gen && o.run_for_s > 0 && elapsed >= o.run_for_s) break;
    }
}

// Input first, then the servers, then the pipeline: stop consuming, close open windows or leave
// them to the next owner (as configured), flush outputs, commit, leave the group.
void shut_down(Run &run) {
    char errstr[1024];
    if (run.gen) {
        api->loadgen_stop(run.gen);
        api->loadgen_wait(run.gen, -1);
        api->loadgen_get_stats(run.gen, &run.gen_stats);
    }
    if (run.devices) run.devices->stop();
    if (g_stop) std::printf("signal %d: shutting down gracefully\n", g_signal.load());
    if (run.metrics_server) run.metrics_server->stop();  // before the handles it reads go
    if (run.dashboard_server) run.dashboard_server->stop();
    if (run.gateway) run.gateway->stop();  // no more readings in; the accepted ones are delivered
    check(api->pipeline_stop(run.pipeline, IOTS_STOP_AS_CONFIGURED, 60000, errstr, sizeof errstr), errstr,
          "stopping the pipeline");
}

}  // namespace

int command_run(const Options &o) {
    Run run(o);
    run.file = read_config_file(o);
    run.bootstrap = start_broker(o, run.file, &run.broker);
    char errstr[1024];
    check(api->pipeline_new(pipeline_config(o, run.file, run.bootstrap, run.broker != nullptr).dump().c_str(),
                            &run.pipeline, errstr, sizeof errstr),
          errstr, "creating the pipeline");
    run.started = Clock::now();
    plan_gateway(run);
    start_dashboard(run);

    if (o.bounded) {
        std::printf("replaying %s (bounded)...\n", o.input_topic.c_str());
        check(api->pipeline_run_bounded(run.pipeline, -1, errstr, sizeof errstr), errstr, "bounded run");
    } else {
        check(api->pipeline_start(run.pipeline, errstr, sizeof errstr), errstr, "starting the pipeline");
        start_gateway_and_metrics(run);
        start_input(run);
        show_progress_until_done(run);
        shut_down(run);
    }

    const Json stats = pipeline_stats(run.pipeline);
    const bool reconciled = print_summary(run, stats);
    print_windows(o, run.bootstrap);

    run.dashboard_server.reset();
    run.dashboard.reset();  // its sampler reads the load generator and the pipeline
    if (run.gen) api->loadgen_destroy(run.gen);
    api->pipeline_destroy(run.pipeline);
    if (run.broker) api->broker_destroy(run.broker);
    return reconciled && !stats.value("failed", false) ? 0 : 1;
}

}  // namespace iotstream_host
