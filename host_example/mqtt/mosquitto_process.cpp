#include "mqtt/mosquitto_process.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <pwd.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace iotstream_host::mqtt {

namespace {

sockaddr_in loopback(int port) {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return address;
}

// A port the kernel just handed out on 127.0.0.1 (free now; mosquitto binds it right after).
int free_port() {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address = loopback(0);
    socklen_t length = sizeof address;
    if (fd < 0 || bind(fd, reinterpret_cast<sockaddr *>(&address), sizeof address) != 0 ||
        getsockname(fd, reinterpret_cast<sockaddr *>(&address), &length) != 0) {
        if (fd >= 0) close(fd);
        throw std::runtime_error("mqtt: no free loopback port for mosquitto");
    }
    close(fd);
    return ntohs(address.sin_port);
}

bool accepts(int port) {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address = loopback(port);
    const bool ok = fd >= 0 && connect(fd, reinterpret_cast<sockaddr *>(&address), sizeof address) == 0;
    if (fd >= 0) close(fd);
    return ok;
}

std::string find_mosquitto() {
    if (const char *path = std::getenv("PATH")) {
        std::stringstream dirs(path);
        for (std::string dir; std::getline(dirs, dir, ':');)
            if (!dir.empty() && access((dir + "/mosquitto").c_str(), X_OK) == 0) return dir + "/mosquitto";
    }
    if (access("/usr/sbin/mosquitto", X_OK) == 0) return "/usr/sbin/mosquitto";
    throw std::runtime_error("mqtt: mosquitto is not installed (apt-get install mosquitto), or give --mqtt HOST:PORT");
}

}  // namespace

MosquittoProcess::MosquittoProcess() {
    const std::string program = find_mosquitto();
    char pattern[] = "/tmp/iotstream-mosquitto-XXXXXX";
    if (!mkdtemp(pattern)) throw std::runtime_error("mqtt: cannot make a folder for mosquitto's config");
    dir_ = pattern;
    const passwd *account = getpwuid(geteuid());
    const std::string user = account && account->pw_name ? account->pw_name : "mosquitto";
    std::string log;
    for (int attempt = 0; attempt < 3 && pid_ < 0; ++attempt) {
        port_ = free_port();
        const std::string config = dir_ + "/mosquitto.conf";
        // Generous queues: the gateway's shared subscription must not lose QoS 1 messages to the
        // broker's defaults (1000 queued per client) under a load test.
        std::ofstream(config) << "listener " << port_ << " 127.0.0.1\n"
                              << "allow_anonymous true\n"
                              << "persistence false\n"
                              << "max_queued_messages 1000000\n"
                              << "max_inflight_messages 100\n"
                              << "log_dest stderr\n"  // into our log file
                              // Our own user: as root mosquitto would switch to user mosquitto,
                              // which clears the parent-death signal that stops it with us.
                              << "user " << user << "\n";
        const char *argv[] = {program.c_str(), "-c", config.c_str(), nullptr};
        const std::string log_path = dir_ + "/mosquitto.log";
        const pid_t pid = fork();
        if (pid < 0) throw std::runtime_error("mqtt: cannot start " + program);
        if (pid == 0) {  // only async-signal-safe calls until exec
            prctl(PR_SET_PDEATHSIG, SIGTERM);  // not left behind if we die (we fork on the main thread)
            sigset_t none;
            sigemptyset(&none);
            sigprocmask(SIG_SETMASK, &none, nullptr);  // iotstream-host blocks SIGTERM for its signal thread
            const int log_fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
            if (log_fd >= 0) {
                dup2(log_fd, STDOUT_FILENO);
                dup2(log_fd, STDERR_FILENO);
            }
            execv(program.c_str(), const_cast<char **>(argv));
            _exit(127);
        }
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        bool up = false;
        int status = 0;
        while (std::chrono::steady_clock::now() < deadline) {
            if (accepts(port_)) { up = true; break; }
            if (waitpid(pid, &status, WNOHANG) == pid) break;  // exited: the port was taken, or a bad config
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        if (up) {
            pid_ = pid;
            break;
        }
        kill(pid, SIGTERM);
        waitpid(pid, &status, 0);
        std::ifstream in(dir_ + "/mosquitto.log");
        log = std::string(std::istreambuf_iterator<char>(in), {});
    }
    if (pid_ < 0) {
        std::error_code ec;
        std::filesystem::remove_all(dir_, ec);
        throw std::runtime_error("mqtt: mosquitto did not start:\n" + log);
    }
}

MosquittoProcess::~MosquittoProcess() { stop(); }

void MosquittoProcess::stop() {
    if (pid_ > 0) {
        kill(pid_, SIGTERM);
        int status = 0;
        waitpid(pid_, &status, 0);
        pid_ = -1;
    }
    if (!dir_.empty()) {
        std::error_code ec;
        std::filesystem::remove_all(dir_, ec);
        dir_.clear();
    }
}

}  // namespace iotstream_host::mqtt
