// Readings from columns: Python values copied out while the GIL is held (so envelopes can be
// built and sent without it), and the "data" object of each row written from them as JSON.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace iotstream_native {

namespace py = pybind11;

// Strings copied out of Python objects into one arena, so they outlive the GIL.
struct StringColumn {
    std::string arena;
    std::vector<size_t> ends;      // ends[i]: one past string i in arena
    std::vector<uint8_t> present;  // 0 where the object was None (or a float NaN)

    std::string_view at(size_t i) const {
        size_t begin = i == 0 ? 0 : ends[i - 1];
        return {arena.data() + begin, ends[i] - begin};
    }
};

// Copies a sequence of str (GIL held); `what` names it in errors. With allow_missing, None and
// NaN are kept as absent, else they are a ValueError.
StringColumn copy_strings(const py::sequence &values, const std::string &what, bool allow_missing);

enum class Kind { Float, Int, Bool, String };

struct Column {
    std::string path;  // dotted, e.g. "location.lat"
    Kind kind;
    py::array_t<double> floats;  // Kind::Float (NaN: absent in that row)
    py::array_t<int64_t> ints;   // Kind::Int
    py::array_t<uint8_t> bools;  // Kind::Bool
    StringColumn strings;        // Kind::String (None: absent)
    const double *f = nullptr;
    const int64_t *i = nullptr;
    const uint8_t *b = nullptr;
};

// One column from its Python spec (path, kind, values), kind 'f' float64 with NaN = absent,
// 'i' int64, 'b' bool, 's' str with None = absent; checked to have `rows` values.
Column column_from_spec(py::handle spec, size_t rows);

// The shape of "data": dotted paths become nested objects, written in first-seen order.
struct DataNode {
    std::string key;
    int column = -1;  // leaf: index into the columns
    std::vector<DataNode> children;
};

// ValueError when a path has an empty segment or collides with another column.
DataNode build_layout(const std::vector<Column> &columns);

// Writes a row's "data" object ("{...}"); a node whose every leaf is absent is left out.
// Touches no Python object: call it without the GIL.
void write_data(std::string &out, const DataNode &layout, const std::vector<Column> &columns, size_t row);

}  // namespace iotstream_native
