/* export_h5.c — a recorded run's spikes as HDF5 files other simulators read:
 *
 * SONATA spike reports (the format of NEST, NEURON, BMTK users): one group
 * per layer, /spikes/<layer>/timestamps (float64, ms, attribute units "ms")
 * and /spikes/<layer>/node_ids (uint64), sorted by time (group attribute
 * sorting = "by_time"; ties by node id). Time = tick x tick_s, samples one
 * after the other as recorded.
 *
 * NIR events: NIR's data IR (nir.data_ir.EventData, one per node, per input
 * sample) as HDF5, laid out like NIR graphs are:
 *   /version "0.2.0", /type "NIRGraphData",
 *   /nodes/<layer>/type "NIRNodeData",
 *   /nodes/<layer>/observables/spikes/{type "EventData", idx int64 [samples, E]
 *     (-1 where no event), time float64 [samples, E] (s; inf where no event),
 *     n_neurons, t_max}
 * with EventData's convention that an event of step k (from the sample's
 * first tick) happens at (k + 1) dt: the state is updated, then the
 * threshold tested (dynamic_before_transition). NIR defines the classes but
 * no file layout for them; this is nesim's, named so. A run without sample
 * rows is one sample. Layer names with '/' get '.' in its place. */
#include <errno.h>
#include <hdf5.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "net/tensor_io.h"
#include "traces/store_internal.h"

typedef struct spk {
    int64_t tick, neuron;
} spk;

/* Every spike of one layer, in (tick, neuron) order. */
static int layer_spikes(nesim_trace *t, int64_t run, int layer, spk **out, size_t *n, nesim_error *err)
{
    nesim_trace_spike_iter *it;
    int rc = nesim_trace_spikes_open(t, run, layer, NESIM_TRACE_TICK_MIN, NESIM_TRACE_TICK_MAX, &it, err);
    if (rc)
        return rc;
    size_t cap = 1024, k = 0;
    spk *v = malloc(cap * sizeof *v);
    nesim_trace_spike_rec s;
    bool got;
    while (v && !(rc = nesim_trace_spikes_next(it, &s, &got, err)) && got) {
        if (k == cap) {
            spk *nv = realloc(v, 2 * cap * sizeof *nv);
            if (!nv) {
                free(v);
                v = NULL;
                break;
            }
            v = nv;
            cap *= 2;
        }
        v[k++] = (spk){s.tick, s.neuron};
    }
    nesim_trace_spikes_close(it);
    if (!v)
        return nesim_fail(err, NESIM_ENOMEM, "out of memory exporting spikes");
    if (rc) {
        free(v);
        return rc;
    }
    *out = v;
    *n = k;
    return NESIM_OK;
}

static char *h5name(const char *s)
{
    char *c = strdup(s && *s ? s : "_");
    for (char *p = c; c && *p; p++)
        if (*p == '/')
            *p = '.';
    if (c && strcmp(c, ".") == 0)
        c[0] = '_';
    return c;
}

