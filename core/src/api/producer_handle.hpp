// The producer handle behind iots_producer_t, shared by the C API files that accept one.
#pragma once

#include <memory>

#include "kafka/producer.hpp"

struct iots_producer_s {
    std::unique_ptr<iotstream::Producer> producer;
};
