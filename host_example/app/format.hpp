// How the host shows numbers: rates for people, counters out of the stats JSON.
#pragma once

#include <cstdint>
#include <cstdio>
#include <initializer_list>
#include <string>

#include <nlohmann/json.hpp>

namespace iotstream_host {

inline std::string human_rate(double per_s) {
    char buf[32];
    if (per_s >= 1e6) std::snprintf(buf, sizeof buf, "%.2fM/s", per_s / 1e6);
    else if (per_s >= 1e3) std::snprintf(buf, sizeof buf, "%.1fK/s", per_s / 1e3);
    else std::snprintf(buf, sizeof buf, "%.0f/s", per_s);
    return buf;
}

inline uint64_t json_u64(const nlohmann::json &j, std::initializer_list<const char *> path) {
    const nlohmann::json *at = &j;
    for (const char *key : path) {
        if (!at->is_object() || !at->contains(key)) return 0;
        at = &(*at)[key];
    }
    return at->is_number() ? at->get<uint64_t>() : 0;
}

}  // namespace iotstream_host
