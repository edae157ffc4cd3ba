// Readings from columns (columns.hpp): copying them out of Python, and writing each row's JSON.
#include "columns.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>

#include <nlohmann/json.hpp>

namespace iotstream_native {
namespace {

// A JSON string body as nlohmann's serializer writes it (the core's escaper is not public API,
// and its spelling is the same: json.dumps'). Most strings need no escape: appended as they are.
void append_escaped(std::string &out, std::string_view text) {
    const bool plain = std::none_of(text.begin(), text.end(), [](char c) {
        return static_cast<unsigned char>(c) < 0x20 || c == '"' || c == '\\';
    });
    if (plain) {
        out += text;
        return;
    }
    // Valid UTF-8 (utf8_of, pybind11's str), so the strict serializer does not throw.
    const std::string quoted = nlohmann::json(std::string(text)).dump();
    out.append(quoted, 1, quoted.size() - 2);
}

void append_double(std::string &out, double value) {
    char buf[32];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value);
    out.append(buf, end);
}

void append_int(std::string &out, int64_t value) {
    char buf[24];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value);
    out.append(buf, end);
}

// UTF-8 of a Python str (GIL held). Lone surrogates cannot be encoded: ValueError naming `what`.
std::string_view utf8_of(PyObject *object, const std::string &what) {
    if (!PyUnicode_Check(object))
        throw py::type_error(what + " must be a str, got " + std::string(Py_TYPE(object)->tp_name));
    Py_ssize_t size = 0;
    const char *data = PyUnicode_AsUTF8AndSize(object, &size);
    if (!data) {
        PyErr_Clear();
        throw py::value_error(what + " cannot be encoded as UTF-8");
    }
    return {data, static_cast<size_t>(size)};
}

bool is_missing(PyObject *object) {
    if (object == Py_None) return true;
    return PyFloat_Check(object) && std::isnan(PyFloat_AS_DOUBLE(object));
}

// Writes a node's members; returns false (and writes nothing) when every leaf is absent.
bool write_members(std::string &out, const DataNode &node, const std::vector<Column> &columns, size_t row) {
    const size_t start = out.size();
    bool any = false;
    for (const DataNode &child : node.children) {
        const size_t before = out.size();
        if (any) out += ',';
        out += '"';
        append_escaped(out, child.key);
        out += "\":";
        bool written = true;
        if (child.column < 0) {
            out += '{';
            written = write_members(out, child, columns, row);
            out += '}';
        } else {
            const Column &col = columns[static_cast<size_t>(child.column)];
            switch (col.kind) {
            case Kind::Float:
                if (std::isnan(col.f[row])) written = false;
                else append_double(out, col.f[row]);
                break;
            case Kind::Int: append_int(out, col.i[row]); break;
            case Kind::Bool: out += col.b[row] ? "true" : "false"; break;
            case Kind::String:
                if (!col.strings.present[row]) {
                    written = false;
                } else {
                    out += '"';
                    append_escaped(out, col.strings.at(row));
                    out += '"';
                }
                break;
            }
        }
        if (written) any = true;
        else out.resize(before);
    }
    if (!any) out.resize(start);
    return any;
}

}  // namespace

StringColumn copy_strings(const py::sequence &values, const std::string &what, bool allow_missing) {
    StringColumn column;
    const auto n = static_cast<size_t>(py::len(values));
    column.ends.reserve(n);
    column.present.reserve(n);
    for (size_t i = 0; i < n; ++i) {
        py::object item = values[i];
        if (is_missing(item.ptr())) {
            if (!allow_missing) throw py::value_error(what + " is missing in row " + std::to_string(i));
            column.present.push_back(0);
        } else {
            column.arena += utf8_of(item.ptr(), what + " in row " + std::to_string(i));
            column.present.push_back(1);
        }
        column.ends.push_back(column.arena.size());
    }
    return column;
}

Column column_from_spec(py::handle item, size_t rows) {
    auto spec = item.cast<py::tuple>();
    if (spec.size() != 3) throw py::value_error("each column is (path, kind, values)");
    Column col{spec[0].cast<std::string>(), Kind::Float, {}, {}, {}, {}};
    const std::string kind = spec[1].cast<std::string>();
    py::object values = spec[2];
    auto check_length = [&](py::ssize_t n) {
        if (static_cast<size_t>(n) != rows)
            throw py::value_error("column '" + col.path + "' has " + std::to_string(n) + " values for " +
                                  std::to_string(rows) + " rows");
    };
    if (kind == "f") {
        col.floats = py::array_t<double, py::array::c_style | py::array::forcecast>::ensure(values);
        if (!col.floats) throw py::type_error("column '" + col.path + "' is not convertible to float64");
        check_length(col.floats.size());
        col.f = col.floats.data();
        for (size_t row = 0; row < rows; ++row)
            if (std::isinf(col.f[row]))
                throw py::value_error("column '" + col.path + "' is infinite in row " + std::to_string(row) +
                                      " (JSON has no infinity; use NaN for a missing value)");
    } else if (kind == "i") {
        col.kind = Kind::Int;
        col.ints = py::array_t<int64_t, py::array::c_style | py::array::forcecast>::ensure(values);
        if (!col.ints) throw py::type_error("column '" + col.path + "' is not convertible to int64");
        check_length(col.ints.size());
        col.i = col.ints.data();
    } else if (kind == "b") {
        col.kind = Kind::Bool;
        col.bools = py::array_t<uint8_t, py::array::c_style | py::array::forcecast>::ensure(values);
        if (!col.bools) throw py::type_error("column '" + col.path + "' is not convertible to bool");
        check_length(col.bools.size());
        col.b = col.bools.data();
    } else if (kind == "s") {
        col.kind = Kind::String;
        check_length(py::len(values));
        col.strings = copy_strings(values.cast<py::sequence>(), "column '" + col.path + "'", true);
    } else {
        throw py::value_error("column '" + col.path + "': unknown kind '" + kind + "' (f, i, b or s)");
    }
    return col;
}

DataNode build_layout(const std::vector<Column> &columns) {
    DataNode root;
    for (size_t c = 0; c < columns.size(); ++c) {
        const std::string &path = columns[c].path;
        DataNode *node = &root;
        size_t begin = 0;
        while (true) {
            size_t dot = path.find('.', begin);
            std::string key = path.substr(begin, dot == std::string::npos ? std::string::npos : dot - begin);
            if (key.empty()) throw py::value_error("column path '" + path + "' has an empty segment");
            auto it = std::find_if(node->children.begin(), node->children.end(),
                                   [&](const DataNode &child) { return child.key == key; });
            const bool leaf = dot == std::string::npos;
            if (it == node->children.end()) {
                node->children.push_back(DataNode{key, leaf ? static_cast<int>(c) : -1, {}});
                it = node->children.end() - 1;
            } else if (leaf || it->column >= 0) {
                throw py::value_error("column path '" + path + "' collides with another column at '" +
                                      path.substr(0, dot) + "'");
            }
            if (leaf) break;
            node = &*it;
            begin = dot + 1;
        }
    }
    return root;
}

void write_data(std::string &out, const DataNode &layout, const std::vector<Column> &columns, size_t row) {
    out += '{';
    write_members(out, layout, columns, row);
    out += '}';
}

}  // namespace iotstream_native
