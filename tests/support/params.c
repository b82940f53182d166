/* params.c — see params.h. */
#include "tests/support/params.h"

#include <string.h>

#include "tests/support/check.h"

size_t test_params(const char *model, const char *rule, const test_bag *b, nesim_param *out)
{
    const struct {
        const char *name;
        double v;
    } all[] = {{"tau_m", b->tau_m}, {"v_rest", b->v_rest}, {"v_thresh", b->v_thresh}, {"v_reset", b->v_reset},
               {"t_ref", b->t_ref}, {"tau_e", b->tau_e}, {"tau_i", b->tau_i}, {"tau_a", b->tau_a}, {"b", b->b},
               {"i_drive", b->i_drive}, {"rate_hz", b->rate_hz}, {"reset_subtract", b->reset_subtract}};
    const nesim_rule *r;
    const nesim_model *m = nesim_model_find(model, &r);
    if (rule)
        r = nesim_rule_find(rule);
    size_t n = 0;
    for (size_t i = 0; m && i < sizeof all / sizeof *all; i++) {
        int takes = 0;
        for (int k = 0; k < m->n_params; k++)
            takes |= strcmp(m->params[k].name, all[i].name) == 0;
        for (int k = 0; r && k < r->n_params; k++)
            takes |= strcmp(r->params[k].name, all[i].name) == 0;
        if (takes)
            out[n++] = (nesim_param){all[i].name, all[i].v};
    }
    return n;
}

void test_dyn(nesim_dyn *d, const char *model, test_bag b, double tick_s)
{
    nesim_error err = {0};
    nesim_param q[NESIM_PARAM_MAX];
    size_t n = test_params(model, NULL, &b, q);
    const nesim_rule *r;
    const nesim_model *m = nesim_model_find(model, &r);
    assert_non_null(m);
    assert_ok(nesim_dyn_init(d, m, r, q, n, tick_s, &err), &err);
}
