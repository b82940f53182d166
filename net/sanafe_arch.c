/* sanafe_arch.c — a SANA-FE architecture file as a nesim chip profile
 * (net/sanafe.h). The profile is built as the JSON document chips/README.md
 * describes, so that net/chip.c checks it like any other. */
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "net/jsonmsg.h"
#include "net/sanafe.h"
#include "net/yaml_tree.h"

typedef struct actx {
    const char *file;
    nesim_error *err;
    nesim_sanafe_arch *a;
} actx;

static int at(const actx *c, const nesim_ynode *n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int at(const actx *c, const nesim_ynode *n, const char *fmt, ...)
{
    char what[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (!n)
        return nesim_fail(c->err, NESIM_EINVAL, "%s: %s", c->file, what);
    return nesim_fail(c->err, NESIM_EINVAL, "%s:%d:%d: %s", c->file, n->line, n->col, what);
}

static int oom(const actx *c) { return nesim_fail(c->err, NESIM_ENOMEM, "%s: out of memory", c->file); }

int nesim_sanafe_file_kind(const char *path)
{
    size_t L = path ? strlen(path) : 0;
    if ((L > 5 && !strcmp(path + L - 5, ".yaml")) || (L > 4 && !strcmp(path + L - 4, ".yml")))
        return 1;
    if (L > 4 && !strcmp(path + L - 4, ".net"))
        return 2;
    return 0;
}

void nesim_sanafe_arch_free(nesim_sanafe_arch *a)
{
    if (!a)
        return;
    for (size_t i = 0; i < a->n_soma; i++)
        free(a->soma_name[i]), free(a->soma_model[i]);
    for (size_t i = 0; i < a->n_syn; i++)
        free(a->syn_name[i]);
    free(a->soma_name);
    free(a->soma_model);
    free(a->syn_name);
    json_decref(a->chip);
    free(a->file);
    free(a);
}

/* ---- reading nodes ---- */

static int want(const actx *c, const nesim_ynode *n, nesim_ynode_kind k, const char *what)
{
    if (!n)
        return at(c, NULL, "%s: missing", what);
    if (n->kind != k)
        return at(c, n, "%s: expected a %s, got a %s", what, nesim_yaml_kind_name(k), nesim_yaml_kind_name(n->kind));
    return NESIM_OK;
}

static int number(const actx *c, const nesim_ynode *n, const char *key, double *out)
{
    int rc = want(c, n, NESIM_Y_SCALAR, key);
    if (rc)
        return rc;
    char *end;
    double v = strtod(n->text, &end);
    if (end == n->text || *end || !isfinite(v)) {
        char sh[NESIM_JSON_SHOWN];
        return at(c, n, "%s: '%s' is not a finite number", key, nesim_json_show(n->text, sh));
    }
    *out = v;
    return NESIM_OK;
}

static int nonneg(const actx *c, const nesim_ynode *n, const char *key, double *out)
{
    int rc = number(c, n, key, out);
    if (!rc && *out < 0)
        return at(c, n, "%s: must be >= 0 (got %g)", key, *out);
    return rc;
}

static int count(const actx *c, const nesim_ynode *n, const char *key, double lo, double hi, uint32_t *out)
{
    double v;
    int rc = number(c, n, key, &v);
    if (rc)
        return rc;
    if (v != floor(v) || v < lo || v > hi)
        return at(c, n, "%s: expected a whole number in [%g, %g] (got %g)", key, lo, hi, v);
    *out = (uint32_t)v;
    return NESIM_OK;
}

/* Every key of map m must be in keys (ignored: keys SANA-FE uses that nesim
 * need not read). */
static int known_keys(const actx *c, const nesim_ynode *m, const char *where, const char *const *keys,
                      const char *const *ignored)
{
    for (size_t i = 0; i < m->n; i++) {
        const nesim_ynode *k = m->item[2 * i];
        if (nesim_json_find_name(keys, k->text) >= 0 || (ignored && nesim_json_find_name(ignored, k->text) >= 0))
            continue;
        char sh[NESIM_JSON_SHOWN], list[300];
        return at(c, k, "%s: unknown key '%s' (nesim reads %s)", where, nesim_json_show(k->text, sh),
                  nesim_json_list_names(keys, list, sizeof list));
    }
    return NESIM_OK;
}

/* "name[a..b]": b - a + 1 units; a plain name: 1. */
static int range_count(const actx *c, const nesim_ynode *name, uint32_t *n)
{
    const char *s = name->text, *lb = strchr(s, '[');
    *n = 1;
    if (!lb)
        return NESIM_OK;
    unsigned long a, b;
    int used = 0;
    if (sscanf(lb, "[%lu..%lu]%n", &a, &b, &used) != 2 || lb[used] || b < a || b - a >= (1ul << 24))
        return at(c, name, "name: '%s' is not NAME or NAME[FIRST..LAST]", s);
    *n = (uint32_t)(b - a + 1);
    return NESIM_OK;
}

/* ---- the chip profile document ---- */

typedef struct doc {
    json_t *root;
    const char *file;
} doc;

static int put(json_t *o, const char *key, double v, const char *unit, const char *source, const char *assumption)
{
    json_t *q = json_object();
    /* counts are JSON integers; energies, times and sizes in nm are reals */
    int is_count = strcmp(unit, "J") && strcmp(unit, "s") && strcmp(unit, "W") && strcmp(unit, "nm");
    if (!q || json_object_set_new(q, "value", is_count ? json_integer((json_int_t)v) : json_real(v)) || json_object_set_new(q, "unit", json_string(unit)) ||
        json_object_set_new(q, source ? "source" : "assumption", json_string(source ? source : assumption)) ||
        json_object_set_new(o, key, q))
        return -1;
    return 0;
}

/* A unit: its name and attributes, the attributes' keys checked. */
typedef struct unit {
    const nesim_ynode *name, *attrs;
} unit;

static int read_units(const actx *c, const nesim_ynode *list, const char *what, unit **out, size_t *n)
{
    *out = NULL, *n = 0;
    int rc = want(c, list, NESIM_Y_SEQ, what);
    if (rc)
        return rc;
    if (!list->n)
        return at(c, list, "%s: lists no units", what);
    unit *u = calloc(list->n, sizeof *u);
    if (!u)
        return oom(c);
    static const char *const keys[] = {"name", "attributes", NULL};
    for (size_t i = 0; i < list->n; i++) {
        const nesim_ynode *x = list->item[i];
        if ((rc = want(c, x, NESIM_Y_MAP, what)) || (rc = known_keys(c, x, what, keys, NULL)) ||
            (rc = want(c, nesim_yaml_get(x, "name"), NESIM_Y_SCALAR, "name")))
            break;
        u[i].name = nesim_yaml_get(x, "name");
        u[i].attrs = nesim_yaml_get(x, "attributes");
        if (u[i].attrs && (rc = want(c, u[i].attrs, NESIM_Y_MAP, "attributes")))
            break;
        uint32_t k;
        if ((rc = range_count(c, u[i].name, &k)))
            break;
    }
    if (rc) {
        free(u);
        return rc;
    }
    *out = u, *n = list->n;
    return NESIM_OK;
}

/* value of key in a unit's attributes (0 when absent) */
static int unit_num(const actx *c, const unit *u, const char *key, double *v)
{
    *v = 0;
    const nesim_ynode *x = nesim_yaml_get(u->attrs, key);
    return x ? nonneg(c, x, key, v) : NESIM_OK;
}

static char *dupn(const nesim_ynode *n) { return strdup(n->text); }

enum nesim_syn_storage nesim_sanafe_unit_storage(const char *unit_name)
{
    return strstr(unit_name, "dense") ? NESIM_STORE_DENSE : strstr(unit_name, "conv") ? NESIM_STORE_CONV : NESIM_STORE_SPARSE;
}

/* index of a storage in the per-storage tables below: 0 dense, 1 sparse, 2 conv */
static int storage_slot(const char *unit_name) { return (int)nesim_sanafe_unit_storage(unit_name) - NESIM_STORE_DENSE; }

static int arch_build(actx *c, const nesim_ynode *root)
{
    nesim_sanafe_arch *A = c->a;
    int rc;
    static const char *const top_keys[] = {"architecture", NULL};
    static const char *const arch_keys[] = {"name", "attributes", "tile", NULL};
    static const char *const chip_attr[] = {"topology", "width", "height", "link_buffer_size", "sync_model",
                                            "latency_sync", NULL};
    static const char *const tile_keys[] = {"name", "attributes", "core", NULL};
    static const char *const tile_attr[] = {"energy_north_hop", "latency_north_hop", "energy_east_hop",
                                            "latency_east_hop", "energy_south_hop", "latency_south_hop",
                                            "energy_west_hop", "latency_west_hop", NULL};
    static const char *const core_keys[] = {"name", "attributes", "axon_in", "soma", "dendrite", "synapse",
                                            "axon_out", NULL};
    static const char *const core_attr[] = {"max_neurons_supported", NULL};
    static const char *const core_ignored[] = {"buffer_position", "buffer_inside_unit", NULL};
    static const char *const in_attr[] = {"energy_message_in", "latency_message_in", NULL};
    static const char *const out_attr[] = {"energy_message_out", "latency_message_out", NULL};
    static const char *const soma_attr[] = {"model", "energy_access_neuron", "latency_access_neuron",
                                            "energy_update_neuron", "latency_update_neuron", "energy_spike_out",
                                            "latency_spike_out", NULL};
    static const char *const dend_attr[] = {"model", "energy_update", "latency_update", NULL};
    static const char *const syn_attr[] = {"model", "energy_process_spike", "latency_process_spike", NULL};
    static const char *const soma_models[] = {"leaky_integrate_fire", "input", "truenorth", NULL};

    if ((rc = want(c, root, NESIM_Y_MAP, "the file")) || (rc = known_keys(c, root, "top level", top_keys, NULL)))
        return rc;
    const nesim_ynode *ar = nesim_yaml_get(root, "architecture");
    if ((rc = want(c, ar, NESIM_Y_MAP, "architecture")) || (rc = known_keys(c, ar, "architecture", arch_keys, NULL)))
        return rc;
    const nesim_ynode *attrs = nesim_yaml_get(ar, "attributes");
    if ((rc = want(c, attrs, NESIM_Y_MAP, "architecture.attributes")) ||
        (rc = known_keys(c, attrs, "architecture.attributes", chip_attr, NULL)))
        return rc;
    const nesim_ynode *topo = nesim_yaml_get(attrs, "topology");
    if (topo && (topo->kind != NESIM_Y_SCALAR || strcmp(topo->text, "mesh")))
        return at(c, topo, "topology: nesim models a mesh (got %s)", topo->kind == NESIM_Y_SCALAR ? topo->text : "a collection");
    uint32_t link_buffer = 1;
    if ((rc = count(c, nesim_yaml_get(attrs, "width"), "width", 1, 65535, &A->width)) ||
        (rc = count(c, nesim_yaml_get(attrs, "height"), "height", 1, 65535, &A->height)) ||
        (nesim_yaml_get(attrs, "link_buffer_size") &&
         (rc = count(c, nesim_yaml_get(attrs, "link_buffer_size"), "link_buffer_size", 1, 1 << 20, &link_buffer))))
        return rc;
    /* tiles and cores: one kind of each */
    const nesim_ynode *tiles = nesim_yaml_get(ar, "tile");
    if ((rc = want(c, tiles, NESIM_Y_SEQ, "architecture.tile")))
        return rc;
    if (tiles->n != 1)
        return at(c, tiles, "tile: nesim models one kind of tile repeated over the mesh (got %zu entries)", tiles->n);
    const nesim_ynode *tile = tiles->item[0];
    if ((rc = want(c, tile, NESIM_Y_MAP, "tile")) || (rc = known_keys(c, tile, "tile", tile_keys, NULL)))
        return rc;
    uint32_t n_tiles;
    if ((rc = want(c, nesim_yaml_get(tile, "name"), NESIM_Y_SCALAR, "tile name")) ||
        (rc = range_count(c, nesim_yaml_get(tile, "name"), &n_tiles)))
        return rc;
    if ((uint64_t)n_tiles > (uint64_t)A->width * A->height)
        return at(c, nesim_yaml_get(tile, "name"), "tile: %u tiles do not fit a %u x %u mesh", n_tiles, A->width,
                  A->height);
    const nesim_ynode *tattr = nesim_yaml_get(tile, "attributes");
    if ((rc = want(c, tattr, NESIM_Y_MAP, "tile.attributes")) ||
        (rc = known_keys(c, tattr, "tile.attributes", tile_attr, NULL)))
        return rc;
    double hop[8];
    for (int k = 0; k < 8; k++) {
        const nesim_ynode *x = nesim_yaml_get(tattr, tile_attr[k]);
        hop[k] = 0;
        if (x && (rc = nonneg(c, x, tile_attr[k], &hop[k])))
            return rc;
    }
    /* north 0/1, east 2/3, south 4/5, west 6/7 (energy/latency) */
    for (int k = 0; k < 2; k++) {
        if (hop[2 + k] != hop[6 + k])
            return at(c, tattr, "tile.attributes: %s (%g) and %s (%g) differ; nesim prices one east-west hop",
                      tile_attr[2 + k], hop[2 + k], tile_attr[6 + k], hop[6 + k]);
        if (hop[0 + k] != hop[4 + k])
            return at(c, tattr, "tile.attributes: %s (%g) and %s (%g) differ; nesim prices one north-south hop",
                      tile_attr[0 + k], hop[0 + k], tile_attr[4 + k], hop[4 + k]);
    }
    const nesim_ynode *cores = nesim_yaml_get(tile, "core");
    if ((rc = want(c, cores, NESIM_Y_SEQ, "tile.core")))
        return rc;
    if (cores->n != 1)
        return at(c, cores, "core: nesim models one kind of core in every tile (got %zu entries)", cores->n);
    const nesim_ynode *core = cores->item[0];
    if ((rc = want(c, core, NESIM_Y_MAP, "core")) || (rc = known_keys(c, core, "core", core_keys, NULL)) ||
        (rc = want(c, nesim_yaml_get(core, "name"), NESIM_Y_SCALAR, "core name")) ||
        (rc = range_count(c, nesim_yaml_get(core, "name"), &A->cores_per_tile)))
        return rc;
    const nesim_ynode *cattr = nesim_yaml_get(core, "attributes");
    uint32_t max_neurons = 0;
    if (cattr) {
        if ((rc = want(c, cattr, NESIM_Y_MAP, "core.attributes")) ||
            (rc = known_keys(c, cattr, "core.attributes", core_attr, core_ignored)))
            return rc;
        if (nesim_yaml_get(cattr, "max_neurons_supported") &&
            (rc = count(c, nesim_yaml_get(cattr, "max_neurons_supported"), "max_neurons_supported", 1, 1u << 30,
                        &max_neurons)))
            return rc;
    }
    unit *uin = NULL, *usoma = NULL, *udend = NULL, *usyn = NULL, *uout = NULL;
    size_t nin = 0, nsoma = 0, ndend = 0, nsyn = 0, nout = 0;
    if ((rc = read_units(c, nesim_yaml_get(core, "axon_in"), "axon_in", &uin, &nin)) ||
        (rc = read_units(c, nesim_yaml_get(core, "soma"), "soma", &usoma, &nsoma)) ||
        (rc = read_units(c, nesim_yaml_get(core, "synapse"), "synapse", &usyn, &nsyn)) ||
        (rc = read_units(c, nesim_yaml_get(core, "axon_out"), "axon_out", &uout, &nout)) ||
        (nesim_yaml_get(core, "dendrite") && (rc = read_units(c, nesim_yaml_get(core, "dendrite"), "dendrite", &udend, &ndend))))
        goto done;
    if (nin != 1 || nout != 1) {
        rc = at(c, nin != 1 ? nesim_yaml_get(core, "axon_in") : nesim_yaml_get(core, "axon_out"),
                "%s: nesim models one unit per core (got %zu)", nin != 1 ? "axon_in" : "axon_out", nin != 1 ? nin : nout);
        goto done;
    }
    for (size_t i = 0; i < nin && !rc; i++)
        rc = uin[i].attrs ? known_keys(c, uin[i].attrs, "axon_in attributes", in_attr, NULL) : 0;
    for (size_t i = 0; i < nout && !rc; i++)
        rc = uout[i].attrs ? known_keys(c, uout[i].attrs, "axon_out attributes", out_attr, NULL) : 0;
    for (size_t i = 0; i < nsyn && !rc; i++)
        rc = usyn[i].attrs ? known_keys(c, usyn[i].attrs, "synapse attributes", syn_attr, NULL) : 0;
    for (size_t i = 0; i < ndend && !rc; i++) {
        rc = udend[i].attrs ? known_keys(c, udend[i].attrs, "dendrite attributes", dend_attr, NULL) : 0;
        double e = 0, l = 0;
        if (!rc && !(rc = unit_num(c, &udend[i], "energy_update", &e)) && !(rc = unit_num(c, &udend[i], "latency_update", &l)) &&
            (e != 0 || l != 0))
            rc = at(c, udend[i].name, "dendrite '%s': nesim does not price dendrite updates (energy_update and "
                                      "latency_update must be 0)", udend[i].name->text);
    }
    if (rc)
        goto done;
    /* soma units: names and models; the first that is not an input prices neurons */
    const unit *lif = NULL;
    A->soma_name = calloc(nsoma, sizeof *A->soma_name);
    A->soma_model = calloc(nsoma, sizeof *A->soma_model);
    if (!A->soma_name || !A->soma_model) {
        rc = oom(c);
        goto done;
    }
    for (size_t i = 0; i < nsoma; i++) {
        const unit *u = &usoma[i];
        if (u->attrs && (rc = known_keys(c, u->attrs, "soma attributes", soma_attr, NULL)))
            goto done;
        const nesim_ynode *m = nesim_yaml_get(u->attrs, "model");
        if (!m || m->kind != NESIM_Y_SCALAR || nesim_json_find_name(soma_models, m->text) < 0) {
            char list[200];
            rc = at(c, m ? m : u->name, "soma '%s': model must be one of %s", u->name->text,
                    nesim_json_list_names(soma_models, list, sizeof list));
            goto done;
        }
        /* a unit name may carry a range (loihi_inputs[0..1023]): the name is its stem */
        const char *lb = strchr(u->name->text, '[');
        A->soma_name[i] = lb ? strndup(u->name->text, (size_t)(lb - u->name->text)) : dupn(u->name);
        A->soma_model[i] = dupn(m);
        A->n_soma = i + 1;
        if (!A->soma_name[i] || !A->soma_model[i]) {
            rc = oom(c);
            goto done;
        }
        if (!lif && strcmp(m->text, "input"))
            lif = u;
    }
    if (!lif) {
        rc = at(c, nesim_yaml_get(core, "soma"), "soma: no unit models neurons (every one is an input)");
        goto done;
    }
    if (!(A->syn_name = calloc(nsyn, sizeof *A->syn_name))) {
        rc = oom(c);
        goto done;
    }
    for (size_t i = 0; i < nsyn; i++, A->n_syn = i)
        if (!(A->syn_name[i] = dupn(usyn[i].name))) {
            rc = oom(c);
            goto done;
        }
    /* synaptic ops by storage: the first unit whose name says dense / conv / neither */
    double syn_e[3] = {-1, -1, -1}, syn_l[3] = {-1, -1, -1};
    const char *syn_from[3] = {NULL, NULL, NULL};
    for (size_t i = 0; i < nsyn; i++) {
        const char *nm = usyn[i].name->text;
        int k = storage_slot(nm);
        double e, l;
        if ((rc = unit_num(c, &usyn[i], "energy_process_spike", &e)) ||
            (rc = unit_num(c, &usyn[i], "latency_process_spike", &l)))
            goto done;
        if (syn_from[k] && (e != syn_e[k] || l != syn_l[k])) {
            rc = at(c, usyn[i].name, "synapse '%s' and '%s' are both %s storage to nesim (by name) but cost "
                                     "differently", syn_from[k], nm, k == 0 ? "dense" : k == 2 ? "conv" : "sparse");
            goto done;
        }
        if (!syn_from[k])
            syn_e[k] = e, syn_l[k] = l, syn_from[k] = nm;
    }
    for (int k = 0; k < 3; k++) /* a storage no unit names costs what the core's default unit does */
        if (!syn_from[k]) {
            int d = storage_slot(usyn[0].name->text);
            syn_e[k] = syn_e[d], syn_l[k] = syn_l[d], syn_from[k] = syn_from[d];
        }
    double e_acc, l_acc, e_upd, l_upd, e_spk, l_spk, e_in, l_in, e_out, l_out;
    if ((rc = unit_num(c, lif, "energy_access_neuron", &e_acc)) || (rc = unit_num(c, lif, "latency_access_neuron", &l_acc)) ||
        (rc = unit_num(c, lif, "energy_update_neuron", &e_upd)) || (rc = unit_num(c, lif, "latency_update_neuron", &l_upd)) ||
        (rc = unit_num(c, lif, "energy_spike_out", &e_spk)) || (rc = unit_num(c, lif, "latency_spike_out", &l_spk)) ||
        (rc = unit_num(c, &uin[0], "energy_message_in", &e_in)) || (rc = unit_num(c, &uin[0], "latency_message_in", &l_in)) ||
        (rc = unit_num(c, &uout[0], "energy_message_out", &e_out)) || (rc = unit_num(c, &uout[0], "latency_message_out", &l_out)))
        goto done;
    /* sync: a fixed cost or a table keyed by tiles in use */
    const nesim_ynode *sm = nesim_yaml_get(attrs, "sync_model"), *ls = nesim_yaml_get(attrs, "latency_sync");
    if (sm && (sm->kind != NESIM_Y_SCALAR || (strcmp(sm->text, "fixed") && strcmp(sm->text, "table")))) {
        rc = at(c, sm, "sync_model: expected fixed or table");
        goto done;
    }
    json_t *sync = json_object();
    if (!sync) {
        rc = oom(c);
        goto done;
    }
    char src[512];
    snprintf(src, sizeof src, "SANA-FE arch: latency_sync");
    if (!ls) {
        if (put(sync, "1", 0, "s", NULL, "the architecture file gives no latency_sync: no synchronisation cost"))
            rc = oom(c);
    } else if (ls->kind == NESIM_Y_MAP) {
        if (ls->n > 16)
            rc = at(c, ls, "latency_sync: at most 16 entries");
        for (size_t i = 0; i < ls->n && !rc; i++) {
            uint32_t key;
            double v;
            if (!(rc = count(c, ls->item[2 * i], "latency_sync key (tiles in use)", 1, 1 << 24, &key)) &&
                !(rc = nonneg(c, ls->item[2 * i + 1], "latency_sync", &v))) {
                char k[16];
                snprintf(k, sizeof k, "%u", key);
                if (put(sync, k, v, "s", src, NULL))
                    rc = oom(c);
            }
        }
    } else {
        double v;
        if (!(rc = nonneg(c, ls, "latency_sync", &v)) && put(sync, "1", v, "s", src, NULL))
            rc = oom(c);
    }
    if (rc) {
        json_decref(sync);
        goto done;
    }
    /* the document */
    json_t *d = json_object(), *en = json_object(), *lat = json_object(), *refs = json_array(), *ref = json_object(),
           *mesh = json_object(), *cmesh = json_object();
    const char *stem = strrchr(c->file, '/') ? strrchr(c->file, '/') + 1 : c->file;
    size_t sl = strcspn(stem, ".");
    char name[128], desc[600], cite[700];
    snprintf(name, sizeof name, "%.*s", (int)(sl < 100 ? sl : 100), stem);
    const nesim_ynode *an = nesim_yaml_get(ar, "name");
    snprintf(desc, sizeof desc, "SANA-FE architecture '%.200s' read from %.300s: %u x %u tiles of %u cores",
             an && an->kind == NESIM_Y_SCALAR ? an->text : name, c->file, A->width, A->height, A->cores_per_tile);
    snprintf(cite, sizeof cite, "the SANA-FE architecture file %.500s (SANA-FE's YAML format, https://github.com/SLAM-Lab/SANA-FE)", c->file);
    const char *S = "SANA-FE arch";
    char s_acc[400], s_spk[400], s_syn[3][400], s_out[400], s_in[400];
    snprintf(s_acc, sizeof s_acc, "%s: soma '%s' energy_access_neuron + energy_update_neuron", S, lif->name->text);
    snprintf(s_spk, sizeof s_spk, "%s: soma '%s'", S, lif->name->text);
    for (int k = 0; k < 3; k++)
        snprintf(s_syn[k], sizeof s_syn[k], "%s: synapse '%s'", S, syn_from[k]);
    snprintf(s_out, sizeof s_out, "%s: axon_out energy_message_out + axon_in energy_message_in, per message", S);
    snprintf(s_in, sizeof s_in, "%s: axon_in", S);
    char s_aout[200], s_idle[400];
    snprintf(s_aout, sizeof s_aout, "%s: axon_out", S);
    snprintf(s_idle, sizeof s_idle, "%s: soma '%s' energy_access_neuron (every neuron is accessed every step)", S,
             lif->name->text);
    const char *sh = "SANA-FE arch: tile hop attributes";
    int bad = !d || !en || !lat || !refs || !ref || !mesh || !cmesh;
    bad = bad || json_object_set_new(ref, "key", json_string(S)) || json_object_set_new(ref, "cite", json_string(cite)) ||
          json_array_append(refs, ref);
    bad = bad || json_object_set_new(d, "nesim_chip", json_integer(1)) || json_object_set_new(d, "name", json_string(name)) ||
          json_object_set_new(d, "kind", json_string("neuromorphic")) ||
          json_object_set_new(d, "description", json_string(desc)) || json_object_set(d, "references", refs);
    bad = bad || put(d, "process_nm", 14, "nm", NULL, "SANA-FE architecture files give no process; 14 nm is a placeholder that prices nothing");
    bad = bad || put(d, "tick", 1e-3, "s", NULL, "SANA-FE chips are time-stepped; chip time (--timing) gives each step's length, 1 ms is assumed without it");
    bad = bad || put(en, "synaptic_op", syn_e[1], "J", s_syn[1], NULL) ||
          put(en, "synaptic_op_dense", syn_e[0], "J", s_syn[0], NULL) ||
          put(en, "synaptic_op_sparse", syn_e[1], "J", s_syn[1], NULL) ||
          put(en, "synaptic_op_conv", syn_e[2], "J", s_syn[2], NULL) ||
          put(en, "neuron_update_active", e_acc + e_upd, "J", s_acc, NULL) ||
          put(en, "neuron_update_idle", e_acc, "J", s_idle, NULL) || put(en, "spike_out", e_spk, "J", s_spk, NULL) ||
          put(en, "spike_within_core", e_out + e_in, "J", s_out, NULL) || put(en, "hop_ew", hop[2], "J", sh, NULL) ||
          put(en, "hop_ns", hop[0], "J", sh, NULL) ||
          put(en, "hop_chip", 0, "J", NULL, "SANA-FE models one chip: no chip-boundary crossings") ||
          json_object_set(d, "energy", en);
    bad = bad || put(lat, "synaptic_op_dense", syn_l[0], "s", s_syn[0], NULL) ||
          put(lat, "synaptic_op_sparse", syn_l[1], "s", s_syn[1], NULL) ||
          put(lat, "synaptic_op_conv", syn_l[2], "s", s_syn[2], NULL) ||
          put(lat, "neuron_access", l_acc, "s", s_spk, NULL) || put(lat, "neuron_update", l_upd, "s", s_spk, NULL) ||
          put(lat, "spike_out", l_spk, "s", s_spk, NULL) || put(lat, "message_out", l_out, "s", s_aout, NULL) ||
          put(lat, "message_in", l_in, "s", s_in, NULL) || put(lat, "hop_ew", hop[3], "s", sh, NULL) ||
          put(lat, "hop_ns", hop[1], "s", sh, NULL) ||
          put(lat, "hop_chip", 0, "s", NULL, "SANA-FE models one chip: no chip-boundary crossings") ||
          put(lat, "link_buffer", link_buffer, "messages", "SANA-FE arch: link_buffer_size", NULL) ||
          json_object_set(lat, "sync", sync) || json_object_set(d, "latency", lat);
    bad = bad || put(d, "static_power_per_chip", 0, "W", NULL, "SANA-FE architecture files give no static power: dynamic energy only");
    bad = bad || put(d, "neurons_per_core", max_neurons ? max_neurons : 1024, "neurons",
                     max_neurons ? "SANA-FE arch: max_neurons_supported" : NULL,
                     max_neurons ? NULL : "the core gives no max_neurons_supported; 1,024 assumed");
    bad = bad || put(d, "synapse_memory_bytes_per_core", 1ull << 36, "B", NULL,
                     "SANA-FE does not bound a core's synapse memory; 64 GiB (the largest a profile takes) stands for no bound");
    bad = bad || put(d, "weight_bits_max", 32, "bits", NULL, "SANA-FE stores weights as given; 32 bits assumed");
    bad = bad || put(d, "fan_in_max", 1u << 30, "axons", NULL, "SANA-FE does not bound fan-in");
    bad = bad || put(d, "fan_out_max", 1u << 30, "cores", NULL, "SANA-FE does not bound fan-out");
    bad = bad || put(d, "cores_per_chip", (double)A->width * A->height * A->cores_per_tile, "cores",
                     "SANA-FE arch: mesh width x height tiles x cores per tile", NULL);
    bad = bad || put(d, "cores_per_router", A->cores_per_tile, "cores", "SANA-FE arch: one router per tile", NULL);
    bad = bad || put(mesh, "x", A->width, "routers", "SANA-FE arch: width", NULL) ||
          put(mesh, "y", A->height, "routers", "SANA-FE arch: height", NULL) || json_object_set(d, "mesh", mesh);
    bad = bad || put(cmesh, "x", 1, "chips", NULL, "SANA-FE models one chip") ||
          put(cmesh, "y", 1, "chips", NULL, "SANA-FE models one chip") || json_object_set(d, "chip_mesh", cmesh);
    json_decref(en), json_decref(lat), json_decref(refs), json_decref(ref), json_decref(mesh), json_decref(cmesh);
    json_decref(sync);
    if (bad) {
        json_decref(d);
        rc = oom(c);
        goto done;
    }
    A->chip = d;
done:
    free(uin), free(usoma), free(udend), free(usyn), free(uout);
    return rc;
}

int nesim_sanafe_arch_parse(const char *text, size_t len, const char *name_for_errors, nesim_sanafe_arch **out,
                            nesim_error *err)
{
    *out = NULL;
    const char *file = name_for_errors ? name_for_errors : "<arch>";
    nesim_yaml *y;
    int rc = nesim_yaml_parse(text, len, file, &y, err);
    if (rc)
        return rc;
    nesim_sanafe_arch *a = calloc(1, sizeof *a);
    if (!a || !(a->file = strdup(file))) {
        free(a);
        nesim_yaml_free(y);
        return nesim_fail(err, NESIM_ENOMEM, "%s: out of memory", file);
    }
    actx c = {file, err, a};
    rc = arch_build(&c, y->root);
    nesim_yaml_free(y);
    if (rc) {
        nesim_sanafe_arch_free(a);
        return rc;
    }
    *out = a;
    return NESIM_OK;
}

int nesim_sanafe_arch_load(const char *path, nesim_sanafe_arch **out, nesim_error *err)
{
    *out = NULL;
    char *buf;
    size_t n;
    int rc = nesim_json_read_file(path, 16u << 20, "SANA-FE architecture file", "16 MiB", &buf, &n, err);
    if (rc)
        return rc;
    rc = nesim_sanafe_arch_parse(buf, n, path, out, err);
    free(buf);
    return rc;
}
