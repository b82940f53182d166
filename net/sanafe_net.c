/* sanafe_net.c — a SANA-FE network (YAML or netlist) as a nesim spec
 * (net/sanafe.h). Groups become `loihi` populations, edges explicit
 * projections, the mapping each neuron's core. */
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "net/jsonmsg.h"
#include "net/sanafe.h"
#include "net/yaml_tree.h"

/* soma attributes, in the order of the loihi model's parameters */
enum { A_THRESH, A_RESET, A_BIAS, A_LEAK, A_REFRACT, A_POT, N_ATTR };
static const char *const soma_keys[] = {"threshold", "reset", "bias", "leak_decay", "refractory_delay", "potential",
                                        "reset_mode", "input_decay", "reverse_threshold", "reverse_reset",
                                        "reverse_reset_mode", "force_update", "force_update_every_timestep", NULL};
static const char *const param_of[N_ATTR] = {"v_thresh", "v_reset", "bias", "leak_decay", "refractory_steps", NULL};
static const char *const hw_keys[] = {"soma_hw_name", "synapse_hw_name", "dendrite_hw_name", "axon_in_hw_name",
                                      "axon_out_hw_name", NULL};
/* SANA-FE's logging switches and the legacy netlist's bookkeeping: read, not needed */
static const char *const ignored_keys[] = {"log_spikes", "log_potential", "log_u", "log_v", "log_current",
                                           "log_synapse", "log_dendrite", "connections_out", NULL};

typedef struct nattr {
    double v[N_ATTR];
    int soma;          /* arch soma unit, -1: the core's first */
    int syn;           /* storage of its incoming synapses: -1 the core's default, else NESIM_STORE_* */
    int has_core;
    uint32_t core;
} nattr;

typedef struct group {
    char *name;
    uint32_t n;
    nattr *na;
    int line, col;
} group;

typedef struct projb {
    int pre, post;
    int neuron_edges;  /* 1: the "A.i -> B.j" edges between these groups */
    double *v[3];      /* pre, post, weight */
    size_t n, cap;
    int line, col;
} projb;

/* What one file may ask for: SANA-FE's largest examples are tens of
 * thousands of neurons and a few million synapses; these bounds keep a
 * hostile file (a group of 10^9 neurons in one line) from exhausting memory
 * before anything is checked. */
enum { MAX_NEURONS = 1 << 24, MAX_SYNAPSES = 1 << 26 };

typedef struct nctx {
    const char *file;
    nesim_error *err;
    const nesim_sanafe_arch *arch;
    const nesim_sanafe_layout *lay;
    group *g;
    size_t ng, gcap;
    projb *p;
    size_t np, pcap;
    int mapped;        /* some neuron has a core */
    uint64_t neurons, synapses;
} nctx;

