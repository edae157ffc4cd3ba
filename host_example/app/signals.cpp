#include "app/signals.hpp"

#include <pthread.h>
#include <signal.h>

#include <thread>

namespace iotstream_host {

std::atomic<bool> g_stop{false};
std::atomic<int> g_signal{0};

void start_signal_thread() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);  // before any library thread exists: inherited
    std::thread([set] {
        int sig = 0;
        sigwait(&set, &sig);
        g_signal = sig;
        g_stop = true;
    }).detach();
}

}  // namespace iotstream_host
