/*
 * error_format.c - aw_error_format into buffers of every size, for
 * spec/16-hardening_spec.lua:
 *   error-format PATH [PREFIX]   the message of aw_validate refusing PATH
 *                                (target "t"), one line per buffer size
 *                                from 1 to the full length + 1, then a
 *                                line "full <message>"
 *   error-format --enoent DIR    the same for aw_write on a missing DIR
 * The spec checks that each cut message is a prefix of the full one.
 */
#include "aw.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
  aw_error err;
  aw_file f;
  char *full, *cut;
  const char *target = "t", *prefix = NULL;
  size_t size, len;

  if (argc < 2)
    return 2;
  memset(&f, 0, sizeof f);
  f.uid = f.gid = -1;
  f.mode = 0644;
  if (strcmp(argv[1], "--enoent") == 0 && argc > 2) {
    target = argv[2];
    if (aw_write(target, NULL, 0, NULL, NULL, &err) == 0)
      return 1;
  } else {
    f.path = argv[1];
    f.path_len = strlen(argv[1]);
    prefix = argc > 2 ? argv[2] : NULL;
    if (aw_validate(&f, 1, &err) == 0)
      return 1;   /* the spec passes only refused paths */
  }
  full = malloc(1 << 16);
  cut = malloc(1 << 16);
  if (!full || !cut)
    return 1;
  aw_error_format(&err, prefix, target, full, 1 << 16);
  len = strlen(full);
  for (size = 1; size <= len + 1; size++) {
    memset(cut, 'X', size);
    aw_error_format(&err, prefix, target, cut, size);
    if (memchr(cut, '\0', size) == NULL)
      return 3;   /* not terminated within the buffer */
    printf("%s\n", cut);
  }
  printf("full %s\n", full);
  free(full);
  free(cut);
  return 0;
}
