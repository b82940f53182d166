/* cmd_trace.c — `nesim trace ...`: inspect a trace database. Parses the
 * arguments and calls the library's renderers (traces/store.h), which the
 * tests call too.
 *
 * Guarantees: every failure is one line on stderr, "nesim trace: ...";
 * exit status 2 for bad input (not SQLite, another schema version, missing
 * run or layer, bad options), 1 for runtime failures, 0 otherwise. A file
 * written with -o is complete or absent: a failed plot removes it. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "traces/store.h"

static const char usage[] =
    "usage: nesim trace <command> DB [options]   (nesim trace <command> --help)\n"
    "\n"
    "Inspects a trace database written by `nesim run --trace DB`.\n"
    "\n"
    "commands:\n"
    "  runs DB                        list the runs\n"
    "  show DB [--run N] [--json]     a run's report, rebuilt from the database alone\n"
    "  spikes DB --layer L            a layer's spikes (--run N, --from T, --to T, --csv)\n"
    "  raster DB --layer L -o F.svg   raster plot of a layer (--run N, --from T, --to T)\n"
    "  activity DB -o F.svg           spikes per tick of every layer (--run N, --from T, --to T)\n"
    "  export DB --format csv|npy|sonata|nir-events -o FILE   every spike of a run (--run N)\n"
    "  diff DB RUN_A RUN_B [--json]   per layer differences in spikes, SOPs and energy\n"
    "  upgrade DB                     convert a trace of an older schema version in place\n"
    "\n"
    "--run defaults to the last run; --layer takes a name or an index; ticks\n"
    "are virtual-time ticks, --from and --to inclusive.\n";

/* What each command accepts, and its help. */
enum { O_RUN = 1, O_LAYER = 2, O_WINDOW = 4, O_CSV = 8, O_JSON = 16, O_OUT = 32, O_FORMAT = 64 };

typedef struct command {
    const char *name;
    int opts;
    int positional; /* after DB */
    const char *help;
} command;

