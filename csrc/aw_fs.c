/*
 * aw_fs.c - file-system steps the write algorithm composes: recognising
 * the writer's own version directories, removing a tree without ever
 * following a symlink, the writer lock, and whole-buffer write / compare
 * (and aw_grow, the doubling array every list uses). Every call works
 * relative to a directory descriptor.
 */
#define _GNU_SOURCE
#include "aw_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------ */
/* Names                                                               */
/* ------------------------------------------------------------------ */

/* "..YYYY_MM_DD_HH_MM_SS." followed by one or more [0-9A-Za-z]: ours, and
 * the kubelet's, whose suffix is random rather than nanoseconds. */
int aw_is_version_name(const char *name)
{
  static const char shape[] = "..dddd_dd_dd_dd_dd_dd.";
  size_t i;

  for (i = 0; shape[i]; i++) {
    char c = name[i];
    if (shape[i] == 'd' ? (c < '0' || c > '9') : c != shape[i])
      return 0;
  }
  if (!name[i])
    return 0;
  for (; name[i]; i++) {
    char c = name[i];
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')))
      return 0;
  }
  return 1;
}

/* The version ..data names into buf (size >= 2); 0 with buf "" when there
 * is no ..data. A ..data that is not a symlink to a version name is not
 * the writer's: AW_KIND_CONFLICT, reported under `step`. */
int aw_read_data_link(int tfd, char *buf, size_t size, const char *step, aw_error *err)
{
  ssize_t n = readlinkat(tfd, AW_DATA_NAME, buf, size - 1);
  if (n < 0) {
    buf[0] = '\0';
    if (errno == ENOENT)
      return 0;
    if (errno == EINVAL)
      return aw_fail(err, AW_KIND_CONFLICT, step, AW_DATA_NAME, 6,
                     "it is not a symlink the writer created");
    return aw_fail_sys(err, "read link", AW_DATA_NAME, errno);
  }
  buf[n] = '\0';
  if ((size_t)n >= size - 1 || !aw_is_version_name(buf))
    return aw_fail(err, AW_KIND_CONFLICT, step, AW_DATA_NAME, 6,
                   "it points outside the writer's version directories");
  return 0;
}

/* ------------------------------------------------------------------ */
/* Removing a tree                                                     */
/* ------------------------------------------------------------------ */

/* A tree is removed depth first with one descriptor open at a time, so
 * any depth a payload may have (2048 levels in 4096 bytes) fits within the
 * process's descriptor limit. Going back up opens ".." and checks it is the
 * directory it came down from. Nothing is ever followed: subdirectories are
 * opened with O_NOFOLLOW, and a symlink inside is removed as a name. */
typedef struct level {
  char *name;        /* this directory's name in its parent */
  dev_t dev;         /* the parent's identity, checked on the way up */
  ino_t ino;
} level;

/* Removes every entry of `fd` but directories; sets *sub to the name of
 * the first subdirectory met (malloc'd), or NULL when none is left. Where
 * unlinking during a listing can make readdir skip entries, the listing
 * runs again until a pass removes nothing (bounded: a directory someone
 * keeps filling then fails to go with ENOTEMPTY). */
static int clear_files(int fd, char **sub, aw_error *err)
{
  aw_dir dir;
  const char *name;
  unsigned char type;
  int r, rc = 0, pass = 0;
  size_t removed;

  *sub = NULL;
  if (aw_dir_open(&dir, fd) < 0)
    return aw_fail_sys(err, "read directory to remove", NULL, errno);
  do {
    removed = 0;
    if (pass > 0 && aw_dir_rewind(&dir) < 0) {
      r = -1;
      break;
    }
    while ((r = aw_dir_next(&dir, &name, &type)) > 0) {
      if (type != DT_DIR && (unlinkat(fd, name, 0) == 0 || errno == ENOENT)) {
        removed++;
        continue;
      }
      if (type != DT_DIR && errno != EISDIR && errno != EPERM) {
        rc = aw_fail_sys(err, "remove", name, errno);
        break;
      }
      if (!(*sub = strdup(name)))
        rc = aw_fail_sys(err, "allocate", name, ENOMEM);
      break;
    }
  } while (AW_DIR_RELIST_AFTER_UNLINK && r == 0 && removed > 0 && ++pass < 64);
  if (r < 0)
    rc = aw_fail_sys(err, "read directory to remove", NULL, errno);
  aw_dir_close(&dir);
  return rc;
}

