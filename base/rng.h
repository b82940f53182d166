/* rng.h — reproducible random streams. All randomness is GSL's mt19937
 * (pinned: reference data must not move when GSL's default changes), one
 * stream per consumer, seeded by mixing the run seed with a stream number. */
#ifndef NESIM_RNG_H
#define NESIM_RNG_H

#include <gsl/gsl_rng.h>
#include <stdint.h>

/* A new mt19937 generator for (seed, stream); NULL when out of memory. */
gsl_rng *nesim_rng_new(uint64_t seed, uint64_t stream);

/* splitmix64 finaliser: a well-mixed 64-bit function of x (inline: the
 * synthetic weights call it once per value). */
static inline uint64_t nesim_mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

#endif