static const command commands[] = {
    {"runs", 0, 0,
     "usage: nesim trace runs DB\n\n"
     "Lists the runs in DB: id, status (running | complete | failed | interrupted),\n"
     "kind, record level, start time (UTC), samples, virtual ticks, spikes, spec.\n"
     "A run still 'running' after its process ended was killed.\n"},
    {"show", O_RUN | O_JSON, 0,
     "usage: nesim trace show DB [--run N] [--json]\n\n"
     "Prints the report of a run from the database alone: the run's spec, hash,\n"
     "chip, seed, tick and times; per layer spikes, synaptic operations (SOPs),\n"
     "first and last spike tick, metrics and energy; totals.\n\n"
     "  --run N    the run (default: the last one)\n"
     "  --json     one JSON object (layer keys as `nesim run --json`)\n"},
    {"spikes", O_RUN | O_LAYER | O_WINDOW | O_CSV, 0,
     "usage: nesim trace spikes DB --layer L [--run N] [--from T] [--to T] [--csv]\n\n"
     "Prints the spikes of a layer ordered by tick and neuron.\n\n"
     "  --layer L  layer name or index\n"
     "  --run N    the run (default: the last one)\n"
     "  --from T   first tick (inclusive; default 0)\n"
     "  --to T     last tick (inclusive; default: the end)\n"
     "  --csv      CSV: layer,neuron,tick,sign\n"},
    {"raster", O_RUN | O_LAYER | O_WINDOW | O_OUT, 0,
     "usage: nesim trace raster DB --layer L -o FILE.svg [--run N] [--from T] [--to T]\n\n"
     "Writes a raster plot of a layer as SVG: virtual time across, neuron index up,\n"
     "one mark per spike (sign -1 in red), sample boundaries as dashed lines.\n\n"
     "  --layer L     layer name or index\n"
     "  -o, --output  the SVG file (default: standard output)\n"
     "  --run N       the run (default: the last one)\n"
     "  --from T      first tick (inclusive; default 0)\n"
     "  --to T        last tick (inclusive; default: the end of the run)\n"},
    {"activity", O_RUN | O_WINDOW | O_OUT, 0,
     "usage: nesim trace activity DB -o FILE.svg [--run N] [--from T] [--to T]\n\n"
     "Writes spikes per tick of every layer as SVG, one line per layer (long runs are\n"
     "averaged into 1000 bins).\n\n"
     "  -o, --output  the SVG file (default: standard output)\n"
     "  --run N       the run (default: the last one)\n"
     "  --from T      first tick (inclusive; default 0)\n"
     "  --to T        last tick (inclusive; default: the end of the run)\n"},
    {"export", O_RUN | O_OUT | O_FORMAT, 0,
     "usage: nesim trace export DB --format csv|npy|sonata|nir-events -o FILE [--run N]\n\n"
     "Writes every spike of a run, ordered by layer, tick and neuron: CSV with the\n"
     "columns layer,neuron,tick,sign, or .npy int64 [n, 4] of (layer, neuron, tick,\n"
     "sign); or HDF5 other tools read: sonata (a SONATA spike report,\n"
     "/spikes/<layer>/timestamps in ms and node_ids, sorted by time: NEST, NEURON,\n"
     "BMTK) or nir-events (NIR's EventData per layer and input sample: idx, time in\n"
     "s, n_neurons, t_max). The format defaults to the file's extension (.csv,\n"
     ".npy; .h5 is sonata).\n\n"
     "  -o, --output  the file (required)\n"
     "  --format F    csv, npy, sonata or nir-events\n"
     "  --run N       the run (default: the last one)\n"},
    {"diff", O_JSON, 2,
     "usage: nesim trace diff DB RUN_A RUN_B [--json]\n\n"
     "Compares two runs: the attributes that differ (spec, weights, chip, seed, ...),\n"
     "then per layer spikes, synaptic operations and energy of both with the\n"
     "difference, whether the spike trains are identical (when both stored spikes),\n"
     "and energy per term.\n"},
    {"upgrade", 0, 0,
     "usage: nesim trace upgrade DB\n\n"
     "Converts a trace written by an older nesim (schema version 1) to the current\n"
     "schema in place, in one transaction: the per-sample coding of each layer moves\n"
     "to its own table (see traces/SCHEMA.md). A current trace is left as it is.\n"},
};

typedef struct opts {
    const command *cmd;
    const char *db, *layer, *out, *format;
    const char *pos[2];
    int n_pos;
    uint64_t run, from, to;
    bool has_run, has_from, has_to, csv, json;
} opts;