int aw_remove_tree(int dirfd, const char *name, unsigned char type, aw_error *err)
{
  level *stack = NULL;
  size_t depth = 0, cap = 0;
  int fd, rc = -1, first_errno = 0;

  if (type != DT_DIR) {
    if (unlinkat(dirfd, name, 0) == 0 || errno == ENOENT)
      return 0;
    if (errno != EISDIR && errno != EPERM)   /* Linux says EISDIR, POSIX EPERM */
      return aw_fail_sys(err, "remove", name, errno);
    first_errno = errno;
  }
  fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT)
      return 0;
    /* Not a directory after all: the unlink's own failure is the reason. */
    return aw_fail_sys(err, "remove", name,
                       errno == ENOTDIR && first_errno ? first_errno : errno);
  }
  for (;;) {
    char *sub;
    struct stat st;
    if (clear_files(fd, &sub, err) < 0)
      break;
    if (sub) {   /* down into the first subdirectory */
      level *grown;
      int child;
      if (fstat(fd, &st) < 0) {
        aw_fail_sys(err, "inspect directory to remove", sub, errno);
        free(sub);
        break;
      }
      if (!(grown = aw_grow(stack, depth, &cap, sizeof *stack))) {
        aw_fail_sys(err, "allocate", sub, ENOMEM);
        free(sub);
        break;
      }
      stack = grown;
      stack[depth].name = sub;
      stack[depth].dev = st.st_dev;
      stack[depth].ino = st.st_ino;
      depth++;
      child = openat(fd, sub, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (child < 0) {
        aw_fail_sys(err, "open directory to remove", sub, errno);
        break;
      }
      close(fd);
      fd = child;
      continue;
    }
    if (depth == 0) {   /* the top is empty */
      close(fd);
      fd = -1;
      if (unlinkat(dirfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
        aw_fail_sys(err, "remove directory", name, errno);
      else
        rc = 0;
      break;
    }
    {   /* up again, and remove the emptied directory */
      int up = openat(fd, "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      level *l = &stack[depth - 1];
      if (up < 0 || fstat(up, &st) < 0) {
        aw_fail_sys(err, "open parent of directory to remove", l->name, errno);
        if (up >= 0)
          close(up);
        break;
      }
      close(fd);
      fd = up;
      if (st.st_dev != l->dev || st.st_ino != l->ino) {
        aw_fail_sys(err, "remove directory (moved during removal)", l->name, ESTALE);
        break;
      }
      if (unlinkat(fd, l->name, AT_REMOVEDIR) < 0 && errno != ENOENT) {
        aw_fail_sys(err, "remove directory", l->name, errno);
        break;
      }
      free(l->name);
      depth--;
    }
  }
  if (fd >= 0)
    close(fd);
  while (depth > 0)
    free(stack[--depth].name);
  free(stack);
  return rc;
}

/* ------------------------------------------------------------------ */
/* The writer lock                                                     */
/* ------------------------------------------------------------------ */

/* An advisory flock on the target directory itself: no lock file to leave
 * behind, released by the kernel when a writer dies. */
int aw_lock(int fd, long timeout_ms, aw_error *err)
{
  struct timespec start, now, nap;
  long waited, step_ms = 1;

  if (timeout_ms < 0) {
    while (flock(fd, LOCK_EX) < 0)
      if (errno != EINTR)
        return aw_fail_sys(err, "lock", NULL, errno);
    return 0;
  }
  clock_gettime(CLOCK_MONOTONIC, &start);
  for (;;) {
    if (flock(fd, LOCK_EX | LOCK_NB) == 0)
      return 0;
    if (errno != EWOULDBLOCK && errno != EINTR)
      return aw_fail_sys(err, "lock", NULL, errno);
    clock_gettime(CLOCK_MONOTONIC, &now);
    waited = (now.tv_sec - start.tv_sec) * 1000L +
             (now.tv_nsec - start.tv_nsec) / 1000000L;
    if (waited >= timeout_ms)
      return aw_fail(err, AW_KIND_BUSY, "lock", NULL, 0,
                     "another writer holds the target's lock");
    /* Back off from 1 ms to 32 ms, never past the deadline. */
    if (step_ms > timeout_ms - waited)
      step_ms = timeout_ms - waited;
    nap.tv_sec = step_ms / 1000;
    nap.tv_nsec = (step_ms % 1000) * 1000000L;
    nanosleep(&nap, NULL);
    if (step_ms < 32)
      step_ms *= 2;
  }
}

/* ------------------------------------------------------------------ */
/* Data                                                                */
/* ------------------------------------------------------------------ */

int aw_write_all(int fd, const char *data, size_t size)
{
  while (size > 0) {
    ssize_t n = write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return -1;
    }
    data += n;
    size -= (size_t)n;
  }
  return 0;
}

/* Reads `size` bytes, no more: the caller took the size from fstat on
 * this descriptor, so a read to end of file would cost one call per file
 * and say nothing new. */
int aw_same_content(int fd, const char *data, size_t size)
{
  char buf[65536];
  size_t off = 0;

  while (off < size) {
    size_t want = size - off < sizeof buf ? size - off : sizeof buf;
    ssize_t n = read(fd, buf, want);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return -1;
    }
    if (n == 0 || memcmp(buf, data + off, (size_t)n) != 0)
      return 0;
    off += (size_t)n;
  }
  return 1;
}

/* ------------------------------------------------------------------ */
/* Growing arrays                                                      */
/* ------------------------------------------------------------------ */

/* Not a file-system step, but shared by every file that builds a list. */
void *aw_grow(void *v, size_t n, size_t *cap, size_t size)
{
  size_t c;
  void *p;

  if (n < *cap)
    return v;
  c = *cap ? *cap * 2 : 16;
  if (c > SIZE_MAX / size || !(p = realloc(v, c * size)))
    return NULL;
  *cap = c;
  return p;
}
