/* rng.c — seeded GSL streams (see rng.h). */
#include "base/rng.h"

gsl_rng *nesim_rng_new(uint64_t seed, uint64_t stream)
{
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    if (!r)
        return NULL;
    uint64_t s = nesim_mix64(seed ^ nesim_mix64(stream + 1));
    /* mt19937 seeds from 32 bits; fold the high half in, and avoid 0
     * (GSL maps seed 0 to its default seed). */
    unsigned long s32 = (unsigned long)((s ^ (s >> 32)) & 0xffffffffu);
    gsl_rng_set(r, s32 ? s32 : 1);
    return r;
}
