/* svg.c — raster and activity plots of a stored run, as standalone SVG.
 *
 * Guarantees:
 * - Well-formed XML (names are escaped), viewable in any browser.
 * - Raster: exactly one <rect> per spike in the window and no other <rect>
 *   (so marks can be counted); sign -1 spikes carry class "n"; sample
 *   boundaries are dashed <line class="sample"> elements; x is virtual time
 *   (labelled in s, ms or us with the tick range in the axis title), y the
 *   neuron index with neuron 0 at the bottom.
 * - The raster streams: spikes go from the prepared statement to the FILE
 *   one at a time, so any number of spikes plots in constant memory.
 * - Activity: one <polyline> per layer and a legend; more than MAX_BINS
 *   ticks are averaged into MAX_BINS bins (spikes per tick stays the unit),
 *   so memory is layers x MAX_BINS doubles whatever the run's length.
 */
#include "traces/store_internal.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_BINS 1000

static const char *const palette[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                      "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};

static void xml_text(FILE *out, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '&': fputs("&amp;", out); break;
        case '<': fputs("&lt;", out); break;
        case '>': fputs("&gt;", out); break;
        case '"': fputs("&quot;", out); break;
        case '\'': fputs("&apos;", out); break;
        default:
            /* control characters are not allowed in XML 1.0 */
            fputc((unsigned char)*s < 0x20 && *s != '\t' && *s != '\n' ? '?' : *s, out);
        }
    }
}

/* 1, 2 or 5 times a power of ten, near span / target. */
static double nice_step(double span, int target)
{
    double raw = span / target;
    if (!(raw > 0))
        return 1;
    double p = pow(10, floor(log10(raw))), f = raw / p;
    return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * p;
}

typedef struct frame {
    double W, H, L, R, T, B; /* canvas and margins */
    double pw, ph;
    int64_t from, to;        /* tick window, inclusive */
    double span;             /* ticks in the window */
    double tick_s;
} frame;

static void frame_init(frame *f, double W, double H, int64_t from, int64_t to, double tick_s)
{
    f->W = W, f->H = H, f->L = 78, f->R = 24, f->T = 48, f->B = 60;
    f->pw = W - f->L - f->R;
    f->ph = H - f->T - f->B;
    f->from = from, f->to = to;
    f->span = (double)(to - from) + 1;
    f->tick_s = tick_s;
}

static double fx(const frame *f, double tick) { return f->L + (tick - (double)f->from) / f->span * f->pw; }

static void svg_open(FILE *out, const frame *f, const char *title)
{
    fprintf(out,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\""
            " font-family=\"sans-serif\" font-size=\"12\">\n<title>",
            f->W, f->H, f->W, f->H);
    xml_text(out, title);
    fprintf(out,
            "</title>\n<style>.ax{stroke:#222;fill:none}.tk{stroke:#222}.gr{stroke:#e4e4e4}"
            ".sample{stroke:#999;stroke-dasharray:4 3}.n{fill:#c0392b}</style>\n"
            "<path d=\"M0 0H%.0fV%.0fH0Z\" fill=\"#fff\"/>\n<text x=\"%.1f\" y=\"26\" text-anchor=\"middle\""
            " font-size=\"15\">",
            f->W, f->H, f->W / 2);
    xml_text(out, title);
    fputs("</text>\n", out);
}

/* The time axis: labels in the unit that suits the window's length. */
static void time_axis(FILE *out, const frame *f)
{
    double span_s = f->span * f->tick_s;
    double scale = span_s >= 1 ? 1 : span_s >= 1e-3 ? 1e-3 : 1e-6;
    const char *unit = span_s >= 1 ? "s" : span_s >= 1e-3 ? "ms" : "us";
    double t0 = (double)f->from * f->tick_s / scale, t1 = ((double)f->to + 1) * f->tick_s / scale;
    double step = nice_step(t1 - t0, 8);
    double y = f->T + f->ph;
    for (double k = ceil(t0 / step - 1e-9); k * step <= t1 + 1e-9 * step; k++) {
        double v = k * step + 0.0, x = fx(f, v * scale / f->tick_s); /* + 0.0: no "-0" label */
        fprintf(out, "<line class=\"gr\" x1=\"%.2f\" y1=\"%.1f\" x2=\"%.2f\" y2=\"%.1f\"/>", x, f->T, x, y);
        fprintf(out, "<line class=\"tk\" x1=\"%.2f\" y1=\"%.1f\" x2=\"%.2f\" y2=\"%.1f\"/>", x, y, x, y + 5);
        fprintf(out, "<text x=\"%.2f\" y=\"%.1f\" text-anchor=\"middle\">%.6g</text>\n", x, y + 18, v);
    }
    fprintf(out,
            "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">virtual time (%s) — ticks %" PRId64 "..%" PRId64
            ", 1 tick = %.6g %s</text>\n",
            f->L + f->pw / 2, f->H - 14, unit, f->from, f->to, f->tick_s / scale, unit);
}

