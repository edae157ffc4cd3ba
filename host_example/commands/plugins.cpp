// `iotstream-host plugins`: what a plugin folder holds, and what was refused and why.
#include <cstdio>

#include "app/library.hpp"
#include "commands/commands.hpp"

namespace iotstream_host {

using Json = nlohmann::json;

int command_plugins(const Options &o) {
    Json doc = describe_plugins(o);
    std::printf("Plugins in %s\n", doc.value("dir", "?").c_str());
    for (const Json &p : doc.value("plugins", Json::array())) {
        std::printf("\n  %s %s (%s) - %s\n", p.value("name", "?").c_str(), p.value("version", "").c_str(),
                    p.value("kind", "").c_str(), p.value("description", "").c_str());
        for (const Json &k : p.value("config", Json::array()))
            std::printf("      %-18s %-7s default %-14s %s\n", k.value("name", "").c_str(), k.value("type", "").c_str(),
                        k.contains("default") ? k["default"].dump().c_str() : "(required)",
                        k.value("help", "").c_str());
    }
    for (const Json &r : doc.value("rejected", Json::array()))
        std::printf("\n  rejected: %s\n", r.value("reason", "").c_str());
    return 0;
}

}  // namespace iotstream_host
