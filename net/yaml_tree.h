/* yaml_tree.h — a YAML document as a small tree that remembers where each
 * node was written, so that readers of YAML formats (SANA-FE's architecture
 * and network files: net/sanafe.h) can say "FILE:LINE:COLUMN: what" about any
 * node.
 *
 * libyaml does the parsing (Debian's libyaml-dev): any bytes either give a
 * tree or fail with NESIM_EINVAL and one line "FILE:LINE:COLUMN: what
 * libyaml says". Only the first document is read. Anchors and aliases are
 * refused (an alias can multiply a small file into an exponential tree);
 * nesting deeper than NESIM_YAML_MAX_DEPTH is refused. Tags are ignored:
 * every scalar is its text. Mapping keys are scalars; a repeated key is an
 * error naming it. */
#ifndef NESIM_NET_YAML_TREE_H
#define NESIM_NET_YAML_TREE_H

#include <stddef.h>

#include "base/error.h"

#define NESIM_YAML_MAX_DEPTH 64

typedef enum nesim_ynode_kind { NESIM_Y_SCALAR = 0, NESIM_Y_SEQ, NESIM_Y_MAP } nesim_ynode_kind;

typedef struct nesim_ynode {
    nesim_ynode_kind kind;
    int line, col;                /* 1-based, where the node starts */
    char *text;                   /* scalar: its value (NUL-terminated; may hold no NUL) */
    size_t len;                   /* scalar: bytes */
    int plain;                    /* scalar: written without quotes */
    size_t n;                     /* seq: items; map: pairs */
    struct nesim_ynode **item;    /* seq: n items; map: 2n nodes, key then value */
} nesim_ynode;

typedef struct nesim_yaml {
    char *file;                   /* name used in messages */
    nesim_ynode *root;            /* NULL for an empty document */
} nesim_yaml;

/* Parses text[0..len); name_for_errors starts every message. Free with
 * nesim_yaml_free. */
int nesim_yaml_parse(const char *text, size_t len, const char *name_for_errors, nesim_yaml **out,
                     nesim_error *err);
/* Reads and parses a file (NESIM_EIO naming it when it cannot be read). */
int nesim_yaml_load(const char *path, nesim_yaml **out, nesim_error *err);
void nesim_yaml_free(nesim_yaml *y);

/* The value of key in map node m, or NULL (also when m is not a map). */
const nesim_ynode *nesim_yaml_get(const nesim_ynode *m, const char *key);

/* "mapping" / "sequence" / "scalar". */
const char *nesim_yaml_kind_name(nesim_ynode_kind k);

#endif
