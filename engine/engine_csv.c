/* engine_csv.c: the per-frame log's one CSV format, shared by `cbrnn run`
 * (frames.csv) and `cbrnn-jack --log`, so that a live log and its offline
 * replay compare column by column. Formats into caller buffers only:
 * never prints, never allocates (the plugin's log thread calls it). */
#include <math.h>
#include <stdio.h>

#include "cbrnn/cbrnn_engine.h"

const char *cbrnn_record_csv_header(void)
{
    return "frame,time,loss,persistence_loss,surprise,learning,lr,marker,label,flags\n";
}

/* %.9g keeps every float bit (9 significant digits round-trip a float),
 * so live and offline logs can be compared to any tolerance. */
static int fmt_float(char *buf, int len, float v)
{
    if (isnan(v))
        return snprintf(buf, (size_t)len, ",");
    return snprintf(buf, (size_t)len, ",%.9g", (double)v);
}

int cbrnn_record_csv_row(char *buf, int len, const cbrnn_record *r)
{
    if (!buf || len <= 0 || !r)
        return 0;
    int n = snprintf(buf, (size_t)len, "%lld,%.6f", (long long)r->frame, r->time);
    float f[3] = {r->loss, r->persistence_loss, r->surprise};
    for (int i = 0; i < 3 && n < len; i++)
        n += fmt_float(buf + n, len - n, f[i]);
    if (n < len)
        n += snprintf(buf + n, (size_t)(len - n), ",%d,%.9g,", (int)r->learning, (double)r->lr);
    if (n < len && r->marker >= 0)
        n += snprintf(buf + n, (size_t)(len - n), "%d", (int)r->marker);
    if (n < len)
        n += snprintf(buf + n, (size_t)(len - n), ",");
    if (n < len && r->label >= 0)
        n += snprintf(buf + n, (size_t)(len - n), "%d", (int)r->label);
    if (n < len)
        n += snprintf(buf + n, (size_t)(len - n), ",%u\n", (unsigned)r->flags);
    return n < len ? n : len - 1;
}