/* A vertical axis from lo to hi (value units), with a rotated title. */
static void value_axis(FILE *out, const frame *f, double hi, bool integer, bool centered, const char *title)
{
    double step = nice_step(hi, 6);
    if (integer && step < 1)
        step = 1;
    for (double v = 0; v <= hi + 1e-9 * step; v += step) {
        if (integer && centered && v >= hi)
            break;
        double y = f->T + f->ph - (centered ? (v + 0.5) : v) / hi * f->ph;
        fprintf(out, "<line class=\"gr\" x1=\"%.1f\" y1=\"%.2f\" x2=\"%.1f\" y2=\"%.2f\"/>", f->L, y, f->L + f->pw, y);
        fprintf(out, "<line class=\"tk\" x1=\"%.1f\" y1=\"%.2f\" x2=\"%.1f\" y2=\"%.2f\"/>", f->L - 5, y, f->L, y);
        fprintf(out, "<text x=\"%.1f\" y=\"%.2f\" text-anchor=\"end\">%.6g</text>\n", f->L - 8, y + 4, v);
    }
    fprintf(out, "<text transform=\"translate(18 %.1f) rotate(-90)\" text-anchor=\"middle\">", f->T + f->ph / 2);
    xml_text(out, title);
    fputs("</text>\n", out);
}

static void frame_axes(FILE *out, const frame *f)
{
    fprintf(out, "<path class=\"ax\" d=\"M%.1f %.1fV%.1fH%.1f\"/>\n", f->L, f->T, f->T + f->ph, f->L + f->pw);
}

static int finish(FILE *out, nesim_error *err)
{
    fputs("</svg>\n", out);
    if (fflush(out) || ferror(out))
        return nesim_fail(err, NESIM_EIO, "writing the SVG failed");
    return NESIM_OK;
}

static int default_window(const nesim_trace_run *r, int64_t last_data_tick, int64_t *from, int64_t *to,
                          const char *path, nesim_error *err)
{
    if (*from == NESIM_TRACE_TICK_MIN || *from < 0)
        *from = 0;
    if (*to == NESIM_TRACE_TICK_MAX) {
        int64_t end = r->virtual_ticks > 0 ? r->virtual_ticks - 1 : 0;
        *to = last_data_tick > end ? last_data_tick : end;
    }
    if (*to < *from)
        return nesim_fail(err, NESIM_EINVAL, "%s: empty tick window %" PRId64 "..%" PRId64, path, *from, *to);
    return NESIM_OK;
}

/* --------------------------------------------------------------- raster */

