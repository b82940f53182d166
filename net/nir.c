/* nir.c — NIR graphs from HDF5 (libhdf5) and JSON (jansson), flattened. */
#include "net/nir.h"

#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "net/jsonmsg.h"

static const char *const type_names[NESIM_NIR_NTYPES] = {
    "Input", "Output", "Identity", "Affine", "Linear", "Scale", "Conv1d", "Conv2d", "SumPool2d",
    "AvgPool2d", "Flatten", "Delay", "Threshold", "I", "IF", "LI", "LIF", "CubaLI", "CubaLIF"};

int nesim_nir_type_find(const char *s)
{
    for (int i = 0; s && i < NESIM_NIR_NTYPES; i++)
        if (i != NESIM_NIR_IDENTITY && strcmp(type_names[i], s) == 0)
            return i;
    return -1;
}

const char *nesim_nir_type_name(nesim_nir_type t)
{
    return (unsigned)t < NESIM_NIR_NTYPES ? type_names[t] : "?";
}

const char *nesim_nir_type_list(void)
{
    return "Input, Output, Affine, Linear, Scale, Conv1d, Conv2d, SumPool2d, AvgPool2d, Flatten, "
           "Delay, Threshold, I, IF, LI, LIF, CubaLI, CubaLIF, NIRGraph";
}

static void param_free(nesim_nir_param *p)
{
    free(p->name);
    free(p->str);
    free(p->v);
}

static void node_free(nesim_nir_node *n)
{
    for (int i = 0; i < n->n_params; i++)
        param_free(&n->params[i]);
    free(n->params);
    free(n->name);
}

void nesim_nir_free(nesim_nir_graph *g)
{
    if (!g)
        return;
    for (int i = 0; i < g->n_nodes; i++)
        node_free(&g->nodes[i]);
    free(g->nodes);
    free(g->edges);
    free(g->version);
    memset(g, 0, sizeof *g);
}

int nesim_nir_node_find(const nesim_nir_graph *g, const char *name)
{
    for (int i = 0; i < g->n_nodes; i++)
        if (strcmp(g->nodes[i].name, name) == 0)
            return i;
    return -1;
}

const nesim_nir_param *nesim_nir_param_get(const nesim_nir_node *n, const char *name)
{
    for (int i = 0; i < n->n_params; i++)
        if (strcmp(n->params[i].name, name) == 0)
            return &n->params[i];
    return NULL;
}

/* ---- building a flat graph ------------------------------------------------ */

typedef struct sub_map {
    char *name, *in, *out; /* a nested graph's full name, its Input and Output */
} sub_map;

typedef struct builder {
    const char *file;
    nesim_error *err;
    nesim_nir_graph *g;
    int cap_nodes;
    char **esrc, **edst; /* resolved full names */
    int n_e, cap_e;
    sub_map *subs;
    int n_subs, cap_subs;
    size_t values;       /* numbers read so far */
    int repair;
} builder;

static int oom(builder *b) { return nesim_fail(b->err, NESIM_ENOMEM, "%s: out of memory", b->file); }

static char *join(const char *prefix, const char *name)
{
    size_t a = strlen(prefix), c = strlen(name);
    char *s = malloc(a + c + 1);
    if (s) {
        memcpy(s, prefix, a);
        memcpy(s + a, name, c + 1);
    }
    return s;
}

/* Names go into messages: printable ASCII only, cut. */
static const char *shown(const char *s, char *buf) { return nesim_json_show(s, buf); }

static nesim_nir_node *add_node(builder *b, char *full, nesim_nir_type t)
{
    nesim_nir_graph *g = b->g;
    if (g->n_nodes >= NESIM_NIR_MAX_NODES) {
        free(full);
        nesim_fail(b->err, NESIM_EINVAL, "%s: more than %d nodes", b->file, NESIM_NIR_MAX_NODES);
        return NULL;
    }
    if (g->n_nodes == b->cap_nodes) {
        int nc = b->cap_nodes ? 2 * b->cap_nodes : 16;
        nesim_nir_node *nn = realloc(g->nodes, (size_t)nc * sizeof *nn);
        if (!nn) {
            free(full);
            oom(b);
            return NULL;
        }
        g->nodes = nn;
        b->cap_nodes = nc;
    }
    nesim_nir_node *n = &g->nodes[g->n_nodes++];
    memset(n, 0, sizeof *n);
    n->name = full;
    n->type = t;
    return n;
}

static nesim_nir_param *add_param(builder *b, nesim_nir_node *n, const char *name)
{
    for (int i = 0; i < n->n_params; i++)
        if (strcmp(n->params[i].name, name) == 0) {
            char s1[NESIM_JSON_SHOWN], s2[NESIM_JSON_SHOWN];
            nesim_fail(b->err, NESIM_EINVAL, "%s: node '%s': parameter '%s' given twice", b->file,
                       shown(n->name, s1), shown(name, s2));
            return NULL;
        }
    nesim_nir_param *np = realloc(n->params, (size_t)(n->n_params + 1) * sizeof *np);
    if (!np) {
        oom(b);
        return NULL;
    }
    n->params = np;
    nesim_nir_param *p = &np[n->n_params];
    memset(p, 0, sizeof *p);
    if (!(p->name = strdup(name))) {
        oom(b);
        return NULL;
    }
    n->n_params++;
    return p;
}

static int add_edge(builder *b, const char *src, const char *dst)
{
    if (b->n_e == b->cap_e) {
        int nc = b->cap_e ? 2 * b->cap_e : 16;
        char **s = realloc(b->esrc, (size_t)nc * sizeof *s);
        if (!s)
            return oom(b);
        b->esrc = s;
        char **d = realloc(b->edst, (size_t)nc * sizeof *d);
        if (!d)
            return oom(b);
        b->edst = d;
        b->cap_e = nc;
    }
    b->esrc[b->n_e] = strdup(src);
    b->edst[b->n_e] = strdup(dst);
    b->n_e++;
    if (!b->esrc[b->n_e - 1] || !b->edst[b->n_e - 1])
        return oom(b);
    return NESIM_OK;
}

