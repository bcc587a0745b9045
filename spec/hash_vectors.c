/*
 * hash_vectors.c - digests of the SipHash reference messages (key 00..0f,
 * message 00..len-1, len 0..63), one hex digest per line, for
 * spec/15-hash_spec.lua to compare with the reference vectors:
 *   hash-vectors         aw_siphash128 (SipHash-2-4) for len 0..63
 *   hash-vectors pair    aw_siphash128_pair for the lengths (len, 63 - len),
 *                        len 0..63: the first digest of each pair, then the
 *                        second, so both lists are the vectors again
 *   hash-vectors null    the empty message given as NULL (aw.h allows NULL
 *                        data of size 0): aw_siphash128, then both digests
 *                        of aw_siphash128_pair, three times vector 0
 *   hash-vectors 13 [pair | null]  the same of aw_digest128 and
 *                        aw_digest128_pair (SipHash-1-3)
 */
#include "aw_internal.h"

#include <stdio.h>
#include <string.h>

static void print_hex(const unsigned char d[AW_DIGEST_SIZE])
{
  int i;
  for (i = 0; i < AW_DIGEST_SIZE; i++)
    printf("%02x", d[i]);
  printf("\n");
}

int main(int argc, char **argv)
{
  unsigned char key[AW_KEY_SIZE], msg[64], out[AW_DIGEST_SIZE];
  unsigned char second[64][AW_DIGEST_SIZE];
  int sip13 = argc > 1 && strcmp(argv[1], "13") == 0;
  const char *mode = argc > 1 + sip13 ? argv[1 + sip13] : "";
  int i, len, pair = strcmp(mode, "pair") == 0;
  void (*one)(const unsigned char *, const void *, size_t, unsigned char *) =
    sip13 ? aw_digest128 : aw_siphash128;
  void (*two)(const unsigned char *, const void *, size_t, unsigned char *,
              const void *, size_t, unsigned char *) =
    sip13 ? aw_digest128_pair : aw_siphash128_pair;

  for (i = 0; i < AW_KEY_SIZE; i++)
    key[i] = (unsigned char)i;
  for (i = 0; i < 64; i++)
    msg[i] = (unsigned char)i;
  if (strcmp(mode, "null") == 0) {
    one(key, NULL, 0, out);
    print_hex(out);
    two(key, NULL, 0, out, NULL, 0, second[0]);
    print_hex(out);
    print_hex(second[0]);
    return 0;
  }
  if (!pair && *mode) {
    fprintf(stderr, "usage: hash-vectors [13] [pair | null]\n");
    return 2;
  }
  for (len = 0; len < 64; len++) {
    if (pair)
      two(key, msg, (size_t)len, out, msg, (size_t)(63 - len), second[63 - len]);
    else
      one(key, msg, (size_t)len, out);
    print_hex(out);
  }
  if (pair)
    for (len = 0; len < 64; len++)
      print_hex(second[len]);
  return 0;
}
