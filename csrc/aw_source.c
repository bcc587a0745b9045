/*
 * aw_source.c - payload files whose bytes come from a source file
 * (aw_publish_sources) instead of memory.
 *
 * The source is looked at once under the writer's lock (a stat: its
 * identity, size and mode; relative to its directory, kept open while the
 * sources that follow share it), then, only when its bytes are needed,
 * opened once: the bytes are copied (or compared) through the descriptor,
 * and fstat on it after the copy must show the identity the stat took. A
 * source changed in between fails the write (AW_KIND_CHANGED, "changed")
 * before anything is published. The copy happens inside the
 * kernel where it can: FICLONE (a reflink: the new file shares the
 * source's extents), then copy_file_range, then a read/write loop through
 * a buffer of at most LOOP_BUF bytes (the only way in the portable build).
 * Memory never grows with a file's size.
 */
#define _GNU_SOURCE
#include "aw_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#if AW_USE_FICLONE
#include <sys/ioctl.h>
/* <linux/fs.h>'s value, written out: musl's toolchains ship no kernel
 * headers, and the request number is part of the kernel's ABI. */
#ifndef FICLONE
#define FICLONE _IOW(0x94, 9, int)
#endif
#endif

#define COPY_CHUNK ((uint64_t)16 << 20)   /* a copy reports progress this often */
#define LOOP_BUF ((size_t)128 << 10)

/* ------------------------------------------------------------------ */
/* Progress                                                            */
/* ------------------------------------------------------------------ */

void aw_progress_bytes(aw_progress_state *p, unsigned long long bytes)
{
  p->partial += bytes;
  p->bytes += bytes;
  if (p->fn)
    p->fn(p->ctx, p->files, p->bytes);
}

void aw_progress_file(aw_progress_state *p, unsigned long long size)
{
  p->files++;
  p->bytes += size > p->partial ? size - p->partial : 0;
  p->partial = 0;
  if (p->fn)
    p->fn(p->ctx, p->files, p->bytes);
}

/* ------------------------------------------------------------------ */
/* Errors that name the payload path and the source                    */
/* ------------------------------------------------------------------ */

static int source_fail(aw_error *err, const aw_entry *e, const char *step, int errnum)
{
  aw_fail_sys_len(err, step, e->path, e->len, errnum);
  aw_fail_source(err, e->source);
  return -1;
}

static int source_refuse(aw_error *err, const aw_entry *e, enum aw_kind kind,
                         const char *step, const char *why)
{
  aw_fail(err, kind, step, e->path, e->len, why);
  aw_fail_source(err, e->source);
  return -1;
}

static int changed(aw_error *err, const aw_entry *e)
{
  return source_refuse(err, e, AW_KIND_CHANGED, "copy",
                       "the source changed during the write (its size, mtime or inode moved)");
}

/* ------------------------------------------------------------------ */
/* Looking, opening                                                    */
/* ------------------------------------------------------------------ */

int aw_source_stat(aw_entry *e, int dfd, const char *name, aw_error *err)
{
  struct stat st;

  if (fstatat(dfd, name, &st, 0) < 0)
    return source_fail(err, e, "inspect source of", errno);
  if (S_ISDIR(st.st_mode))
    return source_refuse(err, e, AW_KIND_INVALID, "invalid source for",
                         "the source is a directory, not a file");
  if (!S_ISREG(st.st_mode))
    return source_refuse(err, e, AW_KIND_INVALID, "invalid source for",
                         "the source is not a regular file (a device, FIFO or socket)");
  aw_ident_from(&e->src, &st);
  e->size = (uint64_t)st.st_size;
  if (e->file->mode == AW_MODE_SOURCE)
    e->mode = (unsigned)(st.st_mode & 0777);
  return 0;
}

/* The length of the directory part of `source` ("a/b" of "a/b/c", "/" of
 * "/c"): 0 when it has none, or names no file after it ("c", "a/"). */
static size_t dir_part(const char *source, const char **name)
{
  const char *slash = strrchr(source, '/');
  if (!slash || !slash[1])
    return 0;
  *name = slash + 1;
  return slash == source ? 1 : (size_t)(slash - source);
}

void aw_source_dirs_init(aw_source_dirs *d)
{
  d->fd = -1;
  d->path = NULL;
  d->len = 0;
}

