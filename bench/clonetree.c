/*
 * clonetree.c - the floor of a reflinked tree copy (bench/trees.lua, T1r).
 *
 *   clonetree SRC DST [sync]
 *
 * Makes DST (a new directory) and, for every entry below SRC, only the
 * calls a copy by reflinks cannot avoid: mkdirat + open for a directory;
 * for a regular file openat(source), openat(DST's, O_CREAT|O_EXCL),
 * ioctl(FICLONE), close, close. No stat, no mode beyond the create's 0644,
 * no times, no owners, no checks; `sync`: a syncfs at the end. Other
 * entries are skipped. Linux only (FICLONE). Exits 1 on any failure.
 */
#define _GNU_SOURCE
#include <stdio.h>
#ifndef __linux__
int main(void)
{
  fprintf(stderr, "clonetree: Linux only (FICLONE, syncfs)\n");
  return 1;
}
#else
#include <dirent.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>
#ifndef FICLONE
#define FICLONE _IOW(0x94, 9, int)
#endif

static int fail(const char *what, const char *name)
{
  perror(name);
  fprintf(stderr, "clonetree: %s failed\n", what);
  return -1;
}

/* Copies directory `sfd` into `dfd` (both closed here); depth-first by
 * recursion: the bench's trees are two levels deep. */
static int tree(int sfd, int dfd)
{
  DIR *d = fdopendir(sfd);
  struct dirent *de;
  int rc = 0;

  if (!d) {
    close(sfd);
    close(dfd);
    return fail("fdopendir", "source");
  }
  while (rc == 0 && (de = readdir(d))) {
    const char *n = de->d_name;
    if (n[0] == '.' && (!n[1] || (n[1] == '.' && !n[2])))
      continue;
    if (de->d_type == DT_DIR) {
      int s, t;
      if (mkdirat(dfd, n, 0755) < 0)
        return fail("mkdirat", n);
      s = openat(dirfd(d), n, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      t = openat(dfd, n, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (s < 0 || t < 0)
        rc = fail("open directory", n);
      else
        rc = tree(s, t);
    } else if (de->d_type == DT_REG) {
      int s = openat(dirfd(d), n, O_RDONLY | O_CLOEXEC);
      int t = openat(dfd, n, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
      if (s < 0 || t < 0 || ioctl(t, FICLONE, s) < 0)
        rc = fail("open or FICLONE", n);
      if ((s >= 0 && close(s) < 0) || (t >= 0 && close(t) < 0))
        rc = fail("close", n);
    }
  }
  closedir(d);
  close(dfd);
  return rc;
}

int main(int argc, char **argv)
{
  int s, t, keep;

  if (argc < 3 || argc > 4 || (argc == 4 && strcmp(argv[3], "sync") != 0)) {
    fprintf(stderr, "usage: clonetree SRC DST [sync]\n");
    return 2;
  }
  if ((s = open(argv[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
    return fail("open", argv[1]), 1;
  if (mkdir(argv[2], 0755) < 0 || (t = open(argv[2], O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
    return fail("mkdir", argv[2]), 1;
  if ((keep = dup(t)) < 0)
    return fail("dup", argv[2]), 1;
  if (tree(s, t) < 0)
    return 1;
  if (argc == 4 && syncfs(keep) < 0)
    return fail("syncfs", argv[2]), 1;
  return close(keep) < 0 ? 1 : 0;
}
#endif
