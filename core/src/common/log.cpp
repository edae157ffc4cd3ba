#include "common/log.hpp"

#include <atomic>
#include <mutex>
#include <unordered_map>

#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>

#include "iotstream/iotstream.h"

namespace iotstream {
namespace {

// Forwards to the host's callback (under the sink's mutex, so swapping it is race-free),
// or to stderr when none is set.
class HostSink final : public spdlog::sinks::base_sink<std::mutex> {
public:
    void set_callback(iots_log_cb_t cb, void *opaque) {
        std::lock_guard<std::mutex> lock(mutex_);
        cb_ = cb;
        opaque_ = opaque;
    }

protected:
    void sink_it_(const spdlog::details::log_msg &msg) override {
        if (cb_ != nullptr) {
            std::string component(msg.logger_name.begin(), msg.logger_name.end());
            std::string text(msg.payload.begin(), msg.payload.end());
            cb_(opaque_, static_cast<iots_log_level_t>(msg.level), component.c_str(), text.c_str());
            return;
        }
        spdlog::memory_buf_t formatted;
        formatter_->format(msg, formatted);
        std::fwrite(formatted.data(), 1, formatted.size(), stderr);
    }
    void flush_() override { std::fflush(stderr); }

private:
    iots_log_cb_t cb_ = nullptr;
    void *opaque_ = nullptr;
};

struct Registry {
    std::mutex mutex;
    std::shared_ptr<HostSink> sink = std::make_shared<HostSink>();
    std::unordered_map<std::string, std::shared_ptr<spdlog::logger>> loggers;
    std::atomic<int> level{IOTS_LOG_INFO};

    Registry() { sink->set_pattern("%Y-%m-%dT%H:%M:%S.%e [iotstream.%n] %l: %v"); }
};

Registry &registry() {
    static Registry *r = new Registry();  // never destroyed: loggers may run during exit
    return *r;
}

}  // namespace

std::shared_ptr<spdlog::logger> logger(const std::string &component) {
    Registry &r = registry();
    std::lock_guard<std::mutex> lock(r.mutex);
    auto it = r.loggers.find(component);
    if (it != r.loggers.end()) return it->second;
    auto log = std::make_shared<spdlog::logger>(component, r.sink);
    log->set_level(static_cast<spdlog::level::level_enum>(r.level.load()));
    r.loggers.emplace(component, log);
    return log;
}

}  // namespace iotstream

extern "C" {

IOTS_EXPORT iots_err_t iots_log_set_level(iots_log_level_t level) {
    if (level < IOTS_LOG_TRACE || level > IOTS_LOG_OFF) return IOTS_ERR_INVALID_ARG;
    auto &r = iotstream::registry();
    std::lock_guard<std::mutex> lock(r.mutex);
    r.level = level;
    for (auto &[name, log] : r.loggers) log->set_level(static_cast<spdlog::level::level_enum>(level));
    return IOTS_OK;
}

IOTS_EXPORT iots_log_level_t iots_log_get_level(void) {
    return static_cast<iots_log_level_t>(iotstream::registry().level.load());
}

IOTS_EXPORT void iots_log_set_callback(iots_log_cb_t cb, void *opaque) {
    iotstream::registry().sink->set_callback(cb, opaque);
}

}  // extern "C"
