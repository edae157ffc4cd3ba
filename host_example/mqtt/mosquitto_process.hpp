// A mosquitto broker of iotstream-host's own (`--mqtt start`, and `--via mqtt` without --mqtt):
// Debian's mosquitto as a child process, listening on a free loopback port with anonymous
// access, its config in a temporary folder, stopped (SIGTERM, then waited for) with this object.
#pragma once

#include <sys/types.h>

#include <string>

namespace iotstream_host::mqtt {

class MosquittoProcess {
public:
    // Starts mosquitto (from PATH, else /usr/sbin/mosquitto) and waits until it accepts
    // connections. Throws std::runtime_error with its log when it does not come up.
    MosquittoProcess();
    ~MosquittoProcess();
    MosquittoProcess(const MosquittoProcess &) = delete;
    MosquittoProcess &operator=(const MosquittoProcess &) = delete;

    std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
    void stop();

private:
    std::string dir_;
    int port_ = 0;
    pid_t pid_ = -1;
};

}  // namespace iotstream_host::mqtt
