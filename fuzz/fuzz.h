/*
 * fuzz.h - what the harnesses share: a check that aborts (libFuzzer then
 * saves the input), and the contract's path cleaning written anew, as a
 * reference to hold the core's against.
 */
#ifndef AW_FUZZ_H
#define AW_FUZZ_H

#include "aw_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(cond)                                                          \
  do {                                                                       \
    if (!(cond)) {                                                           \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      abort();                                                               \
    }                                                                        \
  } while (0)

/* Cleans payload path `in` into `out` (room for len + 1 bytes) as the
 * contract says; 0, or -1 when the contract refuses the path. */
static inline int ref_clean(const char *in, size_t len, char *out, size_t *out_len)
{
  size_t i = 0, o = 0;
  if (len == 0 || memchr(in, '\0', len) || in[0] == '/')
    return -1;
  while (i <= len) {   /* element in[start, i) */
    size_t start = i;
    while (i < len && in[i] != '/')
      i++;
    if (i - start == 2 && in[start] == '.' && in[start + 1] == '.')
      return -1;
    if (i - start > 255)
      return -1;
    if (i - start > 0 && !(i - start == 1 && in[start] == '.')) {
      if (o)
        out[o++] = '/';
      memcpy(out + o, in + start, i - start);
      o += i - start;
    }
    i++;
  }
  out[o] = '\0';
  *out_len = o;
  if (o == 0 || o > 4096)
    return -1;
  if (o >= 2 && out[0] == '.' && out[1] == '.')
    return -1;
  return 0;
}

/* Nonzero when a is a directory of b. */
static inline int ref_is_dir_of(const char *a, size_t alen, const char *b, size_t blen)
{
  return blen > alen && b[alen] == '/' && memcmp(a, b, alen) == 0;
}

#endif
