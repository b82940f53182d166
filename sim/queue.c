/* queue.c — ring of tick buckets + spill heap (see queue.h). */
#include "sim/queue.h"

#include "base/mem.h"

#include <stdlib.h>
#include <string.h>

static uint32_t pow2_at_least(uint32_t n)
{
    uint32_t r = 64;
    while (r < n && r < (1u << 30))
        r <<= 1;
    return r;
}

int nesim_queue_init(nesim_queue *q, uint32_t ring, nesim_error *err)
{
    memset(q, 0, sizeof *q);
    q->ring = pow2_at_least(ring);
    for (int k = 0; k < 2; k++) {
        q->bucket[k] = aligned_alloc(64, q->ring * sizeof(nesim_evvec));
        if (!q->bucket[k])
            goto oom;
        memset(q->bucket[k], 0, q->ring * sizeof(nesim_evvec));
    }
    q->bitmap = calloc(q->ring / 64, sizeof(uint64_t));
    if (!q->bitmap)
        goto oom;
    return NESIM_OK;
oom:
    nesim_queue_free(q);
    return nesim_fail(err, NESIM_ENOMEM, "event queue: out of memory");
}

void nesim_queue_free(nesim_queue *q)
{
    for (int k = 0; k < 2; k++) {
        if (q->bucket[k])
            for (uint32_t b = 0; b < q->ring; b++)
                free(q->bucket[k][b].v);
        free(q->bucket[k]);
        q->bucket[k] = NULL;
    }
    free(q->bitmap);
    free(q->heap);
    free(q->scratch);
    q->bitmap = NULL;
    q->heap = NULL;
    q->scratch = NULL;
    q->cap_scratch = 0;
}

static int vec_push(nesim_evvec *v, nesim_ev e)
{
    if (v->n < NESIM_EV_INLINE) {
        v->in[v->n++] = e;
        return 0;
    }
    if (v->n >= v->cap) {
        if (v->cap >= UINT32_MAX / 2)
            return -1;
        uint32_t cap = v->cap ? v->cap * 2 : 4 * NESIM_EV_INLINE;
        nesim_ev *nv = realloc(v->v, (size_t)cap * sizeof *nv);
        if (!nv)
            return -1;
        v->v = nv;
        v->cap = cap;
    }
    v->v[v->n++] = e;
    return 0;
}

/* The bucket's events as one array (the inline ones moved in front of the
 * overflow when there is one). */
static nesim_ev *vec_events(nesim_evvec *v)
{
    if (v->n <= NESIM_EV_INLINE)
        return v->in;
    memcpy(v->v, v->in, sizeof v->in);
    return v->v;
}

static int far_less(const nesim_ev_far *a, const nesim_ev_far *b)
{
    if (a->t != b->t)
        return a->t < b->t;
    if (a->kind != b->kind)
        return a->kind < b->kind;
    if (a->ev.id != b->ev.id)
        return a->ev.id < b->ev.id;
    return a->ev.aux < b->ev.aux;
}

static int heap_push(nesim_queue *q, nesim_ev_far e)
{
    nesim_ev_far *nh = nesim_grown(q->heap, q->heap_n + 1, &q->heap_cap, sizeof *nh, 256);
    if (!nh)
        return -1;
    q->heap = nh;
    size_t i = q->heap_n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!far_less(&e, &q->heap[p]))
            break;
        q->heap[i] = q->heap[p];
        i = p;
    }
    q->heap[i] = e;
    return 0;
}

static nesim_ev_far heap_pop(nesim_queue *q)
{
    nesim_ev_far top = q->heap[0], last = q->heap[--q->heap_n];
    size_t i = 0, n = q->heap_n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && far_less(&q->heap[c + 1], &q->heap[c]))
            c++;
        if (!far_less(&q->heap[c], &last))
            break;
        q->heap[i] = q->heap[c];
        i = c;
    }
    if (n)
        q->heap[i] = last;
    return top;
}

static int bucket_add(nesim_queue *q, int64_t t, int kind, nesim_ev e)
{
    uint32_t b = (uint32_t)t & (q->ring - 1);
    if (vec_push(&q->bucket[kind][b], e))
        return -1;
    q->bitmap[b >> 6] |= 1ull << (b & 63);
    return 0;
}

int nesim_queue_push(nesim_queue *q, int64_t t, int kind, uint32_t id, uint32_t aux,
                     nesim_error *err)
{
    if (t < q->now)
        return nesim_fail(err, NESIM_EINVAL, "event queue: tick %lld is before now (%lld)",
                          (long long)t, (long long)q->now);
    nesim_ev e = {id, aux};
    int rc = (t - q->now < (int64_t)q->ring)
                 ? bucket_add(q, t, kind, e)
                 : heap_push(q, (nesim_ev_far){t, (uint32_t)kind, e});
    if (rc)
        return nesim_fail(err, NESIM_ENOMEM, "event queue: out of memory");
    q->size++;
    return NESIM_OK;
}

