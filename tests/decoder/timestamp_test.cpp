// Timestamp parsing and formatting, checked against values computed independently (Python's
// datetime, and glibc's timegm over a sweep of dates).
#include <gtest/gtest.h>

#include <ctime>
#include <string>

#include "decode/timestamp.hpp"

using iotstream::format_iso8601_utc;
using iotstream::parse_iso8601_ms;

namespace {

int64_t parse_ok(const std::string &text) {
    auto parsed = parse_iso8601_ms(text);
    EXPECT_EQ(parsed.error, nullptr) << text << ": " << parsed.error;
    return parsed.epoch_ms;
}

std::string parse_error(const std::string &text) {
    auto parsed = parse_iso8601_ms(text);
    return parsed.error == nullptr ? std::string("(accepted)") : std::string(parsed.error);
}

}  // namespace

// Expected values from Python: datetime.fromisoformat(s) (naive taken as UTC), in epoch ms.
TEST(Timestamp, MatchesPythonDatetime) {
    EXPECT_EQ(parse_ok("1970-01-01T00:00:00"), 0);
    EXPECT_EQ(parse_ok("2026-11-26T23:34:43.123456"), 1795736083123);
    EXPECT_EQ(parse_ok("2024-02-29T12:00:00+00:00"), 1709208000000);
    EXPECT_EQ(parse_ok("2000-02-29T23:59:59.999"), 951868799999);
    EXPECT_EQ(parse_ok("2100-03-01T00:00:00"), 4107542400000);
    EXPECT_EQ(parse_ok("2100-02-28T23:59:59"), 4107542399000);
    EXPECT_EQ(parse_ok("1969-12-31T23:59:59.999"), -1);
    EXPECT_EQ(parse_ok("1900-01-01T00:00:00"), -2208988800000);
    EXPECT_EQ(parse_ok("0001-01-01T00:00:00"), -62135596800000);
    EXPECT_EQ(parse_ok("9999-12-31T23:59:59.999"), 253402300799999);
    EXPECT_EQ(parse_ok("2026-03-05T10:15:00+05:30"), 1772685900000);
    EXPECT_EQ(parse_ok("2026-03-05T10:15:00-08:00"), 1772734500000);
    EXPECT_EQ(parse_ok("1970-01-01T00:00:00.5"), 500);
    EXPECT_EQ(parse_ok("2038-01-19T03:14:08"), 2147483648000);
}

