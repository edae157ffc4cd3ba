// Dead letters cut to fit the DLQ, and which librdkafka errors count as a refused record.
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "pipeline/dead_letter.hpp"

namespace iotstream {
namespace {

std::map<std::string, std::string> headers_of(const DeadLetter &letter) {
    std::map<std::string, std::string> out;
    for (const auto &[name, value] : letter.headers()) out.emplace(name, value);
    return out;
}

size_t size_of(const DeadLetter &letter) {
    size_t total = letter.key().size() + letter.value().size();
    for (const auto &[name, value] : letter.headers()) total += name.size() + value.size();
    return total;
}

constexpr size_t kLimit = 65536;

TEST(DeadLetter, ASmallRecordIsKeptWhole) {
    DeadLetter letter("s1", "{\"a\":1}", {{dead_letter_header::reason, "not_json"}}, kLimit);
    EXPECT_FALSE(letter.truncated());
    EXPECT_EQ(letter.key(), "s1");
    EXPECT_EQ(letter.value(), "{\"a\":1}");
    EXPECT_EQ(headers_of(letter), (std::map<std::string, std::string>{{"iotstream.reason", "not_json"}}));
}

TEST(DeadLetter, ALargeValueKeepsAPrefixAndNamesItsOriginal) {
    const std::string value(1'000'000, 'x');
    DeadLetter letter("big", value, {{dead_letter_header::reason, "too_large"}}, kLimit);
    EXPECT_TRUE(letter.truncated());
    EXPECT_LE(size_of(letter), kLimit);
    EXPECT_GT(letter.value().size(), kLimit / 2);
    EXPECT_EQ(value.substr(0, letter.value().size()), letter.value());
    auto headers = headers_of(letter);
    EXPECT_EQ(headers["iotstream.truncated"], "true");
    EXPECT_EQ(headers["iotstream.original_size"], "1000000");
    EXPECT_EQ(headers["iotstream.original_sha256"], sha256_hex(value));
    EXPECT_EQ(headers["iotstream.reason"], "too_large");
    EXPECT_EQ(headers.count("iotstream.original_key_size"), 0u);
}

TEST(DeadLetter, AHugeKeyIsCutToAQuarterOfTheLimit) {
    const std::string key(200'000, 'k');
    DeadLetter letter(key, "v", {}, kLimit);
    EXPECT_TRUE(letter.truncated());
    EXPECT_EQ(letter.key().size(), kLimit / 4);
    EXPECT_EQ(headers_of(letter)["iotstream.original_key_size"], "200000");
    EXPECT_EQ(letter.value(), "v");
    EXPECT_LE(size_of(letter), kLimit);
}

TEST(DeadLetter, DroppingTheValueKeepsTheFirstCutsHeaders) {
    const std::string value(1'000'000, 'x');
    DeadLetter first("big", value, {{dead_letter_header::reason, "too_large"}}, kLimit);
    std::vector<KafkaHeader> headers(first.headers().begin(), first.headers().end());
    DeadLetter second(first.key(), first.value(), headers, kLimit, /*drop_value=*/true);
    EXPECT_TRUE(second.value().empty());
    EXPECT_EQ(headers_of(second)["iotstream.original_size"], "1000000");  // the original's, not the prefix's
    EXPECT_EQ(second.headers().size(), first.headers().size());
}

TEST(DeadLetter, LongHeaderValuesAreCutOnACharacterBoundary) {
    std::string detail(1023, 'd');
    detail += "\xC3\xA9\xC3\xA9";  // é é: the cut at 1024 falls inside the first
    DeadLetter letter("k", "v", {{dead_letter_header::detail, detail}}, kLimit);
    EXPECT_EQ(headers_of(letter)["iotstream.detail"], std::string(1023, 'd'));
}

TEST(DeadLetter, Sha256IsTheStandardOne) {
    EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(OutputFailure, RecordErrorsAreRefusedClusterErrorsTransientTheRestFatal) {
    EXPECT_EQ(classify_output_failure(RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE), OutputFailure::refused);
    EXPECT_EQ(classify_output_failure(RD_KAFKA_RESP_ERR_INVALID_RECORD), OutputFailure::refused);
    EXPECT_EQ(classify_output_failure(RD_KAFKA_RESP_ERR__MSG_TIMED_OUT), OutputFailure::transient);
    EXPECT_EQ(classify_output_failure(RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS), OutputFailure::transient);
    EXPECT_EQ(classify_output_failure(RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED), OutputFailure::fatal);
    EXPECT_EQ(classify_output_failure(RD_KAFKA_RESP_ERR__PURGE_QUEUE), OutputFailure::fatal);
    EXPECT_EQ(classify_output_failure(RD_KAFKA_RESP_ERR__FATAL), OutputFailure::fatal);
}

}  // namespace
}  // namespace iotstream
