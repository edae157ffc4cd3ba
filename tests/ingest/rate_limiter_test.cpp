// The per-device token bucket: rate and burst hold, overrides apply, memory stays bounded and
// evicting idle buckets never changes what a device is allowed.
#include <gtest/gtest.h>

#include <string>

#include "ingest/rate_limiter.hpp"

using iotstream::DeviceRateLimiter;
using iotstream::RateLimits;


TEST(RateLimiter, BurstIsGrantedAtOnceThenRetryAfterNamesTheNextToken) {
    DeviceRateLimiter l(RateLimits{10, 20}, {}, 1000);
    auto grant = l.take("d1", 50, 0);
    EXPECT_EQ(grant.granted, 20u);
    EXPECT_EQ(grant.retry_after_ms, 100);  // one token at 10/s
    EXPECT_EQ(l.take("d1", 1, 99).granted, 0u);
    EXPECT_EQ(l.take("d1", 1, 100).granted, 1u);
    // Other devices have their own buckets.
    EXPECT_EQ(l.take("d2", 20, 100).granted, 20u);
}

TEST(RateLimiter, SustainedRateHoldsOverTenSeconds) {
    DeviceRateLimiter l(RateLimits{100, 10}, {}, 1000);
    uint64_t granted = 0;
    // A device asking every millisecond for 10 simulated seconds gets burst + rate * 10 s.
    for (int64_t now = 0; now < 10000; ++now) granted += l.take("busy", 1, now).granted;
    EXPECT_NEAR(static_cast<double>(granted), 10 + 100 * 9.999, 2);
    // Asking for more per call changes nothing.
    DeviceRateLimiter greedy(RateLimits{100, 10}, {}, 1000);
    granted = 0;
    for (int64_t now = 0; now < 10000; now += 7) granted += greedy.take("busy", 1000, now).granted;
    EXPECT_NEAR(static_cast<double>(granted), 10 + 100 * 9.996, 2);
}

TEST(RateLimiter, PerDeviceOverridesApply) {
    DeviceRateLimiter l(RateLimits{1, 2}, {{"vip", RateLimits{1000, 500}}}, 1000);
    EXPECT_EQ(l.take("vip", 1000, 0).granted, 500u);
    EXPECT_EQ(l.take("vip", 1000, 100).granted, 100u);
    EXPECT_EQ(l.take("plain", 1000, 0).granted, 2u);
    EXPECT_EQ(l.limits_for("vip").rate, 1000);
    EXPECT_EQ(l.limits_for("plain").burst, 2);
}

TEST(RateLimiter, GivenBackTokensAreUsableAgain) {
    DeviceRateLimiter l(RateLimits{1, 5}, {}, 1000);
    EXPECT_EQ(l.take("d", 5, 0).granted, 5u);
    l.give_back("d", 3);
    EXPECT_EQ(l.take("d", 5, 0).granted, 3u);
}

TEST(RateLimiter, RefilledBucketsAreEvictedAndRefillingOnesKept) {
    DeviceRateLimiter l(RateLimits{10, 20}, {}, 100000);
    for (int i = 0; i < 1000; ++i) l.take("old-" + std::to_string(i), 1, 0);
    l.take("drained", 20, 0);
    EXPECT_EQ(l.tracked(), 1001u);
    // 1.1 s later every "old" bucket has refilled (0.1 s), "drained" has 11 of 20 tokens.
    for (int i = 0; i < 1000; ++i) l.take("new-" + std::to_string(i), 1, 1100);
    EXPECT_EQ(l.evicted_idle(), 1000u);
    EXPECT_EQ(l.take("drained", 20, 1100).granted, 11u);  // not forgiven by a sweep
    EXPECT_EQ(l.tracked(), 1001u);
    EXPECT_EQ(l.evicted_early(), 0u);
}

TEST(RateLimiter, MemoryIsBoundedByMaxDevices) {
    DeviceRateLimiter l(RateLimits{1, 5}, {}, 6400);
    for (int i = 0; i < 100000; ++i) l.take("churn-" + std::to_string(i), 1, 0);
    EXPECT_LE(l.tracked(), 6400u);
    EXPECT_GT(l.evicted_early(), 0u);
    EXPECT_LE(l.memory_bytes(), 6400u * 16 * 3);
}

TEST(RateLimiter, AMillionDevicesFitInAboutThirtyTwoMegabytes) {
    DeviceRateLimiter l(RateLimits{10, 20}, {}, 1000000);
    for (int i = 0; i < 1000000; ++i) l.take("sensor_" + std::to_string(i), 1, 0);
    EXPECT_EQ(l.tracked(), 1000000u);
    EXPECT_EQ(l.evicted_early(), 0u);
    EXPECT_LE(l.memory_bytes(), size_t{33554432});
}