void aw_source_dirs_close(aw_source_dirs *d)
{
  if (d->fd >= 0)
    close(d->fd);
  aw_source_dirs_init(d);
}

/* Where to stat e's source from: a descriptor of its directory, kept open
 * while the sources that follow share it (`next`, the next entry's source
 * or NULL, tells), and the name in it; else AT_FDCWD and the whole path.
 * A directory that cannot be opened is looked through by path, as before,
 * so a failure reads as the stat of the whole path would report it. */
static int source_dir(aw_source_dirs *d, const aw_entry *e, const char *next, char *rel,
                      size_t rel_size, const char **name)
{
  const char *nname;
  size_t len = dir_part(e->source, name);

  if (len == 0 || len >= rel_size) {
    *name = e->source;
    return AT_FDCWD;
  }
  if (d->path && d->len == len && memcmp(d->path, e->source, len) == 0) {
    if (d->fd >= 0)
      return d->fd;
  } else {
    aw_source_dirs_close(d);
    /* a directory opened for one source only would cost two calls more */
    if (!next || dir_part(next, &nname) != len || memcmp(next, e->source, len) != 0) {
      *name = e->source;
      return AT_FDCWD;
    }
    memcpy(rel, e->source, len);
    rel[len] = '\0';
    d->fd = openat(AT_FDCWD, rel, AW_O_LOOK | O_DIRECTORY | O_CLOEXEC);
    d->path = e->source;
    d->len = len;
    if (d->fd >= 0)
      return d->fd;
  }
  *name = e->source;
  return AT_FDCWD;
}

int aw_source_stat_in(aw_source_dirs *d, aw_entry *e, const char *next, char *rel,
                      size_t rel_size, aw_error *err)
{
  const char *name;
  int dfd = source_dir(d, e, next, rel, rel_size, &name);
  return aw_source_stat(e, dfd, name, err);
}

/* Opens e's source (never blocking, never a controlling terminal). Its
 * identity is not checked here: the check after the copy or comparison
 * (still_same) compares the descriptor with the identity aw_source_stat
 * took, so a change or a replacement since then fails the write there
 * all the same, and an fstat before the copy would add a call per file
 * and catch nothing more. */
static int open_source(const aw_entry *e, aw_error *err)
{
  int fd = openat(AT_FDCWD, e->source, O_RDONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);

  if (fd < 0)
    return errno == ENOENT ? changed(err, e) : source_fail(err, e, "open source of", errno);
  return fd;
}

/* 0 when the open source still shows its identity, else -1 (err filled). */
static int still_same(int fd, const aw_entry *e, aw_error *err)
{
  struct stat st;
  if (fstat(fd, &st) < 0)
    return source_fail(err, e, "inspect source of", errno);
  return aw_ident_matches(&e->src, &st) ? 0 : changed(err, e);
}

/* ------------------------------------------------------------------ */
/* Copying                                                             */
/* ------------------------------------------------------------------ */

/* The read/write loop from offset `off` (what the kernel copied before). */
static int copy_loop(int in, int out, const aw_entry *e, uint64_t off, aw_progress_state *p,
                     aw_error *err)
{
  size_t cap = e->size - off < LOOP_BUF ? (size_t)(e->size - off) : LOOP_BUF;
  uint64_t told = off;
  char *buf;
  int rc = 0;

  if (cap == 0)
    return 0;
  if (!(buf = malloc(cap)))
    return aw_fail_sys_len(err, "allocate", e->path, e->len, ENOMEM);
  while (rc == 0 && off < e->size) {
    size_t want = e->size - off < cap ? (size_t)(e->size - off) : cap;
    ssize_t n = read(in, buf, want);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      rc = source_fail(err, e, "read source of", errno);
    else if (n == 0)
      rc = changed(err, e);   /* shorter than it was */
    else if (aw_write_all(out, buf, (size_t)n) < 0)
      rc = source_fail(err, e, "write file", errno);
    else
      off += (uint64_t)n;
    if (rc == 0 && off - told >= COPY_CHUNK) {
      aw_progress_bytes(p, off - told);
      told = off;
    }
  }
  free(buf);
  return rc;
}

