/* yaml_tree.c — libyaml's event stream folded into a tree with positions.
 *
 * Recursion follows the document's nesting, bounded by NESIM_YAML_MAX_DEPTH,
 * so a hostile file cannot exhaust the stack. */
#include "net/yaml_tree.h"
#include "base/mem.h"

#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "net/jsonmsg.h"

enum { YAML_MAX_BYTES = 256u << 20 };

typedef struct yctx {
    yaml_parser_t p;
    const char *file;
    nesim_error *err;
} yctx;

static void free_node(nesim_ynode *n)
{
    if (!n)
        return;
    size_t m = n->kind == NESIM_Y_MAP ? 2 * n->n : n->kind == NESIM_Y_SEQ ? n->n : 0;
    for (size_t i = 0; i < m; i++)
        free_node(n->item[i]);
    free(n->item);
    free(n->text);
    free(n);
}

/* A collection whose children are not all read yet: its first `used`. */
static void free_partial(nesim_ynode *n, size_t used)
{
    for (size_t i = 0; i < used; i++)
        free_node(n->item[i]);
    free(n->item);
    free(n);
}

void nesim_yaml_free(nesim_yaml *y)
{
    if (!y)
        return;
    free_node(y->root);
    free(y->file);
    free(y);
}

const char *nesim_yaml_kind_name(nesim_ynode_kind k)
{
    return k == NESIM_Y_MAP ? "mapping" : k == NESIM_Y_SEQ ? "sequence" : "scalar";
}

static int parser_error(yctx *c)
{
    char what[256];
    nesim_json_ascii_line(c->p.problem ? c->p.problem : "malformed YAML", what, sizeof what);
    if (c->p.error == YAML_MEMORY_ERROR)
        return nesim_fail(c->err, NESIM_ENOMEM, "%s: out of memory", c->file);
    return nesim_fail(c->err, NESIM_EINVAL, "%s:%zu:%zu: %s", c->file, c->p.problem_mark.line + 1,
                      c->p.problem_mark.column + 1, what);
}

static int next(yctx *c, yaml_event_t *ev)
{
    if (!yaml_parser_parse(&c->p, ev))
        return parser_error(c);
    return NESIM_OK;
}

static int push(nesim_ynode *n, size_t *cap, size_t used, nesim_ynode *kid)
{
    nesim_ynode **v = nesim_grown(n->item, used + 1, cap, sizeof *v, 4);
    if (!v)
        return -1;
    n->item = v;
    n->item[used] = kid;
    return 0;
}

static int cmp_key(const void *a, const void *b)
{
    const nesim_ynode *x = *(const nesim_ynode *const *)a, *y = *(const nesim_ynode *const *)b;
    size_t m = x->len < y->len ? x->len : y->len;
    int d = memcmp(x->text, y->text, m);
    if (d)
        return d;
    if (x->len != y->len)
        return x->len < y->len ? -1 : 1;
    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    return (x->col > y->col) - (x->col < y->col);
}

/* A key written twice would shadow the first: an error naming the second. */
static int repeated_key(yctx *c, const nesim_ynode *m)
{
    if (m->n < 2)
        return NESIM_OK;
    const nesim_ynode **k = malloc(m->n * sizeof *k);
    if (!k)
        return nesim_fail(c->err, NESIM_ENOMEM, "%s: out of memory", c->file);
    for (size_t i = 0; i < m->n; i++)
        k[i] = m->item[2 * i];
    qsort(k, m->n, sizeof *k, cmp_key);
    int rc = NESIM_OK;
    for (size_t i = 1; i < m->n && !rc; i++)
        if (k[i]->len == k[i - 1]->len && !memcmp(k[i]->text, k[i - 1]->text, k[i]->len)) {
            char sh[NESIM_JSON_SHOWN];
            rc = nesim_fail(c->err, NESIM_EINVAL, "%s:%d:%d: key '%s' repeats (first at line %d)", c->file,
                            k[i]->line, k[i]->col, nesim_json_show(k[i]->text, sh), k[i - 1]->line);
        }
    free(k);
    return rc;
}

