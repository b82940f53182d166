/* chip.c — chip profiles (format: chips/README.md; guarantees: chip.h).
 *
 * jansson parses the text (duplicate keys rejected, top level must be an
 * object); one pass then walks the tree in a fixed order, copying every
 * number into plain structs and recording its provenance. "kind" is read
 * first because it decides which keys are valid; then each object's keys are
 * checked before its values, so a misspelt key is reported as unknown rather
 * than as a missing required one. The JSON tree is dropped before returning.
 *
 * Every number is a "quantity": {"value": N, "unit": U, "source": S} or
 * {"value": N, "unit": U, "assumption": A}, optionally with "note". One
 * function (quantity) checks that shape for every field, so the rules are
 * the same everywhere. */
#include "net/chip.h"
#include "net/sanafe.h"

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "net/jsonmsg.h"

enum { PATHN = NESIM_JSON_PATHN, SHOWN = NESIM_JSON_SHOWN };

/* The shared JSON-message helpers (net/jsonmsg.h), under short local names. */
#define find_name nesim_json_find_name
#define list_names nesim_json_list_names
#define show nesim_json_show
#define ascii_line nesim_json_ascii_line
#define sub nesim_json_sub
#define idx nesim_json_idx
#define bad(c, ...) nesim_json_bad(&(c)->j, __VA_ARGS__)
#define oom(c) nesim_json_oom(&(c)->j)
#define missing(c, path, key) nesim_json_missing(&(c)->j, path, key)

#define CHIP_MAX_BYTES (1u << 20) /* a profile is a few KiB; refuse anything absurd */
#define NAME_MAX_BYTES 63
#define MAX_EVENT_J 1e-6          /* per-event energies above this are unit mistakes */
#define MAX_POWER_W 1e4
#define MAX_TICK_S 3600.0
#define MAX_EVENT_S 1e-3          /* per-event latencies above this are unit mistakes */
#define MAX_PROCESS_NM 1e5
#define MAX_SRAM_LEVELS 64

typedef struct pctx {
    nesim_jctx j; /* file name for messages, and the error to fill */
    nesim_chip *chip;
    size_t cap_values;
} pctx;

/* ---- names ------------------------------------------------------------- */

static const char *const kinds[] = {"neuromorphic", "dense", "gpu", NULL}; /* enum order */
static const char *const dtypes[] = {"int8", "int16", "int32", "fp16", "bf16", "fp32", NULL};

static const char *const neuro_keys[] = {
    "nesim_chip", "name", "kind", "description", "references", "process_nm", "tick", "energy",
    "static_power_per_chip", "static_power_per_core", "neurons_per_core",
    "synapse_memory_bytes_per_core", "weight_bits_max", "fan_in_max", "fan_out_max",
    "cores_per_chip", "cores_per_router", "mesh", "chip_mesh", "graded", "latency", "clocking", NULL};
static const char *const dense_keys[] = {"nesim_chip", "name", "kind", "description", "references",
                                         "process_nm", "word_bits", "arith", "sram_read",
                                         "dram_access", NULL};
static const char *const gpu_keys[] = {"nesim_chip", "name", "kind", "description", "references", "process_nm",
                                       "peak_ops", "memory_bandwidth", "memory_bytes", "board_power",
                                       "utilisation", NULL};
static const char *const util_keys[] = {"compute", "memory", NULL};
static const char *const energy_keys[] = {"synaptic_op", "neuron_update_active", "neuron_update_idle",
                                          "spike_out", "spike_within_core", "hop_ew", "hop_ns",
                                          "hop_chip", "synaptic_op_dense", "synaptic_op_sparse",
                                          "synaptic_op_conv", NULL};
enum { ENERGY_REQUIRED = 8 }; /* the synaptic_op_<storage> keys that follow are optional */
static const char *const graded_keys[] = {"mac", "element_op", NULL};
static const char *const latency_keys[] = {"synaptic_op_dense", "synaptic_op_sparse", "synaptic_op_conv",
                                           "neuron_access", "neuron_update", "spike_out", "message_out",
                                           "message_in", "hop_ew", "hop_ns", "hop_chip", "link_buffer",
                                           "sync", NULL};
static const char *const quantity_keys[] = {"value", "unit", "source", "assumption", "note", NULL};
static const char *const ref_keys[] = {"key", "cite", NULL};
static const char *const xy_keys[] = {"x", "y", NULL};
static const char *const op_keys[] = {"add", "mult", NULL};
static const char *const sram_keys[] = {"capacity", "energy", NULL};
static const char *const dram_keys[] = {"min", "max", NULL};

const char *nesim_chip_kind_name(nesim_chip_kind k)
{
    return (int)k >= 0 && (int)k < 3 ? kinds[k] : "?";
}

int nesim_chip_dtype_index(const char *name) { return name ? find_name(dtypes, name) : -1; }

const char *nesim_chip_dtype_name(int index)
{
    return index >= 0 && index < NESIM_CHIP_DTYPES ? dtypes[index] : "?";
}

int nesim_chip_dtype_of_tensor(nesim_dtype dt)
{
    switch (dt) {
    case NESIM_I8: return 0;
    case NESIM_I16: return 1;
    case NESIM_I32: return 2;
    case NESIM_F16: return 3;
    case NESIM_BF16: return 4;
    case NESIM_F32: return 5;
    default: return -1;
    }
}

/* ---- messages ---------------------------------------------------------- */


static const char *jtype(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a real";
    case JSON_TRUE: return "true";
    case JSON_FALSE: return "false";
    default: return "null";
    }
}

/* ---- typed access ------------------------------------------------------ */

static int check_keys(pctx *c, const json_t *obj, const char *path, const char *const *allowed)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v) {
        if (find_name(allowed, key) < 0) {
            char s[SHOWN], list[400];
            return bad(c, path, "unknown key '%s' (expected %s)", show(key, s),
                       list_names(allowed, list, sizeof list));
        }
    }
    return NESIM_OK;
}

