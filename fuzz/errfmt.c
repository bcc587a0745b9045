/*
 * errfmt.c - libFuzzer harness: aw_error_format into buffers of every size.
 *
 * Input: kind, errno, step, has_path, then the lengths of the prefix, the
 * target and the detail (one byte each), those three strings, and the
 * rest as the error's path (any bytes, NUL included).
 *
 * Checks, for every buffer size from 1 to the full length + 1 (a sample
 * of them for a long message), each buffer allocated to its exact size
 * so that AddressSanitizer sees a byte written past it:
 *   - the message is NUL-terminated within the buffer;
 *   - it is a prefix of the full message;
 *   - it falls short of the room by less than one escape (4 bytes): no
 *     room is held back for an escape a plain byte does not need;
 *   - with exactly the full length + 1, it is the full message, and
 *     aw_error_format_size gives at least that;
 *   - the full message holds no byte a terminal would not print that the
 *     caller did not give in the prefix or the detail (target and path are
 *     escaped; a system failure's detail is its plain words).
 */
#include "fuzz.h"

#include <errno.h>
#include <stdint.h>

static const char *const steps[] = {
  NULL, "invalid payload path", "create file", "swap", "refusing to replace", "",
};

/* No byte a terminal would not print outside the prefix (with its ": ")
 * and the detail: it ends the message of a kind other than system, and a
 * system failure's holds its plain words, before " (CODE)". */
static int printable_outside(const char *full, size_t len, const char *prefix,
                             const aw_error *err)
{
  size_t i, from = prefix[0] ? strlen(prefix) + 2 : 0, skip_from = len, skip_to = len;
  size_t dlen = err->detail ? strlen(err->detail) : 0;
  if (err->kind != AW_KIND_SYSTEM) {
    skip_from = len - dlen;
  } else if (dlen) {
    size_t tail = strlen(aw_error_code(err)) + 3;   /* " (" CODE ")" */
    skip_to = len - tail;
    skip_from = skip_to - dlen;
  }
  for (i = from; i < len; i++) {
    unsigned char c = (unsigned char)full[i];
    if (i >= skip_from && i < skip_to)
      continue;
    if (c < 0x20 || c == 0x7f)
      return 0;
  }
  return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  static char detail[256];
  char prefix[256], target[256], *full;
  aw_error err;
  size_t plen, tlen, dlen, len, cap, n, step;
  int no_detail;

  if (size < 7)
    return 0;
  memset(&err, 0, sizeof err);
  err.kind = (enum aw_kind)(data[0] % 5);
  err.errnum = data[1] == 255 ? 100000 : data[1];   /* 100000: no name, "E100000" */
  err.step = steps[data[2] % (sizeof steps / sizeof steps[0])];
  err.has_path = data[3] & 1;
  no_detail = data[3] & 2;
  plen = data[4];
  tlen = data[5];
  dlen = data[6];
  data += 7;
  size -= 7;
  if (plen + tlen + dlen > size)
    return 0;
  memcpy(prefix, data, plen);
  prefix[plen] = '\0';
  memcpy(target, data + plen, tlen);
  target[tlen] = '\0';
  memcpy(detail, data + plen + tlen, dlen);
  detail[dlen] = '\0';
  err.detail = no_detail ? NULL : detail;   /* NULL reads as "" */
  data += plen + tlen + dlen;
  size -= plen + tlen + dlen;
  err.path_len = size < sizeof err.path ? size : sizeof err.path - 1;
  memcpy(err.path, data, err.path_len);
  err.path[err.path_len] = '\0';
  /* strings cut at a NUL, as C strings are */
  plen = strlen(prefix);
  tlen = strlen(target);

  cap = 64 + 2 * plen + 4 * tlen + 4 * err.path_len + sizeof detail + 256;
  full = malloc(cap);
  CHECK(full);
  aw_error_format(&err, prefix, tlen ? target : NULL, full, cap);
  len = strlen(full);
  CHECK(len + 1 < cap);
  /* the size aw.h promises holds it whole */
  CHECK(len + 1 <= aw_error_format_size(&err, prefix, tlen ? target : NULL));
  CHECK(printable_outside(full, len, prefix, &err));

  step = len > 400 ? len / 97 + 1 : 1;
  for (n = 1; n <= len + 1; n = (n + step > len + 1 && n < len + 1) ? len + 1 : n + step) {
    char *cut = malloc(n);
    size_t clen;
    CHECK(cut);
    memset(cut, 'X', n);
    CHECK(aw_error_format(&err, prefix, tlen ? target : NULL, cut, n) == cut);
    CHECK(memchr(cut, '\0', n) != NULL);
    clen = strlen(cut);
    CHECK(memcmp(cut, full, clen) == 0);
    CHECK(clen + 4 >= n);            /* short of the room by less than an escape */
    if (n == len + 1)
      CHECK(clen == len);
    free(cut);
  }
  /* size 0 writes nothing */
  {
    char none = 'Z';
    aw_error_format(&err, prefix, target, &none, 0);
    CHECK(none == 'Z');
  }
  free(full);
  return 0;
}
