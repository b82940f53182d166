/* chip.h — chip profiles: the hardware a model is mapped onto and priced on.
 *
 * A chip profile is one JSON file (format: chips/README.md). Two kinds:
 *   "neuromorphic"  per-event energies, core capacities, mesh shape (Loihi-,
 *                   TrueNorth-like): what nesim maps spiking layers onto;
 *   "dense"         a digital baseline: arithmetic energy per operation and
 *                   dtype, memory access energy by memory size (Horowitz);
 *   "gpu"           a board: peak operations per second by dtype, memory
 *                   bandwidth and size, board power and the utilisation
 *                   assumed (a roofline: eval/roofline.h).
 * Every number in a profile carries its provenance: a "source" (which must
 * begin with the key of one of the profile's "references") or an
 * "assumption" saying why the value was chosen.
 *
 * Guarantees
 * - Loading is strict and total: any file either yields a fully validated
 *   nesim_chip or fails with NESIM_EINVAL (NESIM_ENOMEM / NESIM_EIO for
 *   resources) and ONE line in err->msg that starts with the file name:
 *     syntax errors (from jansson)   "FILE:LINE:COLUMN: what"
 *     semantic errors                "FILE: json.path: what"
 *   e.g. "chips/mine.json: energy.hop_ew.value: must be >= 0 (got -3e-12)".
 *   Checked: unknown keys, missing keys, JSON types (counts must be JSON
 *   integers), units (SI; each field has exactly one accepted unit), ranges
 *   (energies finite and >= 0, counts >= 1), provenance (exactly one
 *   non-empty "source" or "assumption" per number), mesh capacity, and that
 *   "name" equals the file name without ".json".
 * - Nothing prints, exits or aborts. A nesim_chip is plain data and owns all
 *   of its strings; it keeps neither the JSON tree nor the file.
 *
 * Parameters vs derived values (NEST-style): `p` holds exactly what the file
 * sets, `d` holds values computed from it at load time. Change a chip by
 * editing its file, never by writing into the struct.
 *
 * Where profiles live: nesim_chip_default_dir(). */
#ifndef NESIM_NET_CHIP_H
#define NESIM_NET_CHIP_H

#include <stddef.h>
#include <stdint.h>

#include "net/tensor.h"
#include "base/error.h"

#define NESIM_CHIP_FORMAT 1 /* the "nesim_chip" version this build reads */

typedef enum nesim_chip_kind { NESIM_CHIP_NEUROMORPHIC = 0, NESIM_CHIP_DENSE = 1, NESIM_CHIP_GPU = 2 } nesim_chip_kind;

/* "neuromorphic" / "dense"; "?" for an out-of-range value. */
const char *nesim_chip_kind_name(nesim_chip_kind k);

/* Per-event energies of a neuromorphic chip, joules per event. */
typedef struct nesim_chip_energy {
    double synaptic_op;          /* one synaptic operation (a spike meeting one synapse) */
    double neuron_update_active; /* updating a neuron that receives input or fires */
    double neuron_update_idle;   /* updating a neuron that does neither */
    double spike_out;            /* a neuron emitting a spike (before routing) */
    double spike_within_core;    /* delivering a spike to a core on the same router */
    double hop_ew;               /* one east-west router hop */
    double hop_ns;               /* one north-south router hop */
    double hop_chip;             /* extra energy per chip-boundary crossing (on top of mesh hops) */
    /* one synaptic operation by how the synapses are stored: dense, sparse,
     * conv ([synaptic_op_dense|_sparse|_conv], optional; synaptic_op when absent) */
    double syn_by_storage[3];
} nesim_chip_energy;

/* How long events take on a neuromorphic chip, seconds per event (the
 * optional "latency" section): what chip time is made of (eval/chiptime.h). */
enum { NESIM_CHIP_SYNC_MAX = 16 };
typedef struct nesim_chip_latency {
    double syn_dense, syn_sparse, syn_conv; /* one synaptic op, by how the synapses are stored */
    double neuron_access;        /* visiting a neuron in a step (every neuron, every step) */
    double neuron_update;        /* updating one whose state changes (input, leak or drive) */
    double spike_out;            /* a neuron emitting a spike */
    double message_out;          /* sending one spike message (one per destination core) */
    double message_in;           /* receiving one spike message */
    double hop_ew, hop_ns;       /* one router hop east-west / north-south */
    double hop_chip;             /* extra per chip-boundary crossing */
    uint32_t link_buffer;        /* messages a link's buffer holds */
    /* per-step synchronisation by routers in use: the entry with the largest
     * key <= the routers in use (the first entry below it) */
    size_t n_sync;
    uint32_t sync_routers[NESIM_CHIP_SYNC_MAX]; /* ascending */
    double sync_s[NESIM_CHIP_SYNC_MAX];
} nesim_chip_latency;

