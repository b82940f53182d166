/* export.c — spikes as text: a listing or CSV on a stream, and the whole
 * run's spikes exported to a CSV or .npy file.
 *
 * Guarantees:
 * - Rows are ordered by (layer, tick, neuron); columns are always
 *   layer, neuron, tick, sign (sign +1 or -1), in CSV and in the .npy's
 *   int64 [n, 4] array alike.
 * - Export streams from the database (constant memory) inside one read
 *   transaction, so the count in the .npy header and the rows written come
 *   from the same snapshot even while another process appends runs.
 * - Export writes a temporary file next to the target and renames it, so no
 *   reader ever sees a partial file; on failure the target is untouched.
 *
 * The .npy is written here rather than through nesim_npy_write: that takes
 * the whole array in memory and has no int64 dtype, while ticks need 64 bits
 * and a run may hold more spikes than fit comfortably in memory.
 */
#include "net/tensor_io.h"
#include "traces/store_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int nesim_trace_spikes_print(nesim_trace *t, int64_t run, int layer, int64_t from, int64_t to, bool csv, FILE *out,
                             nesim_error *err)
{
    nesim_trace_spike_iter *it;
    int rc = nesim_trace_spikes_open(t, run, layer, from, to, &it, err);
    if (rc)
        return rc;
    if (csv)
        fputs("layer,neuron,tick,sign\n", out);
    else
        fprintf(out, "%6s %12s %10s %5s\n", "layer", "tick", "neuron", "sign");
    nesim_trace_spike_rec s;
    bool got;
    int64_t n = 0;
    while (!(rc = nesim_trace_spikes_next(it, &s, &got, err)) && got) {
        if (csv)
            fprintf(out, "%d,%" PRId64 ",%" PRId64 ",%d\n", s.layer, s.neuron, s.tick, s.sign);
        else
            fprintf(out, "%6d %12" PRId64 " %10" PRId64 " %+5d\n", s.layer, s.tick, s.neuron, s.sign);
        n++;
    }
    nesim_trace_spikes_close(it);
    if (!rc && !csv)
        fprintf(out, "(%" PRId64 " spikes)\n", n);
    if (!rc && (fflush(out) || ferror(out)))
        rc = nesim_fail(err, NESIM_EIO, "writing spikes failed");
    return rc;
}

static void put_i64(unsigned char *p, int64_t v)
{
    uint64_t u = (uint64_t)v;
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(u >> (8 * i)); /* little-endian, as '<i8' says */
}

static int write_all(nesim_trace *t, int64_t run, nesim_trace_format fmt, FILE *f, const char *path,
                     nesim_error *err)
{
    int64_t n;
    int rc = nesim_trace_spike_count(t, run, -1, NESIM_TRACE_TICK_MIN, NESIM_TRACE_TICK_MAX, &n, err);
    if (rc)
        return rc;
    if (fmt == NESIM_TRACE_NPY) {
        /* version 1.0 header padded with spaces so preamble + header is a
         * multiple of 64 bytes, as numpy writes it */
        char hdr[192];
        int k = snprintf(hdr, sizeof hdr, "{'descr': '<i8', 'fortran_order': False, 'shape': (%" PRId64 ", 4), }", n);
        size_t total = ((size_t)k + 10 + 1 + 63) / 64 * 64, hlen = total - 10;
        memset(hdr + k, ' ', hlen - 1 - (size_t)k);
        hdr[hlen - 1] = '\n';
        unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(hlen & 0xff),
                                 (unsigned char)(hlen >> 8)};
        fwrite(pre, 1, sizeof pre, f);
        fwrite(hdr, 1, hlen, f);
    } else {
        fputs("layer,neuron,tick,sign\n", f);
    }
    nesim_trace_spike_iter *it;
    if ((rc = nesim_trace_spikes_open(t, run, -1, NESIM_TRACE_TICK_MIN, NESIM_TRACE_TICK_MAX, &it, err)))
        return rc;
    nesim_trace_spike_rec s;
    bool got;
    int64_t written = 0;
    while (!(rc = nesim_trace_spikes_next(it, &s, &got, err)) && got) {
        if (fmt == NESIM_TRACE_NPY) {
            unsigned char row[32];
            put_i64(row, s.layer);
            put_i64(row + 8, s.neuron);
            put_i64(row + 16, s.tick);
            put_i64(row + 24, s.sign);
            fwrite(row, 1, sizeof row, f);
        } else {
            fprintf(f, "%d,%" PRId64 ",%" PRId64 ",%d\n", s.layer, s.neuron, s.tick, s.sign);
        }
        written++;
    }
    nesim_trace_spikes_close(it);
    if (!rc && written != n)
        rc = nesim_fail(err, NESIM_EINVAL, "%s: run %" PRId64 ": spike_groups counts say %" PRId64
                        " spikes but %" PRId64 " were read (corrupt trace)", t->path, run, n, written);
    if (!rc && (fflush(f) || ferror(f)))
        rc = nesim_fail(err, NESIM_EIO, "%s: write failed: %s", path, strerror(errno));
    return rc;
}

int nesim_trace_export(nesim_trace *t, int64_t run, nesim_trace_format fmt, const char *path, nesim_error *err)
{
    int rc = trace_check_run(t, run, err);
    if (rc)
        return rc;
    if (!path || !*path)
        return nesim_fail(err, NESIM_EINVAL, "export: no output file given");
    if (fmt == NESIM_TRACE_SONATA || fmt == NESIM_TRACE_NIR_EVENTS) {
        if (sqlite3_exec(t->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
            return trace_sqlite_fail(t, err, "starting a read transaction");
        rc = trace_export_h5(t, run, fmt, path, err);
        if (!sqlite3_get_autocommit(t->db))
            sqlite3_exec(t->db, "COMMIT", NULL, NULL, NULL);
        return rc;
    }
    size_t len = strlen(path);
    char *tmp = malloc(len + 16);
    if (!tmp)
        return nesim_fail(err, NESIM_ENOMEM, "out of memory");
    snprintf(tmp, len + 16, "%s.tmp-XXXXXX", path);
    /* a device or a pipe (-o /dev/null) is written in place: a temp file renamed over it would replace it */
    int special = nesim_tio_special(path);
    int fd = special ? open(path, O_WRONLY) : mkstemp(tmp);
    if (fd < 0) {
        rc = nesim_fail(err, NESIM_EINVAL, "%s: cannot create: %s", path, strerror(errno));
        free(tmp);
        return rc;
    }
    /* mkstemp makes the file 0600; an export is an ordinary output file */
    if (!special)
        fchmod(fd, 0644);
    FILE *f = fdopen(fd, "wb");
    if (!f) {
        close(fd);
        if (!special)
            unlink(tmp);
        free(tmp);
        return nesim_fail(err, NESIM_EIO, "%s: %s", path, strerror(errno));
    }
    /* one snapshot for the count and the rows */
    if (sqlite3_exec(t->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
        rc = trace_sqlite_fail(t, err, "starting a read transaction");
    if (!rc)
        rc = write_all(t, run, fmt, f, path, err);
    if (!sqlite3_get_autocommit(t->db))
        sqlite3_exec(t->db, "COMMIT", NULL, NULL, NULL);
    if (fclose(f) && !rc)
        rc = nesim_fail(err, NESIM_EIO, "%s: write failed: %s", path, strerror(errno));
    if (!rc && !special && rename(tmp, path))
        rc = nesim_fail(err, NESIM_EIO, "%s: cannot rename into place: %s", path, strerror(errno));
    if (rc && !special)
        unlink(tmp);
    free(tmp);
    return rc;
}
