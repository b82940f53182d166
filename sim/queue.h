/* queue.h — the event queue of the discrete-event core.
 *
 * Virtual time is int64 ticks. Near events (less than `ring` ticks ahead of the
 * current tick) live in a ring of per-tick buckets: O(1) insert, and the next
 * non-empty tick is found through a bitmap, so silent ticks cost nothing. Far
 * events wait in a binary min-heap (the spill heap) and migrate into the ring
 * as the window slides over them, once each.
 *
 * Two kinds of event, each 8 bytes in a bucket (the tick is the bucket):
 *   NESIM_EV_DELIVER  id = global source neuron, aux = projection
 *   NESIM_EV_PREDICT  id = global neuron,        aux = generation
 * Canonical order of one tick: all DELIVER events by (id, aux), then all
 * PREDICT events by (id, aux). nesim_queue_take() sorts deliveries always and
 * predictions on request (the engine treats predictions order-independently,
 * so it skips that sort). Cancellation is by generation: the owner bumps its
 * generation and ignores events whose aux no longer matches. */
#ifndef NESIM_QUEUE_H
#define NESIM_QUEUE_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

enum { NESIM_EV_DELIVER = 0, NESIM_EV_PREDICT = 1 };

typedef struct nesim_ev {
    uint32_t id;
    uint32_t aux;
} nesim_ev;

typedef struct nesim_ev_far {
    int64_t t;
    uint32_t kind;
    nesim_ev ev;
} nesim_ev_far;

/* One bucket, one cache line: the first NESIM_EV_INLINE events live in the
 * bucket itself, so a sparse tick costs a single line per insert; more go to
 * v[NESIM_EV_INLINE...] (v keeps its first NESIM_EV_INLINE slots free, to
 * take the inline ones when the tick is taken, contiguous). */
enum { NESIM_EV_INLINE = 6 };
typedef struct nesim_evvec {
    nesim_ev *v;    /* overflow storage (kept for reuse), or NULL */
    uint32_t n;     /* events held */
    uint32_t cap;   /* slots of v, inline ones included */
    nesim_ev in[NESIM_EV_INLINE];
} nesim_evvec;

typedef struct nesim_queue {
    int64_t now;              /* events before now have all been taken */
    uint32_t ring;            /* buckets, a power of two */
    nesim_evvec *bucket[2];   /* [kind][ring] */
    uint64_t *bitmap;         /* bit b set: bucket b holds an event */
    nesim_ev_far *heap;       /* spill heap ordered by (t, kind, id, aux) */
    size_t heap_n, heap_cap;
    size_t size;              /* events held, ring + heap */
    nesim_ev *scratch;        /* take's merge of two sorted runs */
    size_t cap_scratch;
} nesim_queue;

/* Creates an empty queue at tick 0 with `ring` buckets (rounded up to a power
 * of two, at least 64). Returns NESIM_OK or NESIM_ENOMEM. */
int nesim_queue_init(nesim_queue *q, uint32_t ring, nesim_error *err);
void nesim_queue_free(nesim_queue *q);

/* Inserts an event at tick t >= q->now. Returns NESIM_OK, NESIM_ENOMEM, or
 * NESIM_EINVAL when t is in the past. */
int nesim_queue_push(nesim_queue *q, int64_t t, int kind, uint32_t id, uint32_t aux,
                     nesim_error *err);

/* nesim_queue_push with the common case inline: a tick inside the ring
 * whose bucket has room. */
static inline int nesim_queue_add(nesim_queue *q, int64_t t, int kind, uint32_t id, uint32_t aux,
                                  nesim_error *err)
{
    if ((uint64_t)(t - q->now) < q->ring) {
        uint32_t b = (uint32_t)t & (q->ring - 1);
        nesim_evvec *v = &q->bucket[kind][b];
        if (v->n < NESIM_EV_INLINE || v->n < v->cap) {
            (v->n < NESIM_EV_INLINE ? v->in : v->v)[v->n] = (nesim_ev){id, aux};
            v->n++;
            q->bitmap[b >> 6] |= 1ull << (b & 63);
            q->size++;
            return NESIM_OK;
        }
    }
    return nesim_queue_push(q, t, kind, id, aux, err);
}

/* Asks the cache for the bucket an event of `kind` at tick t would join
 * (a hint: nothing changes; far ticks are ignored). */
static inline void nesim_queue_prefetch(const nesim_queue *q, int64_t t, int kind)
{
    if ((uint64_t)(t - q->now) < q->ring)
        __builtin_prefetch(&q->bucket[kind][(uint32_t)t & (q->ring - 1)], 1);
}

/* The earliest tick holding an event, or INT64_MAX when empty. Does not move time. */
int64_t nesim_queue_peek_tick(const nesim_queue *q);

/* Moves the queue to tick t (which must be <= peek_tick) and exposes that tick's
 * events: deliveries sorted canonically; predictions sorted when sort_pred.
 * The arrays stay valid until nesim_queue_done(); pushing to tick t meanwhile
 * is not allowed. Returns NESIM_OK or NESIM_ENOMEM (heap migration). */
int nesim_queue_take(nesim_queue *q, int64_t t, int sort_pred, nesim_ev **deliver,
                     size_t *n_deliver, nesim_ev **predict, size_t *n_predict,
                     nesim_error *err);

/* Releases the events of the tick taken last; time moves to t + 1. */
void nesim_queue_done(nesim_queue *q);

/* Moves the clock forward to tick t over ticks that hold no event (the
 * silent tail of a run): t <= nesim_queue_peek_tick(q). A t before now is
 * ignored. */
void nesim_queue_advance(nesim_queue *q, int64_t t);

#endif
