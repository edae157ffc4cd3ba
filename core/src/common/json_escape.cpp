#include "common/json_escape.hpp"

namespace iotstream {

void append_json_escaped(std::string &out, std::string_view text) {
    static constexpr char kHex[] = "0123456789abcdef";
    size_t clean_from = 0;
    for (size_t i = 0; i < text.size(); ++i) {
        const auto c = static_cast<unsigned char>(text[i]);
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        out.append(text.data() + clean_from, i - clean_from);
        clean_from = i + 1;
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            case '\b': out += "\\b"; break;
            case '\f': out += "\\f"; break;
            default: {
                const char escape[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0x0f]};
                out.append(escape, sizeof escape);
            }
        }
    }
    out.append(text.data() + clean_from, text.size() - clean_from);
}

}  // namespace iotstream
