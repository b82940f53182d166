/* roofline.h — time and energy of dense work on a GPU-class board (a chip
 * profile of kind "gpu", net/chip.h): the roofline.
 *
 *   time   = max(operations / (peak x u_compute), bytes / (bandwidth x u_memory))
 *   energy = board power x time
 *
 * A multiply-accumulate is two operations. The utilisations are the
 * profile's, each with its assumption; the report carries them beside the
 * result, so a reader sees what the figure rests on. */
#ifndef NESIM_EVAL_ROOFLINE_H
#define NESIM_EVAL_ROOFLINE_H

#include <jansson.h>

#include "base/error.h"
#include "net/chip.h"

typedef struct nesim_roofline {
    const char *profile, *dtype, *per; /* borrowed: the profile's name, the dtype, what one item is */
    double macs, bytes;                /* per item */
    double compute_s, memory_s;        /* each bound alone */
    double time_s, energy_j;           /* per item */
    int memory_bound;                  /* bytes bound it (else operations) */
    double util_compute, util_memory;
} nesim_roofline;

/* The roofline of `macs` multiply-accumulates and `bytes` moved per item on
 * gpu in dtype (a name of nesim_chip_dtype_name). NESIM_EINVAL when gpu is
 * not kind "gpu", has no peak for the dtype, or the counts are negative. */
int nesim_roofline_of(const nesim_chip *gpu, const char *dtype, double macs, double bytes, const char *per,
                      nesim_roofline *out, nesim_error *err);

/* Its report object (new reference). */
json_t *nesim_roofline_json(const nesim_roofline *r);

/* Loads each profile of a comma-separated list ("a100-sxm,metax-c550");
 * *out gets n chips (free each with nesim_chip_free, then the array). */
int nesim_gpu_list_load(const char *list, nesim_chip ***out, size_t *n, nesim_error *err);
/* Frees what nesim_gpu_list_load gave. */
void nesim_gpu_list_free(nesim_chip **chips, size_t n);
/* Checks that every profile of the list loads and is a GPU (before a run). */
int nesim_gpu_list_check(const char *list, nesim_error *err);

#endif
