// The live instances of a set of plugins, kept in step with a PluginDirectory by the
// hot-swap protocol (plugin_host/plugin_loader.hpp).
#pragma once

#include <functional>
#include <memory>
#include <string_view>
#include <vector>

#include "plugin_host/plugin_directory.hpp"
#include "plugin_host/plugin_instance.hpp"

namespace iotstream {

// The live instances of a set of plugins, kept in step with a PluginDirectory by the
// hot-swap protocol above. Used on the thread that calls process().
class LiveInstances {
public:
    // Makes the instance for a plugin that became live, or returns nullptr when this set
    // does not want it. May throw Error: the plugin is then not live (added) or the previous
    // instance stays live (replaced); the error is logged.
    using Factory = std::function<std::unique_ptr<PluginInstance>(const PluginRef &)>;

    // What the owner tells the set (both optional).
    struct Hooks {
        // The streams whose open state a replaced instance hands to its successor (the
        // assigned ones); none when empty.
        std::function<std::vector<uint32_t>()> streams;
        // True for a plugin the owner cannot run without (a configured stage): removing its
        // file is refused, the running instance stays, and a file bringing the name back
        // replaces it as any new version does.
        std::function<bool(std::string_view)> required;
    };

    struct Report {
        // refused: replacements and removals refused by policy (the running instance stays).
        size_t added = 0, replaced = 0, removed = 0, failed = 0, refused = 0;
    };

    explicit LiveInstances(Factory factory, Hooks hooks = {});
    ~LiveInstances();  // retires every instance, last first
    LiveInstances(const LiveInstances &) = delete;
    LiveInstances &operator=(const LiveInstances &) = delete;

    // Instantiates plugins already loaded (a PluginDirectory's start-up set).
    Report add(const std::vector<PluginRef> &plugins);
    // Applies poll() events. Call only between batches.
    Report apply(const std::vector<PluginEvent> &events);
    const std::vector<std::unique_ptr<PluginInstance>> &instances() const { return instances_; }
    PluginInstance *find(std::string_view name) const;
    // Retires every instance (stages drained), last first.
    void clear();

private:
    bool install(const PluginRef &plugin, Report &report);
    void retire(std::unique_ptr<PluginInstance> instance);
    // Replaces the instance in `slot` by one of `plugin`, handing its state over (or refusing,
    // plugin.h "State hand-over"). The old instance stays when anything fails.
    void replace(std::unique_ptr<PluginInstance> &slot, const PluginRef &plugin, Report &report);
    // Why `from` cannot be replaced by `to` without losing or splitting state ("" when it can),
    // and whether its state is handed over (else it is drained as before ABI 1.2).
    std::string handover_problem(const PluginInstance &from, const Plugin &to, bool &hand_over) const;

    Factory factory_;
    Hooks hooks_;
    std::vector<std::unique_ptr<PluginInstance>> instances_;
};
}  // namespace iotstream
