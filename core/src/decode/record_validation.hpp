// Checking the values the decoder does not read (unknown keys, non-object documents), so an
// accepted record is valid JSON all through: On-Demand skips unread values without looking.
#pragma once

#include <string>
#include <string_view>

#include <simdjson.h>

#include "decode/json_tokens.hpp"

namespace iotstream {

// The first problem found in a well-formed record; later ones are ignored. Malformed JSON is
// not a problem noted here: walkers return it as a simdjson error, and it wins.
struct FirstProblem {
    std::string_view reason;  // a reject_reason, empty when none
    std::string detail;

    void note(std::string_view why, std::string what) {
        if (!reason.empty()) return;
        reason = why;
        detail = std::move(what);
    }
    void clear() { reason = {}; }
};

// An escaped key is unescaped (which checks its escapes); others need no work.
simdjson::error_code validate_key(json_tokens::od::field &field);
// Checks a value of any kind down to its last byte, at nesting `depth` (bounded).
simdjson::error_code validate_value(json_tokens::od::value &value, unsigned depth, FirstProblem &problem);
// As validate_value(), for a value already classified.
simdjson::error_code validate_value_of_kind(json_tokens::od::value &value, json_tokens::Kind kind,
                                            unsigned depth, FirstProblem &problem);
// Whether a document that is not an object is nonetheless one valid JSON value (then it is a
// record of the wrong type, not "not JSON"); `kind` names what it is. `text` is the parsed
// record (inside the padded buffer).
bool valid_non_object_document(json_tokens::od::document &document, std::string_view text,
                               const char *&kind, FirstProblem &problem);

}  // namespace iotstream