static int put_string(hid_t loc, const char *name, const char *value, int attr)
{
    hid_t ty = H5Tcopy(H5T_C_S1), sp = H5Screate(H5S_SCALAR);
    int bad = ty < 0 || sp < 0 || H5Tset_size(ty, H5T_VARIABLE) < 0 || H5Tset_cset(ty, H5T_CSET_UTF8) < 0;
    hid_t o = -1;
    if (!bad) {
        o = attr ? H5Acreate2(loc, name, ty, sp, H5P_DEFAULT, H5P_DEFAULT)
                 : H5Dcreate2(loc, name, ty, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        bad = o < 0 || (attr ? H5Awrite(o, ty, &value) : H5Dwrite(o, ty, H5S_ALL, H5S_ALL, H5P_DEFAULT, &value)) < 0;
    }
    if (o >= 0)
        attr ? H5Aclose(o) : H5Dclose(o);
    if (sp >= 0)
        H5Sclose(sp);
    if (ty >= 0)
        H5Tclose(ty);
    return bad ? -1 : 0;
}

static int put_array(hid_t loc, const char *name, hid_t mem, int ndim, const hsize_t *dims, const void *data)
{
    hid_t sp = ndim ? H5Screate_simple(ndim, dims, NULL) : H5Screate(H5S_SCALAR);
    hid_t ds = sp < 0 ? -1 : H5Dcreate2(loc, name, mem, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    int bad = ds < 0 || H5Dwrite(ds, mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0;
    if (ds >= 0)
        H5Dclose(ds);
    if (sp >= 0)
        H5Sclose(sp);
    return bad ? -1 : 0;
}

static int cmp_time(const void *a, const void *b)
{
    const spk *x = a, *y = b;
    if (x->tick != y->tick)
        return x->tick < y->tick ? -1 : 1;
    return (x->neuron > y->neuron) - (x->neuron < y->neuron);
}

static int sonata_layer(hid_t spikes, const char *name, spk *v, size_t n, double tick_s)
{
    qsort(v, n, sizeof *v, cmp_time); /* already so; the format promises it */
    double *ts = malloc((n ? n : 1) * sizeof *ts);
    uint64_t *id = malloc((n ? n : 1) * sizeof *id);
    int bad = !ts || !id;
    for (size_t k = 0; !bad && k < n; k++) {
        ts[k] = (double)v[k].tick * tick_s * 1e3;
        id[k] = (uint64_t)v[k].neuron;
    }
    hid_t g = bad ? -1 : H5Gcreate2(spikes, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    hsize_t dims[1] = {n};
    bad = bad || g < 0 || put_string(g, "sorting", "by_time", 1) ||
          put_array(g, "timestamps", H5T_NATIVE_DOUBLE, 1, dims, ts) ||
          put_array(g, "node_ids", H5T_NATIVE_UINT64, 1, dims, id);
    if (!bad) {
        hid_t d = H5Dopen2(g, "timestamps", H5P_DEFAULT);
        bad = d < 0 || put_string(d, "units", "ms", 1);
        if (d >= 0)
            H5Dclose(d);
    }
    if (g >= 0)
        H5Gclose(g);
    free(ts);
    free(id);
    return bad ? -1 : 0;
}

static int events_layer(hid_t nodes, const char *name, const spk *v, size_t n, const nesim_trace_sample_row *S,
                        size_t ns, int64_t neurons, double tick_s)
{
    /* events per sample: the widest sets E */
    size_t E = 0, *per = calloc(ns ? ns : 1, sizeof *per);
    if (!per)
        return -1;
    for (size_t k = 0, s = 0; k < n; k++) {
        while (s < ns && v[k].tick > S[s].last_tick)
            s++;
        if (s < ns && v[k].tick >= S[s].first_tick)
            per[s]++;
    }
    for (size_t s = 0; s < ns; s++)
        if (per[s] > E)
            E = per[s];
    size_t cells = ns * E;
    int64_t *idx = malloc((cells ? cells : 1) * sizeof *idx);
    double *tm = malloc((cells ? cells : 1) * sizeof *tm);
    int bad = !idx || !tm;
    for (size_t c = 0; !bad && c < cells; c++) {
        idx[c] = -1;
        tm[c] = INFINITY;
    }
    memset(per, 0, (ns ? ns : 1) * sizeof *per);
    for (size_t k = 0, s = 0; !bad && k < n; k++) {
        while (s < ns && v[k].tick > S[s].last_tick)
            s++;
        if (s >= ns || v[k].tick < S[s].first_tick)
            continue;
        size_t c = s * E + per[s]++;
        idx[c] = v[k].neuron;
        tm[c] = (double)(v[k].tick - S[s].first_tick + 1) * tick_s;
    }
    double tmax = 0;
    for (size_t s = 0; s < ns; s++)
        tmax = fmax(tmax, (double)(S[s].last_tick - S[s].first_tick + 1) * tick_s);
    hid_t g = bad ? -1 : H5Gcreate2(nodes, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    hid_t obs = g < 0 ? -1 : H5Gcreate2(g, "observables", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    hid_t ev = obs < 0 ? -1 : H5Gcreate2(obs, "spikes", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    hsize_t dims[2] = {ns, E};
    bad = bad || ev < 0 || put_string(g, "type", "NIRNodeData", 0) || put_string(ev, "type", "EventData", 0) ||
          put_array(ev, "idx", H5T_NATIVE_INT64, 2, dims, idx) || put_array(ev, "time", H5T_NATIVE_DOUBLE, 2, dims, tm) ||
          put_array(ev, "n_neurons", H5T_NATIVE_INT64, 0, NULL, &neurons) ||
          put_array(ev, "t_max", H5T_NATIVE_DOUBLE, 0, NULL, &tmax);
    if (ev >= 0)
        H5Gclose(ev);
    if (obs >= 0)
        H5Gclose(obs);
    if (g >= 0)
        H5Gclose(g);
    free(idx);
    free(tm);
    free(per);
    return bad ? -1 : 0;
}

int trace_export_h5(nesim_trace *t, int64_t run, nesim_trace_format fmt, const char *path, nesim_error *err)
{
    nesim_trace_run R;
    nesim_trace_layer *L = NULL;
    nesim_trace_sample_row *S = NULL;
    size_t nl = 0, ns = 0;
    int rc = nesim_trace_get_run(t, run, &R, err);
    if (rc)
        return rc;
    double tick_s = R.tick_s;
    int64_t vt = R.virtual_ticks;
    nesim_trace_run_clear(&R);
    if ((rc = nesim_trace_layers(t, run, &L, &nl, err)))
        return rc;
    if ((rc = nesim_trace_samples(t, run, &S, &ns, err))) {
        nesim_trace_layers_free(L, nl);
        return rc;
    }
    if (!ns) { /* one sample: the whole run */
        free(S);
        S = malloc(sizeof *S);
        if (!S) {
            nesim_trace_layers_free(L, nl);
            return nesim_fail(err, NESIM_ENOMEM, "out of memory");
        }
        S[0] = (nesim_trace_sample_row){0, 0, vt > 0 ? vt - 1 : NESIM_TRACE_TICK_LIMIT - 1};
        ns = 1;
    }
    if (nesim_tio_special(path)) { /* HDF5 needs a file it can seek in; a device renamed over would be replaced */
        free(S);
        nesim_trace_layers_free(L, nl);
        return nesim_fail(err, NESIM_EINVAL, "%s: not a regular file (an HDF5 export needs one)", path);
    }
    size_t len = strlen(path);
    char *tmp = malloc(len + 16);
    if (!tmp) {
        free(S);
        nesim_trace_layers_free(L, nl);
        return nesim_fail(err, NESIM_ENOMEM, "out of memory");
    }
    snprintf(tmp, len + 16, "%s.tmp-%ld", path, (long)getpid());
    H5E_auto2_t old_fn = NULL;
    void *old_data = NULL;
    H5Eget_auto2(H5E_DEFAULT, &old_fn, &old_data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), top = -1;
    if (f < 0)
        rc = nesim_fail(err, NESIM_EINVAL, "%s: cannot create (HDF5)", path);
    else if (fmt == NESIM_TRACE_SONATA) {
        top = H5Gcreate2(f, "spikes", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        if (top < 0)
            rc = nesim_fail(err, NESIM_EIO, "%s: cannot write", path);
    } else {
        if (put_string(f, "version", "0.2.0", 0) || put_string(f, "type", "NIRGraphData", 0) ||
            (top = H5Gcreate2(f, "nodes", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)) < 0)
            rc = nesim_fail(err, NESIM_EIO, "%s: cannot write", path);
    }
    for (size_t l = 0; !rc && l < nl; l++) {
        spk *v = NULL;
        size_t n = 0;
        if ((rc = layer_spikes(t, run, L[l].idx, &v, &n, err)))
            break;
        char *name = h5name(L[l].name);
        int bad = !name || (fmt == NESIM_TRACE_SONATA ? sonata_layer(top, name, v, n, tick_s)
                                                       : events_layer(top, name, v, n, S, ns, L[l].neurons, tick_s));
        if (bad)
            rc = nesim_fail(err, NESIM_EIO, "%s: cannot write layer '%s' (out of memory, disk full, or a name "
                                            "used twice)",
                            path, L[l].name);
        free(name);
        free(v);
    }
    if (top >= 0)
        H5Gclose(top);
    if (f >= 0 && H5Fclose(f) < 0 && !rc)
        rc = nesim_fail(err, NESIM_EIO, "%s: write failed", path);
    H5Eset_auto2(H5E_DEFAULT, old_fn, old_data);
    if (!rc && rename(tmp, path))
        rc = nesim_fail(err, NESIM_EIO, "%s: cannot rename into place: %s", path, strerror(errno));
    if (rc)
        unlink(tmp);
    free(tmp);
    free(S);
    nesim_trace_layers_free(L, nl);
    return rc;
}
