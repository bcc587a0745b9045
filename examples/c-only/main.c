/*
 * main.c - atomicwriter from plain C, with no Lua at all: the core's
 * header (csrc/aw.h, installed as atomicwriter.h) and library
 * (build/libatomicwriter.a, or an installed one through pkg-config).
 *
 * Usage: c-only TARGET [RELEASE]
 * Projects three files, each with its own mode, into the existing
 * directory TARGET and prints "changed" (a new version was published) or
 * "unchanged" (TARGET already held exactly these files). On failure it
 * prints aw_error_format's message and aw_error_code's code on stderr and
 * exits 1; a usage or output error exits 2.
 */
#include "atomicwriter.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROG "c-only"

static const char start_sh[] = "#!/bin/sh\nexec app --config /run/app/app.conf\n";
static const char key_pem[] =
  "-----BEGIN PRIVATE KEY-----\nexample\n-----END PRIVATE KEY-----\n";

int main(int argc, char **argv)
{
  const char *target, *release;
  char conf[256];
  aw_file files[3];
  aw_options opts;
  aw_error err;
  int changed, n;

  if (argc < 2 || argc > 3) {
    fprintf(stderr, "usage: %s TARGET [RELEASE]\n", PROG);
    return 2;
  }
  target = argv[1];
  release = argc > 2 ? argv[2] : "1";

  /* The core never copies: conf must outlive the aw_write call. */
  n = snprintf(conf, sizeof conf, "listen = 8080\nrelease = %s\n", release);
  if (n < 0 || (size_t)n >= sizeof conf) {
    fprintf(stderr, "%s: RELEASE is too long\n", PROG);
    return 2;
  }

  /* uid and gid -1: the files belong to the writer. */
  files[0] = (aw_file){ .path = "app.conf", .path_len = strlen("app.conf"),
                        .data = conf, .size = (size_t)n,
                        .mode = 0644, .uid = -1, .gid = -1 };
  files[1] = (aw_file){ .path = "bin/start.sh", .path_len = strlen("bin/start.sh"),
                        .data = start_sh, .size = sizeof start_sh - 1,
                        .mode = 0755, .uid = -1, .gid = -1 };
  files[2] = (aw_file){ .path = "tls/key.pem", .path_len = strlen("tls/key.pem"),
                        .data = key_pem, .size = sizeof key_pem - 1,
                        .mode = 0400, .uid = -1, .gid = -1 };

  aw_options_init(&opts);   /* sync on, wait for the lock forever */
  if (aw_write(target, files, sizeof files / sizeof files[0], &opts, &changed, &err) != 0) {
    /* A message may be four times as long as its path, escaped: sized for
     * this one, on the heap rather than the stack. */
    size_t size = aw_error_format_size(&err, PROG, target);
    char *msg = malloc(size);
    if (!msg) {
      fprintf(stderr, "%s: %s: code %s\n", PROG, target, aw_error_code(&err));
      return 1;
    }
    fprintf(stderr, "%s\n%s: code %s\n",
            aw_error_format(&err, PROG, target, msg, size), PROG, aw_error_code(&err));
    free(msg);
    return 1;
  }
  if (puts(changed ? "changed" : "unchanged") == EOF || fflush(stdout) != 0) {
    perror(PROG ": stdout");
    return 2;
  }
  return 0;
}
