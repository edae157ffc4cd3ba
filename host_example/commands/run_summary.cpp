// The end of a run: the summary table (and --summary-json), the reconciliation that makes the
// exit code, and a sample of window results read back from iot-windows.
#include <cmath>
#include <ctime>
#include <cstdio>
#include <fstream>
#include <vector>

#include <unistd.h>

#include "app/format.hpp"
#include "app/library.hpp"
#include "commands/run.hpp"

namespace iotstream_host {

using Json = nlohmann::json;
using Clock = std::chrono::steady_clock;

bool print_summary(Run &run, const Json &s) {
    const Options &o = run.o;
    const iots_loadgen_stats_t &gen_stats = run.gen_stats;
    iots_loadgen_t *const gen = run.gen;
    const auto &devices = run.devices;
    const auto &gateway = run.gateway;
    double elapsed = std::chrono::duration<double>(Clock::now() - run.started).count();
    uint64_t consumed = json_u64(s, {"consumed"});
    uint64_t decoded = json_u64(s, {"decoded"});
    uint64_t rejected = json_u64(s, {"dead_lettered", "decoder"});
    // Every output sent was delivered, or it failed and was replaced (sent again, or its dead
    // letter sent) and counted as refused or retried.
    bool reconciled = consumed == decoded + rejected && json_u64(s, {"outputs", "failed"}) == 0 &&
                      json_u64(s, {"outputs", "sent"}) == json_u64(s, {"outputs", "delivered"}) +
                                                              json_u64(s, {"outputs", "refused"}) +
                                                              json_u64(s, {"outputs", "retried"});
    if (gen) reconciled = reconciled && gen_stats.sent == gen_stats.delivered + gen_stats.failed;

    std::printf("\nSummary\n");
    auto row = [](const char *name, const std::string &value) { std::printf("  %-34s %s\n", name, value.c_str()); };
    auto u = [](uint64_t v) { return std::to_string(v); };
    if (gen) {
        row("readings produced", u(gen_stats.sent));
        row("  delivered / failed", u(gen_stats.delivered) + " / " + u(gen_stats.failed));
        row("  anomalous (generated)", u(gen_stats.anomalous));
        row("  achieved rate", human_rate(gen_stats.achieved_rate));
    }
    if (devices) {
        const auto &d = devices->stats();
        row(("readings sent by devices via " + o.via).c_str(), u(d.sent.load()));
        row(o.via == "mqtt" ? "  acknowledged by the broker" : "  accepted by the gateway", u(d.acked.load()));
        row("  failed", u(d.failed.load()));
        row("  anomalous (generated)", u(d.anomalous.load()));
        row("  achieved rate", human_rate(static_cast<double>(d.sent.load()) / std::max(devices->elapsed_s(), 1e-9)));
    }
    row("readings consumed", u(consumed));
    row("  decoded", u(decoded));
    row("  dead-lettered by the decoder", u(rejected));
    row("  dead-lettered by stages (late)", u(json_u64(s, {"dead_lettered", "stages"})));
    row("  dead letters cut to fit", u(json_u64(s, {"dead_lettered", "truncated"})));
    row("outputs refused (dead-lettered)", u(json_u64(s, {"outputs", "refused"})));
    row("alerts", u(json_u64(s, {"alerts"})));
    row("windows emitted", u(json_u64(s, {"emitted", "windows"})));
    row("aggregates emitted", u(json_u64(s, {"emitted", "aggregates"})));
    row("output records sent / delivered", u(json_u64(s, {"outputs", "sent"})) + " / " +
                                               u(json_u64(s, {"outputs", "delivered"})));
    row("commits", u(json_u64(s, {"commits"})));
    row("pipeline throughput", human_rate(static_cast<double>(consumed) / std::max(elapsed, 1e-9)));
    if (gateway) {
        const Json g = gateway->stats();
        row("gateway readings accepted", u(g["ingest"].value("accepted", 0ULL)));
        row("  requests / unauthenticated", u(g["http"]["requests"]) + " / " + u(g["http"]["unauthenticated"]));
        if (g.contains("mqtt"))
            row("  mqtt readings received / accepted", u(g["mqtt"]["received"]) + " / " + u(g["mqtt"]["accepted"]));
        row("  invalid / rate limited", u(g["ingest"].value("invalid", 0ULL)) + " / " +
                                            u(g["ingest"].value("rate_limited", 0ULL)));
    }
    row("counts reconcile", reconciled ? "yes (consumed = decoded + dead-lettered; all outputs delivered)" : "NO");

    if (!o.summary_json.empty()) {
        Json out = {{"pipeline", s}, {"elapsed_s", elapsed}, {"reconciled", reconciled}};
        if (gen)
            out["loadgen"] = {{"sent", gen_stats.sent}, {"delivered", gen_stats.delivered},
                              {"failed", gen_stats.failed}, {"anomalous", gen_stats.anomalous},
                              {"achieved_rate", gen_stats.achieved_rate}};
        if (gateway) out["gateway"] = gateway->stats();
        if (devices)
            out["devices"] = {{"via", o.via}, {"sent", devices->stats().sent.load()},
                              {"acked", devices->stats().acked.load()}, {"failed", devices->stats().failed.load()}};
        std::ofstream(o.summary_json) << out.dump(2) << "\n";
    }
    return reconciled;
}

void print_windows(const Options &o, const std::string &bootstrap) {
    if (o.show_windows <= 0) return;
    char errstr[512];
    iots_consumer_t *consumer = nullptr;
    Json config = {{"group_id", "iotstream-host-window-viewer-" + std::to_string(getpid())},
                   {"auto_offset_reset", "earliest"},
                   {"topics", {core_topic("windows")}},
                   {"kafka", {{"bootstrap.servers", bootstrap}, {"enable.partition.eof", "true"}}}};
    if (api->consumer_new(config.dump().c_str(), nullptr, nullptr, &consumer, errstr, sizeof errstr) != IOTS_OK) {
        std::fprintf(stderr, "cannot read windows: %s\n", errstr);
        return;
    }
    std::vector<Json> windows;
    auto deadline = Clock::now() + std::chrono::seconds(5);
    while (windows.size() < static_cast<size_t>(o.show_windows) && Clock::now() < deadline) {
        iots_batch_t *batch = nullptr;
        if (api->consumer_poll_batch(consumer, 1000, 500, &batch, errstr, sizeof errstr) != IOTS_OK) break;
        for (size_t i = 0; i < api->batch_count(batch) && windows.size() < static_cast<size_t>(o.show_windows); ++i) {
            const iots_record_t *r = api->batch_record(batch, i);
            Json envelope = Json::parse(static_cast<const char *>(r->value),
                                        static_cast<const char *>(r->value) + r->value_len, nullptr, false);
            if (envelope.is_object() && envelope.contains("data")) windows.push_back(envelope["data"]);
        }
        api->batch_destroy(batch);
    }
    api->consumer_close(consumer);
    if (windows.empty()) {
        std::printf("\nNo window has closed yet (windows close at end + grace; try --window-size 10).\n");
        return;
    }
    std::printf("\nSome window results (topic %s):\n", core_topic("windows").c_str());
    std::printf("  %-14s %-20s %5s  %7s %7s %7s %6s  %7s %8s  %s\n", "sensor", "window (UTC)", "n", "t.min", "t.avg",
                "t.max", "t.std", "h.avg", "p.avg", "anomalies");
    for (const Json &w : windows) {
        auto num = [&](const char *group, const char *key) {
            const Json &v = w.value(group, Json::object()).value(key, Json());
            return v.is_number() ? v.get<double>() : NAN;
        };
        std::time_t start = w.value("window_start", 0);
        char when[32];
        std::strftime(when, sizeof when, "%m-%d %H:%M:%S", std::gmtime(&start));
        std::string anomalies;
        for (const Json &a : w.value("anomalies", Json::array())) anomalies += (anomalies.empty() ? "" : ",") + a.get<std::string>();
        std::printf("  %-14s %-14s+%4ds %5d  %7.2f %7.2f %7.2f %6.2f  %7.2f %8.2f  %s\n",
                    w.value("sensor_id", "?").c_str(), when,
                    w.value("window_end", 0) - w.value("window_start", 0), w.value("sample_count", 0),
                    num("temperature", "min"), num("temperature", "avg"), num("temperature", "max"),
                    num("temperature", "std"), num("humidity", "avg"), num("pressure", "avg"),
                    anomalies.empty() ? "-" : anomalies.c_str());
    }
}

}  // namespace iotstream_host
