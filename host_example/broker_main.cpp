// iotstream-broker: a standalone embedded Kafka broker (librdkafka's mock cluster) that several
// processes, kcat and Python clients can share. Prints the bootstrap string as its first line.
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "iotstream/iotstream.h"

namespace {

void usage(FILE *out) {
    std::fprintf(out,
                 "Usage: iotstream-broker [--brokers N] [--topic NAME:PARTITIONS]... [--bootstrap-file PATH]\n"
                 "\n"
                 "Starts an embedded Kafka-protocol broker on loopback (librdkafka's mock cluster),\n"
                 "prints its bootstrap servers as the first line of output and runs until SIGINT or\n"
                 "SIGTERM. Other processes connect with bootstrap.servers set to that line.\n"
                 "\n"
                 "  --brokers N              number of brokers in the cluster (default 1)\n"
                 "  --topic NAME:PARTITIONS  create a topic up front (repeatable); without any, the\n"
                 "                           iotstream topics are created with 8 partitions each\n"
                 "  --bootstrap-file PATH    also write the bootstrap string to PATH (atomically)\n"
                 "  --quiet                  log warnings only\n"
                 "  --help                   this text\n"
                 "\n"
                 "The mock cluster keeps about 5 MB of batches per partition; older data is dropped.\n");
}

[[noreturn]] void die(const std::string &message) {
    std::fprintf(stderr, "iotstream-broker: %s\n", message.c_str());
    std::exit(2);
}

}  // namespace

int main(int argc, char **argv) {
    int brokers = 1;
    nlohmann::json topics = nlohmann::json::array();
    std::string bootstrap_file;
    bool quiet = false;
    for (int i = 1; i < argc; ++i) {
        std::string arg = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) die(arg + " needs a value (see --help)");
            return argv[++i];
        };
        // Integers by the core's one rule (iots_parse_int): 1.5, 1e3 or 99999999999999999999
        // are refused by name, never truncated or clamped.
        auto integer = [&](const std::string &text, int64_t min, int64_t max) {
            int64_t result = 0;
            char why[256];
            if (iots_parse_int(text.c_str(), min, max, &result, why, sizeof why) != IOTS_OK) die(arg + " " + why);
            return result;
        };
        if (arg == "--help" || arg == "-h") {
            usage(stdout);
            return 0;
        } else if (arg == "--brokers") {
            brokers = static_cast<int>(integer(value(), 1, 16));
        } else if (arg == "--topic") {
            std::string v = value();
            size_t colon = v.rfind(':');
            if (colon == std::string::npos || colon == 0)
                die("--topic must be NAME:PARTITIONS with PARTITIONS >= 1, got '" + v + "'");
            int64_t parts = integer(v.substr(colon + 1), 1, 10000);  // the broker config's range
            topics.push_back({{"name", v.substr(0, colon)}, {"partitions", parts}});
        } else if (arg == "--bootstrap-file") {
            bootstrap_file = value();
        } else if (arg == "--quiet") {
            quiet = true;
        } else {
            die("unknown argument '" + arg + "' (see --help)");
        }
    }
    if (quiet) iots_log_set_level(IOTS_LOG_WARN);

    // nlohmann's serializer escapes the topic names (the host sees no core escaper).
    nlohmann::json config = {{"brokers", brokers}};
    if (!topics.empty()) config["topics"] = topics;

    // Block the stop signals before any thread starts (threads inherit the mask), then wait for
    // them synchronously: no handler, no race between a check and a sleep.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

    char errstr[512];
    iots_broker_t *broker = nullptr;
    if (iots_broker_new(config.dump().c_str(), &broker, errstr, sizeof errstr) != IOTS_OK)
        die(std::string("cannot start the broker: ") + errstr);

    const char *bootstrap = iots_broker_bootstrap(broker);
    std::printf("%s\n", bootstrap);
    std::fflush(stdout);
    if (!bootstrap_file.empty()) {
        // Write then rename, so a reader polling for the file never sees half a line.
        std::string tmp = bootstrap_file + ".tmp." + std::to_string(getpid());
        std::ofstream(tmp) << bootstrap << "\n";
        if (std::rename(tmp.c_str(), bootstrap_file.c_str()) != 0)
            die("cannot write " + bootstrap_file + ": " + std::strerror(errno));
    }

    int received = 0;
    sigwait(&stop_signals, &received);

    iots_broker_destroy(broker);
    return 0;
}