static int parse(int argc, char **argv, opts *o, nesim_error *err)
{
    memset(o, 0, sizeof *o);
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        if (!strcmp(argv[1], commands[i].name))
            o->cmd = &commands[i];
    if (!o->cmd)
        return nesim_fail(err, NESIM_EINVAL, "unknown command '%s' (see nesim trace --help)", argv[1]);
    int allow = o->cmd->opts, rc = NESIM_OK;
    for (int i = 2; i < argc && !rc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h"))
            return -1;
        if ((allow & O_RUN) && !strcmp(a, "--run")) {
            rc = cli_u64(a, v, &o->run, err), o->has_run = true, i++;
        } else if ((allow & O_WINDOW) && (!strcmp(a, "--from") || !strcmp(a, "--to"))) {
            bool from = a[2] == 'f';
            rc = cli_u64(a, v, from ? &o->from : &o->to, err), i++;
            *(from ? &o->has_from : &o->has_to) = true;
        } else if ((allow & O_LAYER) && !strcmp(a, "--layer")) {
            if (!v)
                rc = nesim_fail(err, NESIM_EINVAL, "--layer: expected a layer name or index");
            o->layer = v, i++;
        } else if ((allow & O_OUT) && (!strcmp(a, "-o") || !strcmp(a, "--output"))) {
            if (!v)
                rc = nesim_fail(err, NESIM_EINVAL, "%s: expected a file name", a);
            o->out = v, i++;
        } else if ((allow & O_FORMAT) && !strcmp(a, "--format")) {
            if (!v)
                rc = nesim_fail(err, NESIM_EINVAL, "--format: expected csv or npy");
            o->format = v, i++;
        } else if ((allow & O_CSV) && !strcmp(a, "--csv")) {
            o->csv = true;
        } else if ((allow & O_JSON) && !strcmp(a, "--json")) {
            o->json = true;
        } else if (a[0] == '-' && a[1]) {
            rc = nesim_fail(err, NESIM_EINVAL, "unexpected option '%s' (see nesim trace %s --help)", a, o->cmd->name);
        } else if (!o->db) {
            o->db = a;
        } else if (o->n_pos < o->cmd->positional) {
            o->pos[o->n_pos++] = a;
        } else {
            rc = nesim_fail(err, NESIM_EINVAL, "unexpected argument '%s' (see nesim trace %s --help)", a,
                            o->cmd->name);
        }
    }
    if (rc)
        return rc;
    if (!o->db)
        return nesim_fail(err, NESIM_EINVAL, "which trace? nesim trace %s DB (see nesim trace %s --help)",
                          o->cmd->name, o->cmd->name);
    if (o->n_pos < o->cmd->positional)
        return nesim_fail(err, NESIM_EINVAL, "nesim trace diff needs two runs: DB RUN_A RUN_B");
    if ((allow & O_LAYER) && !o->layer)
        return nesim_fail(err, NESIM_EINVAL, "which layer? give --layer NAME or --layer INDEX");
    if (o->has_from && o->has_to && o->from > o->to)
        return nesim_fail(err, NESIM_EINVAL, "--from %llu is after --to %llu", (unsigned long long)o->from,
                          (unsigned long long)o->to);
    if ((o->has_from && o->from > INT64_MAX) || (o->has_to && o->to > INT64_MAX))
        return nesim_fail(err, NESIM_EINVAL, "--from/--to: tick out of range");
    if (o->has_run && (o->run == 0 || o->run > INT64_MAX))
        return nesim_fail(err, NESIM_EINVAL, "--run: run ids start at 1");
    if ((allow & O_FORMAT) && !o->out)
        return nesim_fail(err, NESIM_EINVAL, "export needs -o FILE");
    return NESIM_OK;
}

static int run_id(const char *s, int64_t *id, nesim_error *err)
{
    uint64_t v;
    int rc = cli_u64("run", s, &v, err);
    if (!rc && (v == 0 || v > INT64_MAX))
        rc = nesim_fail(err, NESIM_EINVAL, "run: run ids start at 1, got '%s'", s);
    *id = (int64_t)v;
    return rc;
}

/* Opens -o (or stdout); a failed render removes the partial file. */
static int render_to(const opts *o, int (*fn)(nesim_trace *, int64_t, int, const opts *, FILE *, nesim_error *),
                     nesim_trace *t, int64_t run, int layer, nesim_error *err)
{
    bool to_stdout = !o->out || !strcmp(o->out, "-");
    FILE *f = to_stdout ? stdout : fopen(o->out, "w");
    if (!f)
        return nesim_fail(err, NESIM_EINVAL, "%s: cannot write: %s", o->out, strerror(errno));
    /* only a regular file is ours to remove: -o /dev/null (a device, a pipe) stays */
    struct stat st;
    int regular = !to_stdout && fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode);
    int rc = fn(t, run, layer, o, f, err);
    if (!to_stdout) {
        if (fclose(f) && !rc)
            rc = nesim_fail(err, NESIM_EIO, "%s: write failed", o->out);
        if (rc && regular)
            remove(o->out);
    }
    return rc;
}

static int64_t win_from(const opts *o) { return o->has_from ? (int64_t)o->from : NESIM_TRACE_TICK_MIN; }
static int64_t win_to(const opts *o) { return o->has_to ? (int64_t)o->to : NESIM_TRACE_TICK_MAX; }

