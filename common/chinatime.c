#include "common/chinatime.h"

int bg_china_tm(int64_t utc_ms, struct tm *tm)
{
    /* Floor division: a time before 1970 stays on the right day. */
    int64_t s = utc_ms / 1000 - (utc_ms % 1000 < 0);
    time_t t = (time_t)(s + BG_CHINA_OFFSET_S);
    return gmtime_r(&t, tm) != NULL ? 0 : -1;
}

uint32_t bg_china_yyyymmdd(int64_t utc_ms)
{
    struct tm tm;
    if (bg_china_tm(utc_ms, &tm) != 0)
        return 99991231;
    return (uint32_t)((tm.tm_year + 1900) * 10000 + (tm.tm_mon + 1) * 100 + tm.tm_mday);
}