#if AW_USE_FICLONE || AW_USE_COPY_FILE_RANGE
/* The errors that mean "not here": the file systems cannot do it. */
static int unsupported(int errnum)
{
  return errnum == EOPNOTSUPP || errnum == ENOTSUP || errnum == EXDEV || errnum == EINVAL ||
         errnum == ENOTTY || errnum == ENOSYS;
}
#endif

/* The bytes of `in` into `out`: 0, or -1 with err filled. */
static int copy_bytes(int in, int out, const aw_entry *e, aw_progress_state *p, aw_error *err)
{
  uint64_t off = 0;

  if (e->size == 0)
    return 0;
#if AW_USE_FICLONE
  if (!p->no_clone || p->no_clone_dev != e->src.dev) {
    if (ioctl(out, FICLONE, in) == 0)
      return 0;
    if (!unsupported(errno))
      return source_fail(err, e, "clone source of", errno);
    p->no_clone = 1;   /* not between these file systems: not tried again */
    p->no_clone_dev = e->src.dev;
  }
#endif
#if AW_USE_COPY_FILE_RANGE
  while (off < e->size) {
    uint64_t left = e->size - off;
    ssize_t n = copy_file_range(in, NULL, out, NULL,
                                (size_t)(left < COPY_CHUNK ? left : COPY_CHUNK), 0);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && off == 0 && unsupported(errno))
      break;   /* the loop does it */
    if (n < 0)
      return source_fail(err, e, "copy source of", errno);
    if (n == 0)
      return changed(err, e);   /* shorter than it was */
    off += (uint64_t)n;
    if (off < e->size)
      aw_progress_bytes(p, (unsigned long long)n);
  }
#endif
  return copy_loop(in, out, e, off, p, err);
}

/* After a failed copy or comparison: a source that is no longer what
 * aw_source_stat saw (replaced by a FIFO or a directory since, say) is
 * reported as changed, whatever step it made fail. */
static void failed_on(int in, const aw_entry *e, aw_error *err)
{
  struct stat st;
  if (err->kind == AW_KIND_SYSTEM && fstat(in, &st) == 0 && !aw_ident_matches(&e->src, &st))
    changed(err, e);
}

int aw_source_copy(int fd, const aw_entry *e, aw_progress_state *p, aw_error *err)
{
  int in = open_source(e, err), rc;

  if (in < 0)
    return -1;
  rc = copy_bytes(in, fd, e, p, err);
  if (rc == 0)
    rc = still_same(in, e, err);
  else
    failed_on(in, e, err);
  close(in);
  return rc;
}

int aw_source_stamp(int fd, aw_entry *e)
{
  struct timespec ts[2];
  struct stat st;

  ts[0].tv_sec = 0;
  ts[0].tv_nsec = UTIME_OMIT;
  ts[1].tv_sec = (time_t)e->src.mtime_sec;
  ts[1].tv_nsec = (long)e->src.mtime_nsec;
  if (futimens(fd, ts) < 0 || fstat(fd, &st) < 0)
    return -1;
  aw_ident_from(&e->id, &st);
  /* its mtime is the source's: settled when the source's is */
  e->settled = e->src_settled;
  return 0;
}

/* ------------------------------------------------------------------ */
/* Comparing                                                           */
/* ------------------------------------------------------------------ */

int aw_source_same(int fd, const aw_entry *e, char *buf, size_t half, aw_error *err)
{
  uint64_t off = 0;
  int in = open_source(e, err), same = 1;

  if (in < 0)
    return -1;
  while (same == 1 && off < e->size) {
    size_t want = e->size - off < half ? (size_t)(e->size - off) : half;
    ssize_t a = aw_read_full(fd, buf, want), b;
    if (a < 0) {
      same = aw_fail_sys_len(err, "read current file", e->path, e->len, errno);
      break;
    }
    if ((b = aw_read_full(in, buf + half, want)) < 0) {
      same = source_fail(err, e, "read source of", errno);
      break;
    }
    if (b != (ssize_t)want) {
      same = changed(err, e);   /* shorter than it was */
      break;
    }
    same = a == b && memcmp(buf, buf + half, want) == 0;
    off += want;
  }
  if (same >= 0 && still_same(in, e, err) < 0)
    same = -1;
  else if (same < 0)
    failed_on(in, e, err);
  close(in);
  return same;
}
