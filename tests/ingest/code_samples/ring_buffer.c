/*
 * ring_buffer.c - a fixed-size byte ring buffer for UART receive paths.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define RING_CAPACITY 256

/* One buffer; head and tail wrap at RING_CAPACITY. */
typedef struct ring_buffer {
    uint8_t data[RING_CAPACITY];
    size_t head;
    size_t tail;
} ring_buffer_t;

enum ring_status {
    RING_OK = 0,
    RING_EMPTY,
    RING_FULL,
};

typedef void (*ring_overflow_cb)(ring_buffer_t *ring, uint8_t dropped);

static ring_overflow_cb overflow_handler = NULL;

/**
 * Reset a buffer to empty.
 */
void ring_init(ring_buffer_t *ring)
{
    memset(ring, 0, sizeof(*ring));
}

// Number of bytes waiting to be read.
static inline size_t ring_count(const ring_buffer_t *ring)
{
    return (ring->head + RING_CAPACITY - ring->tail) % RING_CAPACITY;
}

/* Append one byte; calls the overflow handler when full. */
enum ring_status ring_push(ring_buffer_t *ring, uint8_t byte)
{
    size_t next = (ring->head + 1) % RING_CAPACITY;
    if (next == ring->tail) {
        if (overflow_handler != NULL) {
            overflow_handler(ring, byte);
        }
        return RING_FULL;
    }
    ring->data[ring->head] = byte;
    ring->head = next;
    return RING_OK;
}

enum ring_status ring_pop(ring_buffer_t *ring, uint8_t *out)
{
    if (ring->head == ring->tail) {
        return RING_EMPTY;
    }
    *out = ring->data[ring->tail];
    ring->tail = (ring->tail + 1) % RING_CAPACITY;
    return RING_OK;
}

/* Returns a pointer to the first free slot, or NULL. */
uint8_t *
ring_reserve(ring_buffer_t *ring,
             size_t len)
{
    if (ring_count(ring) + len >= RING_CAPACITY) {
        return NULL;
    }
    return &ring->data[ring->head];
}

void ring_set_overflow_handler(ring_overflow_cb handler)
{
    overflow_handler = handler;
}
