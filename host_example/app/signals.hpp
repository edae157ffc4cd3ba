// SIGINT and SIGTERM end a command gracefully: a dedicated thread waits for them and sets
// g_stop, which every command's loop polls (no work in a signal handler).
#pragma once

#include <atomic>

namespace iotstream_host {

extern std::atomic<bool> g_stop;
extern std::atomic<int> g_signal;  // the signal that set g_stop

// Call before the library starts any thread, so every thread inherits the blocked mask.
void start_signal_thread();

}  // namespace iotstream_host
