// The batch columns of a fixed list of numeric fields, looked up by name once at create() and
// bound to each batch's column pointers in process(): one place for what every stage needs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "iotstream/plugin.h"
#include "plugin_support.hpp"

namespace iotstream::plugin {

template <size_t N>
class FieldColumns {
public:
    // Looks the names up in the decoder schema; returns those it lacks (they read as absent).
    std::vector<const char *> resolve(const iots_host_api_t *host, iots_host_ctx_t *ctx,
                                      const char *const (&names)[N]) {
        std::vector<const char *> missing;
        for (size_t f = 0; f < N; ++f) {
            names_[f] = names[f];
            indexes_[f] = host->field_index(ctx, names[f]);
            if (indexes_[f] < 0) missing.push_back(names[f]);
        }
        return missing;
    }

    // This batch's column of every field; nullptr for a field the schema lacks.
    void bind(const iots_batch_view_t *batch, const double *(&columns)[N]) const {
        for (size_t f = 0; f < N; ++f) {
            const int index = indexes_[f];
            if (index >= 0 && static_cast<uint32_t>(index) >= batch->field_count)
                throw PluginError(std::string("field '") + names_[f] + "' column " + std::to_string(index) +
                                  " is not in the batch");
            columns[f] = index >= 0 ? batch->fields[index] : nullptr;
        }
    }

private:
    const char *names_[N] = {};
    int indexes_[N] = {};
};

}  // namespace iotstream::plugin
