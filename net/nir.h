/* nir.h — NIR graphs (the Neuromorphic Intermediate Representation) in memory.
 *
 * A NIR file is HDF5: /version (a string, 0.1.x or 0.2.x), /node/type =
 * "NIRGraph", /node/nodes/<name>/ (a `type` string and parameter datasets),
 * /node/edges (an [E, 2] array of strings). A node of type NIRGraph nests
 * another graph; nesim flattens it: its nodes take dotted names ("lif1.lin"),
 * an edge into the nested graph goes to its Input node, an edge out of it
 * leaves from its Output node, and those inner Input/Output nodes become
 * pass-through nodes (NESIM_NIR_IDENTITY).
 *
 * The same graph can be read from and written to JSON (`nesim spec X.nir`),
 * so an imported model can be edited and run without HDF5:
 *   {"nesim_nir": 1, "version": "0.2.0",
 *    "nodes": {"fc1": {"type": "Affine", "weight": {"shape": [38, 12], "data": [...]},
 *                      "bias": {"shape": [38], "data": [...]}}, ...},
 *    "edges": [["input", "fc1"], ...]}
 * Numbers are written with 17 significant digits: the round trip is exact.
 *
 * Every loader validates what it reads: one line naming the file, the node
 * and the field on any problem (NESIM_EINVAL); nothing crashes on a hostile
 * file. Shapes along edges are checked by the runner (sim/nir_run.h). */
#ifndef NESIM_NET_NIR_H
#define NESIM_NET_NIR_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

typedef enum nesim_nir_type {
    NESIM_NIR_INPUT,
    NESIM_NIR_OUTPUT,
    NESIM_NIR_IDENTITY, /* a nested graph's Input or Output, flattened */
    NESIM_NIR_AFFINE,
    NESIM_NIR_LINEAR,
    NESIM_NIR_SCALE,
    NESIM_NIR_CONV1D,
    NESIM_NIR_CONV2D,
    NESIM_NIR_SUMPOOL2D,
    NESIM_NIR_AVGPOOL2D,
    NESIM_NIR_FLATTEN,
    NESIM_NIR_DELAY,
    NESIM_NIR_THRESHOLD,
    NESIM_NIR_I,
    NESIM_NIR_IF,
    NESIM_NIR_LI,
    NESIM_NIR_LIF,
    NESIM_NIR_CUBALI,
    NESIM_NIR_CUBALIF,
    NESIM_NIR_NTYPES
} nesim_nir_type;

enum { NESIM_NIR_MAX_DIM = 8 };

/* One parameter of a node: a numeric array (ints read exactly up to 2^53)
 * or a string (Conv padding "same"/"valid"). */
typedef struct nesim_nir_param {
    char *name;
    char *str;          /* non-NULL: a string parameter (then no numbers) */
    int ndim;           /* 0: a scalar */
    int64_t shape[NESIM_NIR_MAX_DIM];
    size_t count;       /* product(shape); 1 for a scalar */
    double *v;          /* count values, C order */
} nesim_nir_param;

typedef struct nesim_nir_node {
    char *name;
    nesim_nir_type type;
    nesim_nir_param *params;
    int n_params;
} nesim_nir_node;

typedef struct nesim_nir_graph {
    char *version;
    nesim_nir_node *nodes; /* sorted by name (HDF5's name order), nested ones flattened */
    int n_nodes;
    int (*edges)[2];       /* [source, target] node indices, in file order */
    int n_edges;
    /* How names were resolved (nesim_nir_load with repair): one line per
     * repaired edge end, for the caller to show ("" when none). */
    char notes[512];
} nesim_nir_graph;

/* Parser limits: at most this many values in one parameter array, in all
 * arrays together, and nodes; deeper nesting than NESIM_NIR_MAX_DEPTH is refused. */
enum { NESIM_NIR_MAX_DEPTH = 16, NESIM_NIR_MAX_NODES = 1 << 16 };
#define NESIM_NIR_MAX_VALUES ((size_t)1 << 28)

/* The node type named s ("CubaLIF", ...), or -1. */
int nesim_nir_type_find(const char *s);
const char *nesim_nir_type_name(nesim_nir_type t);
/* "Input, Output, Affine, ..." (the types a file may use), for messages. */
const char *nesim_nir_type_list(void);

/* Reads a NIR (HDF5) file into *g (caller frees with nesim_nir_free).
 * repair: an edge end that names no node of its graph is taken as the one
 * node whose name it begins (if exactly one does), and g->notes says so
 * (the NIR paper's braille subgraph file names its "lif1" node "lif" in
 * its edges); 0 refuses such an edge. NESIM_EINVAL naming the file, node
 * and field on bad input. */
int nesim_nir_load(const char *path, int repair, nesim_nir_graph *g, nesim_error *err);
/* The HDF5 library (1.10) can crash or loop forever on a damaged file (its
 * global heap and vlen-string code trust the file); nesim_nir_load therefore
 * reads in a child process and takes the graph back as JSON: a crash, a hang
 * past timeout_s (60 s for nesim_nir_load) or any failure of the child is
 * NESIM_EINVAL naming the file, never a crash of the caller. The in-process
 * reader is for tests and files already trusted. */
int nesim_nir_load_isolated(const char *path, int repair, double timeout_s, nesim_nir_graph *g, nesim_error *err);
int nesim_nir_load_inprocess(const char *path, int repair, nesim_nir_graph *g, nesim_error *err);
/* Nonzero when the file at path starts with the HDF5 signature. */
int nesim_nir_is_hdf5(const char *path);

/* The graph as the JSON spec above (a new reference), NULL if out of memory. */
json_t *nesim_nir_to_json(const nesim_nir_graph *g);
/* The graph from that JSON (file names messages). */
int nesim_nir_from_json(const json_t *root, const char *file, nesim_nir_graph *g, nesim_error *err);
/* Nonzero when root is such a spec (has "nesim_nir"). */
int nesim_nir_json_is(const json_t *root);

/* Lookups: the node named name (-1), its parameter (NULL). */
int nesim_nir_node_find(const nesim_nir_graph *g, const char *name);
const nesim_nir_param *nesim_nir_param_get(const nesim_nir_node *n, const char *name);

void nesim_nir_free(nesim_nir_graph *g);

#endif
