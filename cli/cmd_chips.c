/* cmd_chips.c — `nesim chips`: list the chip profiles with their sources, or
 * show one profile's every value and where it comes from. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "net/chip.h"

static const char help[] =
    "usage: nesim chips [NAME | PATH] [options]\n"
    "\n"
    "Without NAME: lists the chip profiles (name, kind, process, energy per synaptic\n"
    "operation, neurons per core, cores per chip, source) and their references.\n"
    "With a chip NAME or a PATH to a .json profile: every value of that profile with\n"
    "its unit and its source or assumption, and the values derived from them.\n"
    "\n"
    "Profiles are JSON files, one per chip (format: chips/README.md); write a new\n"
    "chip by copying one and renaming it. They are looked up in DIR: --dir, else\n"
    "$NESIM_CHIPS, else the chips/ folder nesim was built with, else ./chips.\n"
    "\n"
    "options:\n"
    "  --dir DIR    the chips directory\n"
    "  --json       print JSON instead of the tables\n"
    "\n"
    "exit status: 0 ok, 2 a profile is malformed or unknown (the message names the\n"
    "file and the field).\n";

/* x in the unit with an SI prefix that puts it in [1, 1000): "23.6 pJ". */
static const char *si(double x, const char *unit, char *buf, size_t n)
{
    static const char *const pre[] = {"f", "p", "n", "u", "m", "", "k", "M", "G"};
    if (x == 0 || !isfinite(x)) {
        snprintf(buf, n, "%g %s", x, unit);
        return buf;
    }
    int e = (int)floor(log10(fabs(x)) / 3.0);
    if (e < -5)
        e = -5;
    if (e > 3)
        e = 3;
    double m = x / pow(10.0, 3.0 * e);
    if (fabs(m) >= 999.95 && e < 3) {
        m /= 1000;
        e++;
    }
    snprintf(buf, n, "%.4g %s%s", m, pre[e + 5], unit);
    return buf;
}

/* A value for a table: counts grouped, physical quantities with a prefix. */
static const char *show_value(const nesim_chip_value *v, char *buf, size_t n)
{
    if (!strcmp(v->unit, "J") || !strcmp(v->unit, "W") || !strcmp(v->unit, "s"))
        return si(v->value, v->unit, buf, n);
    if (!strcmp(v->unit, "nm")) {
        snprintf(buf, n, "%g nm", v->value);
        return buf;
    }
    char g[32];
    cli_grouped((uint64_t)v->value, g, sizeof g);
    if (!strcmp(v->unit, "B"))
        snprintf(buf, n, "%s B", g);
    else
        snprintf(buf, n, "%s %s", g, v->unit);
    return buf;
}

static int is_count_unit(const char *unit)
{
    return strcmp(unit, "J") && strcmp(unit, "W") && strcmp(unit, "s") && strcmp(unit, "nm");
}

/* ---- JSON ------------------------------------------------------------------ */

static int set_new(json_t *o, const char *key, json_t *v)
{
    return v ? json_object_set_new(o, key, v) : -1;
}

