// iotstream-host's commands, one file each; main() picks one by the first argument.
#pragma once

#include <string>

#include "app/options.hpp"
#include "devices/device_load.hpp"

namespace iotstream_host {

int command_run(const Options &o);       // the IoT job (default): broker, input, pipeline, summary
int command_produce(const Options &o);   // the load generator only
int command_plugins(const Options &o);   // describe a plugin folder
int command_gateway(const Options &o);   // the device gateway only
int command_devices(const Options &o);   // simulated devices through a gateway

// The device load the flags describe (devices, and run --via).
devices::DeviceLoadOptions device_options(const Options &o);

// The first line of a file (a token); dies when it cannot be read.
std::string first_line(const std::string &path);

}  // namespace iotstream_host
