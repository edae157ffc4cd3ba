#include "plugin_host/live_instances.hpp"

#include <algorithm>

#include "common/log.hpp"

namespace iotstream {
namespace {
constexpr const char *kComponent = "plugins";
}  // namespace

// ------------------------------------------------------------------------------------------
// LiveInstances
// ------------------------------------------------------------------------------------------

LiveInstances::LiveInstances(Factory factory) : factory_(std::move(factory)) {
    if (!factory_) throw Error(IOTS_ERR_INVALID_ARG, "LiveInstances: factory is empty");
}

LiveInstances::~LiveInstances() { clear(); }

PluginInstance *LiveInstances::find(std::string_view name) const {
    for (const auto &instance : instances_)
        if (instance->name() == name) return instance.get();
    return nullptr;
}

void LiveInstances::retire(std::unique_ptr<PluginInstance> instance) {
    if (!instance) return;
    if (!instance->plugin().is_rule()) {
        try {
            instance->flush(/*final=*/true);  // a stage's open state is emitted, not lost
        } catch (const std::exception &e) {
            logger(kComponent)->error("draining before unload: {}", e.what());
        }
    }
    instance.reset();  // destroy(); the library unloads once nothing else holds it
}

void LiveInstances::clear() {
    while (!instances_.empty()) {
        std::unique_ptr<PluginInstance> last = std::move(instances_.back());
        instances_.pop_back();
        retire(std::move(last));
    }
}

LiveInstances::Report LiveInstances::add(const std::vector<PluginRef> &plugins) {
    Report report;
    for (const PluginRef &plugin : plugins) {
        if (find(plugin->name()) != nullptr) continue;
        if (install(plugin, report)) ++report.added;
    }
    return report;
}

bool LiveInstances::install(const PluginRef &plugin, Report &report) {
    std::unique_ptr<PluginInstance> made;
    try {
        made = factory_(plugin);
    } catch (const std::exception &e) {
        ++report.failed;
        logger(kComponent)->error("cannot start {}: {}", plugin->label(), e.what());
        return false;
    }
    if (!made) return false;
    instances_.push_back(std::move(made));
    return true;
}

LiveInstances::Report LiveInstances::apply(const std::vector<PluginEvent> &events) {
    Report report;
    auto position = [this](std::string_view name) {
        return std::find_if(instances_.begin(), instances_.end(),
                            [&](const auto &instance) { return instance->name() == name; });
    };
    for (const PluginEvent &event : events) {
        switch (event.type) {
        case PluginEvent::Type::rejected:
            break;
        case PluginEvent::Type::added:
            if (install(event.plugin, report)) ++report.added;
            break;
        case PluginEvent::Type::removed: {
            auto it = position(event.name);
            if (it == instances_.end()) break;
            std::unique_ptr<PluginInstance> old = std::move(*it);
            instances_.erase(it);
            retire(std::move(old));
            ++report.removed;
            break;
        }
        case PluginEvent::Type::replaced: {
            // The new instance first: if it cannot start, the old one keeps running.
            std::unique_ptr<PluginInstance> made;
            try {
                made = factory_(event.plugin);
            } catch (const std::exception &e) {
                ++report.failed;
                logger(kComponent)->error("cannot start {}; keeping version {} live: {}",
                                          event.plugin->label(),
                                          event.previous ? event.previous->version() : "", e.what());
                break;
            }
            auto it = position(event.name);
            if (it == instances_.end()) {
                if (made) {
                    instances_.push_back(std::move(made));
                    ++report.added;
                }
                break;
            }
            std::unique_ptr<PluginInstance> old = std::move(*it);
            if (made) {
                *it = std::move(made);  // same slot: stage order is preserved
                ++report.replaced;
            } else {
                instances_.erase(it);
                ++report.removed;
            }
            retire(std::move(old));
            break;
        }
        }
    }
    return report;
}
}  // namespace iotstream
