/* map.h — placing a model's neurons on the cores of a chip, and routing.
 *
 * Each group (a coded layer's input neurons and output neurons, or a
 * population) is placed, in order, on consecutive cores starting on a fresh
 * core — or, with caps.pack, on the last core opened when the whole group
 * fits in what that core has left, so that many small populations share
 * cores as one large population would: a core takes as many of the group's neurons as both its neuron
 * capacity and its synapse memory allow (each neuron stores its fan-in
 * synapses at the weight's precision, at most the chip's widest weight). A
 * neuron whose fan-in exceeds the chip's limit is split, when allowed, into
 * ceil(fan_in / limit) compartments whose partial sums merge (Loihi's
 * dendritic trees); each compartment takes a neuron slot. Core c sits on chip
 * n = c / cores_per_chip; its router r = k / cores_per_router (k = c %
 * cores_per_chip) sits at (r % mesh_x, r / mesh_x) on its chip, and chip n at
 * (n % chip_mesh_x, n / chip_mesh_x) in the system, so the global mesh is
 * (chip_mesh_x * mesh_x) x (chip_mesh_y * mesh_y) routers and a route between
 * chips is a longer route on it. Routing is dimension order (x first, then
 * y): a spike from core s to core d costs |dx| east-west and |dy| north-south
 * hops and crosses |dchip_x| + |dchip_y| chip boundaries; a spike that must
 * reach several cores is sent once per destination core (a routing table
 * per source core lists them). Everything is deterministic.
 *
 * A model that cannot fit — a fan-in over the per-neuron limit, one neuron's
 * synapses larger than a core's synapse memory, a neuron that must reach more
 * cores than its fan-out limit, more chips than the system holds — is
 * NESIM_EINVAL naming the group and limit. */
#ifndef NESIM_MAP_H
#define NESIM_MAP_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

typedef struct nesim_chip_caps {
    uint64_t neurons_per_core;
    double synapse_bytes_per_core;
    uint64_t fan_in_max;      /* synapses into one neuron; 0 = unlimited */
    uint64_t fan_out_max;     /* destination cores per neuron; 0 = unlimited */
    uint64_t cores_per_chip;
    uint64_t cores_per_router; /* cores sharing one mesh position (0 hops between them) */
    uint64_t mesh_x, mesh_y;  /* routers per chip: cores_per_chip <= mesh_x * mesh_y * cores_per_router */
    uint64_t chip_mesh_x, chip_mesh_y; /* chips in the largest system; 0: a row of any length */
    double weight_bits_max;   /* widest stored weight; wider weights are stored at this width */
    int split_fan_in;         /* a fan-in over fan_in_max is split over compartments (dendritic
                                 partial sums) instead of failing */
    int pack;                 /* a group that fits whole in what the last opened core has left
                                 (neuron slots and synapse memory) shares that core */
} nesim_chip_caps;

typedef struct nesim_map_group {
    const char *name;
    uint64_t neurons;
    uint64_t fan_in;          /* synapses per neuron (largest) */
    double weight_bits;       /* per stored synapse */
    /* Placement given by the model (a SANA-FE mapping, a spec's "cores"):
     * neuron i on core cores[i], or NULL: placed as above. Either every
     * group's cores are given or none are. Given cores are checked against
     * the chip (a core's neuron slots over all groups, its synapse memory,
     * the system's cores); the mapping's cores are then 0 .. the highest
     * given, of which the groups own those they use. */
    const uint32_t *cores;
} nesim_map_group;

/* An edge pre -> post. Dense: every pre neuron reaches every post neuron.
 * Otherwise targets(user, i, out, cap) lists pre neuron i's targets (post
 * indices) and returns their number. */
typedef struct nesim_map_edge {
    int pre, post;
    int dense;
    size_t (*targets)(void *user, uint64_t i, uint32_t *out, size_t cap);
    void *user;
    /* Or, when not NULL, the destination cores themselves (a graph drawn in
     * parts: each part's targets' cores, merged): pre neuron i's are the bits
     * set in the nesim_map_reach_words(post's place) words at
     * reach + i * words, bit d for core post.first_core + d. targets is not
     * called. */
    const uint64_t *reach;
} nesim_map_edge;

typedef struct nesim_map_place {
    uint64_t first_core, n_cores, per_core; /* neuron i is on core first_core + i / per_core */
    uint32_t *core;          /* given placement (a copy): neuron i on core[i], all within
                                [first_core, first_core + n_cores); per_core unused. NULL:
                                the formula above. Read it with nesim_map_core. */
    uint64_t owned_cores;    /* cores this group opened (0 when it shares another's: caps.pack);
                                the groups' owned cores sum to the mapping's cores */
    uint64_t compartments;   /* per neuron: 1, or more when its fan-in was split */
    double weight_bits;      /* as stored on the chip */
} nesim_map_place;

typedef struct nesim_mapping {
    size_t n_groups, n_edges;
    nesim_map_place *place;    /* per group */
    uint64_t cores, chips;     /* cores numbered 0 .. cores - 1; chips holding them */
    uint64_t cores_used;       /* cores holding neurons (= cores unless placements are given) */
    uint64_t max_hops;         /* longest single route used */
    uint64_t routes;           /* routing-table entries (source core, destination core) */
    /* per edge, per pre neuron: destination cores and hops of one spike */
    uint32_t **dest_cores;
    uint64_t **hops_ew, **hops_ns;
    uint64_t **hops_chip;      /* chip-boundary crossings of one spike */
    double *syn_bytes_core_max; /* per group: synapse memory used on its fullest core */
} nesim_mapping;

/* The core holding neuron i of a placed group. */
static inline uint64_t nesim_map_core(const nesim_map_place *P, uint64_t i)
{
    return P->core ? P->core[i] : P->first_core + i / P->per_core;
}

/* Places groups and routes edges. Fills *m (free with nesim_map_free). */
int nesim_map(const nesim_chip_caps *caps, const nesim_map_group *g, size_t n_groups,
              const nesim_map_edge *e, size_t n_edges, nesim_mapping *m, nesim_error *err);
/* nesim_map in its two steps, for a caller that needs the placement to
 * describe the edges (nesim_map_edge.reach): place fills *m's groups (free
 * with nesim_map_free); route then fills its edges from the same groups, or
 * frees *m on failure. */
int nesim_map_place_groups(const nesim_chip_caps *caps, const nesim_map_group *g, size_t n_groups, nesim_mapping *m,
                    nesim_error *err);
int nesim_map_route_edges(const nesim_chip_caps *caps, const nesim_map_group *g, const nesim_map_edge *e, size_t n_edges,
                    nesim_mapping *m, nesim_error *err);

/* 64-bit words of one pre neuron's destination cores in a group placed P. */
static inline uint64_t nesim_map_reach_words(const nesim_map_place *P) { return (P->n_cores + 63) / 64; }
void nesim_map_free(nesim_mapping *m);

/* Mesh coordinates of a core in the whole system (across chips). */
void nesim_map_core_xy(const nesim_chip_caps *caps, uint64_t core, uint64_t *x, uint64_t *y);

/* Position of the chip holding a core, in the system's grid of chips. */
void nesim_map_chip_xy(const nesim_chip_caps *caps, uint64_t core, uint64_t *cx, uint64_t *cy);

#endif