/* Parameters of a neuromorphic chip (file keys in brackets). */
typedef struct nesim_chip_params {
    double process_nm;                      /* [process_nm] nm */
    double tick_s;                          /* [tick] s per time step; static energy uses it */
    /* [graded.mac, graded.element_op] optional: J per MAC and per element
     * operation of graded work (norms, softmax, attention products) done on
     * the chip; has_graded 0 when the profile prices none */
    int has_graded;
    double graded_mac_j, graded_elem_j;
    nesim_chip_energy energy;               /* [energy.*] J */
    int has_latency;                        /* [latency.*] s, optional */
    int asynchronous;                       /* [clocking] "asynchronous" (no global step; Speck)
                                               or "time-stepped" (the default) */
    nesim_chip_latency latency;
    double static_power_w;                  /* [static_power_per_chip|_per_core] W, as given */
    int static_power_per_core;              /* 1: the file gave it per core; 0: per chip */
    uint32_t neurons_per_core;              /* [neurons_per_core] */
    uint64_t synapse_memory_bytes_per_core; /* [synapse_memory_bytes_per_core] B */
    uint32_t weight_bits_max;               /* [weight_bits_max] widest stored weight */
    uint32_t fan_in_max;  /* [fan_in_max] distinct input axons a core accepts (bounds a neuron's fan-in) */
    uint32_t fan_out_max; /* [fan_out_max] destination cores one neuron can reach */
    uint32_t cores_per_chip;   /* [cores_per_chip] */
    uint32_t cores_per_router; /* [cores_per_router] cores sharing one mesh position */
    uint32_t mesh_x, mesh_y;   /* [mesh.x, mesh.y] routers per chip, east-west x north-south */
    uint32_t chip_mesh_x, chip_mesh_y; /* [chip_mesh.x, .y] largest multi-chip system, in chips */
} nesim_chip_params;

/* Derived from nesim_chip_params at load time. */
typedef struct nesim_chip_derived {
    uint64_t neurons_per_chip;              /* neurons_per_core * cores_per_chip */
    uint64_t synapse_memory_bytes_per_chip; /* synapse_memory_bytes_per_core * cores_per_chip */
    uint64_t synapses_per_core_at_max_bits; /* synapse memory bits / weight_bits_max */
    uint32_t routers_per_chip;              /* mesh_x * mesh_y */
    uint64_t max_chips;                     /* chip_mesh_x * chip_mesh_y */
    uint64_t max_cores;                     /* max_chips * cores_per_chip */
    double static_power_per_core_w;         /* both forms, whichever the file gave */
    double static_power_per_chip_w;
    double static_energy_per_core_tick_j;   /* static_power_per_core_w * tick_s */
} nesim_chip_derived;

/* Arithmetic operations of the dense baseline. */
typedef enum nesim_dense_op { NESIM_OP_ADD = 0, NESIM_OP_MULT = 1, NESIM_OP_MAC = 2 } nesim_dense_op;

/* Data types a dense profile may price ("arith" keys): int8, int16, int32,
 * fp16, bf16, fp32. */
#define NESIM_CHIP_DTYPES 6

typedef struct nesim_chip_sram {
    uint64_t capacity_bytes; /* memory size */
    double read_j;           /* energy of one word_bits-wide read */
} nesim_chip_sram;

/* Parameters of a dense baseline. */
typedef struct nesim_chip_dense {
    double process_nm;
    uint32_t word_bits;                     /* width of one memory access */
    int has[NESIM_CHIP_DTYPES];             /* dtype priced? (int8 and fp16 always are) */
    double add_j[NESIM_CHIP_DTYPES];        /* J per add, by dtype (index: see nesim_chip_dtype_index) */
    double mult_j[NESIM_CHIP_DTYPES];       /* J per multiply */
    double mac_j[NESIM_CHIP_DTYPES];        /* derived: add + mult */
    size_t n_sram;                          /* >= 1, capacities strictly ascending */
    nesim_chip_sram *sram;
    double dram_min_j, dram_max_j;          /* J per word access, min <= max */
} nesim_chip_dense;

/* A GPU-class board (kind "gpu"). A multiply-accumulate is two operations. */
typedef struct nesim_chip_gpu {
    double process_nm;
    int has[NESIM_CHIP_DTYPES];             /* dtype has a peak? (bf16 always does) */
    double peak_ops[NESIM_CHIP_DTYPES];     /* operations per second, dense */
    double bandwidth;                       /* memory bandwidth, B/s */
    double memory_bytes;                    /* on-board memory, B */
    double power_w;                         /* board power while busy, W */
    double util_compute, util_memory;       /* shares of peak assumed achievable, (0, 1] */
} nesim_chip_gpu;

/* Provenance of one number in the file, in file order. */
typedef struct nesim_chip_value {
    char *path;       /* "energy.synaptic_op", "sram_read[1].energy", ... */
    double value;     /* SI, as in the file */
    const char *unit; /* "J", "W", "B", "s", "nm", "bits", "neurons", "axons", "cores", "routers", "chips" */
    char *source;     /* non-NULL iff sourced; begins with a reference key */
    char *assumption; /* non-NULL iff assumed */
    char *note;       /* optional remark, or NULL */
} nesim_chip_value;

typedef struct nesim_chip_ref {
    char *key;  /* short name used at the start of sources: "Davies et al. 2018" */
    char *cite; /* full citation */
} nesim_chip_ref;

