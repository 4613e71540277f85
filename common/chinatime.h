/*
 * China Standard Time, the one home for its offset (issue 18): UTC+8 all
 * year, no daylight saving. Dates in CAC filings, ages from resident ID
 * numbers and the dates people read in reports are Chinese dates.
 */
#ifndef BG_CHINATIME_H
#define BG_CHINATIME_H

#include <stdint.h>
#include <time.h>

#define BG_CHINA_OFFSET_S (8 * 3600) /* seconds east of UTC */

/* The calendar date and time in China at UTC_MS (ms since the epoch) into
 * *TM (as gmtime_r fills it). 0, or -1 when the time cannot be represented. */
int bg_china_tm(int64_t utc_ms, struct tm *tm);

/* The date in China at UTC_MS as the number YYYYMMDD, 99991231 when the time
 * cannot be represented. */
uint32_t bg_china_yyyymmdd(int64_t utc_ms);

#endif
