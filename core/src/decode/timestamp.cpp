#include "decode/timestamp.hpp"

#include <chrono>
#include <cstring>

namespace iotstream {

namespace {

constexpr int64_t kDaysPer400Years = 146'097;  // 400 * 365 + 97 leap days
constexpr int64_t kDaysFromYear0To1970 = 719'528;

// Days from 0000-01-01 to year-01-01, for 0 <= year. Year 0 is a leap year, so the leap
// years before `year` are the multiples of 4 below it, minus those of 100, plus those of 400.
constexpr int64_t days_before_year(int64_t year) noexcept {
    return 365 * year + (year + 3) / 4 - (year + 99) / 100 + (year + 399) / 400;
}

constexpr int64_t floor_div(int64_t a, int64_t b) noexcept {
    int64_t q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

constexpr unsigned short kDaysBeforeMonth[12] = {0,   31,  59,  90,  120, 151,
                                                 181, 212, 243, 273, 304, 334};

// Reads `count` decimal digits at `p`; false if any is not a digit.
inline bool read_digits(const char *p, int count, unsigned &value) noexcept {
    unsigned v = 0;
    for (int i = 0; i < count; ++i) {
        unsigned digit = static_cast<unsigned char>(p[i]) - unsigned{'0'};
        if (digit > 9) return false;
        v = v * 10 + digit;
    }
    value = v;
    return true;
}

}  // namespace

int64_t days_from_civil(int64_t year, unsigned month, unsigned day) noexcept {
    // Shift negative years by whole 400-year cycles (the calendar repeats exactly) so the
    // leap-year counting below only sees non-negative years.
    int64_t cycle_shift = 0;
    if (year < 0) {
        int64_t cycles = (-year + 399) / 400;
        year += cycles * 400;
        cycle_shift = cycles * kDaysPer400Years;
    }
    int64_t day_of_year = kDaysBeforeMonth[month - 1] + (month > 2 && is_leap_year(year)) +
                          static_cast<int64_t>(day) - 1;
    return days_before_year(year) + day_of_year - kDaysFromYear0To1970 - cycle_shift;
}

CivilDate civil_from_days(int64_t days_since_epoch) noexcept {
    int64_t days_since_year0 = days_since_epoch + kDaysFromYear0To1970;
    int64_t cycles = floor_div(days_since_year0, kDaysPer400Years);
    int64_t day_of_cycle = days_since_year0 - cycles * kDaysPer400Years;  // [0, 146096]
    // 365 days a year overestimates the year by at most one (leap days are fewer than 365).
    int64_t year_of_cycle = day_of_cycle / 365;
    if (days_before_year(year_of_cycle) > day_of_cycle) --year_of_cycle;
    auto day_of_year = static_cast<unsigned>(day_of_cycle - days_before_year(year_of_cycle));
    int64_t year = year_of_cycle + cycles * 400;
    unsigned month = 1;
    while (day_of_year >= days_in_month(year_of_cycle, month)) {
        day_of_year -= days_in_month(year_of_cycle, month);
        ++month;
    }
    return CivilDate{year, month, day_of_year + 1};
}

TimestampParse parse_iso8601_ms(std::string_view text) noexcept {
    // Fixed layout: YYYY-MM-DDTHH:MM:SS is 19 characters.
    const char *p = text.data();
    const size_t n = text.size();
    if (n < 19) return {0, "too short for YYYY-MM-DDTHH:MM:SS"};
    unsigned year, month, day, hour, minute, second;
    if (!read_digits(p, 4, year)) return {0, "year is not four digits"};
    if (p[4] != '-' || p[7] != '-') return {0, "expected YYYY-MM-DD"};
    if (!read_digits(p + 5, 2, month)) return {0, "month is not two digits"};
    if (!read_digits(p + 8, 2, day)) return {0, "day is not two digits"};
    if (p[10] != 'T' && p[10] != ' ' && p[10] != 't')
        return {0, "expected 'T' or ' ' between date and time"};
    if (p[13] != ':' || p[16] != ':') return {0, "expected HH:MM:SS"};
    if (!read_digits(p + 11, 2, hour)) return {0, "hour is not two digits"};
    if (!read_digits(p + 14, 2, minute)) return {0, "minute is not two digits"};
    if (!read_digits(p + 17, 2, second)) return {0, "second is not two digits"};
    if (month < 1 || month > 12) return {0, "month out of range 01-12"};
    if (day < 1 || day > days_in_month(year, month)) return {0, "day out of range for the month"};
    if (hour > 23) return {0, "hour out of range 00-23"};
    if (minute > 59) return {0, "minute out of range 00-59"};
    if (second > 59) return {0, "second out of range 00-59"};

    size_t pos = 19;
    unsigned millis = 0;
    if (pos < n && p[pos] == '.') {
        ++pos;
        size_t digits = 0;
        while (pos < n && static_cast<unsigned char>(p[pos]) - unsigned{'0'} <= 9) {
            // Only the first three digits count: sub-millisecond digits are truncated.
            if (digits < 3) millis = millis * 10 + static_cast<unsigned>(p[pos] - '0');
            ++digits;
            ++pos;
        }
        if (digits == 0) return {0, "expected digits after '.'"};
        if (digits > 9) return {0, "more than 9 fraction digits"};
        for (size_t d = digits; d < 3; ++d) millis *= 10;
    }

    int64_t offset_minutes = 0;
    if (pos < n) {
        char zone = p[pos];
        if (zone == 'Z' || zone == 'z') {
            ++pos;
        } else if (zone == '+' || zone == '-') {
            unsigned offset_hour, offset_minute;
            size_t rest = n - pos - 1;
            const char *q = p + pos + 1;
            bool colon = rest == 5 && q[2] == ':';
            if (!(colon || rest == 4) || !read_digits(q, 2, offset_hour) ||
                !read_digits(q + (colon ? 3 : 2), 2, offset_minute))
                return {0, "bad UTC offset: expected Z, +HH:MM, -HH:MM, +HHMM or -HHMM"};
            if (offset_hour > 23 || offset_minute > 59) return {0, "UTC offset out of range"};
            offset_minutes = static_cast<int64_t>(offset_hour * 60 + offset_minute);
            if (zone == '-') offset_minutes = -offset_minutes;
            pos = n;
        } else {
            return {0, "unexpected characters after the time"};
        }
        if (pos != n) return {0, "unexpected characters after the zone designator"};
    }

    int64_t seconds = days_from_civil(year, month, day) * 86'400 + hour * 3'600 + minute * 60 +
                      second - offset_minutes * 60;
    int64_t epoch_ms = seconds * 1000 + millis;
    // Four-digit years can still leave the range through the UTC offset.
    if (epoch_ms < kMinTimestampMs || epoch_ms > kMaxTimestampMs)
        return {0, "outside years 0000-9999 in UTC"};
    return {epoch_ms, nullptr};
}

namespace {

// `width` decimal digits of `value` (zero-padded) at out[0, width).
void put_digits(char *out, uint64_t value, int width) noexcept {
    for (int i = width - 1; i >= 0; --i) {
        out[i] = static_cast<char>('0' + value % 10);
        value /= 10;
    }
}

// `epoch_units` (units_per_second of them a second) as ISO-8601 UTC with `fraction_digits`
// digits after the seconds. The remainder is taken with %, never as epoch - days * day, which
// overflows near INT64_MIN.
size_t write_iso8601(int64_t epoch_units, int64_t units_per_second, int fraction_digits, char *out) noexcept {
    const int64_t units_per_day = units_per_second * 86'400;
    int64_t days = floor_div(epoch_units, units_per_day);
    int64_t unit_of_day = epoch_units % units_per_day;
    if (unit_of_day < 0) unit_of_day += units_per_day;
    CivilDate date = civil_from_days(days);

    char *w = out;
    auto put2 = [&w](unsigned v) {
        *w++ = static_cast<char>('0' + v / 10);
        *w++ = static_cast<char>('0' + v % 10);
    };
    if (date.year >= 0 && date.year <= 9999) {
        auto y = static_cast<unsigned>(date.year);
        put2(y / 100);
        put2(y % 100);
    } else {
        // ISO-8601 expanded year: sign, then at least four digits.
        *w++ = date.year < 0 ? '-' : '+';
        uint64_t magnitude = date.year < 0 ? static_cast<uint64_t>(-date.year)
                                           : static_cast<uint64_t>(date.year);
        char digits[24];
        int count = 0;
        do {
            digits[count++] = static_cast<char>('0' + magnitude % 10);
            magnitude /= 10;
        } while (magnitude != 0 || count < 4);
        while (count > 0) *w++ = digits[--count];
    }
    const auto second_of_day = static_cast<unsigned>(unit_of_day / units_per_second);
    auto fraction = static_cast<uint64_t>(unit_of_day % units_per_second);
    *w++ = '-';
    put2(date.month);
    *w++ = '-';
    put2(date.day);
    *w++ = 'T';
    put2(second_of_day / 3'600);
    *w++ = ':';
    put2(second_of_day / 60 % 60);
    *w++ = ':';
    put2(second_of_day % 60);
    *w++ = '.';
    put_digits(w, fraction, fraction_digits);
    w += fraction_digits;
    *w++ = 'Z';
    return static_cast<size_t>(w - out);
}

}  // namespace

size_t format_iso8601_utc(int64_t epoch_ms, char *out) noexcept {
    return write_iso8601(epoch_ms, 1'000, 3, out);
}

size_t format_iso8601_utc_us(int64_t epoch_us, char *out) noexcept {
    return write_iso8601(epoch_us, 1'000'000, 6, out);
}

std::string format_iso8601_utc(int64_t epoch_ms) {
    char buffer[kIso8601MaxLength];
    return std::string(buffer, format_iso8601_utc(epoch_ms, buffer));
}

size_t format_now_iso8601(char *out) {
    using namespace std::chrono;
    const int64_t micros = duration_cast<microseconds>(system_clock::now().time_since_epoch()).count();
    int64_t second = micros / 1'000'000;
    auto fraction = static_cast<unsigned>(micros % 1'000'000);
    // The text before the fraction changes once a second: formatted once per thread per second.
    thread_local int64_t cached_second = INT64_MIN;
    thread_local char cached[kIso8601MaxLength];
    if (second != cached_second || micros < 0) {
        format_iso8601_utc_us(micros, out);
        if (micros < 0) return kIso8601NowLength;  // a clock before 1970: not worth a cache
        std::memcpy(cached, out, kIso8601NowLength);
        cached_second = second;
        return kIso8601NowLength;
    }
    std::memcpy(out, cached, 20);  // "YYYY-MM-DDTHH:MM:SS."
    put_digits(out + 20, fraction, 6);
    out[26] = 'Z';
    return kIso8601NowLength;
}

}  // namespace iotstream
