// Turns a C++ class into a plugin.h descriptor, so each bundled plugin writes its logic once and
// none repeats the C callbacks. Every callback is guarded: no exception leaves the plugin.
//
// The class has a constructor (const iots_host_api_t *, iots_host_ctx_t *, const iots_config_t *)
// and `void process(const iots_batch_view_t *)`. Optional members, each becoming its callback
// (NULL when absent): `int tick(int64_t)`, `void on_assign(uint32_t, int64_t)`,
// `void on_revoke(uint32_t)`, `void checkpoint(uint32_t, int64_t *, int64_t *)`, and
// `int flush(int final)` or `int flush()`, and (ABI 1.4) `void gauges(iots_gauge_put_fn, void *) const`.
//
// State hand-over (plugin.h ABI 1.2): a class with `static constexpr uint32_t kStateVersion`
// (and optionally kStateMinVersion), `void export_state(uint32_t stream, StateWriter &) const`
// and `void import_state(uint32_t stream, StateReader &, uint32_t state_version)` gets
// export_state/import_state; the bytes are written in one go, after the class returned.
#pragma once

#include <cstdint>

#include "iotstream/plugin.h"
#include "plugin_support.hpp"
#include "state_blob.hpp"

namespace iotstream::plugin {

struct PluginInfo {
    const char *name;
    const char *version;
    const char *description;
    iots_plugin_kind_t kind;
    const iots_config_key_t *config_keys;
    uint32_t config_key_count;
};

template <typename Impl, const PluginInfo &Info>
class PluginAdapter {
public:
    static constexpr iots_plugin_descriptor_t descriptor() {
        return {
            IOTS_DESCRIPTOR_HEADER(iots_plugin_descriptor_t),
            .name = Info.name,
            .version = Info.version,
            .description = Info.description,
            .kind = Info.kind,
            .config_keys = Info.config_keys,
            .config_key_count = Info.config_key_count,
            .create = create,
            .process = process,
            .tick = tick_callback(),
            .on_assign = on_assign_callback(),
            .on_revoke = on_revoke_callback(),
            .checkpoint = checkpoint_callback(),
            .flush = flush_callback(),
            .destroy = destroy,
            .config_key_size = sizeof(iots_config_key_t),
            .state_version = state_version(),
            .state_min_version = state_min_version(),
            .export_state = has_state ? export_state : nullptr,
            .import_state = has_state ? import_state : nullptr,
            .write_sink = nullptr,  // ABI 1.3: stages and rules are not sinks
            .gauges = gauges_callback(),
        };
    }

private:
    static Impl &self(void *instance) { return *static_cast<Impl *>(instance); }

    // Each optional callback exists only when the class has the member (if constexpr keeps the
    // absent ones from being instantiated).
    static constexpr decltype(iots_plugin_descriptor_t::tick) tick_callback() {
        if constexpr (requires(Impl &x) { x.tick(int64_t{}); }) return tick; else return nullptr;
    }
    static constexpr decltype(iots_plugin_descriptor_t::on_assign) on_assign_callback() {
        if constexpr (requires(Impl &x) { x.on_assign(uint32_t{}, int64_t{}); }) return on_assign; else return nullptr;
    }
    static constexpr decltype(iots_plugin_descriptor_t::on_revoke) on_revoke_callback() {
        if constexpr (requires(Impl &x) { x.on_revoke(uint32_t{}); }) return on_revoke; else return nullptr;
    }
    static constexpr decltype(iots_plugin_descriptor_t::checkpoint) checkpoint_callback() {
        if constexpr (requires(Impl &x, int64_t *p) { x.checkpoint(uint32_t{}, p, p); }) return checkpoint; else return nullptr;
    }
    static constexpr decltype(iots_plugin_descriptor_t::gauges) gauges_callback() {
        if constexpr (requires(const Impl &x, iots_gauge_put_fn put) { x.gauges(put, nullptr); }) return gauges;
        else return nullptr;
    }
    static constexpr decltype(iots_plugin_descriptor_t::flush) flush_callback() {
        if constexpr (requires(Impl &x) { x.flush(int{}); } || requires(Impl &x) { x.flush(); }) return flush; else return nullptr;
    }

