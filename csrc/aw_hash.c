/*
 * aw_hash.c - SipHash-2-4 with a 128-bit result (Aumasson and Bernstein,
 * "SipHash: a fast short-input PRF"), written from the paper.
 *
 * The manifest keeps a keyed digest of every small file it vouches for.
 * A keyed PRF, with the key kept in the writer-only manifest, means that
 * whoever chooses payload bytes cannot make two different contents look
 * the same to a no-op check.
 */
#include "aw_internal.h"

#include <string.h>

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))

#define SIPROUND                                                    \
  do {                                                              \
    v0 += v1; v1 = ROTL(v1, 13); v1 ^= v0; v0 = ROTL(v0, 32);       \
    v2 += v3; v3 = ROTL(v3, 16); v3 ^= v2;                          \
    v0 += v3; v3 = ROTL(v3, 21); v3 ^= v0;                          \
    v2 += v1; v1 = ROTL(v1, 17); v1 ^= v2; v2 = ROTL(v2, 32);       \
  } while (0)

static uint64_t load_le64(const unsigned char *p)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  uint64_t x;
  memcpy(&x, p, 8);   /* one load */
  return x;
#else
  return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 |
         (uint64_t)p[3] << 24 | (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 |
         (uint64_t)p[6] << 48 | (uint64_t)p[7] << 56;
#endif
}

static void store_le64(unsigned char *p, uint64_t x)
{
  int i;
  for (i = 0; i < 8; i++)
    p[i] = (unsigned char)(x >> (8 * i));
}

void aw_siphash128(const unsigned char key[AW_KEY_SIZE], const void *data,
                   size_t len, unsigned char out[AW_DIGEST_SIZE])
{
  const unsigned char *m = data;
  uint64_t k0 = load_le64(key), k1 = load_le64(key + 8);
  uint64_t v0 = 0x736f6d6570736575ULL ^ k0, v1 = 0x646f72616e646f6dULL ^ k1;
  uint64_t v2 = 0x6c7967656e657261ULL ^ k0, v3 = 0x7465646279746573ULL ^ k1;
  uint64_t b = (uint64_t)len << 56;
  size_t i, tail = len & 7;

  v1 ^= 0xee;
  for (i = 0; i + 8 <= len; i += 8) {
    uint64_t x = load_le64(m + i);
    v3 ^= x;
    SIPROUND;
    SIPROUND;
    v0 ^= x;
  }
  while (tail--)
    b |= (uint64_t)m[i + tail] << (8 * tail);
  v3 ^= b;
  SIPROUND;
  SIPROUND;
  v0 ^= b;
  v2 ^= 0xee;
  SIPROUND;
  SIPROUND;
  SIPROUND;
  SIPROUND;
  store_le64(out, v0 ^ v1 ^ v2 ^ v3);
  v1 ^= 0xdd;
  SIPROUND;
  SIPROUND;
  SIPROUND;
  SIPROUND;
  store_le64(out + 8, v0 ^ v1 ^ v2 ^ v3);
}
