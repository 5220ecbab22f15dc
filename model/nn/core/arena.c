/* arena.c: the per-image arena and tensors carved from it. Chunks are kept across
 * resets, so once the first image has grown the arena, later images of the same size
 * allocate nothing; a larger image adds a chunk. */
#include "../nn.h"

#include <stdlib.h>
#include <string.h>

#define ARENA_ALIGN 64
#define ARENA_MIN_CHUNK ((size_t)16 << 20)

struct nn_chunk {
    nn_chunk *next;
    size_t size, used;
    unsigned char *mem;
};

void nn_arena_init(nn_arena *a) { memset(a, 0, sizeof *a); }

void *nn_arena_alloc(nn_arena *a, size_t bytes, avps_error *err) {
    if (bytes > SIZE_MAX / 2) {
        avps_fail(err, "native engine: a tensor of %zu bytes is too large", bytes);
        return NULL;
    }
    bytes = (bytes + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN;
    /* bump forward only: chunks past the current one are free (reset and rewind see to it) */
    nn_chunk *c = a->current ? a->current : a->chunks, *last = NULL;
    for (; c; last = c, c = c->next)
        if (c->size - c->used >= bytes)
            break;
    if (!c) {
        size_t size = bytes > ARENA_MIN_CHUNK ? bytes : ARENA_MIN_CHUNK;
        void *mem = NULL;
        if (!(c = malloc(sizeof *c)) || posix_memalign(&mem, ARENA_ALIGN, size) != 0) {
            free(c);
            avps_fail(err, "native engine: out of memory (%zu bytes for one tensor)", bytes);
            return NULL;
        }
        *c = (nn_chunk){NULL, size, 0, mem};
        a->mallocs++;
        if (last)
            last->next = c;
        else
            a->chunks = c;
    }
    void *p = c->mem + c->used;
    c->used += bytes;
    a->current = c;
    a->used += bytes;
    if (a->used > a->peak)
        a->peak = a->used;
    return p;
}

void nn_arena_reset(nn_arena *a) {
    for (nn_chunk *c = a->chunks; c; c = c->next)
        c->used = 0;
    a->current = NULL;
    a->used = 0;
}

nn_arena_mark nn_arena_get_mark(const nn_arena *a) {
    return (nn_arena_mark){a->current, a->current ? a->current->used : 0, a->used};
}

void nn_arena_rewind(nn_arena *a, nn_arena_mark m) {
    if (!m.chunk) {
        nn_arena_reset(a);
        return;
    }
    m.chunk->used = m.chunk_used;
    for (nn_chunk *c = m.chunk->next; c; c = c->next)
        c->used = 0;
    a->current = m.chunk;
    a->used = m.used;
}

void nn_arena_release(nn_arena *a) {
    nn_chunk *c = a->chunks;
    while (c) {
        nn_chunk *next = c->next;
        free(c->mem);
        free(c);
        c = next;
    }
    a->chunks = a->current = NULL;
    a->used = 0;
}

int nn_tensor_new(nn_arena *a, nn_device dev, int n, int c, int h, int w, nn_tensor *t, avps_error *err) {
    if (n < 0 || c < 0 || h < 0 || w < 0)
        return avps_fail(err, "native engine: negative tensor shape");
    size_t count = (size_t)n * (size_t)c;
    if ((c && count / (size_t)c != (size_t)n) || (h && count * (size_t)h / (size_t)h != count))
        return avps_fail(err, "native engine: tensor shape overflows");
    count *= (size_t)h;
    if (w && count * (size_t)w / (size_t)w != count)
        return avps_fail(err, "native engine: tensor shape overflows");
    count *= (size_t)w;
    if (count > SIZE_MAX / sizeof(float))
        return avps_fail(err, "native engine: tensor shape overflows");
    float *data = nn_arena_alloc(a, count ? count * sizeof(float) : 1, err);
    if (!data)
        return -1;
    *t = (nn_tensor){data, n, c, h, w, dev};
    return 0;
}

int nn_tensor_keep(nn_arena *a, nn_arena_mark m, nn_tensor *t, avps_error *err) {
    nn_tensor moved;
    nn_arena_rewind(a, m);
    if (nn_tensor_new(a, t->device, t->n, t->c, t->h, t->w, &moved, err) != 0)
        return -1;
    if (moved.data != t->data)
        memmove(moved.data, t->data, nn_numel(t) * sizeof(float));
    *t = moved;
    return 0;
}
