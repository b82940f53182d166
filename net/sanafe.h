/* sanafe.h — SANA-FE's own input files, read so that its users can run
 * their models unchanged (SLAM-Lab/SANA-FE; formats as its arch/README.md
 * and snn/README.md describe them; nesim reads the files, none of its code).
 *
 * Architecture YAML (arch/loihi.yaml, arch/truenorth.yaml, ...) becomes a
 * neuromorphic chip profile (net/chip.h; nesim_chip_load reads a .yaml path
 * through here): one kind of tile repeated over a width x height mesh, one
 * kind of core repeated per tile, their units' per-event energies and
 * latencies. What the file does not say (process, synapse memory, weight
 * width, fan limits, static power) is filled with an assumption saying so.
 * SANA-FE numbers tiles column by column (x = tile / height, y = tile %
 * height); nesim's core numbering is row by row, so a mapping's tile t,
 * core c is nesim core ((t % height) * width + t / height) * cores_per_tile
 * + c, and routes have the same hops.
 *
 * Network YAML (snn/dvs.yaml: network.groups, network.edges, mappings) and
 * the legacy netlist (snn/example.net: g / n / e / & lines) become a nesim_spec:
 * each group a population of the `loihi` model (SANA-FE's
 * leaky_integrate_fire soma: threshold, reset, bias, leak_decay,
 * refractory_delay, potential; values that differ by neuron become
 * per-neuron parameters), each hyperedge (dense, conv2d — channels first,
 * no padding, filter [y][x][in][out] — or sparse) and the neuron-to-neuron
 * edges between two groups an explicit projection of delay 1 (a spike of
 * step t is integrated in step t + 1), and the mapping each neuron's core.
 * nesim's tick k is SANA-FE's step k + 1: its first step adds the bias to
 * the initial potential, so each neuron starts there (v_init).
 *
 * A projection's synapses are stored as the post group's synapse unit says
 * (synapse_hw_name, or the core's first synapse unit): a unit whose name
 * contains "conv" is conv, "dense" dense, any other sparse; the chip built
 * from an architecture file prices each storage with its unit.
 *
 * Anything nesim would have to ignore to give a different answer is an
 * error: a soma model other than leaky_integrate_fire, input spike lists,
 * soft or reverse resets, input_decay, dendrite delays or energies, noise,
 * plugins. Unknown keys are errors. Every error is one line "FILE:LINE:COLUMN:
 * what" naming the key. Attributes that only steer SANA-FE's logging
 * (log_spikes, log_potential, ...) are accepted and ignored. */
#ifndef NESIM_NET_SANAFE_H
#define NESIM_NET_SANAFE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "base/error.h"
#include "net/spec.h"

/* What kind of SANA-FE file a path names by its extension: 1 YAML (.yaml,
 * .yml), 2 netlist (.net), 0 neither. */
int nesim_sanafe_file_kind(const char *path);

/* How nesim stores the synapses a SANA-FE synapse unit serves, by the
 * unit's name: NESIM_STORE_DENSE when it contains "dense", NESIM_STORE_CONV
 * when "conv", NESIM_STORE_SPARSE otherwise. The one rule both the
 * architecture reader (which unit prices which storage) and the network
 * reader (how a projection is stored) follow. */
enum nesim_syn_storage nesim_sanafe_unit_storage(const char *unit_name);

typedef struct nesim_sanafe_arch {
    char *file;
    json_t *chip;             /* the chip profile document (chips/README.md format) */
    size_t n_soma;
    char **soma_name, **soma_model; /* soma units in file order */
    size_t n_syn;
    char **syn_name;          /* synapse units in file order (the first is a core's default) */
    uint32_t width, height, cores_per_tile;
} nesim_sanafe_arch;

/* Reads an architecture file; errors as above, NESIM_EIO when it cannot be
 * read. Free with nesim_sanafe_arch_free. */
int nesim_sanafe_arch_load(const char *path, nesim_sanafe_arch **out, nesim_error *err);
int nesim_sanafe_arch_parse(const char *text, size_t len, const char *name_for_errors, nesim_sanafe_arch **out,
                            nesim_error *err);
void nesim_sanafe_arch_free(nesim_sanafe_arch *a);

/* The mesh a mapping's tile.core addresses are translated onto. */
typedef struct nesim_sanafe_layout {
    uint32_t mesh_x, mesh_y, cores_per_router, cores_per_chip;
} nesim_sanafe_layout;

/* Reads a network file (YAML or netlist by nesim_sanafe_file_kind) into a
 * spec (free with nesim_spec_free). arch (may be NULL: every soma unit is
 * leaky_integrate_fire and a group without synapse_hw_name is sparse) names
 * the units; lay translates the mapping (NULL: no chip, the mapping is
 * checked but not kept). */
int nesim_sanafe_net_load(const char *path, const nesim_sanafe_arch *arch, const nesim_sanafe_layout *lay,
                          nesim_spec **out, nesim_error *err);
int nesim_sanafe_net_parse(const char *text, size_t len, const char *name_for_errors, int netlist,
                           const nesim_sanafe_arch *arch, const nesim_sanafe_layout *lay, nesim_spec **out,
                           nesim_error *err);

#endif
