// Record values (JSON) decoded into columns in C++, for DataFrames without a Python loop.
//
// Each value becomes one row, as iotstream._convert.envelope_row() makes it from json.loads:
//  - an envelope ({"sensor_id", "data": {...}, ...}): sensor_id, the data's fields (nested
//    objects flattened, keys joined with dots), then timestamp and message_id (null if absent);
//  - any other JSON object: its fields, flattened the same way;
//  - anything else (not JSON, or JSON that is not an object): the text in column "value".
// Columns come out in first-seen order, typed as pandas types a list of such dicts:
// int64 when every row holds an integer; float64 (NaN where absent or null) when every row
// holds a number, null or nothing; bool when every row holds a bool; else a list of Python
// objects (NaN where absent, None for null, lists/dicts for arrays).
#pragma once

#include <pybind11/pybind11.h>

#include <simdjson.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace iotstream_native {

namespace py = pybind11;

class JsonColumns {
public:
    // Adds one row. Touches no Python object: call it without the GIL.
    void add(std::string_view value);
    size_t rows() const { return rows_; }
    // [(name, values), ...]: numpy arrays or lists, in first-seen order. GIL held.
    py::list to_python() const;

private:
    enum class Type : uint8_t { Missing, Null, Int, UInt, Double, Bool, String, Json };
    struct Cell {
        Type type = Type::Missing;
        uint32_t len = 0;  // String/Json: bytes in the arena
        union {
            int64_t i;
            uint64_t u;
            double d;
            uint64_t offset;  // String/Json: where in the arena
        };
        Cell() : i(0) {}
    };
    struct Column {
        std::string name;
        std::vector<Cell> cells;
    };

    void set(std::string_view name, const Cell &cell);
    void flatten(simdjson::dom::object object, std::string &prefix);
    Cell cell_of(simdjson::dom::element element);
    Cell text_cell(std::string_view text);
    struct StringHash {
        using is_transparent = void;
        size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
    };
    // Python str objects made so far, so that repeated values (sensor ids, rule names) share one.
    using Strings = std::unordered_map<std::string, py::object, StringHash, std::equal_to<>>;
    // strings: where to look a str up and keep it (nullptr: make a new one); counts string_hits_.
    py::object python_str(std::string_view text, Strings *strings) const;
    py::object python_of(const Cell &cell, Strings *strings) const;
    py::object python_of(simdjson::dom::element element, Strings *strings) const;

    simdjson::dom::parser parser_;
    mutable simdjson::dom::parser python_parser_;  // Json cells, parsed again with the GIL
    std::vector<Column> columns_;
    std::unordered_map<std::string, size_t, StringHash, std::equal_to<>> index_;
    std::string arena_;
    mutable size_t string_hits_ = 0;  // within the column being converted
    size_t rows_ = 0;
};

}  // namespace iotstream_native