/* Earliest tick held in the ring, or -1. Ring events all lie in
 * [now, now + ring), so the first set bit in circular order from now's bucket
 * is the earliest; a bitmap word covers 64 ticks at once. */
static int64_t ring_scan(const nesim_queue *q)
{
    uint32_t mask = q->ring - 1, words = q->ring / 64;
    uint32_t start = (uint32_t)q->now & mask, w0 = start >> 6;
    for (uint32_t i = 0; i <= words; i++) {
        uint32_t w = (w0 + i) % words;
        uint64_t bits = q->bitmap[w];
        if (i == 0)
            bits &= ~0ull << (start & 63);
        else if (i == words)
            bits &= (start & 63) ? ~(~0ull << (start & 63)) : 0;
        if (bits) {
            uint32_t b = (w << 6) | (uint32_t)__builtin_ctzll(bits);
            return q->now + (int64_t)((b - start) & mask);
        }
    }
    return -1;
}

int64_t nesim_queue_peek_tick(const nesim_queue *q)
{
    int64_t t = ring_scan(q);
    int64_t h = q->heap_n ? q->heap[0].t : INT64_MAX;
    return (t >= 0 && t < h) ? t : h;
}

/* A bucket's order: by id, then aux. */
static inline uint64_t ev_key(nesim_ev e) { return (uint64_t)e.id << 32 | e.aux; }

static int ev_cmp(const void *a, const void *b)
{
    uint64_t x = ev_key(*(const nesim_ev *)a), y = ev_key(*(const nesim_ev *)b);
    return (x > y) - (x < y);
}

/* Sorts a bucket by (id, aux). Mostly it is sorted already, or two sorted
 * runs (several ranks: this rank's events, then the others' in canonical
 * order): those are merged through q's scratch (no comparison calls);
 * anything else goes to qsort. */
static int sort_events(nesim_queue *q, nesim_ev *e, size_t n)
{
    size_t i = 1;
    while (i < n && ev_key(e[i - 1]) <= ev_key(e[i]))
        i++;
    if (i >= n)
        return NESIM_OK;
    size_t j = i + 1;
    while (j < n && ev_key(e[j - 1]) <= ev_key(e[j]))
        j++;
    if (j < n) {
        qsort(e, n, sizeof *e, ev_cmp);
        return NESIM_OK;
    }
    nesim_ev *a = nesim_grown(q->scratch, i, &q->cap_scratch, sizeof *a, 256);
    if (!a)
        return NESIM_ENOMEM;
    q->scratch = a;
    memcpy(a, e, i * sizeof *a); /* the first run; the second stays in place, ahead of the output */
    size_t x = 0, y = i, o = 0;
    while (x < i && y < n)
        e[o++] = ev_key(e[y]) < ev_key(a[x]) ? e[y++] : a[x++];
    while (x < i)
        e[o++] = a[x++];
    return NESIM_OK;
}

int nesim_queue_take(nesim_queue *q, int64_t t, int sort_pred, nesim_ev **deliver,
                     size_t *n_deliver, nesim_ev **predict, size_t *n_predict,
                     nesim_error *err)
{
    /* Slide the window to t: far events now inside it move to their buckets. */
    q->now = t;
    while (q->heap_n && q->heap[0].t < t + (int64_t)q->ring) {
        nesim_ev_far f = heap_pop(q);
        if (bucket_add(q, f.t, (int)f.kind, f.ev))
            return nesim_fail(err, NESIM_ENOMEM, "event queue: out of memory");
    }
    uint32_t b = (uint32_t)t & (q->ring - 1);
    nesim_evvec *d = &q->bucket[NESIM_EV_DELIVER][b], *p = &q->bucket[NESIM_EV_PREDICT][b];
    *deliver = vec_events(d);
    *n_deliver = d->n;
    *predict = vec_events(p);
    *n_predict = p->n;
    if (sort_events(q, *deliver, d->n) || (sort_pred && sort_events(q, *predict, p->n)))
        return nesim_fail(err, NESIM_ENOMEM, "event queue: out of memory");
    return NESIM_OK;
}

void nesim_queue_done(nesim_queue *q)
{
    uint32_t b = (uint32_t)q->now & (q->ring - 1);
    for (int k = 0; k < 2; k++) {
        q->size -= q->bucket[k][b].n;
        q->bucket[k][b].n = 0;
    }
    q->bitmap[b >> 6] &= ~(1ull << (b & 63));
    q->now++;
}

void nesim_queue_advance(nesim_queue *q, int64_t t)
{
    if (t > q->now)
        q->now = t;
}
