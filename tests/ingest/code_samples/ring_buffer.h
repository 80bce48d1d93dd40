/*
 * ring_buffer.h - public interface of the UART ring buffer.
 */
#ifndef RING_BUFFER_H
#define RING_BUFFER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RING_CAPACITY 256

/* Smallest of two sizes (arguments are evaluated twice). */
#define RING_MIN(a, b) ((a) < (b) ? (a) : (b))

struct ring_buffer;
typedef struct ring_buffer ring_buffer_t;

/** Called with the byte that did not fit. */
typedef void (*ring_overflow_cb)(ring_buffer_t *ring, uint8_t dropped);

/** Result of a push or a pop. */
enum ring_status {
    RING_OK = 0,
    RING_EMPTY,
    RING_FULL,
};

/**
 * Reset a buffer to empty.
 */
void ring_init(ring_buffer_t *ring);

/* Append one byte; calls the overflow handler when full. */
enum ring_status ring_push(ring_buffer_t *ring,
                           uint8_t byte);

enum ring_status ring_pop(ring_buffer_t *ring, uint8_t *out);

/* Returns a pointer to the first free slot, or NULL. */
uint8_t *ring_reserve(ring_buffer_t *ring, size_t len);

extern void (*ring_default_handler)(ring_buffer_t *ring, uint8_t dropped);

#ifdef __cplusplus
}
#endif

#endif /* RING_BUFFER_H */