/* parent[key] as an object with only `allowed` keys. */
static int get_object(pctx *c, const json_t *parent, const char *ppath, const char *key,
                      const char *const *allowed, const json_t **out, char *path)
{
    sub(path, ppath, key);
    const json_t *v = json_object_get(parent, key);
    if (!v)
        return missing(c, ppath, key);
    if (!json_is_object(v))
        return bad(c, path, "expected an object, got %s", jtype(v));
    *out = v;
    return check_keys(c, v, path, allowed);
}

/* A non-empty (not only blanks) string at parent[key]; NULL if absent. */
static int get_text(pctx *c, const json_t *parent, const char *ppath, const char *key, int required,
                    const char **out)
{
    char p[PATHN];
    const json_t *v = json_object_get(parent, key);
    *out = NULL;
    if (!v)
        return required ? missing(c, ppath, key) : NESIM_OK;
    if (!json_is_string(v))
        return bad(c, sub(p, ppath, key), "expected a string, got %s", jtype(v));
    const char *s = json_string_value(v);
    if (s[strspn(s, " \t\r\n")] == '\0')
        return bad(c, sub(p, ppath, key), "must not be empty");
    *out = s;
    return NESIM_OK;
}

static char *dup_or_null(const char *s, int *failed)
{
    if (!s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        *failed = 1;
    return d;
}

/* Does `source` begin with one of the reference keys, followed by the end or
 * a separator? */
static int cites_reference(const nesim_chip *ch, const char *source)
{
    for (size_t i = 0; i < ch->n_refs; i++) {
        size_t L = strlen(ch->refs[i].key);
        if (strncmp(source, ch->refs[i].key, L) == 0 &&
            (source[L] == '\0' || strchr(",:;( ", source[L])))
            return 1;
    }
    return 0;
}

typedef enum { Q_NONNEG, Q_POS } qsign;

/* The quantity object at parent[key]: shape, unit, provenance, value type.
 * integer != 0 demands a JSON integer. On success *num holds the value and
 * the value is appended to the chip's provenance list; the caller checks the
 * range. */
static int quantity(pctx *c, const json_t *parent, const char *ppath, const char *key,
                    const char *unit, int integer, const json_t **valp, char *path)
{
    sub(path, ppath, key);
    const json_t *q = json_object_get(parent, key);
    if (!q)
        return missing(c, ppath, key);
    if (!json_is_object(q))
        return bad(c, path, "expected a quantity {\"value\", \"unit\", \"source\" or \"assumption\"}, got %s",
                   jtype(q));
    int rc = check_keys(c, q, path, quantity_keys);
    if (rc)
        return rc;
    char p[PATHN];
    const json_t *v = json_object_get(q, "value");
    if (!v)
        return missing(c, path, "value");
    if (integer ? !json_is_integer(v) : !json_is_number(v))
        return bad(c, sub(p, path, "value"), "expected %s, got %s", integer ? "an integer" : "a number",
                   jtype(v));
    if (!isfinite(json_number_value(v)))
        return bad(c, sub(p, path, "value"), "must be finite");
    const json_t *u = json_object_get(q, "unit");
    if (!u)
        return missing(c, path, "unit");
    if (!json_is_string(u))
        return bad(c, sub(p, path, "unit"), "expected a string, got %s", jtype(u));
    if (strcmp(json_string_value(u), unit) != 0) {
        char s[SHOWN];
        return bad(c, sub(p, path, "unit"), "expected '%s', got '%s' (values are SI: J, W, B, s%s)", unit,
                   show(json_string_value(u), s),
                   strcmp(unit, "J") == 0 ? "; write 23.6 pJ as 23.6e-12 J" : "");
    }
    const char *source, *assumption, *note;
    if ((rc = get_text(c, q, path, "source", 0, &source)) ||
        (rc = get_text(c, q, path, "assumption", 0, &assumption)) ||
        (rc = get_text(c, q, path, "note", 0, &note)))
        return rc;
    if (source && assumption)
        return bad(c, path, "give 'source' or 'assumption', not both");
    if (!source && !assumption)
        return bad(c, path, "every number needs a non-empty 'source' (a reference key, then where) or "
                            "'assumption' (why this value)");
    if (source && !cites_reference(c->chip, source)) {
        char s[SHOWN], list[300];
        size_t o = 0;
        list[0] = '\0';
        for (size_t i = 0; i < c->chip->n_refs && o + 1 < sizeof list; i++) {
            int w = snprintf(list + o, sizeof list - o, "%s'%s'", i ? ", " : "", c->chip->refs[i].key);
            o = w < 0 ? o : o + (size_t)w;
        }
        return bad(c, sub(p, path, "source"), "'%s' does not begin with a reference key (%s)",
                   show(source, s), list);
    }
    nesim_chip *ch = c->chip;
    if (ch->n_values == c->cap_values) {
        size_t ncap = c->cap_values ? 2 * c->cap_values : 32;
        nesim_chip_value *nv = realloc(ch->values, ncap * sizeof *nv);
        if (!nv)
            return oom(c);
        ch->values = nv;
        c->cap_values = ncap;
    }
    nesim_chip_value *e = &ch->values[ch->n_values];
    int failed = 0;
    *e = (nesim_chip_value){.path = dup_or_null(path, &failed),
                            .value = json_number_value(v),
                            .unit = unit,
                            .source = dup_or_null(source, &failed),
                            .assumption = dup_or_null(assumption, &failed),
                            .note = dup_or_null(note, &failed)};
    ch->n_values++; /* owned now, freed with the chip even on failure */
    if (failed)
        return oom(c);
    *valp = v;
    return NESIM_OK;
}

/* A real quantity: finite, >= 0 (or > 0), at most `max` (a plausibility
 * bound that catches values written in the wrong unit). */
static int qreal(pctx *c, const json_t *parent, const char *ppath, const char *key, const char *unit,
                 qsign sign, double max, double *out)
{
    char path[PATHN], p[PATHN];
    const json_t *v;
    int rc = quantity(c, parent, ppath, key, unit, 0, &v, path);
    if (rc)
        return rc;
    double x = json_number_value(v);
    if (sign == Q_POS && !(x > 0))
        return bad(c, sub(p, path, "value"), "must be > 0 (got %g)", x);
    if (sign == Q_NONNEG && !(x >= 0))
        return bad(c, sub(p, path, "value"), "must be >= 0 (got %g)", x);
    if (x > max) {
        if (strcmp(unit, "J") == 0)
            return bad(c, sub(p, path, "value"),
                       "%g J is implausible (limit %g J): values are in joules, write 23.6 pJ as 23.6e-12",
                       x, max);
        return bad(c, sub(p, path, "value"), "%g %s is implausible (limit %g %s)", x, unit, max, unit);
    }
    *out = x;
    return NESIM_OK;
}

/* An integer quantity in [lo, hi]. */
static int qcount(pctx *c, const json_t *parent, const char *ppath, const char *key, const char *unit,
                  uint64_t lo, uint64_t hi, uint64_t *out)
{
    char path[PATHN], p[PATHN];
    const json_t *v;
    int rc = quantity(c, parent, ppath, key, unit, 1, &v, path);
    if (rc)
        return rc;
    json_int_t x = json_integer_value(v);
    if (x < 0 || (uint64_t)x < lo)
        return bad(c, sub(p, path, "value"), "must be >= %llu (got %lld)", (unsigned long long)lo,
                   (long long)x);
    if ((uint64_t)x > hi)
        return bad(c, sub(p, path, "value"), "must be <= %llu (got %lld)", (unsigned long long)hi,
                   (long long)x);
    *out = (uint64_t)x;
    return NESIM_OK;
}

static int qcount32(pctx *c, const json_t *parent, const char *ppath, const char *key, const char *unit,
                    uint32_t lo, uint32_t hi, uint32_t *out)
{
    uint64_t v;
    int rc = qcount(c, parent, ppath, key, unit, lo, hi, &v);
    if (!rc)
        *out = (uint32_t)v;
    return rc;
}

/* ---- the document ------------------------------------------------------ */

static int parse_header(pctx *c, const json_t *root, const char *expect_name)
{
    nesim_chip *ch = c->chip;
    const char *s;
    char sh[SHOWN], sh2[SHOWN], list[200];
    int rc;

    /* kind decides which keys are valid, so it comes first. */
    const json_t *k = json_object_get(root, "kind");
    if (!k)
        return bad(c, "kind", "required key missing (expected %s)", list_names(kinds, list, sizeof list));
    if (!json_is_string(k))
        return bad(c, "kind", "expected a string, got %s", jtype(k));
    int kind = find_name(kinds, json_string_value(k));
    if (kind < 0)
        return bad(c, "kind", "unknown kind '%s' (expected %s)", show(json_string_value(k), sh),
                   list_names(kinds, list, sizeof list));
    ch->kind = (nesim_chip_kind)kind;
    if ((rc = check_keys(c, root, "", kind == NESIM_CHIP_DENSE ? dense_keys : kind == NESIM_CHIP_GPU ? gpu_keys
                                                                                                  : neuro_keys)))
        return rc;

    const json_t *ver = json_object_get(root, "nesim_chip");
    if (!ver)
        return bad(c, "nesim_chip", "required key missing (the format version, %d)", NESIM_CHIP_FORMAT);
    if (!json_is_integer(ver))
        return bad(c, "nesim_chip", "expected an integer, got %s", jtype(ver));
    if (json_integer_value(ver) != NESIM_CHIP_FORMAT)
        return bad(c, "nesim_chip", "unsupported format version %lld (this nesim reads %d)",
                   (long long)json_integer_value(ver), NESIM_CHIP_FORMAT);

    if ((rc = get_text(c, root, "", "name", 1, &s)))
        return rc;
    size_t L = strlen(s);
    if (L > NAME_MAX_BYTES || s[0] == '.' ||
        strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != L)
        return bad(c, "name", "'%s' is not a valid chip name (letters, digits, '.', '_', '-'; "
                              "not starting with '.'; at most %d bytes)",
                   show(s, sh), NAME_MAX_BYTES);
    if (expect_name && strcmp(s, expect_name) != 0)
        return bad(c, "name", "'%s' differs from the file name '%s' (a profile is chosen by its file "
                              "name: make them equal)",
                   show(s, sh), show(expect_name, sh2));
    if (!(ch->name = strdup(s)))
        return oom(c);

    if ((rc = get_text(c, root, "", "description", 1, &s)))
        return rc;
    if (!(ch->description = strdup(s)))
        return oom(c);

    const json_t *refs = json_object_get(root, "references");
    if (!refs)
        return missing(c, "", "references");
    if (!json_is_array(refs))
        return bad(c, "references", "expected an array of {\"key\", \"cite\"}, got %s", jtype(refs));
    size_t n = json_array_size(refs);
    if (n == 0)
        return bad(c, "references", "must not be empty: every source cites one of them");
    if (!(ch->refs = calloc(n, sizeof *ch->refs)))
        return oom(c);
    for (size_t i = 0; i < n; i++) {
        char p[PATHN];
        const json_t *r = json_array_get(refs, i);
        idx(p, "references", i);
        if (!json_is_object(r))
            return bad(c, p, "expected an object {\"key\", \"cite\"}, got %s", jtype(r));
        const char *key, *cite;
        if ((rc = check_keys(c, r, p, ref_keys)) || (rc = get_text(c, r, p, "key", 1, &key)) ||
            (rc = get_text(c, r, p, "cite", 1, &cite)))
            return rc;
        for (size_t j = 0; j < i; j++)
            if (strcmp(ch->refs[j].key, key) == 0) {
                char pk[PATHN];
                return bad(c, sub(pk, p, "key"), "'%s' already names references[%zu]", show(key, sh), j);
            }
        ch->n_refs = i + 1;
        if (!(ch->refs[i].key = strdup(key)) || !(ch->refs[i].cite = strdup(cite)))
            return oom(c);
    }
    return NESIM_OK;
}

/* The optional latency section; "sync" is an object of quantities keyed by
 * the routers in use ("1", "2", "4", ...). */
static int parse_latency(pctx *c, const json_t *root)
{
    nesim_chip_latency *l = &c->chip->p.latency;
    char path[PATHN], p[PATHN];
    const json_t *o;
    int rc;
    if ((rc = get_object(c, root, "", "latency", latency_keys, &o, path)))
        return rc;
    double *v[] = {&l->syn_dense,   &l->syn_sparse,  &l->syn_conv, &l->neuron_access, &l->neuron_update,
                   &l->spike_out,   &l->message_out, &l->message_in, &l->hop_ew,       &l->hop_ns,
                   &l->hop_chip};
    for (size_t i = 0; i < sizeof v / sizeof *v; i++)
        if ((rc = qreal(c, o, "latency", latency_keys[i], "s", Q_NONNEG, MAX_EVENT_S, v[i])))
            return rc;
    if ((rc = qcount32(c, o, "latency", "link_buffer", "messages", 1, 1u << 20, &l->link_buffer)))
        return rc;
    const json_t *sy = json_object_get(o, "sync");
    if (!sy)
        return missing(c, "latency", "sync");
    if (!json_is_object(sy) || json_object_size(sy) == 0 || json_object_size(sy) > NESIM_CHIP_SYNC_MAX)
        return bad(c, "latency.sync", "expected an object of 1 to %d quantities keyed by routers in use "
                                      "({\"1\": {...}, \"4\": {...}})", NESIM_CHIP_SYNC_MAX);
    const char *key;
    const json_t *x;
    json_object_foreach((json_t *)sy, key, x) {
        char *end;
        unsigned long r = strtoul(key, &end, 10);
        char sh[SHOWN];
        if (!*key || *end || key[0] == '0' || r > (1ul << 24))
            return bad(c, sub(p, "latency.sync", key), "'%s' is not a count of routers (1 .. 16777216)",
                       show(key, sh));
        double s;
        if ((rc = qreal(c, sy, "latency.sync", key, "s", Q_NONNEG, MAX_EVENT_S, &s)))
            return rc;
        size_t k = l->n_sync++;
        while (k > 0 && l->sync_routers[k - 1] > r) { /* keep ascending */
            l->sync_routers[k] = l->sync_routers[k - 1];
            l->sync_s[k] = l->sync_s[k - 1];
            k--;
        }
        l->sync_routers[k] = (uint32_t)r;
        l->sync_s[k] = s;
    }
    c->chip->p.has_latency = 1;
    return NESIM_OK;
}

static int parse_neuromorphic(pctx *c, const json_t *root)
{
    nesim_chip_params *p = &c->chip->p;
    nesim_chip_derived *d = &c->chip->d;
    char path[PATHN];
    const json_t *o;
    int rc;

    if ((rc = qreal(c, root, "", "process_nm", "nm", Q_POS, MAX_PROCESS_NM, &p->process_nm)) ||
        (rc = qreal(c, root, "", "tick", "s", Q_POS, MAX_TICK_S, &p->tick_s)))
        return rc;

    if ((rc = get_object(c, root, "", "energy", energy_keys, &o, path)))
        return rc;
    double *e[] = {&p->energy.synaptic_op,       &p->energy.neuron_update_active,
                   &p->energy.neuron_update_idle, &p->energy.spike_out,
                   &p->energy.spike_within_core,  &p->energy.hop_ew,
                   &p->energy.hop_ns,             &p->energy.hop_chip};
    for (size_t i = 0; i < ENERGY_REQUIRED; i++)
        if ((rc = qreal(c, o, "energy", energy_keys[i], "J", Q_NONNEG, MAX_EVENT_J, e[i])))
            return rc;
    /* a synaptic operation by how the synapses are stored (net/graph.h); absent: synaptic_op */
    for (int k = 0; k < 3; k++) {
        double *to = &p->energy.syn_by_storage[k];
        *to = p->energy.synaptic_op;
        if (json_object_get(o, energy_keys[ENERGY_REQUIRED + k]) &&
            (rc = qreal(c, o, "energy", energy_keys[ENERGY_REQUIRED + k], "J", Q_NONNEG, MAX_EVENT_J, to)))
            return rc;
    }

    /* optional: graded (non-spike) work done on the chip itself */
    if (json_object_get(root, "graded")) {
        if ((rc = get_object(c, root, "", "graded", graded_keys, &o, path)) ||
            (rc = qreal(c, o, "graded", "mac", "J", Q_NONNEG, MAX_EVENT_J, &p->graded_mac_j)) ||
            (rc = qreal(c, o, "graded", "element_op", "J", Q_NONNEG, MAX_EVENT_J, &p->graded_elem_j)))
            return rc;
        p->has_graded = 1;
    }

    if (json_object_get(root, "latency") && (rc = parse_latency(c, root)))
        return rc;
    const json_t *clk = json_object_get(root, "clocking");
    if (clk) {
        static const char *const clockings[] = {"time-stepped", "asynchronous", NULL};
        int k = json_is_string(clk) ? find_name(clockings, json_string_value(clk)) : -1;
        if (k < 0)
            return bad(c, "clocking", "expected \"time-stepped\" or \"asynchronous\"");
        p->asynchronous = k == 1;
        if (p->asynchronous && !p->has_latency)
            return bad(c, "clocking", "an asynchronous chip needs a latency section (its events' pipeline latencies)");
    }

    int per_chip = json_object_get(root, "static_power_per_chip") != NULL;
    int per_core = json_object_get(root, "static_power_per_core") != NULL;
    if (per_chip && per_core)
        return bad(c, "static_power_per_chip", "give static_power_per_chip or static_power_per_core, not both");
    if (!per_chip && !per_core)
        return bad(c, "static_power_per_chip", "required key missing (or give static_power_per_core)");
    p->static_power_per_core = per_core;
    if ((rc = qreal(c, root, "", per_core ? "static_power_per_core" : "static_power_per_chip", "W",
                    Q_NONNEG, MAX_POWER_W, &p->static_power_w)))
        return rc;

    if ((rc = qcount32(c, root, "", "neurons_per_core", "neurons", 1, 1u << 24, &p->neurons_per_core)) ||
        (rc = qcount(c, root, "", "synapse_memory_bytes_per_core", "B", 1, UINT64_C(1) << 36,
                     &p->synapse_memory_bytes_per_core)) ||
        (rc = qcount32(c, root, "", "weight_bits_max", "bits", 1, 64, &p->weight_bits_max)) ||
        (rc = qcount32(c, root, "", "fan_in_max", "axons", 1, 1u << 31, &p->fan_in_max)) ||
        (rc = qcount32(c, root, "", "fan_out_max", "cores", 1, 1u << 31, &p->fan_out_max)) ||
        (rc = qcount32(c, root, "", "cores_per_chip", "cores", 1, 1u << 24, &p->cores_per_chip)) ||
        (rc = qcount32(c, root, "", "cores_per_router", "cores", 1, 1u << 16, &p->cores_per_router)))
        return rc;
    if (p->cores_per_router > p->cores_per_chip)
        return bad(c, "cores_per_router.value", "must be <= cores_per_chip (%u; got %u)", p->cores_per_chip,
                   p->cores_per_router);

    if ((rc = get_object(c, root, "", "mesh", xy_keys, &o, path)) ||
        (rc = qcount32(c, o, "mesh", "x", "routers", 1, 65535, &p->mesh_x)) ||
        (rc = qcount32(c, o, "mesh", "y", "routers", 1, 65535, &p->mesh_y)))
        return rc;
    uint64_t positions = (uint64_t)p->mesh_x * p->mesh_y * p->cores_per_router;
    if (positions < p->cores_per_chip)
        return bad(c, "mesh",
                   "%u x %u routers x %u cores per router = %llu core positions, fewer than "
                   "cores_per_chip (%u)",
                   p->mesh_x, p->mesh_y, p->cores_per_router, (unsigned long long)positions,
                   p->cores_per_chip);

    if ((rc = get_object(c, root, "", "chip_mesh", xy_keys, &o, path)) ||
        (rc = qcount32(c, o, "chip_mesh", "x", "chips", 1, 65535, &p->chip_mesh_x)) ||
        (rc = qcount32(c, o, "chip_mesh", "y", "chips", 1, 65535, &p->chip_mesh_y)))
        return rc;

    /* Derived values; the bounds above keep every product inside 64 bits. */
    d->neurons_per_chip = (uint64_t)p->neurons_per_core * p->cores_per_chip;
    d->synapse_memory_bytes_per_chip = p->synapse_memory_bytes_per_core * p->cores_per_chip;
    d->synapses_per_core_at_max_bits = p->synapse_memory_bytes_per_core * 8 / p->weight_bits_max;
    d->routers_per_chip = p->mesh_x * p->mesh_y;
    d->max_chips = (uint64_t)p->chip_mesh_x * p->chip_mesh_y;
    d->max_cores = d->max_chips * p->cores_per_chip;
    d->static_power_per_core_w = per_core ? p->static_power_w : p->static_power_w / p->cores_per_chip;
    d->static_power_per_chip_w = per_core ? p->static_power_w * p->cores_per_chip : p->static_power_w;
    d->static_energy_per_core_tick_j = d->static_power_per_core_w * p->tick_s;
    return NESIM_OK;
}

static int parse_gpu(pctx *c, const json_t *root)
{
    nesim_chip_gpu *g = &c->chip->gpu;
    char path[PATHN];
    const json_t *o;
    int rc;
    if ((rc = qreal(c, root, "", "process_nm", "nm", Q_POS, MAX_PROCESS_NM, &g->process_nm)))
        return rc;
    o = json_object_get(root, "peak_ops");
    if (!o)
        return missing(c, "", "peak_ops");
    if (!json_is_object(o))
        return bad(c, "peak_ops", "expected an object of quantities by dtype, got %s", jtype(o));
    const char *key;
    const json_t *x;
    json_object_foreach((json_t *)o, key, x) {
        int d = nesim_chip_dtype_index(key);
        char sh[SHOWN], list[120];
        if (d < 0)
            return bad(c, "peak_ops", "unknown dtype '%s' (expected %s)", show(key, sh),
                       list_names(dtypes, list, sizeof list));
        if ((rc = qreal(c, o, "peak_ops", key, "ops/s", Q_POS, 1e19, &g->peak_ops[d])))
            return rc;
        g->has[d] = 1;
    }
    if (!g->has[nesim_chip_dtype_index("bf16")])
        return bad(c, "peak_ops", "bf16 is required (the dtype language models run in)");
    if ((rc = qreal(c, root, "", "memory_bandwidth", "B/s", Q_POS, 1e15, &g->bandwidth)) ||
        (rc = qreal(c, root, "", "memory_bytes", "B", Q_POS, 1e15, &g->memory_bytes)) ||
        (rc = qreal(c, root, "", "board_power", "W", Q_POS, 1e5, &g->power_w)) ||
        (rc = get_object(c, root, "", "utilisation", util_keys, &o, path)) ||
        (rc = qreal(c, o, "utilisation", "compute", "fraction", Q_POS, 1, &g->util_compute)) ||
        (rc = qreal(c, o, "utilisation", "memory", "fraction", Q_POS, 1, &g->util_memory)))
        return rc;
    return NESIM_OK;
}

static int parse_dense(pctx *c, const json_t *root)
{
    nesim_chip_dense *dn = &c->chip->dense;
    char path[PATHN], p[PATHN];
    const json_t *o;
    int rc;

    uint32_t word_bits;
    if ((rc = qreal(c, root, "", "process_nm", "nm", Q_POS, MAX_PROCESS_NM, &dn->process_nm)) ||
        (rc = qcount32(c, root, "", "word_bits", "bits", 1, 4096, &word_bits)))
        return rc;
    dn->word_bits = word_bits;

    if ((rc = get_object(c, root, "", "arith", dtypes, &o, path)))
        return rc;
    for (int i = 0; i < NESIM_CHIP_DTYPES; i++) {
        const json_t *ops;
        if (!json_object_get(o, dtypes[i])) {
            if (i == 0 || i == 3) /* int8, fp16: the baselines the energy report always prints */
                return bad(c, sub(p, "arith", dtypes[i]),
                           "required key missing (the energy report prices int8 and fp16; "
                           "int16, int32, bf16 and fp32 are optional)");
            continue;
        }
        if ((rc = get_object(c, o, "arith", dtypes[i], op_keys, &ops, path)) ||
            (rc = qreal(c, ops, path, "add", "J", Q_NONNEG, MAX_EVENT_J, &dn->add_j[i])) ||
            (rc = qreal(c, ops, path, "mult", "J", Q_NONNEG, MAX_EVENT_J, &dn->mult_j[i])))
            return rc;
        dn->has[i] = 1;
        dn->mac_j[i] = dn->add_j[i] + dn->mult_j[i];
    }

    const json_t *arr = json_object_get(root, "sram_read");
    if (!arr)
        return missing(c, "", "sram_read");
    if (!json_is_array(arr))
        return bad(c, "sram_read", "expected an array of {\"capacity\", \"energy\"}, got %s", jtype(arr));
    size_t n = json_array_size(arr);
    if (n == 0 || n > MAX_SRAM_LEVELS)
        return bad(c, "sram_read", "expected 1 to %d memory sizes, got %zu", MAX_SRAM_LEVELS, n);
    if (!(dn->sram = calloc(n, sizeof *dn->sram)))
        return oom(c);
    for (size_t i = 0; i < n; i++) {
        const json_t *lvl = json_array_get(arr, i);
        idx(p, "sram_read", i);
        if (!json_is_object(lvl))
            return bad(c, p, "expected an object {\"capacity\", \"energy\"}, got %s", jtype(lvl));
        if ((rc = check_keys(c, lvl, p, sram_keys)) ||
            (rc = qcount(c, lvl, p, "capacity", "B", 1, UINT64_C(1) << 50, &dn->sram[i].capacity_bytes)) ||
            (rc = qreal(c, lvl, p, "energy", "J", Q_NONNEG, MAX_EVENT_J, &dn->sram[i].read_j)))
            return rc;
        if (i > 0 && dn->sram[i].capacity_bytes <= dn->sram[i - 1].capacity_bytes)
            return bad(c, sub(path, p, "capacity.value"), "capacities must ascend (%llu after %llu)",
                       (unsigned long long)dn->sram[i].capacity_bytes,
                       (unsigned long long)dn->sram[i - 1].capacity_bytes);
        dn->n_sram = i + 1;
    }

    if ((rc = get_object(c, root, "", "dram_access", dram_keys, &o, path)) ||
        (rc = qreal(c, o, "dram_access", "min", "J", Q_NONNEG, MAX_EVENT_J, &dn->dram_min_j)) ||
        (rc = qreal(c, o, "dram_access", "max", "J", Q_NONNEG, MAX_EVENT_J, &dn->dram_max_j)))
        return rc;
    if (dn->dram_min_j > dn->dram_max_j)
        return bad(c, "dram_access", "min (%g J) exceeds max (%g J)", dn->dram_min_j, dn->dram_max_j);
    return NESIM_OK;
}

int nesim_chip_parse(const char *text, size_t len, const char *name_for_errors, const char *expect_name,
                     nesim_chip **out, nesim_error *err)
{
    *out = NULL;
    nesim_chip *ch = calloc(1, sizeof *ch);
    pctx c = {{name_for_errors ? name_for_errors : "<chip>", err}, ch, 0};
    if (!ch)
        return oom(&c);
    json_error_t je;
    /* JSON_DECODE_ANY stays off (top level must be an object or array);
     * duplicate keys would silently shadow each other, so they are errors. */
    json_t *root = json_loadb(text ? text : "", text ? len : 0, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        free(ch);
        int code = json_error_code(&je) == json_error_out_of_memory ? NESIM_ENOMEM : NESIM_EINVAL;
        char what[4 * JSON_ERROR_TEXT_LENGTH];
        ascii_line(je.text, what, sizeof what);
        if (je.line > 0)
            return nesim_fail(err, code, "%s:%d:%d: %s", c.j.file, je.line, je.column, what);
        return nesim_fail(err, code, "%s: %s", c.j.file, what);
    }
    int rc = NESIM_OK;
    if (!(ch->file = strdup(c.j.file)))
        rc = oom(&c);
    else if (!json_is_object(root))
        rc = bad(&c, NULL, "expected a JSON object at the top level, got %s", jtype(root));
    else if (!(rc = parse_header(&c, root, expect_name)))
        rc = ch->kind == NESIM_CHIP_DENSE ? parse_dense(&c, root)
             : ch->kind == NESIM_CHIP_GPU ? parse_gpu(&c, root)
                                          : parse_neuromorphic(&c, root);
    json_decref(root);
    if (rc) {
        nesim_chip_free(ch);
        return rc;
    }
    *out = ch;
    return NESIM_OK;
}

void nesim_chip_free(nesim_chip *ch)
{
    if (!ch)
        return;
    free(ch->file);
    free(ch->name);
    free(ch->description);
    for (size_t i = 0; i < ch->n_refs; i++) {
        free(ch->refs[i].key);
        free(ch->refs[i].cite);
    }
    free(ch->refs);
    for (size_t i = 0; i < ch->n_values; i++) {
        free(ch->values[i].path);
        free(ch->values[i].source);
        free(ch->values[i].assumption);
        free(ch->values[i].note);
    }
    free(ch->values);
    free(ch->dense.sram);
    free(ch);
}

/* ---- files and directories ---------------------------------------------- */

static pthread_once_t default_dir_once = PTHREAD_ONCE_INIT;
static char default_dir_buf[1024];

static void init_default_dir(void)
{
#ifdef NESIM_CHIPS_DIR
#define NESIM_CHIP_STR2(x) #x
#define NESIM_CHIP_STR(x) NESIM_CHIP_STR2(x)
    /* Works for -DNESIM_CHIPS_DIR=/abs/path and for a quoted string literal:
     * stringifying the latter yields "\"/abs/path\"", whose quotes go here. */
    const char *s = NESIM_CHIP_STR(NESIM_CHIPS_DIR);
    size_t L = strlen(s);
    if (L >= 2 && s[0] == '"' && s[L - 1] == '"') {
        s++;
        L -= 2;
    }
    if (L >= sizeof default_dir_buf)
        L = 0; /* absurdly long: fall back to "chips" */
    memcpy(default_dir_buf, s, L);
    default_dir_buf[L] = '\0';
#endif
    if (!default_dir_buf[0])
        memcpy(default_dir_buf, "chips", 6);
}

const char *nesim_chip_default_dir(void)
{
    const char *env = getenv("NESIM_CHIPS");
    if (env && env[0])
        return env;
    pthread_once(&default_dir_once, init_default_dir);
    return default_dir_buf;
}

static int ends_with_json(const char *s)
{
    size_t L = strlen(s);
    return L > 5 && strcmp(s + L - 5, ".json") == 0;
}

/* The file name without directory and ".json", malloc'd. */
static char *stem_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    const char *b = slash ? slash + 1 : path;
    size_t L = strlen(b);
    if (L > 5 && strcmp(b + L - 5, ".json") == 0)
        L -= 5;
    return strndup(b, L);
}