int nesim_trace_raster_svg(nesim_trace *t, int64_t run, int layer, int64_t from, int64_t to, FILE *out,
                           nesim_error *err)
{
    nesim_trace_run r;
    int rc = nesim_trace_get_run(t, run, &r, err);
    if (rc)
        return rc;
    nesim_trace_layer *layers = NULL;
    nesim_trace_sample_row *samples = NULL;
    nesim_trace_spike_iter *it = NULL;
    size_t nl = 0, ns = 0;
    const nesim_trace_layer *L = NULL;
    if ((rc = nesim_trace_layers(t, run, &layers, &nl, err)))
        goto done;
    for (size_t i = 0; i < nl; i++)
        if (layers[i].idx == layer)
            L = &layers[i];
    if (!L) {
        rc = nesim_fail(err, NESIM_EINVAL, "%s: run %" PRId64 " has no layer %d", t->path, run, layer);
        goto done;
    }
    if (r.record != NESIM_TRACE_SPIKES) {
        rc = nesim_fail(err, NESIM_EINVAL, "%s: run %" PRId64 " stored no spikes (record %s); record with --record spikes",
                        t->path, run, nesim_trace_level_name(r.record));
        goto done;
    }
    if ((rc = default_window(&r, L->last_tick, &from, &to, t->path, err)) ||
        (rc = nesim_trace_samples(t, run, &samples, &ns, err)))
        goto done;
    int64_t count;
    if ((rc = nesim_trace_spike_count(t, run, layer, from, to, &count, err)))
        goto done;

    frame f;
    frame_init(&f, 960, 540, from, to, r.tick_s);
    char title[512];
    snprintf(title, sizeof title, "raster — run %" PRId64 ", layer %d \"%s\" (%" PRId64 " neurons): %" PRId64
             " spikes in ticks %" PRId64 "..%" PRId64, run, layer, L->name, L->neurons, count, from, to);
    svg_open(out, &f, title);
    time_axis(out, &f);
    value_axis(out, &f, (double)L->neurons, true, true, "neuron");
    for (size_t i = 0; i < ns; i++)
        if (samples[i].first_tick > from && samples[i].first_tick <= to) {
            double x = fx(&f, (double)samples[i].first_tick);
            fprintf(out, "<line class=\"sample\" x1=\"%.2f\" y1=\"%.1f\" x2=\"%.2f\" y2=\"%.1f\"/>\n", x, f.T, x,
                    f.T + f.ph);
        }
    frame_axes(out, &f);
    if (!count)
        fprintf(out, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" fill=\"#777\">no spikes in this window</text>\n",
                f.L + f.pw / 2, f.T + f.ph / 2);

    /* marks: a cell per (tick, neuron), shrunk a little when cells are
     * large so neighbours stay apart, and never thinner than 0.8 px */
    double cw = f.pw / f.span, chh = f.ph / (double)L->neurons;
    double mw = cw >= 3 ? 0.8 * cw : cw < 0.8 ? 0.8 : cw;
    double mh = chh >= 3 ? 0.8 * chh : chh < 0.8 ? 0.8 : chh;
    fputs("<g fill=\"#1f3a93\">\n", out);
    if ((rc = nesim_trace_spikes_open(t, run, layer, from, to, &it, err)))
        goto done;
    nesim_trace_spike_rec s;
    bool got;
    while (!(rc = nesim_trace_spikes_next(it, &s, &got, err)) && got) {
        double x = fx(&f, (double)s.tick) + (cw - mw) / 2;
        double y = f.T + f.ph - (double)(s.neuron + 1) * chh + (chh - mh) / 2;
        fprintf(out, s.sign < 0 ? "<rect class=\"n\" x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\"/>\n"
                                : "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\"/>\n",
                x, y, mw, mh);
    }
    if (rc)
        goto done;
    fputs("</g>\n", out);
    rc = finish(out, err);
done:
    nesim_trace_spikes_close(it);
    free(samples);
    nesim_trace_layers_free(layers, nl);
    nesim_trace_run_clear(&r);
    return rc;
}

/* ------------------------------------------------------------- activity */

static int source_rows(nesim_trace *t, int64_t run, const char *table, int64_t *rows, int64_t *max_tick,
                       nesim_error *err)
{
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT count(*), coalesce(max(tick + span - 1), -1) FROM %s WHERE run = ?1", table);
    sqlite3_stmt *st;
    int rc = trace_prepare(t, sql, &st, err);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, run);
    if (sqlite3_step(st) == SQLITE_ROW) {
        *rows = sqlite3_column_int64(st, 0);
        *max_tick = sqlite3_column_int64(st, 1);
    } else {
        rc = trace_sqlite_fail(t, err, "reading activity");
    }
    sqlite3_finalize(st);
    return rc;
}

