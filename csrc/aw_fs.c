/*
 * aw_fs.c - file-system steps the write algorithm composes: recognising
 * the writer's own version directories, removing a tree without ever
 * following a symlink, the stack of open directories a walk of payload
 * paths keeps, the writer lock and the readers' retry, and the file I/O
 * idioms: whole-buffer write, read, compare, and replacing a file by
 * write-then-rename (and aw_grow, the doubling array every list uses;
 * aw_check_target). Every call works relative to a directory descriptor.
 */
#define _GNU_SOURCE
#include "aw_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
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
      return aw_fail(err, AW_KIND_CONFLICT, step, AW_DATA_NAME, AW_DATA_NAME_LEN,
                     "it is not a symlink the writer created");
    if (errno == EPERM)   /* sshfs: a symlink that points outside the mount */
      return aw_fail(err, AW_KIND_CONFLICT, step, AW_DATA_NAME, AW_DATA_NAME_LEN,
                     "it is a symlink the file system refuses to read (one pointing outside the mount)");
    return aw_fail_sys(err, "read link", AW_DATA_NAME, errno);
  }
  buf[n] = '\0';
  if ((size_t)n >= size - 1 || !aw_is_version_name(buf))
    return aw_fail(err, AW_KIND_CONFLICT, step, AW_DATA_NAME, AW_DATA_NAME_LEN,
                   "it points outside the writer's version directories");
  return 0;
}

/* aw_check_target: the writer's objects and the watcher start with it. */
int aw_check_target(const char *target, aw_error *err)
{
  struct stat st;
  if (stat(target, &st) < 0)
    return aw_fail_sys(err, "open target directory", NULL, errno);
  if (!S_ISDIR(st.st_mode))
    return aw_fail_sys(err, "open target directory", NULL, ENOTDIR);
  return 0;
}

/* ------------------------------------------------------------------ */
/* A stack of open directories (see aw_internal.h)                     */
/* ------------------------------------------------------------------ */

size_t aw_dir_len(const char *path, size_t len)
{
  const char *slash = aw_memrchr(path, '/', len);
  return slash ? (size_t)(slash - path) : 0;
}

int aw_dirs_push(aw_dirstack *s, int fd, const char *path, size_t end, aw_error *err)
{
  aw_dirlevel *v = aw_grow(s->v, s->depth, &s->cap, sizeof *v);
  if (!v) {
    errno = ENOMEM;
    return err ? aw_fail_sys(err, "allocate", NULL, ENOMEM) : -1;
  }
  s->v = v;
  v[s->depth].fd = fd;
  v[s->depth].path = path;
  v[s->depth].end = end;
  s->depth++;
  return 0;
}

int aw_dirs_top(const aw_dirstack *s)
{
  return s->v[s->depth - 1].fd;
}

/* Closes the deepest level, fsync'd first when the stack syncs. */
static void dirs_pop(aw_dirstack *s)
{
  int fd = s->v[--s->depth].fd;
  if (s->sync && aw_sync_file(fd) < 0 && !s->sync_errno)
    s->sync_errno = errno;
  close(fd);
}

void aw_dirs_leave(aw_dirstack *s, const char *path, size_t dlen)
{
  while (s->depth > 1) {
    const aw_dirlevel *top = &s->v[s->depth - 1];
    if (top->end <= dlen && path[top->end] == '/' && memcmp(top->path, path, top->end) == 0)
      break;
    dirs_pop(s);
  }
}

int aw_dirs_next(const aw_dirstack *s, const char *path, size_t dlen, char *name,
                 size_t *end)
{
  size_t start = s->v[s->depth - 1].end, i;

  if (start)
    start++;   /* past the '/' */
  if (!dlen || start > dlen)
    return 0;
  for (i = start; i < dlen && path[i] != '/'; i++)
    ;
  memcpy(name, path + start, i - start);
  name[i - start] = '\0';
  *end = i;
  return 1;
}