/* Checks a parameter's values and shape (both loaders). */
static int check_values(builder *b, const nesim_nir_node *n, const nesim_nir_param *p)
{
    char s1[NESIM_JSON_SHOWN], s2[NESIM_JSON_SHOWN];
    for (size_t i = 0; i < p->count; i++)
        if (!isfinite(p->v[i]))
            return nesim_fail(b->err, NESIM_EINVAL, "%s: node '%s': parameter '%s' element %zu is not finite",
                              b->file, shown(n->name, s1), shown(p->name, s2), i);
    return NESIM_OK;
}

static int count_of(builder *b, const nesim_nir_node *n, const char *pname, int ndim, const int64_t *shape,
                    size_t *count)
{
    char s1[NESIM_JSON_SHOWN], s2[NESIM_JSON_SHOWN];
    size_t c = 1;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] < 0 || (shape[d] && c > NESIM_NIR_MAX_VALUES / (size_t)shape[d]))
            return nesim_fail(b->err, NESIM_EINVAL, "%s: node '%s': parameter '%s' is too large (limit %zu values)",
                              b->file, shown(n->name, s1), shown(pname, s2), NESIM_NIR_MAX_VALUES);
        c *= (size_t)shape[d];
    }
    if (c > NESIM_NIR_MAX_VALUES - b->values)
        return nesim_fail(b->err, NESIM_EINVAL, "%s: node '%s': the graph's parameters exceed %zu values", b->file,
                          shown(n->name, s1), NESIM_NIR_MAX_VALUES);
    b->values += c;
    *count = c;
    return NESIM_OK;
}

/* Resolves one edge end against the names of one graph level. */
static int resolve(builder *b, const char *gname, const char *prefix, char **local, int n_local, const char *name,
                   int is_src, char **full)
{
    char s1[NESIM_JSON_SHOWN], s2[NESIM_JSON_SHOWN];
    int hit = -1;
    for (int i = 0; i < n_local; i++)
        if (strcmp(local[i], name) == 0)
            hit = i;
    if (hit < 0 && b->repair) {
        size_t len = strlen(name);
        int found = 0;
        for (int i = 0; i < n_local; i++)
            if (len && strncmp(local[i], name, len) == 0)
                found++, hit = i;
        if (found != 1)
            hit = -1;
        else {
            char line[300];
            snprintf(line, sizeof line, "graph %s: edge end '%s' names no node; taken as '%s', the only node it begins",
                     gname, shown(name, s1), shown(local[hit], s2));
            size_t used = strlen(b->g->notes);
            if (!strstr(b->g->notes, line))
                snprintf(b->g->notes + used, sizeof b->g->notes - used, "%s%s", used ? "; " : "", line);
        }
    }
    if (hit < 0)
        return nesim_fail(b->err, NESIM_EINVAL, "%s: graph %s: an edge names node '%s', which the graph does not have",
                          b->file, gname, shown(name, s1));
    char *f = join(prefix, local[hit]);
    if (!f)
        return oom(b);
    for (int s = 0; s < b->n_subs; s++)
        if (strcmp(b->subs[s].name, f) == 0) {
            free(f);
            f = strdup(is_src ? b->subs[s].out : b->subs[s].in);
            if (!f)
                return oom(b);
            break;
        }
    *full = f;
    return NESIM_OK;
}

/* Adds the edges of one level, given as local name pairs. */
static int level_edges(builder *b, const char *gname, const char *prefix, char **local, int n_local, char **pairs,
                       size_t n_pairs)
{
    for (size_t e = 0; e < n_pairs; e++) {
        char *s = NULL, *d = NULL;
        int rc = resolve(b, gname, prefix, local, n_local, pairs[2 * e], 1, &s);
        if (!rc)
            rc = resolve(b, gname, prefix, local, n_local, pairs[2 * e + 1], 0, &d);
        if (!rc)
            rc = add_edge(b, s, d);
        free(s);
        free(d);
        if (rc)
            return rc;
    }
    return NESIM_OK;
}

/* Records a nested graph's entry and exit (its one Input and one Output). */
static int add_sub(builder *b, const char *full, int first_node)
{
    char s1[NESIM_JSON_SHOWN];
    int in = -1, out = -1, n_in = 0, n_out = 0;
    for (int i = first_node; i < b->g->n_nodes; i++) {
        /* deeper graphs' Input/Output are identities by now: these are this level's */
        const nesim_nir_node *n = &b->g->nodes[i];
        if (n->type == NESIM_NIR_INPUT)
            in = i, n_in++;
        else if (n->type == NESIM_NIR_OUTPUT)
            out = i, n_out++;
    }
    if (n_in != 1 || n_out != 1)
        return nesim_fail(b->err, NESIM_EINVAL, "%s: nested graph '%s' has %d Input and %d Output nodes (one of each needed)",
                          b->file, shown(full, s1), n_in, n_out);
    if (b->n_subs == b->cap_subs) {
        int nc = b->cap_subs ? 2 * b->cap_subs : 4;
        sub_map *ns = realloc(b->subs, (size_t)nc * sizeof *ns);
        if (!ns)
            return oom(b);
        b->subs = ns;
        b->cap_subs = nc;
    }
    sub_map *m = &b->subs[b->n_subs];
    m->name = strdup(full);
    m->in = strdup(b->g->nodes[in].name);
    m->out = strdup(b->g->nodes[out].name);
    b->n_subs++;
    if (!m->name || !m->in || !m->out)
        return oom(b);
    b->g->nodes[in].type = NESIM_NIR_IDENTITY;
    b->g->nodes[out].type = NESIM_NIR_IDENTITY;
    return NESIM_OK;
}

