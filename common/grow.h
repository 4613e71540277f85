/*
 * Growing arrays, the one home for capacity doubling (issue 18): every
 * "cap = cap * 2; realloc(p, cap * size)" in the tree goes through here, so
 * none of them can wrap around size_t and hand back a buffer smaller than
 * the caller then writes.
 */
#ifndef BG_GROW_H
#define BG_GROW_H

#include <stddef.h>

/* Room for at least NEED elements of SIZE bytes in P, an array of *CAP
 * elements (P may be NULL with *CAP 0). The capacity doubles from at least
 * MIN elements until it holds NEED. Returns the (possibly moved) array with
 * *CAP updated, or NULL with errno ENOMEM when the new size overflows size_t
 * or realloc fails: P and *CAP are then untouched and P still owned by the
 * caller. When *CAP >= NEED, returns P without allocating. */
void *bg_grow(void *p, size_t *cap, size_t need, size_t size, size_t min);

#endif
