// Event timestamps: ISO-8601 text and epoch milliseconds, converted with our own proleptic
// Gregorian arithmetic (no timegm/mktime: those consult the locale and time zone state, are
// slow, and timegm is not standard C++).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "iotstream/plugin.h"  // IOTS_MIN_EVENT_TIME_MS, IOTS_MAX_EVENT_TIME_MS

namespace iotstream {

inline constexpr int64_t kMillisPerDay = 86'400'000;

constexpr bool is_leap_year(int64_t year) noexcept {
    return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}

// 28..31 for month 1..12.
constexpr unsigned days_in_month(int64_t year, unsigned month) noexcept {
    constexpr unsigned char kDays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return month == 2 && is_leap_year(year) ? 29u : kDays[month - 1];
}

// Days from 1970-01-01 to the given proleptic Gregorian date (negative before 1970).
// month 1..12 and day 1..days_in_month are the caller's to validate.
int64_t days_from_civil(int64_t year, unsigned month, unsigned day) noexcept;

struct CivilDate {
    int64_t year;
    unsigned month;  // 1..12
    unsigned day;    // 1..31
};
// The inverse of days_from_civil, for any day count.
CivilDate civil_from_days(int64_t days_since_epoch) noexcept;

// The one range of event times, in epoch milliseconds: years 0000 through 9999, the years
// ISO-8601 text spells with four digits (plugin.h publishes it for plugins). The decoder
// refuses others (text with a UTC offset past either end too), the producer does not send them
// and the window stage trusts it.
inline constexpr int64_t kMinTimestampMs = IOTS_MIN_EVENT_TIME_MS;  // 0000-01-01T00:00:00.000Z
inline constexpr int64_t kMaxTimestampMs = IOTS_MAX_EVENT_TIME_MS;  // 9999-12-31T23:59:59.999Z

struct TimestampParse {
    int64_t epoch_ms;   // valid when error == nullptr
    const char *error;  // nullptr on success, else a static text naming the problem
};

// Parses `YYYY-MM-DD(T| )HH:MM:SS[.f{1,9}][Z|+HH:MM|-HH:MM|+HHMM|-HHMM]` (also lowercase t/z,
// as RFC 3339 allows). No zone designator means UTC: what Python's utcnow().isoformat()
// writes. Sub-millisecond digits are truncated (toward the past). Impossible dates and times
// (month 13, Feb 30, hour 24, second 60) are errors, and so is a time the UTC offset moves
// outside [kMinTimestampMs, kMaxTimestampMs]. Thread-safe, allocation-free.
TimestampParse parse_iso8601_ms(std::string_view text) noexcept;

// Longest text format_iso8601_utc/_us can write (a sign and a nine-digit year).
inline constexpr size_t kIso8601MaxLength = 32;

// Writes "YYYY-MM-DDTHH:MM:SS.mmmZ" (24 characters for years 0000..9999; other years get a
// sign and as many digits as needed) into `out`, without a NUL; returns the length. Any
// int64 is written correctly: no std::chrono clock (nanosecond system_clock overflows past
// year 2262) and no time_t.
size_t format_iso8601_utc(int64_t epoch_ms, char *out) noexcept;
std::string format_iso8601_utc(int64_t epoch_ms);
// The same with microseconds, "YYYY-MM-DDTHH:MM:SS.uuuuuuZ" (27 characters for years
// 0000..9999), as the seed's Python (datetime.isoformat()) wrote the envelope's timestamp.
size_t format_iso8601_utc_us(int64_t epoch_us, char *out) noexcept;

// The current time as format_iso8601_utc_us writes it, e.g. "2026-11-26T23:34:43.123456Z"
// (kIso8601NowLength characters), into `out`; returns the length. The text up to the
// seconds is formatted once per thread per second. Thread-safe.
size_t format_now_iso8601(char *out);
inline constexpr size_t kIso8601NowLength = 27;

}  // namespace iotstream