static int load_path(const char *path, nesim_chip **out, nesim_error *err)
{
    *out = NULL;
    char *buf;
    size_t n;
    int rc0 = nesim_json_read_file(path, CHIP_MAX_BYTES, "chip profile", "1024 KiB", &buf, &n, err);
    if (rc0)
        return rc0;
    char *stem = stem_of(path);
    if (!stem) {
        free(buf);
        return nesim_fail(err, NESIM_ENOMEM, "%s: out of memory", path);
    }
    int rc = nesim_chip_parse(buf, n, path, stem, out, err);
    free(stem);
    free(buf);
    return rc;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted stems of the *.json files in dir. */
static int list_stems(const char *dir, char ***out, size_t *n, nesim_error *err)
{
    *out = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d)
        return nesim_fail(err, errno == ENOENT || errno == ENOTDIR ? NESIM_EINVAL : NESIM_EIO,
                          "%s: cannot read the chips directory: %s (set NESIM_CHIPS or give a path)", dir,
                          strerror(errno));
    char **v = NULL;
    size_t cap = 0, k = 0;
    struct dirent *de;
    int rc = NESIM_OK;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.' || !ends_with_json(de->d_name))
            continue;
        if (k == cap) {
            size_t ncap = cap ? 2 * cap : 16;
            char **nv = realloc(v, ncap * sizeof *nv);
            if (!nv) {
                rc = nesim_fail(err, NESIM_ENOMEM, "%s: out of memory", dir);
                break;
            }
            v = nv;
            cap = ncap;
        }
        if (!(v[k] = stem_of(de->d_name))) {
            rc = nesim_fail(err, NESIM_ENOMEM, "%s: out of memory", dir);
            break;
        }
        k++;
    }
    closedir(d);
    if (rc) {
        for (size_t i = 0; i < k; i++)
            free(v[i]);
        free(v);
        return rc;
    }
    if (k)
        qsort(v, k, sizeof *v, cmp_str);
    *out = v;
    *n = k;
    return NESIM_OK;
}