TEST(Timestamp, ZoneDesignators) {
    const int64_t utc = parse_ok("2026-03-05T10:15:00");
    EXPECT_EQ(parse_ok("2026-03-05T10:15:00Z"), utc);
    EXPECT_EQ(parse_ok("2026-03-05T10:15:00z"), utc);
    EXPECT_EQ(parse_ok("2026-03-05T10:15:00+00:00"), utc);
    EXPECT_EQ(parse_ok("2026-03-05T10:15:00-00:00"), utc);
    EXPECT_EQ(parse_ok("2026-03-05T10:15:00+0530"), utc - (5 * 60 + 30) * 60'000);
    EXPECT_EQ(parse_ok("2026-03-05T10:15:00+05:30"), utc - (5 * 60 + 30) * 60'000);
    EXPECT_EQ(parse_ok("2026-03-05T10:15:00-0800"), utc + 8 * 3'600'000);
    EXPECT_EQ(parse_ok("2026-03-05 10:15:00"), utc);  // space instead of T
    EXPECT_EQ(parse_ok("2026-03-05T10:15:00.250+01:00"), utc + 250 - 3'600'000);
}

TEST(Timestamp, FractionLengthsTruncateToMilliseconds) {
    const int64_t base = parse_ok("2026-03-05T10:15:00Z");
    EXPECT_EQ(parse_ok("2026-03-05T10:15:00.1Z"), base + 100);
    EXPECT_EQ(parse_ok("2026-03-05T10:15:00.12Z"), base + 120);
    EXPECT_EQ(parse_ok("2026-03-05T10:15:00.123Z"), base + 123);
    EXPECT_EQ(parse_ok("2026-03-05T10:15:00.1239Z"), base + 123);
    EXPECT_EQ(parse_ok("2026-03-05T10:15:00.123999Z"), base + 123);
    EXPECT_EQ(parse_ok("2026-03-05T10:15:00.999999999Z"), base + 999);
    EXPECT_EQ(parse_ok("2026-03-05T10:15:00.000000001"), base);
    // Before 1970 truncation still goes toward the past: .9995 s after -1 s is -1 ms.
    EXPECT_EQ(parse_ok("1969-12-31T23:59:59.9995"), -1);
    EXPECT_EQ(parse_error("2026-03-05T10:15:00.1234567890Z"), "more than 9 fraction digits");
    EXPECT_EQ(parse_error("2026-03-05T10:15:00.Z"), "expected digits after '.'");
}

TEST(Timestamp, ImpossibleDatesAndTimesAreRejected) {
    EXPECT_EQ(parse_error("2026-13-01T00:00:00"), "month out of range 01-12");
    EXPECT_EQ(parse_error("2026-00-01T00:00:00"), "month out of range 01-12");
    EXPECT_EQ(parse_error("2026-02-30T00:00:00"), "day out of range for the month");
    EXPECT_EQ(parse_error("2026-02-29T00:00:00"), "day out of range for the month");
    EXPECT_EQ(parse_error("2100-02-29T00:00:00"), "day out of range for the month");  // not leap
    EXPECT_EQ(parse_ok("2000-02-29T00:00:00"), 951782400000);  // 2000 is (divisible by 400)
    EXPECT_EQ(parse_error("2026-04-31T00:00:00"), "day out of range for the month");
    EXPECT_EQ(parse_error("2026-01-00T00:00:00"), "day out of range for the month");
    EXPECT_EQ(parse_error("2026-01-01T25:00:00"), "hour out of range 00-23");
    EXPECT_EQ(parse_error("2026-01-01T24:00:00"), "hour out of range 00-23");
    EXPECT_EQ(parse_error("2026-01-01T23:60:00"), "minute out of range 00-59");
    EXPECT_EQ(parse_error("2026-01-01T23:59:60"), "second out of range 00-59");
    EXPECT_EQ(parse_error("2026-01-01T00:00:00+24:00"), "UTC offset out of range");
}

TEST(Timestamp, MalformedTextIsRejected) {
    for (const char *text :
         {"", "2026", "2026-01-01", "2026-01-01T00:00", "26-01-01T00:00:00", "2026/01/01T00:00:00",
          "2026-01-01X00:00:00", "2026-01-01T00-00-00", "2026-1-01T00:00:00", "2026-01-01T00:00:0a",
          "2026-01-01T00:00:00 ", "2026-01-01T00:00:00ZZ", "2026-01-01T00:00:00+5",
          "2026-01-01T00:00:00+05:3", "2026-01-01T00:00:00+05:300", "2026-01-01T00:00:00+05-30",
          "2026-01-01T00:00:00UTC", "+2026-01-01T00:00:00", " 2026-01-01T00:00:00"}) {
        EXPECT_NE(parse_error(text), "(accepted)") << '"' << text << '"';
    }
}

// Every day from 1900 through 2200 (both century rules, 1970 and 2100) against glibc's timegm.
TEST(Timestamp, DaySweepMatchesTimegm) {
    for (int year = 1900; year <= 2200; ++year) {
        for (unsigned month = 1; month <= 12; ++month) {
            for (unsigned day = 1; day <= iotstream::days_in_month(year, month); ++day) {
                std::tm tm{};
                tm.tm_year = year - 1900;
                tm.tm_mon = static_cast<int>(month) - 1;
                tm.tm_mday = static_cast<int>(day);
                tm.tm_hour = 13;
                tm.tm_min = 7;
                tm.tm_sec = 42;
                const int64_t expected = static_cast<int64_t>(timegm(&tm)) * 1000 + 321;
                char text[40];
                std::snprintf(text, sizeof text, "%04d-%02u-%02uT13:07:42.321", year, month, day);
                ASSERT_EQ(parse_ok(text), expected) << text;
                // And back: formatting is the exact inverse.
                std::string formatted = format_iso8601_utc(expected);
                ASSERT_EQ(formatted, std::string(text) + "Z");
                auto date = iotstream::civil_from_days(iotstream::days_from_civil(year, month, day));
                ASSERT_EQ(date.year, year);
                ASSERT_EQ(date.month, month);
                ASSERT_EQ(date.day, day);
            }
        }
    }
}

TEST(Timestamp, FormatBoundaries) {
    EXPECT_EQ(format_iso8601_utc(0), "1970-01-01T00:00:00.000Z");
    EXPECT_EQ(format_iso8601_utc(-1), "1969-12-31T23:59:59.999Z");
    EXPECT_EQ(format_iso8601_utc(1795736083123), "2026-11-26T23:34:43.123Z");
    EXPECT_EQ(format_iso8601_utc(4107542400000), "2100-03-01T00:00:00.000Z");
    EXPECT_EQ(format_iso8601_utc(951868799999), "2000-02-29T23:59:59.999Z");
    EXPECT_EQ(format_iso8601_utc(iotstream::kMinTimestampMs), "0000-01-01T00:00:00.000Z");
    EXPECT_EQ(format_iso8601_utc(iotstream::kMaxTimestampMs), "9999-12-31T23:59:59.999Z");
    EXPECT_EQ(format_iso8601_utc(iotstream::kMaxTimestampMs + 1), "+10000-01-01T00:00:00.000Z");
    EXPECT_EQ(format_iso8601_utc(iotstream::kMinTimestampMs - 1), "-0001-12-31T23:59:59.999Z");
    // The extremes of int64 fit the documented maximum length.
    char buffer[iotstream::kIso8601MaxLength];
    EXPECT_LE(format_iso8601_utc(INT64_MIN, buffer), iotstream::kIso8601MaxLength);
    EXPECT_LE(format_iso8601_utc(INT64_MAX, buffer), iotstream::kIso8601MaxLength);
    EXPECT_EQ(parse_ok("0000-01-01T00:00:00"), iotstream::kMinTimestampMs);
}

TEST(Timestamp, ParseFormatRoundTripAcrossMilliseconds) {
    // A stride that is prime to every calendar period visits all sorts of times of day.
    for (int64_t ms = iotstream::kMinTimestampMs; ms <= iotstream::kMaxTimestampMs;
         ms += 77'777'777'777) {
        std::string text = format_iso8601_utc(ms);
        ASSERT_EQ(parse_ok(text), ms) << text;
    }
}

// One range everywhere: the public constants are the years 0000-9999 by the calendar
// arithmetic, the parser refuses a time an offset moves past either end, and each end and
// the millisecond beyond it format as Python's datetime writes them.
TEST(Timestamp, TheDocumentedRangeIsYears0000To9999) {
    EXPECT_EQ(IOTS_MIN_EVENT_TIME_MS, iotstream::days_from_civil(0, 1, 1) * iotstream::kMillisPerDay);
    EXPECT_EQ(IOTS_MAX_EVENT_TIME_MS, iotstream::days_from_civil(10000, 1, 1) * iotstream::kMillisPerDay - 1);
    EXPECT_EQ(parse_ok("9999-12-31T23:59:59.999Z"), IOTS_MAX_EVENT_TIME_MS);
    EXPECT_EQ(parse_ok("0000-01-01T01:00:00.000+01:00"), IOTS_MIN_EVENT_TIME_MS);
    EXPECT_EQ(parse_error("0000-01-01T00:59:59.998+01:00"), "outside years 0000-9999 in UTC");
    EXPECT_EQ(parse_error("0000-01-01T00:00:00+00:01"), "outside years 0000-9999 in UTC");
    EXPECT_EQ(parse_error("9999-12-31T23:59:59.999-00:01"), "outside years 0000-9999 in UTC");
    EXPECT_EQ(parse_ok("9999-12-31T23:59:59.999+00:01"), IOTS_MAX_EVENT_TIME_MS - 60'000);
}

// Microseconds (the envelope's "now"), against Python's datetime.isoformat().
TEST(Timestamp, FormatsMicroseconds) {
    auto us = [](int64_t epoch_us) {
        char buffer[iotstream::kIso8601MaxLength];
        return std::string(buffer, iotstream::format_iso8601_utc_us(epoch_us, buffer));
    };
    EXPECT_EQ(us(1'795'736'083'123'456), "2026-11-26T23:34:43.123456Z");
    EXPECT_EQ(us(1'795'736'084'123'457), "2026-11-26T23:34:44.123457Z");
    EXPECT_EQ(us(946'684'799'000'000), "1999-12-31T23:59:59.000000Z");
    EXPECT_EQ(us(-1), "1969-12-31T23:59:59.999999Z");
    EXPECT_EQ(us(IOTS_MIN_EVENT_TIME_MS * 1000), "0000-01-01T00:00:00.000000Z");
    EXPECT_EQ(us(IOTS_MAX_EVENT_TIME_MS * 1000 + 999), "9999-12-31T23:59:59.999999Z");
    char buffer[iotstream::kIso8601MaxLength];
    EXPECT_LE(iotstream::format_iso8601_utc_us(INT64_MIN, buffer), iotstream::kIso8601MaxLength);
    EXPECT_LE(iotstream::format_iso8601_utc_us(INT64_MAX, buffer), iotstream::kIso8601MaxLength);
}
