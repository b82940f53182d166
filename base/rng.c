/* rng.c — seeded GSL streams (see rng.h). */
#include "base/rng.h"

uint64_t nesim_mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

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
