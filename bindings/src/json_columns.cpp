// Record values decoded into columns (json_columns.hpp).
#include "json_columns.hpp"

#include <pybind11/numpy.h>

#include <cmath>
#include <limits>

namespace iotstream_native {

void JsonColumns::set(std::string_view name, const Cell &cell) {
    auto it = index_.find(name);
    if (it == index_.end()) {
        it = index_.emplace(std::string(name), columns_.size()).first;
        columns_.push_back(Column{std::string(name), {}});
    }
    std::vector<Cell> &cells = columns_[it->second].cells;
    if (cells.size() > rows_) {
        cells.back() = cell;  // the same key again in this row: the last value wins, as in a dict
        return;
    }
    cells.resize(rows_);  // Missing in the rows before
    cells.push_back(cell);
}

JsonColumns::Cell JsonColumns::text_cell(std::string_view text) {
    Cell cell;
    cell.type = Type::String;
    cell.offset = arena_.size();
    cell.len = static_cast<uint32_t>(text.size());
    arena_.append(text);
    return cell;
}

JsonColumns::Cell JsonColumns::cell_of(simdjson::dom::element element) {
    Cell cell;
    switch (element.type()) {
    case simdjson::dom::element_type::INT64:
        cell.type = Type::Int;
        cell.i = element.get_int64().value_unsafe();
        break;
    case simdjson::dom::element_type::UINT64:
        cell.type = Type::UInt;
        cell.u = element.get_uint64().value_unsafe();
        break;
    case simdjson::dom::element_type::DOUBLE:
        cell.type = Type::Double;
        cell.d = element.get_double().value_unsafe();
        break;
    case simdjson::dom::element_type::BOOL:
        cell.type = Type::Bool;
        cell.i = element.get_bool().value_unsafe() ? 1 : 0;
        break;
    case simdjson::dom::element_type::NULL_VALUE:
        cell.type = Type::Null;
        break;
    case simdjson::dom::element_type::STRING:
        cell = text_cell(element.get_string().value_unsafe());
        break;
    case simdjson::dom::element_type::ARRAY:
    case simdjson::dom::element_type::OBJECT:  // an envelope's non-object sensor_id only
        cell = text_cell(simdjson::minify(element));
        cell.type = Type::Json;
        break;
    }
    return cell;
}

void JsonColumns::flatten(simdjson::dom::object object, std::string &prefix) {
    const size_t base = prefix.size();
    for (auto field : object) {
        prefix.resize(base);
        prefix.append(field.key);
        simdjson::dom::object nested;
        if (field.value.get_object().get(nested) == simdjson::SUCCESS) {
            prefix += '.';
            flatten(nested, prefix);
        } else {
            set(prefix, cell_of(field.value));
        }
    }
    prefix.resize(base);
}

void JsonColumns::add(std::string_view value) {
    simdjson::dom::element doc;
    simdjson::dom::object object;
    if (parser_.parse(value.data(), value.size()).get(doc) != simdjson::SUCCESS ||
        doc.get_object().get(object) != simdjson::SUCCESS) {
        set("value", text_cell(value));
        ++rows_;
        return;
    }
    std::string prefix;
    simdjson::dom::object data;
    simdjson::dom::element sensor_id;
    if (object["data"].get_object().get(data) == simdjson::SUCCESS &&
        object["sensor_id"].get(sensor_id) == simdjson::SUCCESS) {
        set("sensor_id", cell_of(sensor_id));
        flatten(data, prefix);
        for (const char *key : {"timestamp", "message_id"}) {
            simdjson::dom::element field;
            Cell cell;
            cell.type = Type::Null;
            set(key, object[key].get(field) == simdjson::SUCCESS ? cell_of(field) : cell);
        }
    } else {
        flatten(object, prefix);
    }
    ++rows_;
}

py::object JsonColumns::python_str(std::string_view text, Strings *strings) const {
    if (strings) {
        if (auto it = strings->find(text); it != strings->end()) {
            ++string_hits_;
            return it->second;
        }
    }
    PyObject *str = PyUnicode_DecodeUTF8(text.data(), static_cast<Py_ssize_t>(text.size()), "replace");
    if (!str) throw py::error_already_set();
    auto object = py::reinterpret_steal<py::object>(str);
    if (strings && text.size() <= 64) strings->emplace(std::string(text), object);  // ids and names, not long texts
    return object;
}

py::object JsonColumns::python_of(simdjson::dom::element element, Strings *strings) const {
    switch (element.type()) {
    case simdjson::dom::element_type::INT64: return py::int_(element.get_int64().value_unsafe());
    case simdjson::dom::element_type::UINT64: return py::int_(element.get_uint64().value_unsafe());
    case simdjson::dom::element_type::DOUBLE: return py::float_(element.get_double().value_unsafe());
    case simdjson::dom::element_type::BOOL: return py::bool_(element.get_bool().value_unsafe());
    case simdjson::dom::element_type::NULL_VALUE: return py::none();
    case simdjson::dom::element_type::STRING: return python_str(element.get_string().value_unsafe(), strings);
    case simdjson::dom::element_type::ARRAY: {
        py::list list;
        simdjson::dom::array array;
        if (element.get_array().get(array) == simdjson::SUCCESS)
            for (simdjson::dom::element item : array) list.append(python_of(item, strings));
        return list;
    }
    case simdjson::dom::element_type::OBJECT: {
        py::dict dict;
        simdjson::dom::object object;
        if (element.get_object().get(object) == simdjson::SUCCESS)
            for (simdjson::dom::key_value_pair field : object)
                dict[python_str(field.key, strings)] = python_of(field.value, strings);
        return dict;
    }
    }
    return py::none();
}

py::object JsonColumns::python_of(const Cell &cell, Strings *strings) const {
    switch (cell.type) {
    case Type::Missing: return py::float_(std::numeric_limits<double>::quiet_NaN());
    case Type::Null: return py::none();
    case Type::Int: return py::int_(cell.i);
    case Type::UInt: return py::int_(cell.u);
    case Type::Double: return py::float_(cell.d);
    case Type::Bool: return py::bool_(cell.i != 0);
    case Type::String: return python_str(std::string_view(arena_).substr(cell.offset, cell.len), strings);
    case Type::Json: {
        simdjson::dom::element element;
        // Written by simdjson::minify from a parsed value: parses again.
        if (python_parser_.parse(arena_.data() + cell.offset, cell.len).get(element) != simdjson::SUCCESS)
            return py::none();
        return python_of(element, strings);
    }
    }
    return py::none();
}

py::list JsonColumns::to_python() const {
    py::list out;
    Strings strings;
    for (const Column &column : columns_) {
        size_t ints = 0, numbers = 0, bools = 0;
        for (size_t row = 0; row < rows_; ++row) {
            const Type type = row < column.cells.size() ? column.cells[row].type : Type::Missing;
            if (type == Type::Int) ++ints;
            if (type == Type::Int || type == Type::Double || type == Type::Null || type == Type::Missing) ++numbers;
            if (type == Type::Bool) ++bools;
        }
        auto cell_at = [&](size_t row) -> const Cell & {
            static const Cell missing;
            return row < column.cells.size() ? column.cells[row] : missing;
        };
        py::object values;
        if (rows_ > 0 && ints == rows_) {
            py::array_t<int64_t> array(static_cast<py::ssize_t>(rows_));
            int64_t *data = array.mutable_data();
            for (size_t row = 0; row < rows_; ++row) data[row] = cell_at(row).i;
            values = std::move(array);
        } else if (rows_ > 0 && numbers == rows_ && (ints > 0 || [&] {
                       for (size_t row = 0; row < column.cells.size(); ++row)
                           if (column.cells[row].type == Type::Double) return true;
                       return false;
                   }())) {
            py::array_t<double> array(static_cast<py::ssize_t>(rows_));
            double *data = array.mutable_data();
            for (size_t row = 0; row < rows_; ++row) {
                const Cell &cell = cell_at(row);
                data[row] = cell.type == Type::Int      ? static_cast<double>(cell.i)
                            : cell.type == Type::Double ? cell.d
                                                        : std::numeric_limits<double>::quiet_NaN();
            }
            values = std::move(array);
        } else if (rows_ > 0 && bools == rows_) {
            py::array_t<bool> array(static_cast<py::ssize_t>(rows_));
            bool *data = array.mutable_data();
            for (size_t row = 0; row < rows_; ++row) data[row] = cell_at(row).i != 0;
            values = std::move(array);
        } else {
            // Repeated strings (sensor ids, rule names) become one Python object each; a column
            // of unique ones (message ids, timestamps) stops looking them up after a sample.
            py::list list(rows_);
            Strings *cache = &strings;
            string_hits_ = 0;
            for (size_t row = 0; row < rows_; ++row) {
                PyList_SET_ITEM(list.ptr(), static_cast<Py_ssize_t>(row), python_of(cell_at(row), cache).release().ptr());
                if (row == 255 && string_hits_ < 128) cache = nullptr;
            }
            values = std::move(list);
        }
        out.append(py::make_tuple(column.name, values));
    }
    return out;
}

}  // namespace iotstream_native
