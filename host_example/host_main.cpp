// iotstream-host: a gateway that adopts iotstream the way an existing C++ program would. It
// dlopen()s libiotstream at run time (no link-time dependency), takes the C API table with one
// dlsym, and runs the whole IoT job: embedded broker, load generator, pipeline, live progress,
// summary. See --help.
//
// Where things are: app/ holds what every command shares (flags, the loaded library, signals,
// the documents built for the core); commands/ holds one file per command; gateway/, mqtt/,
// devices/, http/, metrics/ and dashboard/ are the servers and clients the commands start.
#include <cstdio>

#include "app/library.hpp"
#include "app/options.hpp"
#include "app/signals.hpp"
#include "commands/commands.hpp"

int main(int argc, char **argv) {
    using namespace iotstream_host;
    start_signal_thread();
    // Before the flags: their integers are parsed by the core's rule (iots_parse_int).
    api = load_library(library_flag(argc, argv));
    Options options = parse_options(argc, argv);
    api->log_set_level(parse_level(options.log_level));
    // Defaults the core owns (iots_defaults_json): topic names and partitions.
    if (options.input_topic.empty()) options.input_topic = core_topic("readings");
    if (options.partitions == 0) options.partitions = core_defaults()["partitions"].get<int>();
    if (options.help) {
        std::fputs(usage([&](const std::string &name) { return documented_default(options, name); }).c_str(), stdout);
        return 0;
    }
    std::setvbuf(stdout, nullptr, _IOLBF, 0);
    if (options.command == "plugins") return command_plugins(options);
    if (options.command == "produce") return command_produce(options);
    if (options.command == "gateway") return command_gateway(options);
    if (options.command == "devices") return command_devices(options);
    return command_run(options);
}