/* Turns the builder's name edges into index edges; checks names are unique. */
static int finish(builder *b)
{
    nesim_nir_graph *g = b->g;
    char s1[NESIM_JSON_SHOWN];
    for (int i = 0; i < g->n_nodes; i++)
        for (int j = i + 1; j < g->n_nodes; j++)
            if (strcmp(g->nodes[i].name, g->nodes[j].name) == 0)
                return nesim_fail(b->err, NESIM_EINVAL, "%s: two nodes are named '%s' (after flattening)", b->file,
                                  shown(g->nodes[i].name, s1));
    if (b->n_e) {
        g->edges = malloc((size_t)b->n_e * sizeof *g->edges);
        if (!g->edges)
            return oom(b);
    }
    for (int e = 0; e < b->n_e; e++) {
        int s = nesim_nir_node_find(g, b->esrc[e]), d = nesim_nir_node_find(g, b->edst[e]);
        if (s < 0 || d < 0)
            return nesim_fail(b->err, NESIM_EINVAL, "%s: an edge names node '%s', which the graph does not have",
                              b->file, shown(s < 0 ? b->esrc[e] : b->edst[e], s1));
        g->edges[e][0] = s;
        g->edges[e][1] = d;
    }
    g->n_edges = b->n_e;
    return NESIM_OK;
}

static void builder_free(builder *b)
{
    for (int e = 0; e < b->n_e; e++) {
        free(b->esrc[e]);
        free(b->edst[e]);
    }
    free(b->esrc);
    free(b->edst);
    for (int s = 0; s < b->n_subs; s++) {
        free(b->subs[s].name);
        free(b->subs[s].in);
        free(b->subs[s].out);
    }
    free(b->subs);
}

/* ---- HDF5 ------------------------------------------------------------------ */

/* The innermost message of HDF5's error stack (the most specific one). */
static herr_t walk_cb(unsigned n, const H5E_error2_t *e, void *data)
{
    char *buf = data;
    if (!buf[0] && e->desc && *e->desc) /* upward: the first is the innermost */
        snprintf(buf, 200, "%s", e->desc);
    (void)n;
    return 0;
}

static const char *hdf5_why(char *buf)
{
    buf[0] = 0;
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, walk_cb, buf);
    for (char *p = buf; *p; p++)
        if ((unsigned char)*p < 32 || (unsigned char)*p > 126)
            *p = '?';
    return buf[0] ? buf : "unreadable";
}

static int h5bad(builder *b, const char *where, const char *what)
{
    char why[200];
    return nesim_fail(b->err, NESIM_EINVAL, "%s: %s: %s (HDF5: %s)", b->file, where, what, hdf5_why(why));
}

/* A scalar string dataset (variable or fixed length) into *out (malloc'd). */
static int read_string(builder *b, hid_t ds, const char *where, char **out)
{
    int rc = NESIM_EINVAL;
    hid_t ty = H5Dget_type(ds), sp = H5Dget_space(ds), mt = -1;
    if (ty < 0 || sp < 0) {
        rc = h5bad(b, where, "cannot read the dataset");
        goto done;
    }
    if (H5Tget_class(ty) != H5T_STRING || H5Sget_simple_extent_npoints(sp) != 1) {
        rc = nesim_fail(b->err, NESIM_EINVAL, "%s: %s: expected one string", b->file, where);
        goto done;
    }
    mt = H5Tcopy(H5T_C_S1);
    if (mt < 0 || H5Tset_cset(mt, H5Tget_cset(ty)) < 0) {
        rc = h5bad(b, where, "cannot read the string");
        goto done;
    }
    if (H5Tis_variable_str(ty) > 0) {
        char *s = NULL;
        if (H5Tset_size(mt, H5T_VARIABLE) < 0 || H5Dread(ds, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, &s) < 0) {
            rc = h5bad(b, where, "cannot read the string");
            goto done;
        }
        *out = strdup(s ? s : "");
        H5free_memory(s);
    } else {
        size_t n = H5Tget_size(ty);
        if (n == 0 || n > (1u << 20)) {
            rc = nesim_fail(b->err, NESIM_EINVAL, "%s: %s: a string of %zu bytes", b->file, where, n);
            goto done;
        }
        char *s = calloc(n + 1, 1);
        if (!s || H5Tset_size(mt, n + 1) < 0 || H5Tset_strpad(mt, H5T_STR_NULLTERM) < 0 ||
            H5Dread(ds, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, s) < 0) {
            free(s);
            rc = s ? h5bad(b, where, "cannot read the string") : oom(b);
            goto done;
        }
        s[n] = 0;
        *out = s;
    }
    rc = *out ? NESIM_OK : oom(b);
done:
    if (mt >= 0)
        H5Tclose(mt);
    if (ty >= 0)
        H5Tclose(ty);
    if (sp >= 0)
        H5Sclose(sp);
    return rc;
}

static int read_string_at(builder *b, hid_t grp, const char *name, const char *where, char **out)
{
    if (H5Lexists(grp, name, H5P_DEFAULT) <= 0)
        return nesim_fail(b->err, NESIM_EINVAL, "%s: %s: missing", b->file, where);
    hid_t ds = H5Dopen2(grp, name, H5P_DEFAULT);
    if (ds < 0)
        return h5bad(b, where, "not a dataset");
    int rc = read_string(b, ds, where, out);
    H5Dclose(ds);
    return rc;
}

