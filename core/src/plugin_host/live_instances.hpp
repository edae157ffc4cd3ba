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

    struct Report {
        size_t added = 0, replaced = 0, removed = 0, failed = 0;
    };

    explicit LiveInstances(Factory factory);
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

    Factory factory_;
    std::vector<std::unique_ptr<PluginInstance>> instances_;
};
}  // namespace iotstream
