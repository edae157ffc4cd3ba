// The core's one JSON string escaper: every JSON text the core writes by hand (envelopes,
// ingested readings, alert records) escapes its strings here.
#pragma once

#include <string>
#include <string_view>

namespace iotstream {

// Appends `text` to `out` as the body of a JSON string (quotes not included): " and \ get a
// backslash; \b \f \n \r \t their short escapes; the other bytes below 0x20 \u00XX (lowercase
// hex), as Python's json.dumps writes them. Every other byte (DEL, UTF-8, invalid UTF-8)
// passes through unchanged: callers that need valid UTF-8 check it first (require_utf8).
void append_json_escaped(std::string &out, std::string_view text);

}  // namespace iotstream
