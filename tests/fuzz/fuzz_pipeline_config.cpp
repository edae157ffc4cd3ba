// libFuzzer target: the pipeline document parser. Any JSON document must either parse or be
// refused with iotstream::Error (a message naming the key); any other exception (a
// nlohmann type_error from an unchecked access, std::out_of_range, ...) is a bug and aborts.
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "common/error.hpp"
#include "decode/decoder.hpp"
#include "pipeline/pipeline_config.hpp"

using namespace iotstream;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    Json document = Json::parse(data, data + size, nullptr, /*allow_exceptions=*/false);
    if (document.is_discarded()) return 0;  // the JSON parser is not what is tested here
    try {
        PipelineConfig config = PipelineConfig::from_json(document);
        // A parsed config keeps its documented invariants.
        if (config.max_batch == 0 || config.commit_interval_ms <= 0 || config.input_topics.empty()) {
            std::fprintf(stderr, "fuzz_pipeline_config: accepted an invalid config: %s\n",
                         document.dump().c_str());
            std::abort();
        }
        // The sections other parsers read: the decoder schema and the client configs.
        DecoderSchema::from_json(config.decoder);
        client_config(config.producer, config.kafka, "producer");
        client_config(config.consumer, config.kafka, "consumer");
    } catch (const Error &e) {
        if (std::string_view(e.what()).empty()) {
            std::fprintf(stderr, "fuzz_pipeline_config: a refusal without a message\n");
            std::abort();
        }
    }
    return 0;
}
