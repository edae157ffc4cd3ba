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

LiveInstances::LiveInstances(Factory factory, Hooks hooks) : factory_(std::move(factory)), hooks_(std::move(hooks)) {
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

std::string LiveInstances::handover_problem(const PluginInstance &from, const Plugin &to, bool &hand_over) const {
    const iots_plugin_descriptor_t &old_d = from.plugin().descriptor(), &new_d = to.descriptor();
    hand_over = old_d.state_version != 0 && new_d.state_version != 0;
    // Without a checkpoint nothing a commit depends on is held: drained (flush) as before 1.2,
    // unless both versions can hand their state over anyway.
    if (!from.holds_state()) return {};
    const std::string versions = "version " + std::string(from.plugin().version()) + " (plugin ABI " +
                                 std::to_string(old_d.abi_major) + "." + std::to_string(old_d.abi_minor) +
                                 ", state format " + std::to_string(old_d.state_version) + ") by version " +
                                 std::string(to.version()) + " (plugin ABI " + std::to_string(new_d.abi_major) +
                                 "." + std::to_string(new_d.abi_minor) + ", state formats " +
                                 (new_d.state_version == 0 ? std::string("none")
                                                           : std::to_string(new_d.state_min_version) + ".." +
                                                                 std::to_string(new_d.state_version)) +
                                 ")";
    if (old_d.state_version == 0)
        return versions + ": the running version holds open state and cannot export it (state hand-over needs "
                          "plugin ABI 1.2 and state_version)";
    if (new_d.state_version == 0) return versions + ": the new version cannot import state";
    if (old_d.state_version < new_d.state_min_version || old_d.state_version > new_d.state_version)
        return versions + ": the new version does not read state format " + std::to_string(old_d.state_version);
    return {};
}

void LiveInstances::replace(std::unique_ptr<PluginInstance> &slot, const PluginRef &plugin, Report &report) {
    const std::string old_version(slot->plugin().version());
    bool hand_over = false;
    if (std::string problem = handover_problem(*slot, *plugin, hand_over); !problem.empty()) {
        ++report.refused;
        logger(kComponent)->error("refused to replace {} plugin '{}' {}; version {} stays live with its state "
                                  "(a restart hands open state to the new version by replay)",
                                  plugin->kind_name(), plugin->name(), problem, old_version);
        return;
    }
    // The new instance first: if it cannot start or take the state over, the old one keeps running.
    std::unique_ptr<PluginInstance> made;
    try {
        made = factory_(plugin);
        if (made && hand_over) {
            const uint32_t format = slot->state_version();
            for (uint32_t stream : hooks_.streams ? hooks_.streams() : std::vector<uint32_t>{})
                made->import_state(stream, slot->export_state(stream), format);
        }
    } catch (const std::exception &e) {
        ++report.failed;
        logger(kComponent)->error("cannot start {}; keeping version {} live: {}", plugin->label(), old_version,
                                  e.what());
        return;
    }
    std::unique_ptr<PluginInstance> old = std::move(slot);
    if (made) {
        slot = std::move(made);  // same slot: stage order is preserved
        ++report.replaced;
    } else {
        ++report.removed;  // erased by the caller
    }
    if (hand_over) {
        logger(kComponent)->info("{} took over the open state of version {}", plugin->label(), old_version);
        old.reset();  // its state lives on in the new instance: destroyed without flush
    } else {
        retire(std::move(old));
    }
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
        case PluginEvent::Type::replaced: {
            auto it = position(event.name);
            if (it == instances_.end()) {
                if (install(event.plugin, report)) ++report.added;
                break;
            }
            // A replacement, or a file bringing back a plugin whose removal was refused.
            replace(*it, event.plugin, report);
            if (*it == nullptr) instances_.erase(it);  // the new version is not wanted here
            break;
        }
        case PluginEvent::Type::removed: {
            auto it = position(event.name);
            if (it == instances_.end()) break;
            if (hooks_.required && hooks_.required(event.name)) {
                ++report.refused;
                logger(kComponent)->error(
                    "refused to remove {} plugin '{}': it is a configured stage of this pipeline (as at start, "
                    "it cannot run without it); version {} stays live with its state and nothing is lost. A file "
                    "providing '{}' dropped into the folder replaces it; to remove the stage, change the "
                    "pipeline's stages and restart",
                    (*it)->plugin().kind_name(), event.name, (*it)->plugin().version(), event.name);
                break;
            }
            std::unique_ptr<PluginInstance> old = std::move(*it);
            instances_.erase(it);
            retire(std::move(old));
            ++report.removed;
            break;
        }
        }
    }
    return report;
}
}  // namespace iotstream