int nesim_trace_activity_svg(nesim_trace *t, int64_t run, int64_t from, int64_t to, FILE *out, nesim_error *err)
{
    nesim_trace_run r;
    int rc = nesim_trace_get_run(t, run, &r, err);
    if (rc)
        return rc;
    nesim_trace_layer *layers = NULL;
    size_t nl = 0;
    double *bins = NULL;
    int64_t rows = 0, max_tick = -1;
    bool from_spikes = false;
    if ((rc = nesim_trace_layers(t, run, &layers, &nl, err)) ||
        (rc = source_rows(t, run, "activity_blocks", &rows, &max_tick, err)))
        goto done;
    if (!rows) { /* activity not recorded but spikes were: count them instead */
        if ((rc = source_rows(t, run, "spike_groups", &rows, &max_tick, err)))
            goto done;
        from_spikes = rows > 0;
    }
    if (!rows) {
        rc = nesim_fail(err, NESIM_EINVAL,
                        "%s: run %" PRId64 " stored no activity (record %s); record with --record activity or spikes",
                        t->path, run, nesim_trace_level_name(r.record));
        goto done;
    }
    if ((rc = default_window(&r, max_tick, &from, &to, t->path, err)))
        goto done;
    double span = (double)(to - from) + 1;
    int64_t bw = (int64_t)ceil(span / MAX_BINS); /* ticks per bin */
    if (bw < 1)
        bw = 1;
    size_t nb = (size_t)((to - from) / bw + 1);
    if (nl && !(bins = calloc(nl * nb, sizeof *bins))) {
        rc = nesim_fail(err, NESIM_ENOMEM, "out of memory");
        goto done;
    }
    double ymax = 0;
    for (size_t l = 0; l < nl; l++) {
        double *b = bins + l * nb;
        /* spikes per tick: from the activity rows, or counted from the spikes */
        bool got;
        if (from_spikes) {
            nesim_trace_spike_iter *it;
            nesim_trace_spike_rec s;
            if ((rc = nesim_trace_spikes_open(t, run, layers[l].idx, from, to, &it, err)))
                goto done;
            while (!(rc = nesim_trace_spikes_next(it, &s, &got, err)) && got)
                b[(s.tick - from) / bw] += 1;
            nesim_trace_spikes_close(it);
        } else {
            nesim_trace_activity_iter *it;
            nesim_trace_activity_rec a;
            if ((rc = nesim_trace_activity_open(t, run, layers[l].idx, from, to, &it, err)))
                goto done;
            while (!(rc = nesim_trace_activity_next(it, &a, &got, err)) && got)
                b[(a.tick - from) / bw] += (double)a.spikes;
            nesim_trace_activity_close(it);
        }
        if (rc)
            goto done;
        for (size_t k = 0; k < nb; k++) {
            /* compare the room left, never lo + bw: a crafted window may end at INT64_MAX */
            int64_t lo = from + (int64_t)k * bw, hi = to - lo < bw ? to : lo + bw - 1;
            b[k] /= (double)(hi - lo + 1); /* mean spikes per tick in the bin */
            if (b[k] > ymax)
                ymax = b[k];
        }
    }
    /* 5 % headroom so the busiest line stays off the frame */
    double yhi = ymax > 0 ? nice_step(ymax, 6) * ceil(1.05 * ymax / nice_step(ymax, 6)) : 1;

    frame f;
    frame_init(&f, 960, 480, from, to, r.tick_s);
    char title[256], ylabel[96];
    snprintf(title, sizeof title, "activity — run %" PRId64 ": spikes per tick, ticks %" PRId64 "..%" PRId64, run,
             from, to);
    if (bw > 1)
        snprintf(ylabel, sizeof ylabel, "spikes per tick (mean over %" PRId64 "-tick bins)", bw);
    else
        snprintf(ylabel, sizeof ylabel, "spikes per tick");
    svg_open(out, &f, title);
    time_axis(out, &f);
    value_axis(out, &f, yhi, false, false, ylabel);
    frame_axes(out, &f);
    for (size_t l = 0; l < nl; l++) {
        fprintf(out, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.3\" points=\"", palette[l % 10]);
        for (size_t k = 0; k < nb; k++) {
            double tc = (double)from + ((double)k + 0.5) * (double)bw;
            if (tc > (double)to + 0.5)
                tc = (double)to + 0.5;
            fprintf(out, "%s%.2f,%.2f", k ? " " : "", fx(&f, tc), f.T + f.ph - bins[l * nb + k] / yhi * f.ph);
        }
        fputs("\"/>\n", out);
    }
    /* legend, top right inside the plot */
    double lx = f.L + f.pw - 190, ly = f.T + 8;
    fprintf(out, "<g font-size=\"11\"><path d=\"M%.1f %.1fh186v%.1fh-186Z\" fill=\"#fff\" fill-opacity=\"0.85\" stroke=\"#ccc\"/>\n",
            lx, ly, 16.0 * (double)nl + 8);
    for (size_t l = 0; l < nl; l++) {
        double y = ly + 14 + 16.0 * (double)l;
        fprintf(out, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"2\"/>", lx + 8,
                y - 4, lx + 30, y - 4, palette[l % 10]);
        fprintf(out, "<text x=\"%.1f\" y=\"%.1f\">", lx + 36, y);
        xml_text(out, layers[l].name);
        fputs("</text>\n", out);
    }
    fputs("</g>\n", out);
    rc = finish(out, err);
done:
    free(bins);
    nesim_trace_layers_free(layers, nl);
    nesim_trace_run_clear(&r);
    return rc;
}