/* The dataspace's shape (ndim <= NESIM_NIR_MAX_DIM; a null space has count 0). */
static int space_shape(builder *b, hid_t sp, const char *where, int *ndim, int64_t *shape)
{
    H5S_class_t cls = H5Sget_simple_extent_type(sp);
    if (cls == H5S_NULL) {
        *ndim = 1;
        shape[0] = 0;
        return NESIM_OK;
    }
    int nd = H5Sget_simple_extent_ndims(sp);
    if (nd < 0 || nd > NESIM_NIR_MAX_DIM)
        return nesim_fail(b->err, NESIM_EINVAL, "%s: %s: %d dimensions (at most %d)", b->file, where, nd,
                          NESIM_NIR_MAX_DIM);
    hsize_t dims[NESIM_NIR_MAX_DIM];
    if (H5Sget_simple_extent_dims(sp, dims, NULL) < 0)
        return h5bad(b, where, "cannot read the shape");
    for (int d = 0; d < nd; d++) {
        if (dims[d] > (hsize_t)INT64_MAX)
            return nesim_fail(b->err, NESIM_EINVAL, "%s: %s: dimension %d too large", b->file, where, d);
        shape[d] = (int64_t)dims[d];
    }
    *ndim = nd;
    return NESIM_OK;
}

/* One parameter dataset of a node. */
static int read_param(builder *b, hid_t grp, nesim_nir_node *n, const char *name)
{
    char where[300], s1[NESIM_JSON_SHOWN], s2[NESIM_JSON_SHOWN];
    snprintf(where, sizeof where, "node '%s': parameter '%s'", shown(n->name, s1), shown(name, s2));
    hid_t ds = H5Dopen2(grp, name, H5P_DEFAULT);
    if (ds < 0)
        return h5bad(b, where, "not a dataset");
    int rc = NESIM_OK;
    hid_t ty = H5Dget_type(ds), sp = H5Dget_space(ds);
    nesim_nir_param *p = NULL;
    if (ty < 0 || sp < 0) {
        rc = h5bad(b, where, "cannot read the dataset");
        goto done;
    }
    H5T_class_t cls = H5Tget_class(ty);
    if (!(p = add_param(b, n, name))) {
        rc = b->err->code;
        goto done;
    }
    if (cls == H5T_STRING) {
        rc = read_string(b, ds, where, &p->str);
        goto done;
    }
    if (cls != H5T_INTEGER && cls != H5T_FLOAT) {
        rc = nesim_fail(b->err, NESIM_EINVAL, "%s: %s: neither numbers nor a string (HDF5 type class %d)", b->file,
                        where, (int)cls);
        goto done;
    }
    if ((rc = space_shape(b, sp, where, &p->ndim, p->shape)) ||
        (rc = count_of(b, n, name, p->ndim, p->shape, &p->count)))
        goto done;
    p->v = malloc((p->count ? p->count : 1) * sizeof *p->v);
    if (!p->v) {
        rc = oom(b);
        goto done;
    }
    if (p->count && H5Dread(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, p->v) < 0) {
        rc = h5bad(b, where, "cannot read the values");
        goto done;
    }
    rc = check_values(b, n, p);
done:
    if (ty >= 0)
        H5Tclose(ty);
    if (sp >= 0)
        H5Sclose(sp);
    H5Dclose(ds);
    return rc;
}

typedef struct name_list {
    char **v;
    int n, cap, too_many;
} name_list;

static herr_t list_cb(hid_t g, const char *name, const H5L_info_t *info, void *data)
{
    name_list *l = data;
    (void)g;
    (void)info;
    if (l->n >= NESIM_NIR_MAX_NODES) {
        l->too_many = 1;
        return 1;
    }
    if (l->n == l->cap) {
        int nc = l->cap ? 2 * l->cap : 16;
        char **nv = realloc(l->v, (size_t)nc * sizeof *nv);
        if (!nv)
            return -1;
        l->v = nv;
        l->cap = nc;
    }
    if (!(l->v[l->n] = strdup(name)))
        return -1;
    l->n++;
    return 0;
}