    static constexpr bool has_state = requires(const Impl &x, Impl &y, StateWriter &w, StateReader &r) {
        Impl::kStateVersion;
        x.export_state(uint32_t{}, w);
        y.import_state(uint32_t{}, r, uint32_t{});
    };
    static constexpr uint32_t state_version() {
        if constexpr (has_state) return Impl::kStateVersion; else return 0;
    }
    static constexpr uint32_t state_min_version() {
        if constexpr (requires { Impl::kStateMinVersion; }) return Impl::kStateMinVersion; else return state_version();
    }

    static int export_state(void *instance, uint32_t stream, iots_state_write_fn write, void *sink, char *errstr,
                            size_t errstr_size) {
        if constexpr (has_state) {
            return guarded(Info.name, errstr, errstr_size, [&] {
                StateWriter writer;
                static_cast<const Impl *>(instance)->export_state(stream, writer);
                if (!writer.bytes().empty() && write(sink, writer.bytes().data(), writer.bytes().size()) != 0)
                    throw PluginError("the host refused " + std::to_string(writer.bytes().size()) + " bytes of state");
            });
        } else {
            return 1;
        }
    }

    static int import_state(void *instance, uint32_t stream, const void *data, size_t len, uint32_t version,
                            char *errstr, size_t errstr_size) {
        if constexpr (has_state) {
            return guarded(Info.name, errstr, errstr_size, [&] {
                if (version < state_min_version() || version > state_version())
                    throw PluginError("cannot read state format " + std::to_string(version) + " (reads " +
                                      std::to_string(state_min_version()) + ".." + std::to_string(state_version()) +
                                      ")");
                StateReader reader(data, len);
                self(instance).import_state(stream, reader, version);
            });
        } else {
            return 1;
        }
    }

    static int create(const iots_host_api_t *host, iots_host_ctx_t *ctx, const iots_config_t *cfg, void **instance,
                      char *errstr, size_t errstr_size) {
        return guarded(Info.name, errstr, errstr_size, [&] {
            check_host(host, ctx);
            *instance = new Impl(host, ctx, cfg);
        });
    }

    static int process(void *instance, const iots_batch_view_t *batch, char *errstr, size_t errstr_size) {
        return guarded(Info.name, errstr, errstr_size, [&] { self(instance).process(batch); });
    }

    static int tick(void *instance, int64_t wall_clock_ms) {
        int result = 0;
        if (guarded(Info.name, nullptr, 0, [&] { result = self(instance).tick(wall_clock_ms); }) != 0) return 1;
        return result;
    }

    // A failure here (an allocation) surfaces at the next process() of that stream.
    static void on_assign(void *instance, uint32_t stream, int64_t restored_watermark_ms) {
        (void)guarded(Info.name, nullptr, 0, [&] { self(instance).on_assign(stream, restored_watermark_ms); });
    }

    static void on_revoke(void *instance, uint32_t stream) {
        (void)guarded(Info.name, nullptr, 0, [&] { self(instance).on_revoke(stream); });
    }

    static void checkpoint(void *instance, uint32_t stream, int64_t *oldest_needed_offset, int64_t *watermark_ms) {
        if (guarded(Info.name, nullptr, 0,
                    [&] { self(instance).checkpoint(stream, oldest_needed_offset, watermark_ms); }) != 0) {
            // Unknown state must never let a commit move forward: hold everything back.
            if (oldest_needed_offset) *oldest_needed_offset = 0;
        }
    }

    static int flush(void *instance, int final) {
        int result = 0;
        if (guarded(Info.name, nullptr, 0, [&] {
                if constexpr (requires(Impl &x) { x.flush(int{}); })
                    result = self(instance).flush(final);
                else
                    result = self(instance).flush();
            }) != 0)
            return 1;
        return result;
    }

    static void gauges(void *instance, iots_gauge_put_fn put, void *opaque) {
        if constexpr (requires(const Impl &x, iots_gauge_put_fn p) { x.gauges(p, nullptr); })
            (void)guarded(Info.name, nullptr, 0, [&] { static_cast<const Impl *>(instance)->gauges(put, opaque); });
    }

    static void destroy(void *instance) { delete static_cast<Impl *>(instance); }
};

}  // namespace iotstream::plugin
