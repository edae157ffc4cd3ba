// Device authentication for the gateway: per-device tokens from a file and/or one shared
// token, compared in constant time.
#pragma once

#include <string>
#include <string_view>
#include <unordered_map>

namespace iotstream_host::gateway {

// True when `given` equals `expected`. The time taken depends only on expected.size(), never
// on where `given` differs, so a client cannot find a token byte by byte.
bool constant_time_equal(std::string_view given, std::string_view expected);

class DeviceAuth {
public:
    // `device_tokens_file`: lines "<device id> <token>" ('#' comments, blank lines ignored);
    // `shared_token_file`: its first line is a token every device may use. Either may be empty,
    // not both unless `allow_none` (then no device authenticates: an MQTT-only gateway). Throws
    // std::runtime_error naming the file and line.
    DeviceAuth(const std::string &device_tokens_file, const std::string &shared_token_file, bool allow_none = false);

    // Whether `token` authenticates `device_id`: the device's own token when it has one in
    // the file, else the shared token. Unknown devices cost the same comparison.
    bool check(std::string_view device_id, std::string_view token) const;
    size_t devices() const { return tokens_.size(); }
    bool has_shared_token() const { return !shared_.empty(); }

private:
    std::unordered_map<std::string, std::string> tokens_;
    std::string shared_;
    std::string dummy_;  // compared against when there is nothing to compare against
};

}  // namespace iotstream_host::gateway
