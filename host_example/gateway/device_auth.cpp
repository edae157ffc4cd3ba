#include "gateway/device_auth.hpp"

#include <fstream>
#include <sstream>
#include <stdexcept>

namespace iotstream_host::gateway {

bool constant_time_equal(std::string_view given, std::string_view expected) {
    // Every byte of `expected` is visited whatever `given` holds; the length difference is
    // folded in instead of returning early.
    volatile unsigned char difference = given.size() == expected.size() ? 0 : 1;
    for (size_t i = 0; i < expected.size(); ++i) {
        const unsigned char theirs = i < given.size() ? static_cast<unsigned char>(given[i]) : 0;
        difference = static_cast<unsigned char>(difference | (theirs ^ static_cast<unsigned char>(expected[i])));
    }
    return difference == 0;
}

namespace {
std::string trim(const std::string &text) {
    const size_t begin = text.find_first_not_of(" \t\r");
    if (begin == std::string::npos) return "";
    return text.substr(begin, text.find_last_not_of(" \t\r") - begin + 1);
}
}  // namespace

DeviceAuth::DeviceAuth(const std::string &device_tokens_file, const std::string &shared_token_file, bool allow_none) {
    if (device_tokens_file.empty() && shared_token_file.empty() && !allow_none)
        throw std::runtime_error("the gateway needs --device-tokens FILE and/or --shared-token-file FILE (or --mqtt "
                                 "alone, where the MQTT broker authenticates devices)");
    if (!device_tokens_file.empty()) {
        std::ifstream in(device_tokens_file);
        if (!in) throw std::runtime_error("cannot read --device-tokens " + device_tokens_file);
        std::string line;
        for (int number = 1; std::getline(in, line); ++number) {
            line = trim(line);
            if (line.empty() || line[0] == '#') continue;
            std::istringstream fields(line);
            std::string device, token, extra;
            fields >> device >> token;
            if (token.empty() || (fields >> extra))
                throw std::runtime_error(device_tokens_file + ":" + std::to_string(number) +
                                         ": expected '<device id> <token>'");
            if (!tokens_.emplace(device, token).second)
                throw std::runtime_error(device_tokens_file + ":" + std::to_string(number) + ": device '" + device +
                                         "' is listed twice");
        }
    }
    if (!shared_token_file.empty()) {
        std::ifstream in(shared_token_file);
        if (!in) throw std::runtime_error("cannot read --shared-token-file " + shared_token_file);
        std::getline(in, shared_);
        shared_ = trim(shared_);
        if (shared_.size() < 16)
            throw std::runtime_error(shared_token_file + ": the shared token must have at least 16 characters");
    }
    dummy_.assign(32, 'x');
}

bool DeviceAuth::check(std::string_view device_id, std::string_view token) const {
    if (auto found = tokens_.find(std::string(device_id)); found != tokens_.end())
        return constant_time_equal(token, found->second);
    if (!shared_.empty()) return constant_time_equal(token, shared_);
    (void)constant_time_equal(token, dummy_);
    return false;
}

}  // namespace iotstream_host::gateway