typedef struct nesim_chip {
    char *file;        /* path it was loaded from ("<name>" for parsed buffers) */
    char *name;        /* equals the file name without .json */
    char *description;
    nesim_chip_kind kind;
    size_t n_refs;
    nesim_chip_ref *refs;
    nesim_chip_params p;   /* kind == NESIM_CHIP_NEUROMORPHIC (zero otherwise) */
    nesim_chip_derived d;
    nesim_chip_dense dense; /* kind == NESIM_CHIP_DENSE (zero otherwise) */
    nesim_chip_gpu gpu;     /* kind == NESIM_CHIP_GPU (zero otherwise) */
    size_t n_values;
    nesim_chip_value *values;
} nesim_chip;

/* Where chip profiles are looked up: $NESIM_CHIPS if set and non-empty, else
 * the compile-time directory NESIM_CHIPS_DIR if the build defines it
 * (-DNESIM_CHIPS_DIR="\"/path/to/chips\"" or an unquoted path), else "chips"
 * relative to the current directory. Never NULL; the string is static or
 * the environment's. */
const char *nesim_chip_default_dir(void);

/* Loads a profile. `name_or_path` ending in ".yaml" or ".yml" is a SANA-FE
 * architecture file (net/sanafe.h); otherwise it is a path if it contains
 * '/' or ends in ".json"; otherwise it is a chip name looked up as chips_dir/NAME.json
 * (chips_dir NULL: nesim_chip_default_dir()). An unknown name fails with
 * NESIM_EINVAL listing the profiles that exist. *out is NULL on failure. */
int nesim_chip_load(const char *name_or_path, const char *chips_dir, nesim_chip **out,
                    nesim_error *err);

/* Parses a profile from memory (for tests and fuzzing). name_for_errors
 * prefixes messages; expect_name, if non-NULL, must equal "name". */
int nesim_chip_parse(const char *text, size_t len, const char *name_for_errors,
                     const char *expect_name, nesim_chip **out, nesim_error *err);

/* The profile of a SANA-FE architecture already read (net/sanafe.h),
 * checked as any other; what nesim_chip_load does for a .yaml path, for a
 * caller that also needs the architecture's unit names. */
struct nesim_sanafe_arch;
int nesim_chip_from_sanafe(const struct nesim_sanafe_arch *a, nesim_chip **out, nesim_error *err);

void nesim_chip_free(nesim_chip *c);

/* One *.json file of a chips directory. */
typedef struct nesim_chip_entry {
    char *name;        /* file name without .json */
    char *path;        /* chips_dir/name.json */
    nesim_chip *chip;  /* NULL if the file failed to load ... */
    nesim_error error; /* ... and then why (one line, starts with path) */
} nesim_chip_entry;

/* Enumerates chips_dir (NULL: the default dir): every "*.json" file not
 * starting with '.', sorted by name, each loaded and validated. A file that
 * fails does not fail the listing: its entry has chip == NULL and the error.
 * Fails (NESIM_EINVAL / NESIM_EIO / NESIM_ENOMEM) only if the directory
 * cannot be read. Free with nesim_chip_list_free. */
int nesim_chip_list(const char *chips_dir, nesim_chip_entry **out, size_t *n, nesim_error *err);
void nesim_chip_list_free(nesim_chip_entry *entries, size_t n);

/* Provenance of the number at `path` (e.g. "energy.synaptic_op"); NULL if
 * the profile has no such number. */
const nesim_chip_value *nesim_chip_find(const nesim_chip *c, const char *path);

/* The source text, or the assumption prefixed "assumption: " into buf. */
const char *nesim_chip_provenance(const nesim_chip_value *v, char *buf, size_t cap);

/* ---- dense baseline accessors (NESIM_EINVAL if c is not "dense") ---- */

/* Index into nesim_chip_dense arrays for a dtype name ("int8", "fp16", ...),
 * or -1. */
int nesim_chip_dtype_index(const char *name);
/* The name for an index ("int8", ...), "?" if out of range. */
const char *nesim_chip_dtype_name(int index);
/* Maps a tensor dtype to the profile's dtype index (i8 -> int8, f16 -> fp16,
 * bf16, f32 -> fp32, i16, i32), or -1 (f64, u8). */
int nesim_chip_dtype_of_tensor(nesim_dtype dt);

/* Energy of one operation on dtype `dtype` ("int8", "fp16", ...); fails if
 * the profile does not price that dtype. NESIM_OP_MAC is add + mult. */
int nesim_chip_dense_op(const nesim_chip *c, const char *dtype, nesim_dense_op op, double *joules,
                        nesim_error *err);

/* Energy of one word_bits-wide read from the smallest listed SRAM that holds
 * `memory_bytes`; *capacity (may be NULL) gets that SRAM's size. Fails with
 * NESIM_EINVAL if memory_bytes exceeds the largest SRAM (use DRAM). */
int nesim_chip_sram_read(const nesim_chip *c, uint64_t memory_bytes, double *joules,
                         uint64_t *capacity, nesim_error *err);

/* DRAM energy per word access, as the published range. */
int nesim_chip_dram_access(const nesim_chip *c, double *min_j, double *max_j, nesim_error *err);

#endif