int aw_dirs_enter(aw_dirstack *s, const char *path, size_t dlen, char *name)
{
  size_t end;

  aw_dirs_leave(s, path, dlen);
  while (aw_dirs_next(s, path, dlen, name, &end)) {
    int fd = openat(aw_dirs_top(s), name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
      return -1;
    if (aw_dirs_push(s, fd, path, end, NULL) < 0) {
      close(fd);
      errno = ENOMEM;
      return -1;
    }
  }
  return aw_dirs_top(s);
}

void aw_dirs_close(aw_dirstack *s)
{
  while (s->depth > 1)   /* level 0's descriptor is its owner's */
    dirs_pop(s);
  s->depth = 0;
}

void aw_dirs_free(aw_dirstack *s)
{
  aw_dirs_close(s);
  free(s->v);
  s->v = NULL;
  s->cap = 0;
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
      /* EISDIR (Linux) or EPERM (POSIX) is a directory only when the
       * listing did not say: an immutable file's EPERM is its own */
      if (type != DT_DIR && (type != DT_UNKNOWN || (errno != EISDIR && errno != EPERM))) {
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

typedef struct removal {
  level *stack;      /* the directories below the top, on the way down */
  size_t depth, cap;
  int fd;            /* the directory being emptied */
} removal;

/* Down into subdirectory `sub` (malloc'd; the stack owns it from here). */
static int go_down(removal *r, char *sub, aw_error *err)
{
  struct stat st;
  level *grown;
  int child;

  if (fstat(r->fd, &st) < 0) {
    aw_fail_sys(err, "inspect directory to remove", sub, errno);
    free(sub);
    return -1;
  }
  if (!(grown = aw_grow(r->stack, r->depth, &r->cap, sizeof *r->stack))) {
    aw_fail_sys(err, "allocate", sub, ENOMEM);
    free(sub);
    return -1;
  }
  r->stack = grown;
  r->stack[r->depth].name = sub;
  r->stack[r->depth].dev = st.st_dev;
  r->stack[r->depth].ino = st.st_ino;
  r->depth++;
  child = openat(r->fd, sub, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (child < 0)
    return aw_fail_sys(err, "open directory to remove", sub, errno);
  close(r->fd);
  r->fd = child;
  return 0;
}

/* Up again from an emptied directory, and remove it. */
static int go_up(removal *r, aw_error *err)
{
  struct stat st;
  int up = openat(r->fd, "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  level *l = &r->stack[r->depth - 1];

  if (up < 0 || fstat(up, &st) < 0) {
    aw_fail_sys(err, "open parent of directory to remove", l->name, errno);
    if (up >= 0)
      close(up);
    return -1;
  }
  close(r->fd);
  r->fd = up;
  if (st.st_dev != l->dev || st.st_ino != l->ino)
    return aw_fail_sys(err, "remove directory (moved during removal)", l->name, ESTALE);
  if (unlinkat(r->fd, l->name, AT_REMOVEDIR) < 0 && errno != ENOENT)
    return aw_fail_sys(err, "remove directory", l->name, errno);
  free(l->name);
  r->depth--;
  return 0;
}

/* A failure inside the tree names its path from the tree's top (the
 * version directory): `name` and the first `depth` levels go before the
 * path recorded. */
static void name_from_top(aw_error *err, const char *name, const removal *r, size_t depth)
{
  char *p = err->path;
  size_t cap = sizeof err->path - 1, pre = strlen(name) + 1, i, at = 0;

  if (!err->has_path)
    return;
  for (i = 0; i < depth; i++)
    pre += strlen(r->stack[i].name) + 1;
  if (pre + err->path_len > cap)
    return;   /* too long to name whole: the path within as recorded */
  memmove(p + pre, p, err->path_len + 1);
  memcpy(p, name, strlen(name));
  at = strlen(name);
  p[at++] = '/';
  for (i = 0; i < depth; i++) {
    size_t len = strlen(r->stack[i].name);
    memcpy(p + at, r->stack[i].name, len);
    at += len;
    p[at++] = '/';
  }
  err->path_len += pre;
}

/* Empties directory `fd` (name in dirfd, opened and never listed: its
 * offset is the start) and removes it; closes fd. */
static int remove_dir(int dirfd, const char *name, int fd, aw_error *err)
{
  removal r = { NULL, 0, 0, -1 };
  int rc = -1;

  r.fd = fd;
  for (;;) {
    char *sub;
    size_t at = r.depth;
    if (clear_files(r.fd, &sub, err) < 0) {
      name_from_top(err, name, &r, at);
      break;
    }
    if (sub) {
      if (go_down(&r, sub, err) < 0) {
        name_from_top(err, name, &r, at);
        break;
      }
    } else if (r.depth > 0) {
      if (go_up(&r, err) < 0) {
        name_from_top(err, name, &r, at - 1);
        break;
      }
    } else {   /* the top is empty */
      close(r.fd);
      r.fd = -1;
      if (unlinkat(dirfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
        aw_fail_sys(err, "remove directory", name, errno);
      else
        rc = 0;
      break;
    }
  }
  if (r.fd >= 0)
    close(r.fd);
  while (r.depth > 0)
    free(r.stack[--r.depth].name);
  free(r.stack);
  return rc;
}

/* A path aw_remove_known may walk (it comes from a manifest on disk):
 * every element a plain name, no "", ".", "..", no NUL. */
static int plain_path(const char *path, size_t len)
{
  size_t i = 0;

  while (i <= len) {
    const char *slash = memchr(path + i, '/', len - i);
    size_t elen = (slash ? (size_t)(slash - path) : len) - i;
    if (elen == 0 || elen > AW_MAX_ELEMENT || memchr(path + i, '\0', elen) ||
        (path[i] == '.' && (elen == 1 || (elen == 2 && path[i + 1] == '.'))))
      return 0;
    i += elen + 1;
  }
  return 1;
}

/* Closes the levels of `s` that directory path[0..dlen) is not in, as
 * aw_dirs_leave does, and removes each (empty by then, or -1). */
static int leave_removing(aw_dirstack *s, const char *path, size_t dlen, char *elem)
{
  while (s->depth > 1) {
    const aw_dirlevel *top = &s->v[s->depth - 1];
    const char *slash;
    size_t start;
    if (top->end <= dlen && path[top->end] == '/' && memcmp(top->path, path, top->end) == 0)
      break;
    slash = aw_memrchr(top->path, '/', top->end);
    start = slash ? (size_t)(slash - top->path) + 1 : 0;
    memcpy(elem, top->path + start, top->end - start);
    elem[top->end - start] = '\0';
    dirs_pop(s);
    if (unlinkat(aw_dirs_top(s), elem, AT_REMOVEDIR) < 0 && errno != ENOENT)
      return -1;
  }
  return 0;
}

int aw_remove_known(int dirfd, const char *name, int fd, aw_path_at path_at, const void *list,
                    size_t n, char *elem)
{
  aw_dirstack s;
  size_t i;
  int rc = 1;

  memset(&s, 0, sizeof s);
  if (aw_dirs_push(&s, fd, "", 0, NULL) < 0)   /* level 0: the caller's, never closed here */
    return 1;
  for (i = 0; i < n; i++) {
    size_t len, dlen, off;
    const char *path = path_at(list, i, &len);
    if (!path)
      continue;
    dlen = aw_dir_len(path, len);
    off = dlen ? dlen + 1 : 0;
    if (!plain_path(path, len) || leave_removing(&s, path, dlen, elem) < 0 ||
        aw_dirs_enter(&s, path, dlen, elem) < 0)
      goto out;
    memcpy(elem, path + off, len - off);
    elem[len - off] = '\0';
    if (unlinkat(aw_dirs_top(&s), elem, 0) < 0 && errno != ENOENT)
      goto out;
  }
  if (leave_removing(&s, "", 0, elem) == 0 && unlinkat(dirfd, name, AT_REMOVEDIR) == 0) {
    close(fd);
    rc = 0;
  }
out:
  aw_dirs_free(&s);
  return rc;
}

int aw_remove_tree(int dirfd, const char *name, unsigned char type, aw_error *err)
{
  int fd, first_errno = 0;

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
  return remove_dir(dirfd, name, fd, err);
}

int aw_remove_open_dir(int dirfd, const char *name, int fd, aw_error *err)
{
  return remove_dir(dirfd, name, fd, err);
}

/* ------------------------------------------------------------------ */
/* The writer lock, and the readers' retry                             */
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

int aw_reader_lock(int tfd, int attempt, aw_error *err)
{
  if (attempt != AW_LOCK_FREE_ATTEMPTS)
    return 0;
  while (flock(tfd, LOCK_SH) < 0)   /* writers keep winning: wait for one */
    if (errno != EINTR)
      return aw_fail_sys(err, "lock", NULL, errno);
  return 1;
}

/* ------------------------------------------------------------------ */
/* Data                                                                */
/* ------------------------------------------------------------------ */

ssize_t aw_read_full(int fd, char *buf, size_t size)
{
  size_t got = 0;

  while (got < size) {
    ssize_t n = read(fd, buf + got, size - got);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return -1;
    if (n == 0)
      break;
    got += (size_t)n;
  }
  return (ssize_t)got;
}

static int replace_failed(aw_error *err, const char *step, const char *path, int errnum)
{
  return err ? aw_fail_sys(err, step, path, errnum) : -1;
}

int aw_replace_file(int tfd, const char *name, const char *tmp, unsigned mode,
                    const char *buf, size_t len, int sync, aw_error *err)
{
  int attempt, fd = -1, e;

  for (attempt = 0; attempt < 2 && fd < 0; attempt++) {   /* a crashed save's tmp */
    fd = openat(tfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    if (fd < 0 && errno != EEXIST)   /* EROFS, EACCES: name the file, not its tmp */
      return replace_failed(err, "replace", name, errno);
    if (fd < 0 && unlinkat(tfd, tmp, 0) < 0 && errno != ENOENT)
      return replace_failed(err, "remove stale", tmp, errno);
  }
  if (fd < 0)
    return replace_failed(err, "create", tmp, EEXIST);
  if (fchmod(fd, mode) < 0 || aw_write_all(fd, buf, len) < 0 || (sync && aw_sync_file(fd) < 0)) {
    e = errno;
    close(fd);
    unlinkat(tfd, tmp, 0);
    return replace_failed(err, "write", tmp, e);
  }
  if (close(fd) < 0 || renameat(tfd, tmp, tfd, name) < 0) {
    e = errno;
    unlinkat(tfd, tmp, 0);
    return replace_failed(err, "replace", name, e);
  }
  return 0;
}

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
int aw_same_content(int fd, const char *data, size_t size, char *buf, size_t cap)
{
  size_t off = 0;

  while (off < size) {
    size_t want = size - off < cap ? size - off : cap;
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