/* Builds the node that starts with event ev (consumed). */
static int node(yctx *c, yaml_event_t *ev, int depth, nesim_ynode **out)
{
    *out = NULL;
    int line = (int)ev->start_mark.line + 1, col = (int)ev->start_mark.column + 1;
    if (ev->type == YAML_ALIAS_EVENT || ((ev->type == YAML_SCALAR_EVENT && ev->data.scalar.anchor) ||
                                         (ev->type == YAML_SEQUENCE_START_EVENT && ev->data.sequence_start.anchor) ||
                                         (ev->type == YAML_MAPPING_START_EVENT && ev->data.mapping_start.anchor))) {
        yaml_event_delete(ev);
        return nesim_fail(c->err, NESIM_EINVAL, "%s:%d:%d: anchors and aliases are not supported", c->file, line, col);
    }
    if (depth > NESIM_YAML_MAX_DEPTH) {
        yaml_event_delete(ev);
        return nesim_fail(c->err, NESIM_EINVAL, "%s:%d:%d: nested deeper than %d levels", c->file, line, col,
                          NESIM_YAML_MAX_DEPTH);
    }
    nesim_ynode *n = calloc(1, sizeof *n);
    if (!n) {
        yaml_event_delete(ev);
        return nesim_fail(c->err, NESIM_ENOMEM, "%s: out of memory", c->file);
    }
    n->line = line, n->col = col;
    if (ev->type == YAML_SCALAR_EVENT) {
        n->kind = NESIM_Y_SCALAR;
        n->len = ev->data.scalar.length;
        n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
        n->text = malloc(n->len + 1);
        if (n->text) {
            memcpy(n->text, ev->data.scalar.value, n->len);
            n->text[n->len] = '\0';
        }
        yaml_event_delete(ev);
        if (!n->text) {
            free_node(n);
            return nesim_fail(c->err, NESIM_ENOMEM, "%s: out of memory", c->file);
        }
        *out = n;
        return NESIM_OK;
    }
    int is_map = ev->type == YAML_MAPPING_START_EVENT;
    if (!is_map && ev->type != YAML_SEQUENCE_START_EVENT) {
        yaml_event_delete(ev);
        free_node(n);
        return nesim_fail(c->err, NESIM_EINVAL, "%s:%d:%d: unexpected YAML event", c->file, line, col);
    }
    yaml_event_delete(ev);
    n->kind = is_map ? NESIM_Y_MAP : NESIM_Y_SEQ;
    size_t cap = 0, used = 0;
    for (;;) {
        yaml_event_t e;
        int rc = next(c, &e);
        if (rc) {
            free_partial(n, used);
            return rc;
        }
        if (e.type == YAML_SEQUENCE_END_EVENT || e.type == YAML_MAPPING_END_EVENT) {
            yaml_event_delete(&e);
            break;
        }
        nesim_ynode *kid;
        if ((rc = node(c, &e, depth + 1, &kid))) {
            free_partial(n, used);
            return rc;
        }
        if (is_map && used % 2 == 0) {
            if (kid->kind != NESIM_Y_SCALAR) {
                rc = nesim_fail(c->err, NESIM_EINVAL, "%s:%d:%d: a mapping key must be a scalar, not a %s", c->file,
                                kid->line, kid->col, nesim_yaml_kind_name(kid->kind));
            }
            if (rc) {
                free_node(kid);
                free_partial(n, used);
                return rc;
            }
        }
        if (push(n, &cap, used, kid)) {
            free_node(kid);
            free_partial(n, used);
            return nesim_fail(c->err, NESIM_ENOMEM, "%s: out of memory", c->file);
        }
        used++;
    }
    n->n = is_map ? used / 2 : used;
    int rc = is_map ? repeated_key(c, n) : NESIM_OK;
    if (rc) {
        free_node(n);
        return rc;
    }
    *out = n;
    return NESIM_OK;
}

int nesim_yaml_parse(const char *text, size_t len, const char *name_for_errors, nesim_yaml **out,
                     nesim_error *err)
{
    *out = NULL;
    yctx c = {.file = name_for_errors ? name_for_errors : "<yaml>", .err = err};
    nesim_yaml *y = calloc(1, sizeof *y);
    if (!y || !(y->file = strdup(c.file))) {
        free(y);
        return nesim_fail(err, NESIM_ENOMEM, "%s: out of memory", c.file);
    }
    if (memchr(text ? text : "", '\0', text ? len : 0)) {
        size_t at = (size_t)((const char *)memchr(text, '\0', len) - text);
        nesim_yaml_free(y);
        return nesim_fail(err, NESIM_EINVAL, "%s: a NUL byte at offset %zu (YAML is text)", c.file, at);
    }
    if (!yaml_parser_initialize(&c.p)) {
        nesim_yaml_free(y);
        return nesim_fail(err, NESIM_ENOMEM, "%s: out of memory", c.file);
    }
    yaml_parser_set_input_string(&c.p, (const unsigned char *)(text ? text : ""), text ? len : 0);
    int rc = NESIM_OK;
    yaml_event_t e;
    /* stream start, then a document start or the stream's end */
    for (;;) {
        if ((rc = next(&c, &e)))
            break;
        yaml_event_type_t t = e.type;
        if (t == YAML_STREAM_START_EVENT || t == YAML_DOCUMENT_START_EVENT) {
            yaml_event_delete(&e);
            continue;
        }
        if (t == YAML_STREAM_END_EVENT || t == YAML_DOCUMENT_END_EVENT) {
            yaml_event_delete(&e);
            break;
        }
        rc = node(&c, &e, 0, &y->root);
        break;
    }
    yaml_parser_delete(&c.p);
    if (rc) {
        nesim_yaml_free(y);
        return rc;
    }
    *out = y;
    return NESIM_OK;
}

int nesim_yaml_load(const char *path, nesim_yaml **out, nesim_error *err)
{
    *out = NULL;
    char *buf;
    size_t n;
    int rc = nesim_json_read_file(path, YAML_MAX_BYTES, "YAML file", "256 MiB", &buf, &n, err);
    if (rc)
        return rc;
    rc = nesim_yaml_parse(buf, n, path, out, err);
    free(buf);
    return rc;
}

const nesim_ynode *nesim_yaml_get(const nesim_ynode *m, const char *key)
{
    if (!m || m->kind != NESIM_Y_MAP)
        return NULL;
    size_t L = strlen(key);
    for (size_t i = 0; i < m->n; i++) {
        const nesim_ynode *k = m->item[2 * i];
        if (k->len == L && !memcmp(k->text, key, L))
            return m->item[2 * i + 1];
    }
    return NULL;
}