static void free_stems(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static char *join_path(const char *dir, const char *stem)
{
    size_t L = strlen(dir) + strlen(stem) + 7;
    char *p = malloc(L);
    if (p)
        snprintf(p, L, "%s%s%s.json", dir, dir[0] && dir[strlen(dir) - 1] == '/' ? "" : "/", stem);
    return p;
}

int nesim_chip_from_sanafe(const nesim_sanafe_arch *a, nesim_chip **out, nesim_error *err)
{
    *out = NULL;
    char *text = json_dumps(a->chip, JSON_COMPACT);
    if (!text)
        return nesim_fail(err, NESIM_ENOMEM, "%s: out of memory", a->file);
    int rc = nesim_chip_parse(text, strlen(text), a->file, NULL, out, err);
    free(text);
    return rc;
}

/* A SANA-FE architecture file: its profile document, checked as any other. */
static int load_sanafe(const char *path, nesim_chip **out, nesim_error *err)
{
    nesim_sanafe_arch *a;
    int rc = nesim_sanafe_arch_load(path, &a, err);
    if (!rc)
        rc = nesim_chip_from_sanafe(a, out, err);
    nesim_sanafe_arch_free(a);
    return rc;
}

int nesim_chip_load(const char *name_or_path, const char *chips_dir, nesim_chip **out, nesim_error *err)
{
    *out = NULL;
    if (!name_or_path || !name_or_path[0])
        return nesim_fail(err, NESIM_EINVAL, "chip: empty name (give a chip name or a path to a .json file)");
    if (nesim_sanafe_file_kind(name_or_path) == 1)
        return load_sanafe(name_or_path, out, err);
    if (strchr(name_or_path, '/') || ends_with_json(name_or_path))
        return load_path(name_or_path, out, err);

    const char *dir = chips_dir ? chips_dir : nesim_chip_default_dir();
    char sh[SHOWN];
    size_t L = strlen(name_or_path);
    if (L > NAME_MAX_BYTES || name_or_path[0] == '.' ||
        strspn(name_or_path, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != L)
        return nesim_fail(err, NESIM_EINVAL,
                          "chip '%s': not a chip name (letters, digits, '.', '_', '-') nor a path "
                          "(contains '/' or ends in .json)",
                          show(name_or_path, sh));
    char *path = join_path(dir, name_or_path);
    if (!path)
        return nesim_fail(err, NESIM_ENOMEM, "chip '%s': out of memory", name_or_path);
    struct stat st;
    if (stat(path, &st) != 0 && errno == ENOENT) {
        free(path);
        char **names;
        size_t n;
        int rc = list_stems(dir, &names, &n, err);
        if (rc)
            return nesim_context(err, "unknown chip '%s': ", name_or_path);
        char list[300];
        size_t o = 0;
        list[0] = '\0';
        for (size_t i = 0; i < n && o + 1 < sizeof list; i++) {
            int w = snprintf(list + o, sizeof list - o, "%s%s", i ? ", " : "", names[i]);
            o = w < 0 ? o : o + (size_t)w;
        }
        free_stems(names, n);
        return nesim_fail(err, NESIM_EINVAL, "unknown chip '%s' (chips in %s: %s)", name_or_path, dir,
                          n ? list : "none");
    }
    int rc = load_path(path, out, err);
    free(path);
    return rc;
}

int nesim_chip_list(const char *chips_dir, nesim_chip_entry **out, size_t *n, nesim_error *err)
{
    *out = NULL;
    *n = 0;
    const char *dir = chips_dir ? chips_dir : nesim_chip_default_dir();
    char **names;
    size_t k;
    int rc = list_stems(dir, &names, &k, err);
    if (rc)
        return rc;
    nesim_chip_entry *e = k ? calloc(k, sizeof *e) : NULL;
    if (k && !e) {
        free_stems(names, k);
        return nesim_fail(err, NESIM_ENOMEM, "%s: out of memory", dir);
    }
    for (size_t i = 0; i < k; i++) {
        e[i].name = names[i]; /* ownership moves to the entry */
        names[i] = NULL;
        if (!(e[i].path = join_path(dir, e[i].name))) {
            free_stems(names, k);
            nesim_chip_list_free(e, k);
            return nesim_fail(err, NESIM_ENOMEM, "%s: out of memory", dir);
        }
        int lrc = load_path(e[i].path, &e[i].chip, &e[i].error);
        if (lrc == NESIM_ENOMEM) {
            *err = e[i].error;
            free_stems(names, k);
            nesim_chip_list_free(e, k);
            return lrc;
        }
    }
    free_stems(names, k);
    *out = e;
    *n = k;
    return NESIM_OK;
}

void nesim_chip_list_free(nesim_chip_entry *e, size_t n)
{
    if (!e)
        return;
    for (size_t i = 0; i < n; i++) {
        free(e[i].name);
        free(e[i].path);
        nesim_chip_free(e[i].chip);
    }
    free(e);
}

/* ---- queries ------------------------------------------------------------ */

const nesim_chip_value *nesim_chip_find(const nesim_chip *c, const char *path)
{
    if (!c || !path)
        return NULL;
    for (size_t i = 0; i < c->n_values; i++)
        if (strcmp(c->values[i].path, path) == 0)
            return &c->values[i];
    return NULL;
}

const char *nesim_chip_provenance(const nesim_chip_value *v, char *buf, size_t cap)
{
    if (!v)
        return "";
    if (v->source)
        return v->source;
    snprintf(buf, cap, "assumption: %s", v->assumption ? v->assumption : "");
    return buf;
}

static int want_dense(const nesim_chip *c, nesim_error *err)
{
    if (!c)
        return nesim_fail(err, NESIM_EINVAL, "chip: NULL profile");
    if (c->kind != NESIM_CHIP_DENSE)
        return nesim_fail(err, NESIM_EINVAL, "%s: chip '%s' is %s, not a dense baseline", c->file, c->name,
                          nesim_chip_kind_name(c->kind));
    return NESIM_OK;
}

int nesim_chip_dense_op(const nesim_chip *c, const char *dtype, nesim_dense_op op, double *joules,
                        nesim_error *err)
{
    int rc = want_dense(c, err);
    if (rc)
        return rc;
    int i = nesim_chip_dtype_index(dtype);
    if (i < 0 || !c->dense.has[i]) {
        char list[200], sh[SHOWN];
        size_t o = 0;
        list[0] = '\0';
        for (int k = 0; k < NESIM_CHIP_DTYPES; k++)
            if (c->dense.has[k]) {
                int w = snprintf(list + o, sizeof list - o, "%s%s", o ? ", " : "", dtypes[k]);
                o = w < 0 ? o : o + (size_t)w;
            }
        return nesim_fail(err, NESIM_EINVAL, "%s: no arithmetic energies for dtype '%s' (it has %s)", c->file,
                          show(dtype ? dtype : "", sh), list);
    }
    switch (op) {
    case NESIM_OP_ADD: *joules = c->dense.add_j[i]; break;
    case NESIM_OP_MULT: *joules = c->dense.mult_j[i]; break;
    case NESIM_OP_MAC: *joules = c->dense.mac_j[i]; break;
    default: return nesim_fail(err, NESIM_EINVAL, "%s: unknown operation %d", c->file, (int)op);
    }
    return NESIM_OK;
}

int nesim_chip_sram_read(const nesim_chip *c, uint64_t memory_bytes, double *joules, uint64_t *capacity,
                         nesim_error *err)
{
    int rc = want_dense(c, err);
    if (rc)
        return rc;
    for (size_t i = 0; i < c->dense.n_sram; i++)
        if (c->dense.sram[i].capacity_bytes >= memory_bytes) {
            *joules = c->dense.sram[i].read_j;
            if (capacity)
                *capacity = c->dense.sram[i].capacity_bytes;
            return NESIM_OK;
        }
    return nesim_fail(err, NESIM_EINVAL, "%s: %llu bytes exceed the largest SRAM in the profile (%llu bytes); "
                                         "price it as DRAM",
                      c->file, (unsigned long long)memory_bytes,
                      (unsigned long long)c->dense.sram[c->dense.n_sram - 1].capacity_bytes);
}

int nesim_chip_dram_access(const nesim_chip *c, double *min_j, double *max_j, nesim_error *err)
{
    int rc = want_dense(c, err);
    if (rc)
        return rc;
    *min_j = c->dense.dram_min_j;
    *max_j = c->dense.dram_max_j;
    return NESIM_OK;
}
