/* classic.c — Brette Benchmark 4 and CUBA (see classic.h). */
#include "net/classic.h"

#include "base/mem.h"
#include "net/estimate.h"

#include <math.h>
#include <string.h>

static const char *const names[] = {"b4", "cuba", NULL};

const char *const *nesim_classic_names(void) { return names; }

const char *nesim_classic_describe(const char *name)
{
    if (strcmp(name, "b4") == 0)
        return "Brette et al. 2007 Benchmark 4: LIF, voltage jumps +0.25/-2.25 mV";
    if (strcmp(name, "cuba") == 0)
        return "Brian2 CUBA: LIF, exponential currents (tau_e 5, tau_i 10 ms), w 1.62/-9 mV";
    return NULL;
}

int nesim_classic_build(const nesim_classic_opts *o, nesim_graph **out, int *exc, int *inh,
                        nesim_error *err)
{
    *out = NULL;
    int cuba;
    if (o->name && strcmp(o->name, "cuba") == 0)
        cuba = 1;
    else if (o->name && strcmp(o->name, "b4") == 0)
        cuba = 0;
    else
        return nesim_fail(err, NESIM_EINVAL, "unknown example network '%s' (try b4 or cuba)",
                          o->name ? o->name : "");
    uint32_t n = o->neurons ? o->neurons : 4000;
    if (n < 5)
        return nesim_fail(err, NESIM_EINVAL, "%s: needs at least 5 neurons (got %u)", o->name, n);
    /* p = 0.02 over n^2 pairs: 1e6 neurons are 2e10 synapses; refuse what cannot fit before drawing */
    double need = nesim_estimate_network((double)n, 4, 0.02 * (double)n * (double)n, 2.0 * n);
    uint64_t avail = o->max_memory ? o->max_memory : nesim_mem_available();
    if (avail && need > (double)avail) {
        char a[32], b[32];
        return nesim_fail(err, NESIM_EINVAL, "%s: %u neurons need about %s (%.3g synapses); %s %s%s", o->name, n,
                          nesim_mem_format(need, a, sizeof a), 0.02 * (double)n * (double)n,
                          o->max_memory ? "the limit is" : "this machine has",
                          nesim_mem_format((double)avail, b, sizeof b), o->max_memory ? "" : " available");
    }
    double tick = o->tick_s > 0 ? o->tick_s : 1e-4;
    double mV = 1e-3, ms = 1e-3;
    double v_rest = (isnan(o->v_rest) || o->v_rest == 0) ? -49 * mV : o->v_rest;
    const nesim_param p[] = {{"tau_m", 20 * ms}, {"v_rest", v_rest}, {"v_thresh", -50 * mV},
                             {"v_reset", -60 * mV}, {"t_ref", 5 * ms}, {"tau_e", 5 * ms}, {"tau_i", 10 * ms}};
    const size_t np = cuba ? 7 : 5; /* lif takes no current time constants */
    const char *model = cuba ? "lif_exp" : "lif";
    double we = cuba ? 1.62 * mV : 0.25 * mV, wi = cuba ? -9 * mV : -2.25 * mV;
    nesim_init_dist v0 = {.kind = NESIM_INIT_UNIFORM, .a = -60 * mV, .b = -50 * mV};
    uint32_t ne = (uint32_t)((uint64_t)n * 4 / 5);
    nesim_graph *net = nesim_graph_new(tick, o->seed, err);
    if (!net)
        return err ? err->code : NESIM_EINVAL;
    int E, I, rc;
    nesim_pop_spec pe = {.name = "exc", .model = model, .n = ne, .params = p, .n_params = np, .v_init = v0};
    nesim_pop_spec pi = {.name = "inh", .model = model, .n = n - ne, .params = p, .n_params = np, .v_init = v0};
    if ((rc = nesim_graph_add_population(net, &pe, &E, err)) || (rc = nesim_graph_add_population(net, &pi, &I, err)))
        goto fail;
    const int pre[4] = {E, E, I, I}, post[4] = {E, I, E, I};
    for (int k = 0; k < 4; k++) {
        nesim_proj_spec s = {.pre = pre[k], .post = post[k], .kind = NESIM_FIXED_PROB, .p = 0.02,
                             .weight = pre[k] == E ? we : wi, .delay = 1};
        if ((rc = nesim_graph_connect(net, &s, NULL, err)))
            goto fail;
    }
    if (exc)
        *exc = E;
    if (inh)
        *inh = I;
    *out = net;
    return NESIM_OK;
fail:
    nesim_graph_free(net);
    return rc;
}