static int at(const nctx *c, int line, int col, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int at(const nctx *c, int line, int col, const char *fmt, ...)
{
    char what[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (line <= 0)
        return nesim_fail(c->err, NESIM_EINVAL, "%s: %s", c->file, what);
    if (col <= 0)
        return nesim_fail(c->err, NESIM_EINVAL, "%s:%d: %s", c->file, line, what);
    return nesim_fail(c->err, NESIM_EINVAL, "%s:%d:%d: %s", c->file, line, col, what);
}
#define AT(c, n, ...) at(c, (n) ? (n)->line : 0, (n) ? (n)->col : 0, __VA_ARGS__)

static int oom(const nctx *c) { return nesim_fail(c->err, NESIM_ENOMEM, "%s: out of memory", c->file); }

static const char *show(const char *s, char *buf) { return nesim_json_show(s, buf); }

static int want(const nctx *c, const nesim_ynode *n, nesim_ynode_kind k, const char *what)
{
    if (!n)
        return at(c, 0, 0, "%s: missing", what);
    if (n->kind != k)
        return AT(c, n, "%s: expected a %s, got a %s", what, nesim_yaml_kind_name(k), nesim_yaml_kind_name(n->kind));
    return NESIM_OK;
}

static int number(const nctx *c, const nesim_ynode *n, const char *key, double *out)
{
    int rc = want(c, n, NESIM_Y_SCALAR, key);
    if (rc)
        return rc;
    char *end, sh[NESIM_JSON_SHOWN];
    double v = strtod(n->text, &end);
    if (end == n->text || *end || !isfinite(v))
        return AT(c, n, "%s: '%s' is not a finite number", key, show(n->text, sh));
    *out = v;
    return NESIM_OK;
}

static int whole(const nctx *c, const nesim_ynode *n, const char *key, double hi, uint64_t *out)
{
    double v;
    int rc = number(c, n, key, &v);
    if (rc)
        return rc;
    if (v < 0 || v > hi || v != floor(v))
        return AT(c, n, "%s: expected a whole number in [0, %.0f] (got %g)", key, hi, v);
    *out = (uint64_t)v;
    return NESIM_OK;
}

static int boolean(const nctx *c, const nesim_ynode *n, const char *key)
{
    static const char *const b[] = {"true", "false", "True", "False", "1", "0", NULL};
    int rc = want(c, n, NESIM_Y_SCALAR, key);
    if (!rc && nesim_json_find_name(b, n->text) < 0)
        return AT(c, n, "%s: expected true or false", key);
    return rc;
}

/* "a" or "a..b" (inclusive) */
static int id_range(const nctx *c, const char *s, int line, int col, const char *what, uint64_t *lo, uint64_t *hi)
{
    char *end;
    char sh[NESIM_JSON_SHOWN];
    if (!isdigit((unsigned char)s[0]))
        return at(c, line, col, "%s: '%s' is not a neuron number or range (N or FIRST..LAST)", what, show(s, sh));
    unsigned long long a = strtoull(s, &end, 10), b = a;
    if (end[0] == '.' && end[1] == '.') {
        const char *t = end + 2;
        if (!isdigit((unsigned char)t[0]))
            return at(c, line, col, "%s: '%s' is not a neuron number or range (N or FIRST..LAST)", what, show(s, sh));
        b = strtoull(t, &end, 10);
    }
    if (*end || b < a || b >= (1ull << 31))
        return at(c, line, col, "%s: '%s' is not a neuron number or range (N or FIRST..LAST, below 2^31)", what,
                  show(s, sh));
    *lo = a, *hi = b;
    return NESIM_OK;
}

static int find_group(const nctx *c, const char *name)
{
    for (size_t i = 0; i < c->ng; i++)
        if (!strcmp(c->g[i].name, name))
            return (int)i;
    return -1;
}

/* ---- attributes ---- */

static int apply(nctx *c, nattr *a, const nesim_ynode *k, const nesim_ynode *v, int soma_only);

/* An attribute list: a mapping, a sequence of mappings, or nothing. */
static int apply_all(nctx *c, nattr *a, const nesim_ynode *n, int soma_only)
{
    if (!n)
        return NESIM_OK;
    if (n->kind == NESIM_Y_SCALAR) {
        if (!n->len || !strcmp(n->text, "~") || !strcmp(n->text, "null"))
            return NESIM_OK;
        char sh[NESIM_JSON_SHOWN];
        return AT(c, n, "attributes: expected a mapping or a list of them, got '%s'", show(n->text, sh));
    }
    if (n->kind == NESIM_Y_MAP) {
        for (size_t i = 0; i < n->n; i++) {
            int rc = apply(c, a, n->item[2 * i], n->item[2 * i + 1], soma_only);
            if (rc)
                return rc;
        }
        return NESIM_OK;
    }
    for (size_t i = 0; i < n->n; i++) {
        if (n->item[i]->kind != NESIM_Y_MAP)
            return AT(c, n->item[i], "attributes: each item is a 'key: value' mapping, got a %s",
                      nesim_yaml_kind_name(n->item[i]->kind));
        int rc = apply_all(c, a, n->item[i], soma_only);
        if (rc)
            return rc;
    }
    return NESIM_OK;
}

static int soma_unit(nctx *c, const nesim_ynode *v, int *out)
{
    int rc = want(c, v, NESIM_Y_SCALAR, "soma_hw_name");
    if (rc || !c->arch)
        return rc;
    char sh[NESIM_JSON_SHOWN];
    for (size_t i = 0; i < c->arch->n_soma; i++)
        if (!strcmp(c->arch->soma_name[i], v->text)) {
            const char *m = c->arch->soma_model[i];
            if (!strcmp(m, "input"))
                return AT(c, v, "soma '%s' is an input unit: input spike lists are not supported by nesim (drive "
                                "the group with a bias instead)", show(v->text, sh));
            if (strcmp(m, "leaky_integrate_fire"))
                return AT(c, v, "soma '%s' has model %s; nesim runs leaky_integrate_fire only", show(v->text, sh), m);
            *out = (int)i;
            return NESIM_OK;
        }
    return AT(c, v, "soma_hw_name: '%s' is not a soma unit of %s", show(v->text, sh), c->arch->file);
}

static int syn_unit(nctx *c, const nesim_ynode *v, int *out)
{
    int rc = want(c, v, NESIM_Y_SCALAR, "synapse_hw_name");
    if (rc)
        return rc;
    if (c->arch) {
        size_t i = 0;
        while (i < c->arch->n_syn && strcmp(c->arch->syn_name[i], v->text))
            i++;
        char sh[NESIM_JSON_SHOWN];
        if (i == c->arch->n_syn)
            return AT(c, v, "synapse_hw_name: '%s' is not a synapse unit of %s", show(v->text, sh), c->arch->file);
    }
    *out = nesim_sanafe_unit_storage(v->text);
    return NESIM_OK;
}

static int apply(nctx *c, nattr *a, const nesim_ynode *k, const nesim_ynode *v, int soma_only)
{
    char sh[NESIM_JSON_SHOWN];
    const char *key = k->text;
    int rc, i = nesim_json_find_name(soma_keys, key);
    if (i >= 0 && i < N_ATTR) {
        if (i == A_REFRACT) {
            uint64_t r;
            if ((rc = whole(c, v, key, 1e9, &r)))
                return rc;
            a->v[i] = (double)r;
            return NESIM_OK;
        }
        return number(c, v, key, &a->v[i]);
    }
    if (!strcmp(key, "reset_mode")) {
        if ((rc = want(c, v, NESIM_Y_SCALAR, key)))
            return rc;
        return strcmp(v->text, "hard") ? AT(c, v, "reset_mode: nesim's loihi model resets hard (got '%s')",
                                            show(v->text, sh))
                                       : NESIM_OK;
    }
    if (!strcmp(key, "reverse_reset_mode")) {
        if ((rc = want(c, v, NESIM_Y_SCALAR, key)))
            return rc;
        return strcmp(v->text, "none") ? AT(c, v, "reverse_reset_mode: nesim's loihi model has no reverse "
                                                  "threshold (got '%s')", show(v->text, sh))
                                       : NESIM_OK;
    }
    if (!strcmp(key, "input_decay")) {
        double d;
        if ((rc = number(c, v, key, &d)))
            return rc;
        return d != 0 ? AT(c, v, "input_decay: nesim's loihi model integrates each step's input once (input_decay "
                                 "0; got %g)", d)
                      : NESIM_OK;
    }
    if (!strcmp(key, "reverse_threshold") || !strcmp(key, "reverse_reset")) {
        double d; /* without a reverse reset mode they change nothing */
        return number(c, v, key, &d);
    }
    if (!strcmp(key, "force_update") || !strcmp(key, "force_update_every_timestep"))
        return boolean(c, v, key);
    if (soma_only) {
        char list[300];
        return AT(c, k, "soma: unknown key '%s' (nesim reads %s)", show(key, sh),
                  nesim_json_list_names(soma_keys, list, sizeof list));
    }
    if (!strcmp(key, "soma")) {
        if (v->kind != NESIM_Y_MAP && v->kind != NESIM_Y_SEQ)
            return AT(c, v, "soma: expected the soma's attributes");
        return apply_all(c, a, v, 1);
    }
    if (!strcmp(key, "soma_hw_name"))
        return soma_unit(c, v, &a->soma);
    if (!strcmp(key, "synapse_hw_name"))
        return syn_unit(c, v, &a->syn);
    if (nesim_json_find_name(hw_keys, key) >= 0)
        return want(c, v, NESIM_Y_SCALAR, key);
    if (nesim_json_find_name(ignored_keys, key) >= 0)
        return NESIM_OK;
    if (!strcmp(key, "spikes"))
        return AT(c, k, "spikes: input spike lists are not supported by nesim (drive the group with a bias instead)");
    if (!strcmp(key, "synapse") || !strcmp(key, "dendrite"))
        return AT(c, k, "%s: a neuron's %s attributes are not supported by nesim", key, key);
    char l1[300], l2[200];
    return AT(c, k, "unknown attribute '%s' (nesim reads %s; %s)", show(key, sh),
              nesim_json_list_names(soma_keys, l1, sizeof l1), nesim_json_list_names(hw_keys, l2, sizeof l2));
}

static void attr_default(nattr *a)
{
    memset(a, 0, sizeof *a);
    a->v[A_LEAK] = 1;
    a->soma = -1;
    a->syn = -1;
}

/* ---- groups ---- */

static int add_group(nctx *c, const char *name, uint32_t n, int line, int col, int *id)
{
    char sh[NESIM_JSON_SHOWN];
    if ((c->neurons += n) > MAX_NEURONS)
        return at(c, line, col, "group '%s': more than %d neurons in all (nesim reads SANA-FE networks up to that)",
                  show(name, sh), MAX_NEURONS);
    if (!name[0] || strchr(name, '.') || strstr(name, "->") || strlen(name) >= 64)
        return at(c, line, col, "group name '%s': must be non-empty, under 64 bytes, without '.' or '->'",
                  show(name, sh));
    if (find_group(c, name) >= 0)
        return at(c, line, col, "group '%s' is defined twice", show(name, sh));
    group *g = nesim_grown(c->g, c->ng + 1, &c->gcap, sizeof *g, 8);
    if (!g)
        return oom(c);
    c->g = g;
    group *G = &c->g[c->ng];
    memset(G, 0, sizeof *G);
    G->line = line, G->col = col;
    if (!(G->name = strdup(name)) || !(G->na = malloc((n ? n : 1) * sizeof *G->na))) {
        free(G->name);
        return oom(c);
    }
    G->n = n;
    *id = (int)c->ng++;
    return NESIM_OK;
}

static int yaml_group(nctx *c, const nesim_ynode *x)
{
    static const char *const keys[] = {"name", "attributes", "neurons", NULL};
    int rc = want(c, x, NESIM_Y_MAP, "groups[]");
    if (rc)
        return rc;
    for (size_t i = 0; i < x->n; i++)
        if (nesim_json_find_name(keys, x->item[2 * i]->text) < 0) {
            char sh[NESIM_JSON_SHOWN];
            return AT(c, x->item[2 * i], "group: unknown key '%s' (name, attributes, neurons)",
                      show(x->item[2 * i]->text, sh));
        }
    const nesim_ynode *nm = nesim_yaml_get(x, "name"), *ne = nesim_yaml_get(x, "neurons");
    if ((rc = want(c, nm, NESIM_Y_SCALAR, "group name")))
        return rc;
    if (!ne)
        return AT(c, nm, "group '%s': no neurons", nm->text);
    if ((rc = want(c, ne, NESIM_Y_SEQ, "neurons")))
        return rc;
    /* the neurons listed: ranges, each with its attributes */
    uint64_t n = 0;
    for (size_t i = 0; i < ne->n; i++) {
        const nesim_ynode *it = ne->item[i], *key = it;
        if (it->kind == NESIM_Y_MAP) {
            if (it->n != 1)
                return AT(c, it, "neurons: each item is 'RANGE' or 'RANGE: attributes'");
            key = it->item[0];
        } else if (it->kind != NESIM_Y_SCALAR) {
            return AT(c, it, "neurons: each item is 'RANGE' or 'RANGE: attributes'");
        }
        uint64_t lo, hi;
        if ((rc = id_range(c, key->text, key->line, key->col, "neurons", &lo, &hi)))
            return rc;
        n = hi + 1 > n ? hi + 1 : n;
    }
    if (!n)
        return AT(c, ne, "group '%s': no neurons", nm->text);
    int id;
    if ((rc = add_group(c, nm->text, (uint32_t)n, nm->line, nm->col, &id)))
        return rc;
    group *G = &c->g[id];
    nattr base;
    attr_default(&base);
    if ((rc = apply_all(c, &base, nesim_yaml_get(x, "attributes"), 0)))
        return rc;
    uint8_t *seen = calloc(n, 1);
    if (!seen)
        return oom(c);
    for (size_t i = 0; i < ne->n && !rc; i++) {
        const nesim_ynode *it = ne->item[i], *key = it->kind == NESIM_Y_MAP ? it->item[0] : it;
        uint64_t lo, hi;
        id_range(c, key->text, key->line, key->col, "neurons", &lo, &hi);
        nattr a = base;
        if (it->kind == NESIM_Y_MAP && (rc = apply_all(c, &a, it->item[1], 0)))
            break;
        for (uint64_t j = lo; j <= hi; j++) {
            if (seen[j]) {
                rc = AT(c, key, "group '%s': neuron %llu is listed twice", G->name, (unsigned long long)j);
                break;
            }
            seen[j] = 1;
            G->na[j] = a;
        }
    }
    for (uint64_t j = 0; j < n && !rc; j++)
        if (!seen[j])
            rc = AT(c, ne, "group '%s': neuron %llu is not listed (neurons are numbered 0 .. %llu)", G->name,
                    (unsigned long long)j, (unsigned long long)(n - 1));
    free(seen);
    return rc;
}

/* ---- edges ---- */

static int add_proj(nctx *c, int pre, int post, int neuron_edges, int line, int col, projb **out)
{
    if (neuron_edges)
        for (size_t i = 0; i < c->np; i++)
            if (c->p[i].neuron_edges && c->p[i].pre == pre && c->p[i].post == post) {
                *out = &c->p[i];
                return NESIM_OK;
            }
    projb *p = nesim_grown(c->p, c->np + 1, &c->pcap, sizeof *p, 8);
    if (!p)
        return oom(c);
    c->p = p;
    projb *P = &c->p[c->np++];
    memset(P, 0, sizeof *P);
    P->pre = pre, P->post = post, P->neuron_edges = neuron_edges, P->line = line, P->col = col;
    *out = P;
    return NESIM_OK;
}

static int add_syn(nctx *c, projb *P, double pre, double post, double w)
{
    if (++c->synapses > MAX_SYNAPSES)
        return at(c, P->line, P->col, "more than %d synapses in all (nesim reads SANA-FE networks up to that)",
                  MAX_SYNAPSES);
    if (P->n == P->cap) {
        size_t cap = P->cap ? 2 * P->cap : 64;
        for (int k = 0; k < 3; k++) {
            double *v = realloc(P->v[k], cap * sizeof *v);
            if (!v)
                return oom(c);
            P->v[k] = v;
        }
        P->cap = cap;
    }
    P->v[0][P->n] = pre, P->v[1][P->n] = post, P->v[2][P->n] = w;
    P->n++;
    return NESIM_OK;
}

/* "GROUP" or "GROUP.N": the group's index and the neuron (-1: the group) */
static int address(nctx *c, const char *s, size_t len, int line, int col, int *g, int64_t *neuron)
{
    char buf[160], sh[NESIM_JSON_SHOWN];
    while (len && isspace((unsigned char)*s))
        s++, len--;
    while (len && isspace((unsigned char)s[len - 1]))
        len--;
    if (!len || len >= sizeof buf)
        return at(c, line, col, "'%.*s' is not GROUP or GROUP.NEURON", (int)(len < 60 ? len : 60), s);
    memcpy(buf, s, len);
    buf[len] = '\0';
    char *dot = strchr(buf, '.');
    *neuron = -1;
    if (dot) {
        *dot = '\0';
        uint64_t lo, hi;
        int rc = id_range(c, dot + 1, line, col, "neuron", &lo, &hi);
        if (rc)
            return rc;
        if (lo != hi)
            return at(c, line, col, "'%s': an edge joins single neurons (GROUP.N) or whole groups", show(s, sh));
        *neuron = (int64_t)lo;
    }
    if ((*g = find_group(c, buf)) < 0)
        return at(c, line, col, "no group '%s'", show(buf, sh));
    if (*neuron >= (int64_t)c->g[*g].n)
        return at(c, line, col, "group '%s' has %u neurons (no neuron %lld)", buf, c->g[*g].n, (long long)*neuron);
    return NESIM_OK;
}

/* The attributes of one edge, flattened: synapse: and dendrite: maps add
 * their keys (SANA-FE forwards plain keys to both). */
typedef struct eattrs {
    const nesim_ynode *k[24], *v[24];
    int n;
} eattrs;

static int flatten(nctx *c, const nesim_ynode *n, eattrs *e, int depth)
{
    if (!n || (n->kind == NESIM_Y_SCALAR && (!n->len || !strcmp(n->text, "~") || !strcmp(n->text, "null"))))
        return NESIM_OK;
    if (n->kind == NESIM_Y_SEQ) {
        for (size_t i = 0; i < n->n; i++) {
            if (n->item[i]->kind != NESIM_Y_MAP)
                return AT(c, n->item[i], "edge attributes: each item is a 'key: value' mapping");
            int rc = flatten(c, n->item[i], e, depth);
            if (rc)
                return rc;
        }
        return NESIM_OK;
    }
    if (n->kind != NESIM_Y_MAP)
        return AT(c, n, "edge attributes: expected a mapping or a list of them");
    for (size_t i = 0; i < n->n; i++) {
        const nesim_ynode *k = n->item[2 * i], *v = n->item[2 * i + 1];
        if (!depth && (!strcmp(k->text, "synapse") || !strcmp(k->text, "dendrite"))) {
            if (v->kind != NESIM_Y_MAP)
                return AT(c, v, "%s: expected a mapping", k->text);
            int rc = flatten(c, v, e, 1);
            if (rc)
                return rc;
            continue;
        }
        for (int j = 0; j < e->n; j++)
            if (!strcmp(e->k[j]->text, k->text))
                return AT(c, k, "edge attribute '%s' is given twice", k->text);
        if (e->n == 24)
            return AT(c, k, "edge: too many attributes");
        e->k[e->n] = k, e->v[e->n] = v;
        e->n++;
    }
    return NESIM_OK;
}

static const nesim_ynode *eget(const eattrs *e, const char *key)
{
    for (int j = 0; j < e->n; j++)
        if (!strcmp(e->k[j]->text, key))
            return e->v[j];
    return NULL;
}

static int known_edge_keys(nctx *c, const eattrs *e, const char *const *keys)
{
    for (int j = 0; j < e->n; j++)
        if (nesim_json_find_name(keys, e->k[j]->text) < 0) {
            char sh[NESIM_JSON_SHOWN], list[400];
            return AT(c, e->k[j], "edge: unknown attribute '%s' here (nesim reads %s)", show(e->k[j]->text, sh),
                      nesim_json_list_names(keys, list, sizeof list));
        }
    return NESIM_OK;
}

/* n values of a per-synapse attribute: one number for all, or a list of n */
static int values(nctx *c, const nesim_ynode *v, const char *key, size_t n, double **out)
{
    *out = NULL;
    double *a = malloc((n ? n : 1) * sizeof *a);
    if (!a)
        return oom(c);
    int rc = NESIM_OK;
    if (v->kind == NESIM_Y_SCALAR) {
        double x;
        if (!(rc = number(c, v, key, &x)))
            for (size_t i = 0; i < n; i++)
                a[i] = x;
    } else if (v->kind == NESIM_Y_SEQ) {
        if (v->n != n)
            rc = AT(c, v, "%s: %zu values for %zu synapses", key, v->n, n);
        for (size_t i = 0; i < n && !rc; i++)
            rc = number(c, v->item[i], key, &a[i]);
    } else {
        rc = AT(c, v, "%s: expected a number or a list of numbers", key);
    }
    if (rc) {
        free(a);
        return rc;
    }
    *out = a;
    return NESIM_OK;
}

/* dendrite delays: nesim integrates a spike in the next step, as SANA-FE does without them */
static int no_delay(nctx *c, const eattrs *e, size_t n)
{
    const nesim_ynode *d = eget(e, "delay");
    if (!d)
        return NESIM_OK;
    double *v;
    int rc = values(c, d, "delay", n, &v);
    for (size_t i = 0; !rc && i < n; i++)
        if (v[i] != 0)
            rc = AT(c, d, "delay: dendritic delays are not supported by nesim (synapse %zu has %g)", i, v[i]);
    free(v);
    return rc;
}

static int conv_param(nctx *c, const eattrs *e, const nesim_ynode *where, const char *key, int required, int64_t *out)
{
    const nesim_ynode *v = eget(e, key);
    if (!v) {
        if (required)
            return AT(c, where, "conv2d: %s missing", key);
        *out = 1;
        return NESIM_OK;
    }
    uint64_t x;
    int rc = whole(c, v, key, 1 << 24, &x);
    if (!rc && x == 0)
        return AT(c, v, "%s: must be > 0", key);
    *out = (int64_t)x;
    return rc;
}

static int hyperedge(nctx *c, int pre, int post, const nesim_ynode *desc, const eattrs *e)
{
    static const char *const k_dense[] = {"type", "weight", "delay", NULL};
    static const char *const k_sparse[] = {"type", "weight", "delay", "source_target_pairs", NULL};
    static const char *const k_conv[] = {"type", "weight", "delay", "input_width", "input_height",
                                         "input_channels", "kernel_width", "kernel_height", "kernel_count",
                                         "stride_width", "stride_height", NULL};
    const nesim_ynode *t = eget(e, "type");
    char sh[NESIM_JSON_SHOWN];
    if (!t)
        return AT(c, desc, "edge '%s': a group edge needs a type (dense, conv2d, sparse)", show(desc->text, sh));
    int rc = want(c, t, NESIM_Y_SCALAR, "type");
    if (rc)
        return rc;
    const group *A = &c->g[pre], *B = &c->g[post];
    const nesim_ynode *w = eget(e, "weight");
    if (!w)
        return AT(c, desc, "edge '%s': weight missing", show(desc->text, sh));
    projb *P;
    if ((rc = add_proj(c, pre, post, 0, desc->line, desc->col, &P)))
        return rc;
    double *wv = NULL;
    if (!strcmp(t->text, "dense")) {
        size_t n = (size_t)A->n * B->n;
        if (n > MAX_SYNAPSES - c->synapses) {
            rc = AT(c, desc, "dense: %u x %u synapses: more than %d in all (nesim reads SANA-FE networks up to that)",
                    A->n, B->n, MAX_SYNAPSES);
            goto done;
        }
        if ((rc = known_edge_keys(c, e, k_dense)) || (rc = values(c, w, "weight", n, &wv)) || (rc = no_delay(c, e, n)))
            goto done;
        for (uint32_t s = 0; s < A->n && !rc; s++)
            for (uint32_t d = 0; d < B->n && !rc; d++)
                rc = add_syn(c, P, s, d, wv[(size_t)s * B->n + d]);
    } else if (!strcmp(t->text, "sparse")) {
        const nesim_ynode *st = eget(e, "source_target_pairs");
        if ((rc = known_edge_keys(c, e, k_sparse)))
            goto done;
        if (!st || st->kind != NESIM_Y_SEQ) {
            rc = AT(c, st ? st : desc, "sparse: source_target_pairs: expected a list of [source, target]");
            goto done;
        }
        if ((rc = values(c, w, "weight", st->n, &wv)) || (rc = no_delay(c, e, st->n)))
            goto done;
        for (size_t i = 0; i < st->n && !rc; i++) {
            const nesim_ynode *pr = st->item[i];
            uint64_t s, d;
            if (pr->kind != NESIM_Y_SEQ || pr->n != 2) {
                rc = AT(c, pr, "source_target_pairs[%zu]: expected [source, target]", i);
                break;
            }
            if ((rc = whole(c, pr->item[0], "source", (double)A->n - 1, &s)) ||
                (rc = whole(c, pr->item[1], "target", (double)B->n - 1, &d)))
                break;
            rc = add_syn(c, P, (double)s, (double)d, wv[i]);
        }
    } else if (!strcmp(t->text, "conv2d")) {
        int64_t W, H, C, KW, KH, K, SW, SH;
        if ((rc = known_edge_keys(c, e, k_conv)) || (rc = conv_param(c, e, desc, "input_width", 1, &W)) ||
            (rc = conv_param(c, e, desc, "input_height", 1, &H)) ||
            (rc = conv_param(c, e, desc, "input_channels", 1, &C)) ||
            (rc = conv_param(c, e, desc, "kernel_width", 1, &KW)) ||
            (rc = conv_param(c, e, desc, "kernel_height", 1, &KH)) ||
            (rc = conv_param(c, e, desc, "kernel_count", 1, &K)) ||
            (rc = conv_param(c, e, desc, "stride_width", 0, &SW)) ||
            (rc = conv_param(c, e, desc, "stride_height", 0, &SH)))
            goto done;
        if (KW > W || KH > H) {
            rc = AT(c, desc, "conv2d: a %lldx%lld kernel is larger than the %lldx%lld input", (long long)KW,
                    (long long)KH, (long long)W, (long long)H);
            goto done;
        }
        int64_t OW = (W - KW) / SW + 1, OH = (H - KH) / SH + 1;
        if ((uint64_t)(C * W * H) != A->n || (uint64_t)(K * OW * OH) != B->n) {
            rc = AT(c, desc, "conv2d: %lld x %lld x %lld inputs and %lld x %lld x %lld outputs, but the groups have "
                             "%u and %u neurons",
                    (long long)C, (long long)H, (long long)W, (long long)K, (long long)OH, (long long)OW, A->n, B->n);
            goto done;
        }
        double nfd = (double)KH * (double)KW * (double)C * (double)K;
        if (nfd > MAX_SYNAPSES) {
            rc = AT(c, desc, "conv2d: %.0f filter weights: more than %d", nfd, MAX_SYNAPSES);
            goto done;
        }
        size_t nf = (size_t)nfd;
        double ns = (double)K * (double)OH * (double)OW * (double)C * (double)KH * (double)KW;
        if (ns > (double)(MAX_SYNAPSES - c->synapses)) {
            rc = AT(c, desc, "conv2d: %.0f synapses: more than %d in all (nesim reads SANA-FE networks up to that)", ns,
                    MAX_SYNAPSES);
            goto done;
        }
        if ((rc = values(c, w, "weight", nf, &wv)) || (rc = no_delay(c, e, nf)))
            goto done;
        /* channels first; filter laid out [y][x][in][out]; no padding. Listed
         * source by source, each source's outputs ascending (y = (iy - fy) / SH
         * rises as fy falls): the graph then files them row by row, in order,
         * instead of scattering every synapse (each (src, dst) pair occurs
         * once, so the order changes no sum) */
        for (int64_t ci = 0; ci < C && !rc; ci++)
            for (int64_t iy = 0; iy < H && !rc; iy++)
                for (int64_t ix = 0; ix < W && !rc; ix++) {
                    int64_t src = ci * W * H + iy * W + ix;
                    for (int64_t co = 0; co < K && !rc; co++)
                        for (int64_t fy = KH - 1; fy >= 0 && !rc; fy--) {
                            int64_t dy = iy - fy, y = dy / SH;
                            if (dy < 0 || dy % SH || y >= OH)
                                continue;
                            for (int64_t fx = KW - 1; fx >= 0 && !rc; fx--) {
                                int64_t dx = ix - fx, x = dx / SW;
                                if (dx < 0 || dx % SW || x >= OW)
                                    continue;
                                int64_t dst = co * OW * OH + y * OW + x;
                                size_t f = (size_t)(((fy * KW + fx) * C + ci) * K + co);
                                rc = add_syn(c, P, (double)src, (double)dst, wv[f]);
                            }
                        }
                }
    } else {
        rc = AT(c, t, "type: '%s' is not dense, conv2d or sparse", show(t->text, sh));
    }
done:
    free(wv);
    return rc;
}

static int neuron_edge(nctx *c, int pre, int64_t i, int post, int64_t j, const nesim_ynode *desc, const eattrs *e)
{
    static const char *const keys[] = {"weight", "delay", NULL};
    int rc = known_edge_keys(c, e, keys);
    if (rc || (rc = no_delay(c, e, 1)))
        return rc;
    double w = 0; /* SANA-FE's default weight */
    const nesim_ynode *wv = eget(e, "weight");
    if (wv && (rc = number(c, wv, "weight", &w)))
        return rc;
    projb *P;
    if ((rc = add_proj(c, pre, post, 1, desc->line, desc->col, &P)))
        return rc;
    return add_syn(c, P, (double)i, (double)j, w);
}

static int edge(nctx *c, const char *text, int line, int col, const nesim_ynode *desc, const eattrs *e)
{
    const char *arrow = strstr(text, "->");
    char sh[NESIM_JSON_SHOWN];
    if (!arrow)
        return at(c, line, col, "edge '%s': expected SOURCE -> TARGET", show(text, sh));
    int a, b, rc;
    int64_t i, j;
    if ((rc = address(c, text, (size_t)(arrow - text), line, col, &a, &i)) ||
        (rc = address(c, arrow + 2, strlen(arrow + 2), line, col, &b, &j)))
        return rc;
    if ((i < 0) != (j < 0))
        return at(c, line, col, "edge '%s': joins a neuron to a group; give two neurons or two groups", show(text, sh));
    if (i >= 0)
        return neuron_edge(c, a, i, b, j, desc, e);
    return hyperedge(c, a, b, desc, e);
}

/* ---- mappings ---- */

static int core_of(nctx *c, const char *s, int line, int col, uint32_t *core)
{
    char sh[NESIM_JSON_SHOWN];
    if (!c->lay)
        return at(c, line, col, "a mapping needs a chip to map onto (give --chip)");
    unsigned long long t, k;
    int used = 0;
    if (sscanf(s, "%llu.%llu%n", &t, &k, &used) != 2 || s[used] || !isdigit((unsigned char)s[0]))
        return at(c, line, col, "core: '%s' is not TILE.CORE", show(s, sh));
    const nesim_sanafe_layout *L = c->lay;
    uint64_t tiles = (uint64_t)L->mesh_x * L->mesh_y;
    if (t >= tiles || k >= L->cores_per_router)
        return at(c, line, col, "core %llu.%llu: the chip has %llu tiles of %u cores", t, k, (unsigned long long)tiles,
                  L->cores_per_router);
    /* SANA-FE: x = tile / height, y = tile % height; nesim: router = y * width + x */
    uint64_t x = t / L->mesh_y, y = t % L->mesh_y;
    *core = (uint32_t)((y * L->mesh_x + x) * L->cores_per_router + k);
    return NESIM_OK;
}

static int map_neurons(nctx *c, const char *addr, int line, int col, const char *core_text, const nesim_ynode *soma,
                       const nesim_ynode *syn)
{
    char buf[160], sh[NESIM_JSON_SHOWN];
    size_t L = strlen(addr);
    if (!L || L >= sizeof buf)
        return at(c, line, col, "mapping '%s': expected GROUP or GROUP.RANGE", show(addr, sh));
    memcpy(buf, addr, L + 1);
    char *dot = strchr(buf, '.');
    uint64_t lo = 0, hi = 0;
    int rc;
    if (dot) {
        *dot = '\0';
        if ((rc = id_range(c, dot + 1, line, col, "mapping", &lo, &hi)))
            return rc;
    }
    int g = find_group(c, buf);
    if (g < 0)
        return at(c, line, col, "mapping: no group '%s'", show(buf, sh));
    group *G = &c->g[g];
    if (!dot)
        hi = G->n - 1;
    if (hi >= G->n)
        return at(c, line, col, "mapping: group '%s' has %u neurons (no neuron %llu)", G->name, G->n,
                  (unsigned long long)hi);
    uint32_t core = 0;
    if (!c->lay)
        core_text = NULL; /* no chip to map onto: the mapping is not needed */
    if (core_text && (rc = core_of(c, core_text, line, col, &core)))
        return rc;
    int si = -1, yi = -1;
    if (soma && (rc = soma_unit(c, soma, &si)))
        return rc;
    if (syn && (rc = syn_unit(c, syn, &yi)))
        return rc;
    for (uint64_t j = lo; j <= hi; j++) {
        nattr *a = &G->na[j];
        if (core_text) {
            if (a->has_core)
                return at(c, line, col, "mapping: neuron %s.%llu is mapped twice", G->name, (unsigned long long)j);
            a->has_core = 1, a->core = core;
        }
        if (si >= 0)
            a->soma = si;
        if (yi >= 0)
            a->syn = yi;
    }
    if (core_text)
        c->mapped = 1;
    return NESIM_OK;
}

static int yaml_mapping(nctx *c, const nesim_ynode *it)
{
    if (it->kind != NESIM_Y_MAP || it->n != 1)
        return AT(c, it, "mappings: each item is 'NEURONS: [core: TILE.CORE]'");
    const nesim_ynode *k = it->item[0], *v = it->item[1];
    /* the attributes: a mapping or a list of one-key mappings */
    const nesim_ynode *core = NULL, *soma = NULL, *syn = NULL;
    const nesim_ynode *maps[64];
    size_t nm = 0;
    if (v->kind == NESIM_Y_MAP)
        maps[nm++] = v;
    else if (v->kind == NESIM_Y_SEQ)
        for (size_t i = 0; i < v->n && nm < 64; i++) {
            if (v->item[i]->kind != NESIM_Y_MAP)
                return AT(c, v->item[i], "mapping: each item is a 'key: value' mapping");
            maps[nm++] = v->item[i];
        }
    else
        return AT(c, v, "mapping: expected [core: TILE.CORE]");
    for (size_t m = 0; m < nm; m++)
        for (size_t i = 0; i < maps[m]->n; i++) {
            const nesim_ynode *kk = maps[m]->item[2 * i], *vv = maps[m]->item[2 * i + 1];
            const nesim_ynode **to = !strcmp(kk->text, "core") ? &core : !strcmp(kk->text, "soma") ? &soma
                                     : !strcmp(kk->text, "synapse") ? &syn : NULL;
            char sh[NESIM_JSON_SHOWN];
            if (!to)
                return AT(c, kk, "mapping: unknown key '%s' (nesim reads core, soma, synapse)", show(kk->text, sh));
            if (vv->kind != NESIM_Y_SCALAR)
                return AT(c, vv, "mapping: %s: expected a name", kk->text);
            *to = vv;
        }
    return map_neurons(c, k->text, k->line, k->col, core ? core->text : NULL, soma, syn);
}

/* ---- the YAML file ---- */

static int yaml_network(nctx *c, const nesim_ynode *root, char **name)
{
    static const char *const top[] = {"network", "mappings", NULL};
    static const char *const net_keys[] = {"name", "groups", "edges", NULL};
    int rc = want(c, root, NESIM_Y_MAP, "the file");
    if (rc)
        return rc;
    char sh[NESIM_JSON_SHOWN];
    for (size_t i = 0; i < root->n; i++)
        if (nesim_json_find_name(top, root->item[2 * i]->text) < 0)
            return AT(c, root->item[2 * i], "unknown key '%s' (network, mappings)", show(root->item[2 * i]->text, sh));
    const nesim_ynode *net = nesim_yaml_get(root, "network");
    if ((rc = want(c, net, NESIM_Y_MAP, "network")))
        return rc;
    for (size_t i = 0; i < net->n; i++)
        if (nesim_json_find_name(net_keys, net->item[2 * i]->text) < 0)
            return AT(c, net->item[2 * i], "network: unknown key '%s' (name, groups, edges)",
                      show(net->item[2 * i]->text, sh));
    const nesim_ynode *nm = nesim_yaml_get(net, "name");
    if (nm && nm->kind == NESIM_Y_SCALAR && !(*name = strdup(nm->text)))
        return oom(c);
    const nesim_ynode *groups = nesim_yaml_get(net, "groups");
    if ((rc = want(c, groups, NESIM_Y_SEQ, "network.groups")))
        return rc;
    for (size_t i = 0; i < groups->n; i++)
        if ((rc = yaml_group(c, groups->item[i])))
            return rc;
    const nesim_ynode *edges = nesim_yaml_get(net, "edges");
    if (edges && edges->kind != NESIM_Y_SEQ && !(edges->kind == NESIM_Y_SCALAR && !edges->len))
        return AT(c, edges, "network.edges: expected a list");
    for (size_t i = 0; edges && edges->kind == NESIM_Y_SEQ && i < edges->n; i++) {
        const nesim_ynode *it = edges->item[i];
        if (it->kind != NESIM_Y_MAP || it->n != 1)
            return AT(c, it, "edges: each item is 'SOURCE -> TARGET: attributes'");
        eattrs e = {.n = 0};
        if ((rc = flatten(c, it->item[1], &e, 0)) ||
            (rc = edge(c, it->item[0]->text, it->item[0]->line, it->item[0]->col, it->item[0], &e)))
            return rc;
    }
    const nesim_ynode *maps = nesim_yaml_get(root, "mappings");
    if (maps && maps->kind != NESIM_Y_SEQ)
        return AT(c, maps, "mappings: expected a list");
    for (size_t i = 0; maps && i < maps->n; i++)
        if ((rc = yaml_mapping(c, maps->item[i])))
            return rc;
    return NESIM_OK;
}

/* ---- the netlist ---- */

static void shift_nodes(nesim_ynode *n, int line, int col)
{
    if (!n)
        return;
    n->col += col - 1;
    n->line = line;
    size_t m = n->kind == NESIM_Y_MAP ? 2 * n->n : n->kind == NESIM_Y_SEQ ? n->n : 0;
    for (size_t i = 0; i < m; i++)
        shift_nodes(n->item[i], line, col);
}

/* One key=value token of a netlist line at *pp (blanks skipped), copied
 * into key and val and described by kn and vn with their columns; *pp moves
 * past it. Returns NESIM_OK with *got 0 at the end of the line. */
#define KV_KEY 80
#define KV_VAL 200
static int next_kv(nctx *c, const char **pp, const char *line_start, int line, char key[KV_KEY], char val[KV_VAL],
                   nesim_ynode *kn, nesim_ynode *vn, int *got)
{
    const char *p = *pp;
    while (*p == ' ' || *p == '\t')
        p++;
    *got = 0;
    *pp = p;
    if (!*p)
        return NESIM_OK;
    const char *end = p + strcspn(p, " \t"), *eq = memchr(p, '=', (size_t)(end - p));
    int tcol = (int)(p - line_start) + 1;
    if (!eq || eq == p || eq - p >= KV_KEY || end - eq > KV_VAL)
        return at(c, line, tcol, "'%.*s' is not key=value", (int)(end - p < 60 ? end - p : 60), p);
    snprintf(key, KV_KEY, "%.*s", (int)(eq - p), p);
    snprintf(val, KV_VAL, "%.*s", (int)(end - eq - 1), eq + 1);
    *kn = (nesim_ynode){.kind = NESIM_Y_SCALAR, .line = line, .col = tcol, .text = key, .len = strlen(key), .plain = 1};
    *vn = (nesim_ynode){.kind = NESIM_Y_SCALAR, .line = line, .col = tcol + (int)(eq - p) + 1, .text = val,
                        .len = strlen(val), .plain = 1};
    *pp = end;
    *got = 1;
    return NESIM_OK;
}

/* The attributes after a line's required field: key=value tokens, or a
 * YAML flow mapping or list; applied with fn. */
typedef int (*attr_fn)(nctx *c, void *u, const nesim_ynode *k, const nesim_ynode *v);

static int line_attrs(nctx *c, const char *rest, const char *line_start, int line, attr_fn fn, void *u)
{
    while (*rest == ' ' || *rest == '\t')
        rest++;
    if (!*rest)
        return NESIM_OK;
    int col = (int)(rest - line_start) + 1;
    if (*rest == '{' || *rest == '[') {
        nesim_yaml *y;
        int rc = nesim_yaml_parse(rest, strlen(rest), c->file, &y, c->err);
        if (rc)
            return rc;
        shift_nodes(y->root, line, col);
        const nesim_ynode *n = y->root;
        if (n && n->kind == NESIM_Y_SEQ) {
            for (size_t i = 0; i < n->n && !rc; i++) {
                const nesim_ynode *m = n->item[i];
                if (m->kind != NESIM_Y_MAP)
                    rc = AT(c, m, "attributes: each item is a 'key: value' mapping");
                for (size_t j = 0; !rc && m->kind == NESIM_Y_MAP && j < m->n; j++)
                    rc = fn(c, u, m->item[2 * j], m->item[2 * j + 1]);
            }
        } else {
            for (size_t j = 0; n && j < n->n && !rc; j++)
                rc = fn(c, u, n->item[2 * j], n->item[2 * j + 1]);
        }
        nesim_yaml_free(y);
        return rc;
    }
    for (const char *p = rest;;) {
        char key[KV_KEY], val[KV_VAL];
        nesim_ynode kn, vn;
        int got, rc = next_kv(c, &p, line_start, line, key, val, &kn, &vn, &got);
        if (!rc && got)
            rc = fn(c, u, &kn, &vn);
        if (rc || !got)
            return rc;
    }
    return NESIM_OK;
}

static int neuron_fn(nctx *c, void *u, const nesim_ynode *k, const nesim_ynode *v) { return apply(c, u, k, v, 0); }

static int netlist(nctx *c, const char *text, size_t len)
{
    char *buf = malloc(len + 1);
    if (!buf)
        return oom(c);
    memcpy(buf, text, len);
    buf[len] = '\0';
    int rc = NESIM_OK, line = 0;
    char *save = NULL;
    for (char *ln = buf; ln && !rc; ln = save) {
        char *nl = strchr(ln, '\n');
        save = nl ? nl + 1 : NULL;
        if (nl)
            *nl = '\0';
        line++;
        size_t L = strlen(ln);
        if (L && ln[L - 1] == '\r')
            ln[--L] = '\0';
        char *hash = strchr(ln, '#');
        if (hash)
            *hash = '\0';
        char *p = ln;
        while (*p == ' ' || *p == '\t')
            p++;
        if (!*p)
            continue;
        int kcol = (int)(p - ln) + 1;
        char kind = *p++;
        if (*p && *p != ' ' && *p != '\t') {
            rc = at(c, line, kcol, "a line starts with g, n, e or & and a space");
            break;
        }
        while (*p == ' ' || *p == '\t')
            p++;
        char *field = p, *fend = p + strcspn(p, " \t");
        char save_c = *fend;
        *fend = '\0';
        int fcol = (int)(field - ln) + 1;
        char *rest = save_c ? fend + 1 : fend;
        if (kind == 'g') {
            char *end;
            unsigned long long n = strtoull(field, &end, 10);
            if (!*field || *end || n == 0 || n >= (1ull << 31)) {
                rc = at(c, line, fcol, "g: '%s' is not a neuron count", field);
                break;
            }
            char name[24];
            snprintf(name, sizeof name, "%zu", c->ng);
            int id;
            if ((rc = add_group(c, name, (uint32_t)n, line, 1, &id)))
                break;
            nattr base;
            attr_default(&base);
            if ((rc = line_attrs(c, rest, ln, line, neuron_fn, &base)))
                break;
            for (uint32_t j = 0; j < c->g[id].n; j++)
                c->g[id].na[j] = base;
        } else if (kind == 'n') {
            int g;
            int64_t j;
            if ((rc = address(c, field, strlen(field), line, fcol, &g, &j)))
                break;
            if (j < 0) {
                rc = at(c, line, fcol, "n: expected GROUP.NEURON");
                break;
            }
            rc = line_attrs(c, rest, ln, line, neuron_fn, &c->g[g].na[j]);
        } else if (kind == 'e') {
            nesim_ynode desc = {.kind = NESIM_Y_SCALAR, .line = line, .col = fcol, .text = field, .len = strlen(field)};
            /* key=value attributes, kept here while the edge is read */
            char keys[24][KV_KEY], vals[24][KV_VAL];
            nesim_ynode kn[24], vn[24];
            eattrs e = {.n = 0};
            for (const char *p2 = rest;;) {
                int k = e.n, got;
                if (k == 24) {
                    p2 += strspn(p2, " \t");
                    if (*p2)
                        rc = at(c, line, (int)(p2 - ln) + 1, "e: too many attributes");
                    break;
                }
                if ((rc = next_kv(c, &p2, ln, line, keys[k], vals[k], &kn[k], &vn[k], &got)) || !got)
                    break;
                for (int q = 0; q < k && !rc; q++)
                    if (!strcmp(keys[q], keys[k]))
                        rc = at(c, line, kn[k].col, "edge attribute '%s' is given twice", keys[k]);
                if (rc)
                    break;
                e.k[k] = &kn[k], e.v[k] = &vn[k];
                e.n++;
            }
            if (rc)
                break;
            rc = edge(c, field, line, fcol, &desc, &e);
        } else if (kind == '&') {
            char *atc = strchr(field, '@');
            if (!atc) {
                rc = at(c, line, fcol, "&: expected GROUP.NEURON@TILE.CORE");
                break;
            }
            *atc = '\0';
            if (!strchr(field, '.')) {
                rc = at(c, line, fcol, "&: expected GROUP.NEURON@TILE.CORE");
                break;
            }
            rc = map_neurons(c, field, line, fcol, atc + 1, NULL, NULL);
        } else {
            rc = at(c, line, kcol, "'%c': a line is g (group), n (neuron), e (edge) or & (mapping)", kind);
        }
    }
    free(buf);
    return rc;
}

/* ---- the spec ---- */

static int spec_array(nesim_spec_array *a, const double *v, size_t n)
{
    memset(a, 0, sizeof *a);
    if (!(a->v = malloc((n ? n : 1) * sizeof *a->v)))
        return -1;
    memcpy(a->v, v, n * sizeof *v);
    a->n = n;
    return 0;
}

/* Group G as population P; tmp holds G->n values. */
static int build_pop(nctx *c, const group *G, nesim_spec_pop *P, double *tmp)
{
    if (!(P->name = strdup(G->name)) || !(P->model = strdup("loihi")) ||
        !(P->params = calloc(N_ATTR + 1, sizeof *P->params)) ||
        !(P->array_names = calloc(N_ATTR, sizeof *P->array_names)) ||
        !(P->arrays = calloc(N_ATTR, sizeof *P->arrays)))
        return oom(c);
    P->n = G->n;
    for (int k = 0; k < A_POT; k++) {
        int varies = 0;
        for (uint32_t j = 0; j < G->n; j++) {
            tmp[j] = G->na[j].v[k];
            varies |= tmp[j] != tmp[0];
        }
        if (!varies) {
            if (!(P->params[P->n_params].name = strdup(param_of[k])))
                return oom(c);
            P->params[P->n_params++].value = tmp[0];
        } else {
            if (!(P->array_names[P->n_arrays] = strdup(param_of[k])) ||
                spec_array(&P->arrays[P->n_arrays], tmp, G->n))
                return oom(c);
            P->n_arrays++;
        }
    }
    if (!(P->params[P->n_params].name = strdup("quantum")))
        return oom(c);
    P->params[P->n_params++].value = 1.0 / 64;
    /* SANA-FE's first step adds the bias to the (quantized) initial potential: nesim's tick 0 */
    for (uint32_t j = 0; j < G->n; j++)
        tmp[j] = trunc(G->na[j].v[A_POT] * 64.0) / 64.0 + G->na[j].v[A_BIAS];
    if (spec_array(&P->v_values, tmp, G->n))
        return oom(c);
    P->v_init = (nesim_init_dist){.kind = NESIM_INIT_VALUES, .values = P->v_values.v};
    /* somas: leaky_integrate_fire (checked as read); the core's default unit is the first */
    if (c->arch && !c->arch->n_soma)
        return at(c, G->line, G->col, "group '%s': the architecture has no soma unit", G->name);
    if (c->arch && strcmp(c->arch->soma_model[0], "leaky_integrate_fire"))
        for (uint32_t j = 0; j < G->n; j++)
            if (G->na[j].soma < 0)
                return at(c, G->line, G->col, "group '%s': neuron %u has no soma_hw_name and the core's first "
                                              "soma unit '%s' is not leaky_integrate_fire",
                          G->name, j, c->arch->soma_name[0]);
    if (c->mapped) {
        if (!(P->cores = malloc(G->n * sizeof *P->cores)))
            return oom(c);
        for (uint32_t j = 0; j < G->n; j++) {
            if (!G->na[j].has_core)
                return at(c, G->line, G->col, "group '%s': neuron %u is not mapped to a core (map every neuron "
                                              "or none)", G->name, j);
            P->cores[j] = G->na[j].core;
        }
    }
    return NESIM_OK;
}

static int build_spec(nctx *c, const char *name, nesim_spec **out)
{
    nesim_spec *s = calloc(1, sizeof *s);
    if (!s)
        return oom(c);
    *out = s;
    const char *stem = strrchr(c->file, '/') ? strrchr(c->file, '/') + 1 : c->file;
    if (!(s->file = strdup(c->file)) || !(s->name = name ? strdup(name) : strndup(stem, strcspn(stem, "."))))
        return oom(c);
    s->tick = 1e-3; /* a SANA-FE step; chip time (--timing) says how long the chip takes */
    if (!c->ng)
        return at(c, 0, 0, "the network has no groups");
    if (!(s->pops = calloc(c->ng, sizeof *s->pops)))
        return oom(c);
    s->n_pops = c->ng;
    for (size_t gi = 0; gi < c->ng; gi++) {
        double *tmp = malloc(c->g[gi].n * sizeof *tmp);
        int rc = tmp ? build_pop(c, &c->g[gi], &s->pops[gi], tmp) : oom(c);
        free(tmp);
        if (rc)
            return rc;
    }
    /* projections: explicit lists of delay 1, stored as the post group's synapse unit says */
    if (c->np && !(s->projs = calloc(c->np, sizeof *s->projs)))
        return oom(c);
    for (size_t i = 0; i < c->np; i++) {
        projb *B = &c->p[i];
        nesim_spec_proj *J = &s->projs[s->n_projs];
        if (!B->n)
            continue;
        const group *post = &c->g[B->post];
        int st = post->na[0].syn;
        for (uint32_t j = 1; j < post->n; j++)
            if (post->na[j].syn != st)
                return at(c, post->line, post->col, "group '%s': its neurons name different synapse units; nesim "
                                                    "stores a group's synapses one way", post->name);
        if (st < 0)
            st = c->arch && c->arch->n_syn ? nesim_sanafe_unit_storage(c->arch->syn_name[0]) : NESIM_STORE_SPARSE;
        J->pre = B->pre, J->post = B->post, J->rule = NESIM_EXPLICIT, J->delay = 1, J->autapses = 1;
        J->storage = (enum nesim_syn_storage)st;
        for (int k = 0; k < 3; k++) {
            J->syn[k].v = B->v[k], J->syn[k].n = B->n;
            J->has_syn[k] = 1;
            B->v[k] = NULL;
        }
        s->n_projs++;
    }
    return NESIM_OK;
}

static void ctx_free(nctx *c)
{
    for (size_t i = 0; i < c->ng; i++)
        free(c->g[i].name), free(c->g[i].na);
    for (size_t i = 0; i < c->np; i++)
        for (int k = 0; k < 3; k++)
            free(c->p[i].v[k]);
    free(c->g);
    free(c->p);
}

int nesim_sanafe_net_parse(const char *text, size_t len, const char *name_for_errors, int is_netlist,
                           const nesim_sanafe_arch *arch, const nesim_sanafe_layout *lay, nesim_spec **out,
                           nesim_error *err)
{
    *out = NULL;
    nctx c = {.file = name_for_errors ? name_for_errors : "<snn>", .err = err, .arch = arch, .lay = lay};
    char *name = NULL;
    int rc;
    if (is_netlist) {
        if (memchr(text ? text : "", '\0', text ? len : 0))
            return nesim_fail(err, NESIM_EINVAL, "%s: a NUL byte (a netlist is text)", c.file);
        rc = netlist(&c, text ? text : "", text ? len : 0);
    } else {
        nesim_yaml *y;
        if (!(rc = nesim_yaml_parse(text, len, c.file, &y, err))) {
            rc = yaml_network(&c, y->root, &name);
            nesim_yaml_free(y);
        }
    }
    nesim_spec *s = NULL;
    if (!rc)
        rc = build_spec(&c, name, &s);
    free(name);
    ctx_free(&c);
    if (rc) {
        nesim_spec_free(s);
        return rc;
    }
    *out = s;
    return NESIM_OK;
}

int nesim_sanafe_net_load(const char *path, const nesim_sanafe_arch *arch, const nesim_sanafe_layout *lay,
                          nesim_spec **out, nesim_error *err)
{
    *out = NULL;
    int kind = nesim_sanafe_file_kind(path);
    if (!kind)
        return nesim_fail(err, NESIM_EINVAL, "%s: a SANA-FE network is a .yaml, .yml or .net file", path);
    char *buf;
    size_t n;
    int rc = nesim_json_read_file(path, 1u << 30, "SANA-FE network file", "1 GiB", &buf, &n, err);
    if (rc)
        return rc;
    rc = nesim_sanafe_net_parse(buf, n, path, kind == 2, arch, lay, out, err);
    free(buf);
    return rc;
}
