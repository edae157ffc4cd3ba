// `iotstream-host produce`: the load generator on its own, into a running cluster.
#include <cstdio>

#include "app/format.hpp"
#include "app/job.hpp"
#include "app/library.hpp"
#include "app/signals.hpp"
#include "commands/commands.hpp"

namespace iotstream_host {

using Json = nlohmann::json;

int command_produce(const Options &o) {
    if (o.bootstrap.empty()) die("produce needs --bootstrap HOST:PORT (e.g. from iotstream-broker)");
    if (o.duration_s <= 0 && o.count == 0) die("produce needs --duration or --count");
    Json file = read_config_file(o);
    char errstr[512];
    iots_loadgen_t *gen = nullptr;
    check(api->loadgen_new(loadgen_config(o, file, o.bootstrap).dump().c_str(), &gen, errstr, sizeof errstr), errstr,
          "load generator");
    check(api->loadgen_start(gen, errstr, sizeof errstr), errstr, "starting the load generator");
    iots_loadgen_stats_t s{};
    s.struct_size = sizeof s;
    while (api->loadgen_wait(gen, 1000) == IOTS_ERR_TIMED_OUT && !g_stop) {
        api->loadgen_get_stats(gen, &s);
        std::fprintf(stderr, "\r  produced %10llu  (%s)   ", static_cast<unsigned long long>(s.sent),
                     human_rate(s.achieved_rate).c_str());
    }
    api->loadgen_stop(gen);
    api->loadgen_wait(gen, -1);
    api->loadgen_get_stats(gen, &s);
    api->loadgen_destroy(gen);  // flushes: every accepted reading is delivered or failed
    std::printf("\nproduced %llu readings in %.1f s (%s); anomalous %llu\n", static_cast<unsigned long long>(s.sent),
                s.elapsed_s, human_rate(s.achieved_rate).c_str(), static_cast<unsigned long long>(s.anomalous));
    return 0;
}

}  // namespace iotstream_host