static int do_raster(nesim_trace *t, int64_t run, int layer, const opts *o, FILE *f, nesim_error *err)
{
    return nesim_trace_raster_svg(t, run, layer, win_from(o), win_to(o), f, err);
}

static int do_activity(nesim_trace *t, int64_t run, int layer, const opts *o, FILE *f, nesim_error *err)
{
    return nesim_trace_activity_svg(t, run, win_from(o), win_to(o), f, err);
}

static int dispatch(const opts *o, nesim_error *err)
{
    if (!strcmp(o->cmd->name, "upgrade")) {
        int from;
        int rc = nesim_trace_upgrade(o->db, &from, err);
        if (!rc)
            printf(from == NESIM_TRACE_SCHEMA_VERSION ? "%s: already schema version %d\n"
                                                      : "%s: upgraded to schema version %d\n",
                   o->db, NESIM_TRACE_SCHEMA_VERSION);
        return rc;
    }
    nesim_trace *t;
    int rc = nesim_trace_open(o->db, NESIM_TRACE_READ, &t, err);
    if (rc)
        return rc;
    if (nesim_trace_wal_unread(t))
        fprintf(stderr, "nesim trace: note: %s is in a read-only place: read as immutable, so the commits still in its "
                        "-wal file (a run being written, or killed) are not seen\n", o->db);
    const char *c = o->cmd->name;
    int64_t run = (int64_t)o->run;
    int layer = -1;
    if (!strcmp(c, "runs")) {
        rc = nesim_trace_list(t, stdout, err);
        goto done;
    }
    if (!strcmp(c, "diff")) {
        int64_t a, b;
        if (!(rc = run_id(o->pos[0], &a, err)) && !(rc = run_id(o->pos[1], &b, err)))
            rc = nesim_trace_diff(t, a, b, stdout, o->json, err);
        goto done;
    }
    if (!o->has_run && (rc = nesim_trace_last_run(t, &run, err)))
        goto done;
    if (o->layer && (rc = nesim_trace_find_layer(t, run, o->layer, &layer, err)))
        goto done;
    if (!strcmp(c, "show")) {
        rc = nesim_trace_report(t, run, stdout, o->json, err);
    } else if (!strcmp(c, "spikes")) {
        rc = nesim_trace_spikes_print(t, run, layer, win_from(o), win_to(o), o->csv, stdout, err);
    } else if (!strcmp(c, "raster")) {
        rc = render_to(o, do_raster, t, run, layer, err);
    } else if (!strcmp(c, "activity")) {
        rc = render_to(o, do_activity, t, run, layer, err);
    } else { /* export */
        nesim_trace_format fmt;
        const char *fs = o->format;
        size_t n = strlen(o->out);
        if (!fs && n > 4 && (!strcmp(o->out + n - 4, ".npy") || !strcmp(o->out + n - 4, ".csv")))
            fs = o->out + n - 3;
        if (!fs && n > 3 && !strcmp(o->out + n - 3, ".h5"))
            fs = "sonata";
        if (!fs)
            rc = nesim_fail(err, NESIM_EINVAL,
                            "--format: give csv, npy, sonata or nir-events (the file name does not say)");
        else if (!(rc = nesim_trace_format_parse(fs, &fmt, err)))
            rc = nesim_trace_export(t, run, fmt, o->out, err);
    }
done:
    nesim_trace_close(t);
    return rc;
}

int cmd_trace(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_BAD : CLI_OK;
    }
    nesim_error err = {0};
    opts o;
    int rc = parse(argc, argv, &o, &err);
    if (rc < 0) {
        fputs(o.cmd->help, stdout);
        return CLI_OK;
    }
    if (!rc)
        rc = dispatch(&o, &err);
    if (rc) {
        /* one line, whatever the message held */
        for (char *p = err.msg; *p; p++)
            if (*p == '\n')
                *p = ' ';
        fflush(stdout);
        fprintf(stderr, "nesim trace: %s\n", err.msg);
    }
    return cli_status(rc);
}
