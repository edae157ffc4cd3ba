// plugins/support: FlatIndex against a std::unordered_map model (with forced hash collisions
// and wrap-around), PagedPool reuse, CompactId at and past its inline capacity, JsonWriter
// timestamps at the edges of its fast path.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "../../plugins/support/compact_id.hpp"
#include "../../plugins/support/flat_index.hpp"
#include "../../plugins/support/paged_pool.hpp"
#include "../../plugins/support/plugin_support.hpp"

namespace {

using iotstream::plugin::CompactId;
using iotstream::plugin::FlatIndex;
using iotstream::plugin::JsonWriter;
using iotstream::plugin::PagedPool;

// Slots as a plugin keeps them, with a hash chosen by the test: `collide` maps every id to one
// of a few hashes whose home buckets are the table's last ones, so runs are long and wrap.
struct IndexHarness {
    std::vector<std::string> slot_ids;
    FlatIndex index;
    bool collide = false;

    uint32_t hash(const std::string &id) const {
        uint32_t h = iotstream::plugin::hash_id(id);
        return collide ? UINT32_MAX - (h % 4) : h;
    }
    uint32_t find(const std::string &id) const {
        return index.find(id, hash(id), [this](uint32_t slot) -> const std::string & { return slot_ids[slot]; });
    }
};

void run_against_model(bool collide, uint32_t seed) {
    IndexHarness h;
    h.collide = collide;
    std::unordered_map<std::string, uint32_t> model;
    std::vector<uint32_t> free_slots;
    std::mt19937 rng(seed);
    const int universe = collide ? 40 : 3000;
    for (int step = 0; step < 20000; ++step) {
        std::string id = "s" + std::to_string(rng() % static_cast<uint32_t>(universe));
        auto it = model.find(id);
        ASSERT_EQ(h.find(id), it == model.end() ? FlatIndex::kNotFound : it->second) << "step " << step;
        if (it == model.end()) {
            uint32_t slot;
            if (!free_slots.empty()) {
                slot = free_slots.back();
                free_slots.pop_back();
                h.slot_ids[slot] = id;
            } else {
                slot = static_cast<uint32_t>(h.slot_ids.size());
                h.slot_ids.push_back(id);
            }
            h.index.insert(h.hash(id), slot);
            model.emplace(id, slot);
        } else if (rng() % 2 == 0) {
            h.index.erase(h.hash(id), it->second);
            free_slots.push_back(it->second);
            h.slot_ids[it->second] = "(freed)";
            model.erase(it);
        }
        ASSERT_EQ(h.index.size(), model.size());
    }
    for (const auto &[id, slot] : model) EXPECT_EQ(h.find(id), slot) << id;
}

TEST(FlatIndex, MatchesAMapUnderInsertAndEraseChurn) { run_against_model(false, 1); }

TEST(FlatIndex, MatchesAMapWhenAllHashesCollideAndWrapAround) {
    for (uint32_t seed = 1; seed <= 5; ++seed) run_against_model(true, seed);
}

TEST(FlatIndex, EqualHashesAreTellApartByTheStoredId) {
    IndexHarness h;
    h.slot_ids = {"a", "b"};
    h.index.insert(7, 0);
    h.index.insert(7, 1);
    auto id_of = [&](uint32_t slot) -> const std::string & { return h.slot_ids[slot]; };
    EXPECT_EQ(h.index.find("a", 7, id_of), 0u);
    EXPECT_EQ(h.index.find("b", 7, id_of), 1u);
    EXPECT_EQ(h.index.find("c", 7, id_of), FlatIndex::kNotFound);
    h.index.erase(7, 0);
    EXPECT_EQ(h.index.find("a", 7, id_of), FlatIndex::kNotFound);
    EXPECT_EQ(h.index.find("b", 7, id_of), 1u);
}

TEST(PagedPool, ReusesReleasedNumbersAndNeverMovesObjects) {
    PagedPool<int, 2> pool;  // 4 per page
    std::vector<int *> addresses;
    for (int n = 0; n < 9; ++n) {
        uint32_t number = pool.allocate();
        ASSERT_EQ(number, static_cast<uint32_t>(n));
        pool[number] = n * 10;
        addresses.push_back(&pool[number]);
    }
    pool.release(5);
    pool.release(2);
    EXPECT_EQ(pool.released(), 2u);
    EXPECT_EQ(pool.allocate(), 2u);
    EXPECT_EQ(pool.allocate(), 5u);
    EXPECT_EQ(pool.allocate(), 9u);
    EXPECT_EQ(pool.size(), 10u);
    for (uint32_t n = 0; n < 9; ++n) {
        EXPECT_EQ(&pool[n], addresses[n]);
        EXPECT_EQ(pool[n], static_cast<int>(n) * 10);  // released objects keep their state
    }
}

TEST(CompactId, StoresIdsInlineUpToItsCapacityAndLongerOnesOnTheHeap) {
    for (size_t len : {size_t{0}, size_t{1}, size_t{12}, CompactId::kInlineCapacity,
                       CompactId::kInlineCapacity + 1, size_t{200}}) {
        std::string id(len, 'x');
        for (size_t i = 0; i < len; ++i) id[i] = static_cast<char>('a' + i % 26);
        CompactId stored;
        stored.assign(id);
        EXPECT_EQ(stored.view(), id) << len;
        EXPECT_EQ(stored.on_heap(), len > CompactId::kInlineCapacity) << len;
        EXPECT_TRUE(stored == id);
    }
}

TEST(CompactId, ReassignsAcrossInlineAndHeapAndMoves) {
    const std::string long_a(40, 'a'), long_b(30, 'b'), long_c(50, 'c');
    const std::string with_nul("ab\0cd", 5);
    CompactId id;
    EXPECT_EQ(id.view(), "");
    id.assign(long_a);
    EXPECT_EQ(id.view(), long_a);
    id.assign(long_b);  // shorter: the block is reused
    EXPECT_EQ(id.view(), long_b);
    id.assign(long_c);  // longer than the block: a new one
    EXPECT_EQ(id.view(), long_c);
    id.assign(with_nul);
    EXPECT_FALSE(id.on_heap());
    EXPECT_EQ(id.view(), with_nul);
    id.assign(long_a);
    CompactId moved(std::move(id));
    EXPECT_EQ(moved.view(), long_a);
    EXPECT_EQ(id.view(), "");  // a moved-from id is empty
    CompactId other;
    other.assign("short");
    other = std::move(moved);
    EXPECT_EQ(other.view(), long_a);
}

std::string json_string(std::string_view text) {
    JsonWriter writer;
    writer.string(text);
    return writer.str();
}

// The plugins' records spell escapes as they always have (outputs byte-identical).
TEST(JsonWriter, StringEscapesPinned) {
    EXPECT_EQ(json_string("plain"), "\"plain\"");
    EXPECT_EQ(json_string("say \"hi\" \\"), "\"say \\\"hi\\\" \\\\\"");
    EXPECT_EQ(json_string("\b\f\n\r\t"), "\"\\u0008\\u000c\\u000a\\u000d\\u0009\"");
    EXPECT_EQ(json_string(std::string_view("\0\x1f", 2)), "\"\\u0000\\u001f\"");
    EXPECT_EQ(json_string("\x7f caf\xc3\xa9 bad\xff"), "\"\x7f caf\xc3\xa9 bad\xff\"");
}

std::string iso(int64_t epoch_ms) {
    JsonWriter writer;
    writer.iso8601(epoch_ms);
    return writer.str();
}

TEST(JsonWriter, Iso8601AtTheEdgesOfItsDigitPath) {
    EXPECT_EQ(iso(0), "\"1970-01-01T00:00:00.000Z\"");
    EXPECT_EQ(iso(-1), "\"1969-12-31T23:59:59.999Z\"");
    EXPECT_EQ(iso(1'767'225'600'123), "\"2026-01-01T00:00:00.123Z\"");
    EXPECT_EQ(iso(951'782'400'000), "\"2000-02-29T00:00:00.000Z\"");
    EXPECT_EQ(iso(-62'167'219'200'000), "\"0000-01-01T00:00:00.000Z\"");
    EXPECT_EQ(iso(253'402'300'799'999), "\"9999-12-31T23:59:59.999Z\"");
    EXPECT_EQ(iso(253'402'300'800'000), "\"10000-01-01T00:00:00.000Z\"");  // snprintf path
    EXPECT_EQ(iso(-62'167'219'200'001), "\"-001-12-31T23:59:59.999Z\"");
}

}  // namespace