static void names_free(name_list *l)
{
    for (int i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
}

static int list_names(builder *b, hid_t grp, const char *where, name_list *l)
{
    hsize_t idx = 0;
    if (H5Literate(grp, H5_INDEX_NAME, H5_ITER_INC, &idx, list_cb, l) < 0)
        return h5bad(b, where, "cannot list the group");
    if (l->too_many)
        return nesim_fail(b->err, NESIM_EINVAL, "%s: %s: more than %d entries", b->file, where, NESIM_NIR_MAX_NODES);
    return NESIM_OK;
}

static int is_group(hid_t loc, const char *name)
{
    H5O_info_t oi;
    if (H5Lexists(loc, name, H5P_DEFAULT) <= 0)
        return -1;
    if (H5Oget_info_by_name(loc, name, &oi, H5P_DEFAULT) < 0)
        return -1;
    return oi.type == H5O_TYPE_GROUP;
}

/* The [E, 2] string array of edges into 2E strings (malloc'd each). */
static int read_edges(builder *b, hid_t grp, const char *gname, char ***pairs, size_t *n_pairs)
{
    char where[300];
    snprintf(where, sizeof where, "graph %s: edges", gname);
    *pairs = NULL;
    *n_pairs = 0;
    if (H5Lexists(grp, "edges", H5P_DEFAULT) <= 0)
        return nesim_fail(b->err, NESIM_EINVAL, "%s: %s: missing", b->file, where);
    hid_t ds = H5Dopen2(grp, "edges", H5P_DEFAULT);
    if (ds < 0)
        return h5bad(b, where, "not a dataset");
    int rc = NESIM_OK, nd = 0;
    int64_t shape[NESIM_NIR_MAX_DIM];
    hid_t ty = H5Dget_type(ds), sp = H5Dget_space(ds), mt = -1;
    char **v = NULL;
    size_t total = 0;
    if (ty < 0 || sp < 0) {
        rc = h5bad(b, where, "cannot read the dataset");
        goto done;
    }
    if ((rc = space_shape(b, sp, where, &nd, shape)))
        goto done;
    if (nd == 1 && shape[0] == 0)
        goto done; /* no edges */
    if (nd != 2 || shape[1] != 2 || shape[0] > (1 << 20)) {
        rc = nesim_fail(b->err, NESIM_EINVAL, "%s: %s: expected an [E, 2] array of node names (E <= %d)", b->file,
                        where, 1 << 20);
        goto done;
    }
    if (H5Tget_class(ty) != H5T_STRING) {
        rc = nesim_fail(b->err, NESIM_EINVAL, "%s: %s: expected strings (node names)", b->file, where);
        goto done;
    }
    total = (size_t)shape[0] * 2;
    if (!total)
        goto done;
    v = calloc(total, sizeof *v);
    mt = H5Tcopy(H5T_C_S1);
    if (!v || mt < 0 || H5Tset_cset(mt, H5Tget_cset(ty)) < 0) {
        rc = v ? h5bad(b, where, "cannot read") : oom(b);
        goto done;
    }
    if (H5Tis_variable_str(ty) > 0) {
        char **raw = calloc(total, sizeof *raw);
        if (!raw || H5Tset_size(mt, H5T_VARIABLE) < 0 || H5Dread(ds, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, raw) < 0) {
            rc = raw ? h5bad(b, where, "cannot read the names") : oom(b);
            free(raw);
            goto done;
        }
        for (size_t i = 0; i < total; i++) {
            v[i] = strdup(raw[i] ? raw[i] : "");
            H5free_memory(raw[i]);
            if (!v[i] && rc == NESIM_OK)
                rc = oom(b);
        }
        free(raw);
    } else {
        size_t len = H5Tget_size(ty);
        if (len == 0 || len > 4096) {
            rc = nesim_fail(b->err, NESIM_EINVAL, "%s: %s: names of %zu bytes", b->file, where, len);
            goto done;
        }
        char *raw = calloc(total, len + 1);
        if (!raw || H5Tset_size(mt, len + 1) < 0 || H5Tset_strpad(mt, H5T_STR_NULLTERM) < 0 ||
            H5Dread(ds, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, raw) < 0) {
            rc = raw ? h5bad(b, where, "cannot read the names") : oom(b);
            free(raw);
            goto done;
        }
        for (size_t i = 0; i < total; i++) {
            raw[i * (len + 1) + len] = 0;
            if (!(v[i] = strdup(raw + i * (len + 1))) && rc == NESIM_OK)
                rc = oom(b);
        }
        free(raw);
    }
done:
    if (mt >= 0)
        H5Tclose(mt);
    if (ty >= 0)
        H5Tclose(ty);
    if (sp >= 0)
        H5Sclose(sp);
    H5Dclose(ds);
    if (rc) {
        for (size_t i = 0; v && i < total; i++)
            free(v[i]);
        free(v);
        return rc;
    }
    *pairs = v;
    *n_pairs = v ? total / 2 : 0;
    return NESIM_OK;
}

static int load_graph(builder *b, hid_t grp, const char *prefix, const char *gname, int depth);

static int load_node(builder *b, hid_t nodes, const char *name, const char *prefix, int depth)
{
    char s1[NESIM_JSON_SHOWN], s2[NESIM_JSON_SHOWN], where[300];
    char *full = join(prefix, name);
    if (!full)
        return oom(b);
    if (strchr(name, '.') == NULL && !*name) {
        free(full);
        return nesim_fail(b->err, NESIM_EINVAL, "%s: a node has an empty name", b->file);
    }
    snprintf(where, sizeof where, "node '%s'", shown(full, s1));
    if (is_group(nodes, name) != 1) {
        free(full);
        return nesim_fail(b->err, NESIM_EINVAL, "%s: %s: not a group", b->file, where);
    }
    hid_t grp = H5Gopen2(nodes, name, H5P_DEFAULT);
    if (grp < 0) {
        free(full);
        return h5bad(b, where, "cannot open");
    }
    char *type = NULL, twhere[330];
    snprintf(twhere, sizeof twhere, "%s: type", where);
    int rc = read_string_at(b, grp, "type", twhere, &type);
    if (rc)
        goto done;
    if (strcmp(type, "NIRGraph") == 0) {
        if (depth >= NESIM_NIR_MAX_DEPTH) {
            rc = nesim_fail(b->err, NESIM_EINVAL, "%s: %s: graphs nested deeper than %d", b->file, where,
                            NESIM_NIR_MAX_DEPTH);
            goto done;
        }
        char *sub_prefix = join(full, ".");
        if (!sub_prefix) {
            rc = oom(b);
            goto done;
        }
        int first = b->g->n_nodes;
        rc = load_graph(b, grp, sub_prefix, full, depth + 1);
        free(sub_prefix);
        if (!rc)
            rc = add_sub(b, full, first);
        goto done;
    }
    int t = nesim_nir_type_find(type);
    if (t < 0) {
        rc = nesim_fail(b->err, NESIM_EINVAL, "%s: %s: unknown node type '%s' (nesim reads %s)", b->file, where,
                        shown(type, s2), nesim_nir_type_list());
        goto done;
    }
    nesim_nir_node *n = add_node(b, full, (nesim_nir_type)t);
    full = NULL;
    if (!n) {
        rc = b->err->code;
        goto done;
    }
    name_list l = {0};
    if ((rc = list_names(b, grp, where, &l)) == NESIM_OK)
        for (int i = 0; i < l.n && !rc; i++) {
            if (strcmp(l.v[i], "type") == 0)
                continue;
            int grp_kind = is_group(grp, l.v[i]);
            if (grp_kind == 1)
                continue; /* metadata and other sub-groups carry no parameters nesim uses */
            rc = read_param(b, grp, n, l.v[i]);
        }
    names_free(&l);
done:
    free(type);
    free(full);
    H5Gclose(grp);
    return rc;
}

static int load_graph(builder *b, hid_t grp, const char *prefix, const char *gname, int depth)
{
    char where[300];
    snprintf(where, sizeof where, "graph %s: nodes", gname);
    if (is_group(grp, "nodes") != 1)
        return nesim_fail(b->err, NESIM_EINVAL, "%s: %s: missing (not a NIRGraph?)", b->file, where);
    hid_t nodes = H5Gopen2(grp, "nodes", H5P_DEFAULT);
    if (nodes < 0)
        return h5bad(b, where, "cannot open");
    name_list l = {0};
    char **pairs = NULL;
    size_t n_pairs = 0;
    int rc = list_names(b, nodes, where, &l);
    for (int i = 0; !rc && i < l.n; i++)
        rc = load_node(b, nodes, l.v[i], prefix, depth);
    if (!rc)
        rc = read_edges(b, grp, gname, &pairs, &n_pairs);
    if (!rc)
        rc = level_edges(b, gname, prefix, l.v, l.n, pairs, n_pairs);
    for (size_t i = 0; i < 2 * n_pairs; i++)
        free(pairs[i]);
    free(pairs);
    names_free(&l);
    H5Gclose(nodes);
    return rc;
}

int nesim_nir_is_hdf5(const char *path)
{
    static const unsigned char sig[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    unsigned char buf[8];
    int yes = 0;
    /* the superblock sits at 0, 512, 1024, 2048, ... (after a user block) */
    for (long off = 0; !yes && off <= (1L << 30); off = off ? off * 2 : 512) {
        if (fseek(f, off, SEEK_SET) != 0 || fread(buf, 1, 8, f) != 8)
            break;
        yes = memcmp(buf, sig, 8) == 0;
    }
    fclose(f);
    return yes;
}

/* What both readers check before libhdf5 sees the file: a regular file with the signature. */
static int check_file(const char *path, nesim_error *err)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return nesim_fail(err, NESIM_EINVAL, "%s: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return nesim_fail(err, NESIM_EINVAL, "%s: not a regular file", path);
    if (!nesim_nir_is_hdf5(path))
        return nesim_fail(err, NESIM_EINVAL, "%s: not an HDF5 file (no HDF5 signature): a NIR graph is HDF5", path);
    return NESIM_OK;
}

int nesim_nir_load_inprocess(const char *path, int repair, nesim_nir_graph *g, nesim_error *err)
{
    memset(g, 0, sizeof *g);
    int rc0 = check_file(path, err);
    if (rc0)
        return rc0;
    /* HDF5 prints its error stack by default; nesim reports one line instead */
    H5E_auto2_t old_fn = NULL;
    void *old_data = NULL;
    H5Eget_auto2(H5E_DEFAULT, &old_fn, &old_data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    builder b = {.file = path, .err = err, .g = g, .repair = repair};
    int rc = NESIM_OK;
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT), root = -1;
    if (f < 0) {
        rc = h5bad(&b, "file", "cannot open (truncated or damaged?)");
        goto done;
    }
    if ((rc = read_string_at(&b, f, "version", "version", &g->version)))
        goto done;
    if (strncmp(g->version, "0.1.", 4) != 0 && strncmp(g->version, "0.2.", 4) != 0) {
        char s1[NESIM_JSON_SHOWN];
        rc = nesim_fail(err, NESIM_EINVAL, "%s: version: NIR %s (nesim reads 0.1.x and 0.2.x)", path,
                        shown(g->version, s1));
        goto done;
    }
    if (is_group(f, "node") != 1) {
        rc = nesim_fail(err, NESIM_EINVAL, "%s: node: missing (not a NIR file?)", path);
        goto done;
    }
    root = H5Gopen2(f, "node", H5P_DEFAULT);
    char *type = NULL;
    if (root < 0 || (rc = read_string_at(&b, root, "type", "node: type", &type)))
        goto done;
    if (strcmp(type, "NIRGraph") != 0) {
        char s1[NESIM_JSON_SHOWN];
        rc = nesim_fail(err, NESIM_EINVAL, "%s: node: type is '%s', not NIRGraph", path, shown(type, s1));
        free(type);
        goto done;
    }
    free(type);
    if ((rc = load_graph(&b, root, "", "(top)", 0)))
        goto done;
    rc = finish(&b);
done:
    if (root >= 0)
        H5Gclose(root);
    if (f >= 0)
        H5Fclose(f);
    H5Eset_auto2(H5E_DEFAULT, old_fn, old_data);
    builder_free(&b);
    if (rc)
        nesim_nir_free(g);
    return rc;
}

/* ---- JSON ------------------------------------------------------------------ */

int nesim_nir_json_is(const json_t *root) { return json_is_object(root) && json_object_get(root, "nesim_nir"); }

static json_t *param_json(const nesim_nir_param *p)
{
    if (p->str)
        return json_string(p->str);
    if (p->ndim == 0)
        return json_real(p->v[0]);
    json_t *o = json_object(), *sh = json_array(), *d = json_array();
    if (!o || !sh || !d) {
        json_decref(o);
        json_decref(sh);
        json_decref(d);
        return NULL;
    }
    int bad = json_object_set_new(o, "shape", sh) | json_object_set_new(o, "data", d);
    for (int i = 0; i < p->ndim; i++)
        bad |= json_array_append_new(sh, json_integer(p->shape[i]));
    for (size_t i = 0; i < p->count; i++)
        bad |= json_array_append_new(d, json_real(p->v[i]));
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

json_t *nesim_nir_to_json(const nesim_nir_graph *g)
{
    json_t *root = json_object(), *nodes = json_object(), *edges = json_array();
    int bad = !root || !nodes || !edges;
    if (!bad)
        bad |= json_object_set_new(root, "nesim_nir", json_integer(1)) |
               json_object_set_new(root, "version", json_string(g->version ? g->version : "0.2.0"));
    for (int i = 0; !bad && i < g->n_nodes; i++) {
        const nesim_nir_node *n = &g->nodes[i];
        json_t *o = json_object();
        bad |= !o || json_object_set_new(nodes, n->name, o);
        if (!bad)
            bad |= json_object_set_new(o, "type", json_string(type_names[n->type]));
        for (int k = 0; !bad && k < n->n_params; k++) {
            json_t *v = param_json(&n->params[k]);
            bad |= !v || json_object_set_new(o, n->params[k].name, v);
        }
    }
    for (int e = 0; !bad && e < g->n_edges; e++)
        bad |= json_array_append_new(edges, json_pack("[ss]", g->nodes[g->edges[e][0]].name,
                                                      g->nodes[g->edges[e][1]].name));
    if (!bad)
        bad |= json_object_set(root, "nodes", nodes) | json_object_set(root, "edges", edges);
    json_decref(nodes);
    json_decref(edges);
    if (bad) {
        json_decref(root);
        return NULL;
    }
    return root;
}

static int param_from_json(builder *b, nesim_nir_node *n, const char *key, json_t *v, const char *path)
{
    nesim_jctx c = {b->file, b->err};
    char p2[NESIM_JSON_PATHN];
    nesim_nir_param *p = add_param(b, n, key);
    if (!p)
        return b->err->code;
    if (json_is_string(v))
        return (p->str = strdup(json_string_value(v))) ? NESIM_OK : oom(b);
    if (json_is_number(v)) {
        p->ndim = 0;
        p->count = 1;
        if (!(p->v = malloc(sizeof *p->v)))
            return oom(b);
        p->v[0] = json_number_value(v);
        b->values++;
        return check_values(b, n, p);
    }
    json_t *sh = json_object_get(v, "shape"), *d = json_object_get(v, "data");
    if (!json_is_object(v) || !json_is_array(sh) || !json_is_array(d))
        return nesim_json_bad(&c, path, "expected a number, a string or {\"shape\": [...], \"data\": [...]}");
    if (json_array_size(sh) > NESIM_NIR_MAX_DIM)
        return nesim_json_bad(&c, nesim_json_sub(p2, path, "shape"), "more than %d dimensions", NESIM_NIR_MAX_DIM);
    p->ndim = (int)json_array_size(sh);
    for (int i = 0; i < p->ndim; i++) {
        json_t *x = json_array_get(sh, (size_t)i);
        if (!json_is_integer(x) || json_integer_value(x) < 0)
            return nesim_json_bad(&c, nesim_json_sub(p2, path, "shape"), "expected non-negative integers");
        p->shape[i] = json_integer_value(x);
    }
    int rc = count_of(b, n, key, p->ndim, p->shape, &p->count);
    if (rc)
        return rc;
    if (json_array_size(d) != p->count)
        return nesim_json_bad(&c, nesim_json_sub(p2, path, "data"), "%zu values for shape of %zu",
                              json_array_size(d), p->count);
    if (!(p->v = malloc((p->count ? p->count : 1) * sizeof *p->v)))
        return oom(b);
    for (size_t i = 0; i < p->count; i++) {
        json_t *x = json_array_get(d, i);
        if (!json_is_number(x))
            return nesim_json_bad(&c, nesim_json_idx(p2, nesim_json_sub(p2, path, "data"), i), "expected a number");
        p->v[i] = json_number_value(x);
    }
    return check_values(b, n, p);
}

int nesim_nir_from_json(const json_t *root, const char *file, nesim_nir_graph *g, nesim_error *err)
{
    memset(g, 0, sizeof *g);
    builder b = {.file = file, .err = err, .g = g};
    nesim_jctx c = {file, err};
    char path[NESIM_JSON_PATHN], p2[NESIM_JSON_PATHN], s1[NESIM_JSON_SHOWN];
    int rc = NESIM_OK;
    json_t *ver = json_object_get(root, "nesim_nir"), *nodes = json_object_get(root, "nodes"),
           *edges = json_object_get(root, "edges"), *version = json_object_get(root, "version");
    if (!json_is_integer(ver) || json_integer_value(ver) != 1) {
        rc = nesim_json_bad(&c, "nesim_nir", "expected 1 (the version of this spec format)");
        goto done;
    }
    if (!json_is_object(nodes)) {
        rc = json_object_get(root, "nodes") ? nesim_json_bad(&c, "nodes", "expected an object")
                                             : nesim_json_missing(&c, "", "nodes");
        goto done;
    }
    if (edges && !json_is_array(edges)) {
        rc = nesim_json_bad(&c, "edges", "expected an array of [source, target] pairs");
        goto done;
    }
    if (!(g->version = strdup(json_is_string(version) ? json_string_value(version) : "0.2.0"))) {
        rc = oom(&b);
        goto done;
    }
    const char *key;
    json_t *val;
    json_object_foreach(nodes, key, val)
    {
        nesim_json_sub(path, "nodes", key);
        if (!json_is_object(val)) {
            rc = nesim_json_bad(&c, path, "expected an object");
            goto done;
        }
        json_t *t = json_object_get(val, "type");
        int ti = json_is_string(t) ? nesim_nir_type_find(json_string_value(t)) : -1;
        if (json_is_string(t) && strcmp(json_string_value(t), "Identity") == 0)
            ti = NESIM_NIR_IDENTITY;
        if (ti < 0) {
            rc = t ? nesim_json_bad(&c, nesim_json_sub(p2, path, "type"), "unknown node type '%s' (nesim reads %s)",
                                    json_is_string(t) ? nesim_json_show(json_string_value(t), s1) : "?",
                                    nesim_nir_type_list())
                   : nesim_json_missing(&c, path, "type");
            goto done;
        }
        char *name = strdup(key);
        nesim_nir_node *n = name ? add_node(&b, name, (nesim_nir_type)ti) : NULL;
        if (!n) {
            rc = name ? err->code : oom(&b);
            goto done;
        }
        const char *pk;
        json_t *pv;
        json_object_foreach(val, pk, pv)
        {
            if (strcmp(pk, "type") == 0)
                continue;
            if ((rc = param_from_json(&b, n, pk, pv, nesim_json_sub(p2, path, pk))))
                goto done;
        }
    }
    for (size_t e = 0; e < json_array_size(edges); e++) {
        json_t *pair = json_array_get(edges, e);
        nesim_json_idx(path, "edges", e);
        if (!json_is_array(pair) || json_array_size(pair) != 2 || !json_is_string(json_array_get(pair, 0)) ||
            !json_is_string(json_array_get(pair, 1))) {
            rc = nesim_json_bad(&c, path, "expected [source, target] node names");
            goto done;
        }
        if ((rc = add_edge(&b, json_string_value(json_array_get(pair, 0)), json_string_value(json_array_get(pair, 1)))))
            goto done;
    }
    rc = finish(&b);
done:
    builder_free(&b);
    if (rc)
        nesim_nir_free(g);
    return rc;
}

/* ---- the reader in a child process ------------------------------------------ */

/* Writes all of buf to fd (the child's side of the pipe). */
static int write_all(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* The child: reads the file, sends 'K' notes NUL json, or 'E' code message. */
static void child_load(int fd, const char *path, int repair)
{
    nesim_nir_graph g;
    nesim_error err = {0};
    int rc = nesim_nir_load_inprocess(path, repair, &g, &err);
    if (rc == NESIM_OK) {
        json_t *j = nesim_nir_to_json(&g);
        char *text = j ? json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(17)) : NULL;
        json_decref(j);
        if (text) {
            int bad = write_all(fd, "K", 1) || write_all(fd, g.notes, strlen(g.notes) + 1) ||
                      write_all(fd, text, strlen(text));
            free(text);
            nesim_nir_free(&g);
            _exit(bad ? 3 : 0);
        }
        nesim_nir_free(&g);
        rc = nesim_fail(&err, NESIM_ENOMEM, "%s: out of memory", path);
    }
    unsigned char code = (unsigned char)rc;
    int bad = write_all(fd, "E", 1) || write_all(fd, &code, 1) || write_all(fd, err.msg, strlen(err.msg));
    _exit(bad ? 3 : 0);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int nesim_nir_load_isolated(const char *path, int repair, double timeout_s, nesim_nir_graph *g, nesim_error *err)
{
    memset(g, 0, sizeof *g);
    int rc0 = check_file(path, err);
    if (rc0)
        return rc0;
    int fds[2];
    if (pipe(fds) != 0)
        return nesim_fail(err, NESIM_EIO, "%s: pipe: %s", path, strerror(errno));
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return nesim_fail(err, NESIM_EIO, "%s: fork: %s", path, strerror(errno));
    }
    if (pid == 0) {
        /* the child may die inside libhdf5: by the default action (no handler
         * of the caller's, such as a test harness's, may resume it), quietly */
        static const int sigs[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
        for (size_t k = 0; k < sizeof sigs / sizeof *sigs; k++)
            signal(sigs[k], SIG_DFL);
        int dn = open("/dev/null", O_WRONLY);
        if (dn >= 0)
            dup2(dn, 2);
        close(fds[0]);
        child_load(fds[1], path, repair);
    }
    close(fds[1]);
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    int timed_out = 0, rc = NESIM_OK;
    double deadline = now_s() + timeout_s;
    while (buf) {
        double left = deadline - now_s();
        if (left <= 0) {
            timed_out = 1;
            break;
        }
        struct pollfd pf = {fds[0], POLLIN, 0};
        int pr = poll(&pf, 1, (int)(left * 1000) + 1);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr == 0)
            continue; /* the deadline check above ends it */
        if (n == cap) {
            char *nb = cap < ((size_t)1 << 34) ? realloc(buf, 2 * cap + 1) : NULL;
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
        ssize_t r = read(fds[0], buf + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    close(fds[0]);
    if (timed_out || !buf)
        kill(pid, SIGKILL);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (!buf)
        return nesim_fail(err, NESIM_ENOMEM, "%s: out of memory reading the graph", path);
    buf[n] = 0;
    if (timed_out)
        rc = nesim_fail(err, NESIM_EINVAL,
                        "%s: the HDF5 library gave no answer in %g s reading this file (a damaged HDF5 file?)", path,
                        timeout_s);
    else if (WIFSIGNALED(status))
        rc = nesim_fail(err, NESIM_EINVAL,
                        "%s: the HDF5 library crashed reading this file (signal %d): a damaged HDF5 file", path,
                        WTERMSIG(status));
    else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || n < 2)
        /* a sanitizer ends the reader with a status, not a signal */
        rc = nesim_fail(err, NESIM_EINVAL,
                        "%s: the HDF5 library crashed reading this file (reader exit status %d): a damaged HDF5 file",
                        path, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    else if (buf[0] == 'E') {
        rc = (unsigned char)buf[1];
        if (rc == NESIM_OK)
            rc = NESIM_EINVAL;
        nesim_fail(err, rc, "%s", buf + 2);
    } else if (buf[0] == 'K') {
        size_t nl = strnlen(buf + 1, n - 1);
        json_error_t je;
        json_t *root = nl + 1 < n ? json_loadb(buf + 2 + nl, n - 2 - nl, 0, &je) : NULL;
        if (!root)
            rc = nesim_fail(err, NESIM_EINTERNAL, "%s: the reader's answer did not parse", path);
        else {
            rc = nesim_nir_from_json(root, path, g, err);
            json_decref(root);
            if (rc == NESIM_OK)
                snprintf(g->notes, sizeof g->notes, "%s", buf + 1);
        }
    } else
        rc = nesim_fail(err, NESIM_EINTERNAL, "%s: the reader's answer is garbled", path);
    free(buf);
    return rc;
}

int nesim_nir_load(const char *path, int repair, nesim_nir_graph *g, nesim_error *err)
{
    return nesim_nir_load_isolated(path, repair, 60, g, err);
}
