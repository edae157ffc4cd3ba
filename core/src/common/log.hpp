// Logging: one spdlog logger per component, all sharing a sink that forwards to the host's
// C callback when one is installed, and to stderr otherwise.
#pragma once

#include <memory>
#include <string>

#include <spdlog/spdlog.h>

namespace iotstream {

// The logger for a component ("producer", "pipeline", "plugin.window"...). Cheap to call;
// cache the result in hot code.
std::shared_ptr<spdlog::logger> logger(const std::string &component);

}  // namespace iotstream
