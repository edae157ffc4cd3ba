#include "app/library.hpp"

#include <dlfcn.h>

#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

namespace iotstream_host {

using Json = nlohmann::json;

const iots_api_t *api = nullptr;

const Json &core_defaults() {
    static const Json defaults = Json::parse(api->defaults_json());
    return defaults;
}

std::string core_topic(const char *name) { return core_defaults()["topics"][name].get<std::string>(); }

const iots_api_t *load_library(const std::string &library) {
    std::vector<std::string> candidates;
    if (!library.empty()) {
        candidates.push_back(library);
    } else {
        std::error_code ec;
        auto self = std::filesystem::read_symlink("/proc/self/exe", ec).parent_path();
        for (auto relative : {"../core/libiotstream.so.1", "../lib/libiotstream.so.1", "libiotstream.so.1"})
            if (std::filesystem::exists(self / relative)) candidates.push_back((self / relative).string());
        candidates.push_back("libiotstream.so.1");  // the dynamic linker's search path
    }
    std::string errors;
    for (const std::string &path : candidates) {
        // RTLD_LOCAL: the library's symbols stay out of the host's namespace.
        void *handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
        if (!handle) {
            errors += std::string("\n  ") + dlerror();
            continue;
        }
        auto get_api = reinterpret_cast<iots_get_api_fn>(dlsym(handle, "iots_get_api"));
        if (!get_api) die(path + " has no iots_get_api: not libiotstream?");
        char errstr[256];
        const iots_api_t *table = get_api(IOTS_ABI_MAJOR, IOTS_ABI_MINOR, errstr, sizeof errstr);
        if (!table) die(path + ": " + errstr);
        return table;
    }
    die("cannot load libiotstream:" + errors);
}

int64_t integer_flag(const std::string &flag, const std::string &text, int64_t min, int64_t max) {
    int64_t value = 0;
    char why[256];
    if (api->parse_int(text.c_str(), min, max, &value, why, sizeof why) != IOTS_OK)
        throw std::runtime_error(flag + " " + why);
    return value;
}

void check(iots_err_t err, const char *errstr, const std::string &what) {
    if (err != IOTS_OK) die(what + ": " + (errstr && *errstr ? errstr : api->err_str(err)));
}

Json pipeline_stats(iots_pipeline_t *pipeline) {
    std::string buf(8192, '\0');
    size_t needed = 0;
    iots_err_t err = api->pipeline_stats_json(pipeline, buf.data(), buf.size(), &needed);
    if (err == IOTS_ERR_BUFFER_TOO_SMALL) {
        buf.resize(needed);
        err = api->pipeline_stats_json(pipeline, buf.data(), buf.size(), &needed);
    }
    if (err != IOTS_OK) return Json::object();
    return Json::parse(buf.c_str(), nullptr, false);
}

Json describe_plugins(const Options &o) {
    std::string buf(1 << 16, '\0');
    size_t needed = 0;
    char errstr[512];
    const char *dir = o.plugins.empty() ? nullptr : o.plugins.c_str();
    iots_err_t err = api->plugins_describe_json(dir, buf.data(), buf.size(), &needed, errstr, sizeof errstr);
    if (err == IOTS_ERR_BUFFER_TOO_SMALL) {
        buf.resize(needed);
        err = api->plugins_describe_json(dir, buf.data(), buf.size(), &needed, errstr, sizeof errstr);
    }
    check(err, errstr, "describing plugins");
    return Json::parse(buf.c_str());
}

std::string documented_default(const Options &o, const std::string &name) {
    const Json &core = core_defaults();
    if (name == "partitions") return core["partitions"].dump();
    if (name.rfind("topics.", 0) == 0) return core["topics"].value(name.substr(7), std::string("?"));
    static const Json plugins = describe_plugins(o);
    size_t dot = name.find('.');
    for (const Json &p : plugins.value("plugins", Json::array()))
        if (p.value("name", "") == name.substr(0, dot))
            for (const Json &key : p.value("config", Json::array()))
                if (key.value("name", "") == name.substr(dot + 1) && key.contains("default"))
                    return key["default"].is_string() ? key["default"].get<std::string>() : key["default"].dump();
    return "the plugin's";  // a folder without it: the help still reads
}

}  // namespace iotstream_host