static json_t *chip_json(const nesim_chip *c)
{
    json_t *o = json_object(), *refs = json_array(), *vals = json_object(), *der = json_object();
    int bad = !o || !refs || !vals || !der;
    bad |= set_new(o, "name", json_string(c->name)) | set_new(o, "kind", json_string(nesim_chip_kind_name(c->kind))) |
           set_new(o, "file", json_string(c->file)) | set_new(o, "description", json_string(c->description));
    for (size_t i = 0; !bad && i < c->n_refs; i++) {
        json_t *r = json_pack("{s:s, s:s}", "key", c->refs[i].key, "cite", c->refs[i].cite);
        bad |= !r || json_array_append_new(refs, r);
    }
    for (size_t i = 0; !bad && i < c->n_values; i++) {
        const nesim_chip_value *v = &c->values[i];
        json_t *q = json_object();
        bad |= !q;
        if (bad)
            break;
        bad |= set_new(q, "value", is_count_unit(v->unit) ? json_integer((json_int_t)v->value) : json_real(v->value));
        bad |= set_new(q, "unit", json_string(v->unit));
        bad |= v->source ? set_new(q, "source", json_string(v->source))
                         : set_new(q, "assumption", json_string(v->assumption));
        if (v->note)
            bad |= set_new(q, "note", json_string(v->note));
        bad |= json_object_set_new(vals, v->path, q);
    }
    if (!bad && c->kind == NESIM_CHIP_NEUROMORPHIC) {
        const nesim_chip_derived *d = &c->d;
        bad |= set_new(der, "neurons_per_chip", json_integer((json_int_t)d->neurons_per_chip)) |
               set_new(der, "synapse_memory_bytes_per_chip", json_integer((json_int_t)d->synapse_memory_bytes_per_chip)) |
               set_new(der, "synapses_per_core_at_max_bits", json_integer((json_int_t)d->synapses_per_core_at_max_bits)) |
               set_new(der, "routers_per_chip", json_integer(d->routers_per_chip)) |
               set_new(der, "max_chips", json_integer((json_int_t)d->max_chips)) |
               set_new(der, "max_cores", json_integer((json_int_t)d->max_cores)) |
               set_new(der, "static_power_per_core_w", json_real(d->static_power_per_core_w)) |
               set_new(der, "static_power_per_chip_w", json_real(d->static_power_per_chip_w)) |
               set_new(der, "static_energy_per_core_tick_j", json_real(d->static_energy_per_core_tick_j));
    } else if (!bad && c->kind == NESIM_CHIP_GPU) {
        json_t *ai = json_object(); /* the roofline's ridge: operations per byte where memory stops bounding */
        bad |= !ai;
        for (int i = 0; !bad && i < NESIM_CHIP_DTYPES; i++)
            if (c->gpu.has[i])
                bad |= set_new(ai, nesim_chip_dtype_name(i),
                               json_real(c->gpu.peak_ops[i] * c->gpu.util_compute / (c->gpu.bandwidth * c->gpu.util_memory)));
        bad |= json_object_set_new(der, "ridge_ops_per_byte", ai);
    } else if (!bad) {
        json_t *mac = json_object();
        bad |= !mac;
        for (int i = 0; !bad && i < NESIM_CHIP_DTYPES; i++)
            if (c->dense.has[i])
                bad |= set_new(mac, nesim_chip_dtype_name(i), json_real(c->dense.mac_j[i]));
        bad |= json_object_set_new(der, "mac_j", mac);
    }
    bad |= json_object_set_new(o, "references", refs) | json_object_set_new(o, "values", vals) |
           json_object_set_new(o, "derived", der);
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static int dump(json_t *j)
{
    /* 15 significant digits reproduce every decimal written in a profile. */
    int rc = j && json_dumpf(j, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(15)) == 0;
    json_decref(j);
    if (!rc) {
        fprintf(stderr, "nesim chips: out of memory\n");
        return CLI_FAIL;
    }
    putchar('\n');
    return CLI_OK;
}

/* ---- tables ----------------------------------------------------------------- */

static int print_list(const char *dir, const nesim_chip_entry *e, size_t n)
{
    enum { COLS = 7 };
    static const char *const head[COLS] = {"name", "kind", "process", "E_sop", "neurons/core", "cores/chip", "source"};
    typedef char row_t[COLS][256];
    row_t *cell = calloc(n ? n : 1, sizeof *cell);
    if (!cell) {
        fprintf(stderr, "nesim chips: out of memory\n");
        return CLI_FAIL;
    }
    size_t rows = 0, w[COLS];
    for (int k = 0; k < COLS; k++)
        w[k] = strlen(head[k]);
    for (size_t i = 0; i < n; i++) {
        const nesim_chip *c = e[i].chip;
        if (!c)
            continue;
        char(*r)[256] = cell[rows++];
        char b[64];
        snprintf(r[0], 256, "%s", c->name);
        snprintf(r[1], 256, "%s", nesim_chip_kind_name(c->kind));
        snprintf(r[2], 256, "%g nm", c->kind == NESIM_CHIP_DENSE ? c->dense.process_nm
                                     : c->kind == NESIM_CHIP_GPU ? c->gpu.process_nm
                                                                 : c->p.process_nm);
        if (c->kind == NESIM_CHIP_NEUROMORPHIC) {
            snprintf(r[3], 256, "%s", si(c->p.energy.synaptic_op, "J", b, sizeof b));
            cli_grouped(c->p.neurons_per_core, r[4], 256);
            cli_grouped(c->p.cores_per_chip, r[5], 256);
            char pb[600];
            snprintf(r[6], 256, "%s",
                     nesim_chip_provenance(nesim_chip_find(c, "energy.synaptic_op"), pb, sizeof pb));
        } else {
            snprintf(r[3], 256, "-");
            snprintf(r[4], 256, "-");
            snprintf(r[5], 256, "-");
            size_t o = 0;
            r[6][0] = '\0';
            for (size_t k = 0; k < c->n_refs && o < 200; k++)
                o += (size_t)snprintf(r[6] + o, 256 - o, "%s%s", k ? "; " : "", c->refs[k].key);
        }
        for (int k = 0; k < COLS; k++)
            if (strlen(r[k]) > w[k])
                w[k] = strlen(r[k]);
    }
    printf("chip profiles in %s\n\n", dir);
    for (int k = 0; k < COLS - 1; k++)
        printf(k >= 3 && k <= 5 ? "%*s  " : "%-*s  ", (int)w[k], head[k]);
    printf("%s\n", head[COLS - 1]);
    for (size_t i = 0; i < rows; i++)
        for (int k = 0; k < COLS; k++) {
            if (k == COLS - 1)
                printf("%s\n", cell[i][k]);
            else if (k >= 3 && k <= 5) /* numbers right-aligned */
                printf("%*s  ", (int)w[k], cell[i][k]);
            else
                printf("%-*s  ", (int)w[k], cell[i][k]);
        }
    printf("\nreferences\n");
    for (size_t i = 0; i < n; i++) {
        const nesim_chip *c = e[i].chip;
        for (size_t k = 0; c && k < c->n_refs; k++)
            printf("  %-*s  %s: %s\n", (int)w[0], k ? "" : c->name, c->refs[k].key, c->refs[k].cite);
    }
    printf("\nnesim chips NAME shows every value of a profile with its source or assumption.\n");
    free(cell);
    return CLI_OK;
}

static void print_one(const nesim_chip *c)
{
    char b[96], pb[600];
    printf("%s (%s) — %s\n", c->name, nesim_chip_kind_name(c->kind), c->description);
    printf("file %s\n\n", c->file);
    size_t wp = strlen("parameter"), wv = strlen("value");
    for (size_t i = 0; i < c->n_values; i++) {
        size_t lp = strlen(c->values[i].path), lv = strlen(show_value(&c->values[i], b, sizeof b));
        wp = lp > wp ? lp : wp;
        wv = lv > wv ? lv : wv;
    }
    printf("  %-*s  %*s  %s\n", (int)wp, "parameter", (int)wv, "value", "source or assumption");
    for (size_t i = 0; i < c->n_values; i++) {
        const nesim_chip_value *v = &c->values[i];
        printf("  %-*s  %*s  %s\n", (int)wp, v->path, (int)wv, show_value(v, b, sizeof b),
               nesim_chip_provenance(v, pb, sizeof pb));
        if (v->note)
            printf("  %-*s  %*s  note: %s\n", (int)wp, "", (int)wv, "", v->note);
    }
    printf("\nderived\n");
    char g[32];
    if (c->kind == NESIM_CHIP_NEUROMORPHIC) {
        const nesim_chip_derived *d = &c->d;
        printf("  neurons per chip             %s\n", cli_grouped(d->neurons_per_chip, g, sizeof g));
        printf("  synapse memory per chip      %s B\n", cli_grouped(d->synapse_memory_bytes_per_chip, g, sizeof g));
        printf("  synapses per core            %s at %u-bit weights\n",
               cli_grouped(d->synapses_per_core_at_max_bits, g, sizeof g), c->p.weight_bits_max);
        printf("  routers per chip             %u (%u x %u, %u cores each)\n", d->routers_per_chip, c->p.mesh_x,
               c->p.mesh_y, c->p.cores_per_router);
        printf("  largest system               %s chips", cli_grouped(d->max_chips, g, sizeof g));
        printf(", %s cores\n", cli_grouped(d->max_cores, g, sizeof g));
        printf("  static power                 %s per core", si(d->static_power_per_core_w, "W", b, sizeof b));
        printf(", %s per chip\n", si(d->static_power_per_chip_w, "W", b, sizeof b));
        printf("  static energy per core-tick  %s\n", si(d->static_energy_per_core_tick_j, "J", b, sizeof b));
    } else if (c->kind == NESIM_CHIP_GPU) {
        for (int i = 0; i < NESIM_CHIP_DTYPES; i++)
            if (c->gpu.has[i])
                printf("  %-5s ridge point          %.1f operations per byte (at the assumed utilisation)\n",
                       nesim_chip_dtype_name(i),
                       c->gpu.peak_ops[i] * c->gpu.util_compute / (c->gpu.bandwidth * c->gpu.util_memory));
    } else {
        for (int i = 0; i < NESIM_CHIP_DTYPES; i++)
            if (c->dense.has[i])
                printf("  %-5s MAC (add + mult)  %s\n", nesim_chip_dtype_name(i), si(c->dense.mac_j[i], "J", b, sizeof b));
    }
    printf("\nreferences\n");
    for (size_t k = 0; k < c->n_refs; k++)
        printf("  %s: %s\n", c->refs[k].key, c->refs[k].cite);
}

int cmd_chips(int argc, char **argv)
{
    nesim_error err = {0};
    const char *dir = NULL, *which = NULL;
    int json = 0, rc = NESIM_OK;
    for (int i = 1; i < argc && !rc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(help, stdout);
            return CLI_OK;
        } else if (!strcmp(a, "--json")) {
            json = 1;
        } else if (!strcmp(a, "--dir")) {
            if (i + 1 >= argc || !argv[i + 1][0])
                rc = nesim_fail(&err, NESIM_EINVAL, "--dir: expected a directory");
            else
                dir = argv[++i];
        } else if (a[0] == '-' || which) {
            rc = nesim_fail(&err, NESIM_EINVAL, "unexpected argument '%s' (see nesim chips --help)", a);
        } else {
            which = a;
        }
    }
    if (rc) {
        fprintf(stderr, "nesim chips: %s\n", err.msg);
        return CLI_BAD;
    }
    if (!dir)
        dir = nesim_chip_default_dir();

    if (which) {
        nesim_chip *c;
        if ((rc = nesim_chip_load(which, dir, &c, &err))) {
            fprintf(stderr, "nesim chips: %s\n", err.msg);
            return cli_status(rc);
        }
        int st = CLI_OK;
        if (json)
            st = dump(chip_json(c));
        else
            print_one(c);
        nesim_chip_free(c);
        return st;
    }

    nesim_chip_entry *e;
    size_t n;
    if ((rc = nesim_chip_list(dir, &e, &n, &err))) {
        fprintf(stderr, "nesim chips: %s\n", err.msg);
        return cli_status(rc);
    }
    int st = CLI_OK;
    if (json) {
        json_t *arr = json_array();
        for (size_t i = 0; arr && i < n; i++)
            if (e[i].chip && json_array_append_new(arr, chip_json(e[i].chip))) {
                json_decref(arr);
                arr = NULL;
            }
        st = dump(arr);
    } else if (n == 0) {
        printf("no chip profiles (*.json) in %s\n", dir);
    } else {
        st = print_list(dir, e, n);
    }
    for (size_t i = 0; i < n; i++)
        if (!e[i].chip) {
            fprintf(stderr, "nesim chips: %s\n", e[i].error.msg);
            if (st == CLI_OK)
                st = cli_status(e[i].error.code);
        }
    nesim_chip_list_free(e, n);
    return st;
}
