/* roofline.c — dense work on a GPU-class board (roofline.h). */
#include "eval/roofline.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int nesim_roofline_of(const nesim_chip *gpu, const char *dtype, double macs, double bytes, const char *per,
                      nesim_roofline *out, nesim_error *err)
{
    memset(out, 0, sizeof *out);
    if (gpu->kind != NESIM_CHIP_GPU)
        return nesim_fail(err, NESIM_EINVAL, "%s is a %s profile, not a GPU (kind \"gpu\")", gpu->name,
                          nesim_chip_kind_name(gpu->kind));
    int d = nesim_chip_dtype_index(dtype);
    if (d < 0 || !gpu->gpu.has[d])
        return nesim_fail(err, NESIM_EINVAL, "%s has no peak for %s", gpu->name, dtype ? dtype : "(none)");
    if (!(macs >= 0) || !(bytes >= 0) || !isfinite(macs) || !isfinite(bytes))
        return nesim_fail(err, NESIM_EINVAL, "roofline: %g MACs and %g bytes", macs, bytes);
    const nesim_chip_gpu *g = &gpu->gpu;
    *out = (nesim_roofline){.profile = gpu->name, .dtype = nesim_chip_dtype_name(d), .per = per, .macs = macs,
                            .bytes = bytes, .util_compute = g->util_compute, .util_memory = g->util_memory};
    out->compute_s = 2 * macs / (g->peak_ops[d] * g->util_compute);
    out->memory_s = bytes / (g->bandwidth * g->util_memory);
    out->memory_bound = out->memory_s > out->compute_s;
    out->time_s = out->memory_bound ? out->memory_s : out->compute_s;
    out->energy_j = g->power_w * out->time_s;
    return NESIM_OK;
}

json_t *nesim_roofline_json(const nesim_roofline *r)
{
    json_t *o = json_object();
    json_object_set_new(o, "profile", json_string(r->profile));
    json_object_set_new(o, "dtype", json_string(r->dtype));
    json_object_set_new(o, "per", json_string(r->per));
    json_object_set_new(o, "macs", json_real(r->macs));
    json_object_set_new(o, "bytes", json_real(r->bytes));
    json_object_set_new(o, "compute_s", json_real(r->compute_s));
    json_object_set_new(o, "memory_s", json_real(r->memory_s));
    json_object_set_new(o, "time_s", json_real(r->time_s));
    json_object_set_new(o, "energy_j", json_real(r->energy_j));
    json_object_set_new(o, "bound", json_string(r->memory_bound ? "memory" : "compute"));
    json_object_set_new(o, "utilisation_compute", json_real(r->util_compute));
    json_object_set_new(o, "utilisation_memory", json_real(r->util_memory));
    return o;
}

int nesim_gpu_list_load(const char *list, nesim_chip ***out, size_t *n, nesim_error *err)
{
    *out = NULL;
    *n = 0;
    char *s = strdup(list ? list : "");
    if (!s)
        return nesim_fail(err, NESIM_ENOMEM, "out of memory");
    int rc = NESIM_OK;
    size_t cap = 1;
    for (const char *p = s; *p; p++)
        cap += *p == ',';
    *out = calloc(cap, sizeof **out);
    if (!*out)
        rc = nesim_fail(err, NESIM_ENOMEM, "out of memory");
    char *save = NULL;
    for (char *tok = rc ? NULL : strtok_r(s, ",", &save); tok && !rc; tok = strtok_r(NULL, ",", &save)) {
        nesim_chip *c = NULL;
        if (!(rc = nesim_chip_load(tok, NULL, &c, err))) {
            if (c->kind != NESIM_CHIP_GPU) {
                rc = nesim_fail(err, NESIM_EINVAL, "--gpu %s: a %s profile, not a GPU (kind \"gpu\")", c->name,
                                nesim_chip_kind_name(c->kind));
                nesim_chip_free(c);
            } else {
                (*out)[(*n)++] = c;
            }
        }
    }
    if (!rc && !*n)
        rc = nesim_fail(err, NESIM_EINVAL, "--gpu: no profile named");
    free(s);
    if (rc) {
        for (size_t i = 0; *out && i < *n; i++)
            nesim_chip_free((*out)[i]);
        free(*out);
        *out = NULL;
        *n = 0;
    }
    return rc;
}

void nesim_gpu_list_free(nesim_chip **chips, size_t n)
{
    for (size_t i = 0; chips && i < n; i++)
        nesim_chip_free(chips[i]);
    free(chips);
}

int nesim_gpu_list_check(const char *list, nesim_error *err)
{
    nesim_chip **c;
    size_t n;
    int rc = nesim_gpu_list_load(list, &c, &n, err);
    if (!rc)
        nesim_gpu_list_free(c, n);
    return rc;
}
