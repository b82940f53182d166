/* rng.h — reproducible random streams. Everything a network draws is a keyed
 * draw (the counter-based functions below); sequential streams (a run's
 * random inputs) use GSL's mt19937 (pinned: reference data must not move
 * when GSL's default changes), one stream per consumer, seeded by mixing the
 * run seed with a stream number. */
#ifndef NESIM_RNG_H
#define NESIM_RNG_H

#include <gsl/gsl_rng.h>
#include <math.h>
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

/* Counter-based draws: connectivity, initial states and spike sources are
 * keyed by (seed, stream, id) — a target neuron, a neuron — so any subset of
 * them (one rank's, one thread's) is drawn alone and the same as in a whole
 * run.
 * Streams are NESIM_STREAM(domain, index): a domain per kind of draw, so no
 * two kinds share a key. */
enum { NESIM_STREAM_CONN = 1, NESIM_STREAM_INIT = 2, NESIM_STREAM_SOURCE = 3 };
#define NESIM_STREAM(domain, index) (((uint64_t)(domain) << 40) | (uint64_t)(index))

/* The start of id's sequence in stream (a well-mixed function of all three). */
static inline uint64_t nesim_key(uint64_t seed, uint64_t stream, uint64_t id)
{
    return nesim_mix64(nesim_mix64(nesim_mix64(seed) ^ stream) ^ id);
}

/* The next 64 bits of the splitmix64 sequence at *state (state advances). */
static inline uint64_t nesim_key_next(uint64_t *state)
{
    uint64_t x = nesim_mix64(*state);
    *state += 0x9e3779b97f4a7c15ull;
    return x;
}

/* Uniform in the open interval (0, 1): 53 bits, half a step from either end. */
static inline double nesim_open01(uint64_t x)
{
    return ((double)(x >> 11) + 0.5) * 0x1p-53;
}

/* Independent Bernoulli(p) trials up to and including the first success,
 * drawn from the sequence at *state (which advances unless p >= 1); lq is
 * log1p(-p), kept by callers that draw many. A double: an integer would
 * overflow for p below ~1e-9. */
static inline double nesim_key_geometric(uint64_t *state, double p, double lq)
{
    return p >= 1 ? 1 : floor(log(nesim_open01(nesim_key_next(state))) / lq) + 1;
}

#endif
