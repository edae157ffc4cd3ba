// The ingestion handle behind iots_ingest_t, shared by the C API files that accept one.
#pragma once

#include <memory>

#include "ingest/ingestor.hpp"

struct iots_ingest_s {
    std::unique_ptr<iotstream::Ingestor> ingestor;
};
