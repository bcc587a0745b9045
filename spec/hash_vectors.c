/*
 * hash_vectors.c - prints aw_siphash128 of the SipHash reference messages
 * (key 00..0f, message 00..len-1, len 0..63), one hex digest per line, for
 * spec/15-hash_spec.lua to compare with the reference vectors.
 */
#include "aw_internal.h"

#include <stdio.h>

int main(void)
{
  unsigned char key[AW_KEY_SIZE], msg[64], out[AW_DIGEST_SIZE];
  int i, len;

  for (i = 0; i < AW_KEY_SIZE; i++)
    key[i] = (unsigned char)i;
  for (i = 0; i < 64; i++)
    msg[i] = (unsigned char)i;
  for (len = 0; len < 64; len++) {
    aw_siphash128(key, msg, (size_t)len, out);
    for (i = 0; i < AW_DIGEST_SIZE; i++)
      printf("%02x", out[i]);
    printf("\n");
  }
  return 0;
}
