/*
 * aw_read.c - the reader's side: one consistent version of a target, and
 * the current version's name.
 *
 * A read resolves ..data once and walks that version through directory
 * descriptors. A writer removes an old version only after swapping ..data
 * away from it, so when ..data still names the same version after the
 * walk, nothing was removed during it and the snapshot is whole. When it
 * changed, the read starts again; after a few lost races it takes the
 * target's lock shared for one last attempt, which writers respect.
 */
#define _GNU_SOURCE
#include "aw_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void aw_snapshot_free(aw_snapshot *snap)
{
  size_t i;
  for (i = 0; i < snap->n; i++) {
    free(snap->files[i].path);
    free(snap->files[i].data);
  }
  free(snap->files);
  snap->files = NULL;
  snap->n = snap->cap = 0;
  snap->skipped = 0;
}

/* Adds the file `rel` (open as fd, whose bytes are read; -1: listed
 * only, data NULL) to the snapshot. */
static int add_file(aw_snapshot *snap, const char *rel, int fd,
                    const struct stat *st, aw_error *err)
{
  aw_read_file *f;
  ssize_t got;

  f = aw_grow(snap->files, snap->n, &snap->cap, sizeof *f);
  if (!f)
    return aw_fail_sys(err, "allocate", rel, ENOMEM);
  snap->files = f;
  f = &snap->files[snap->n];
  memset(f, 0, sizeof *f);
  f->path = strdup(rel);
  f->data = fd < 0 ? NULL : malloc(st->st_size ? (size_t)st->st_size : 1);
  if (!f->path || (fd >= 0 && !f->data)) {
    free(f->path);
    free(f->data);
    return aw_fail_sys(err, "allocate", rel, ENOMEM);
  }
  got = fd < 0 ? (ssize_t)st->st_size   /* listed, not read */
               : aw_read_full(fd, f->data, (size_t)st->st_size);
  if (got != (ssize_t)st->st_size) {
    int e = got < 0 ? errno : EIO;   /* shrank under us: not a whole file */
    free(f->path);
    free(f->data);
    return aw_fail_sys(err, "read file", rel, e);
  }
  f->size = (size_t)got;
  f->mode = (unsigned)(st->st_mode & 07777);
  f->uid = (long long)st->st_uid;
  f->gid = (long long)st->st_gid;
  snap->n++;
  return 0;
}

/* One directory of the walk: its entries, and the length of its path in
 * the walk's relative path. */
typedef struct walk_level {
  aw_dir dir;
  size_t rlen;
} walk_level;

typedef struct walk_stack {
  walk_level *v;
  size_t depth, cap;
} walk_stack;

/* The walk keeps its directories in a heap array, not in recursion: a
 * payload may nest 2048 levels, which would need 2048 C frames. */
static int enter_dir(walk_stack *s, int fd, size_t rlen)
{
  walk_level *grown = aw_grow(s->v, s->depth, &s->cap, sizeof *s->v);
  if (!grown) {
    errno = ENOMEM;
    return -1;
  }
  s->v = grown;
  if (aw_dir_open(&grown[s->depth].dir, fd) < 0)
    return -1;
  grown[s->depth].rlen = rlen;
  s->depth++;
  return 0;
}

static void leave_dir(walk_stack *s)
{
  walk_level *l = &s->v[--s->depth];
  close(l->dir.fd);
  aw_dir_close(&l->dir);
}

/* Descends into entry `name` of `top` when it is a directory (never
 * through a symlink): 1 entered, 0 not a directory (*type says what it
 * is, DT_UNKNOWN resolved), -1 error. */
static int try_enter(walk_stack *s, const walk_level *top, const char *name,
                     unsigned char *type, size_t rlen, const char *rel, aw_error *err)
{
  struct stat st;
  int fd;

  if (*type == DT_UNKNOWN) {
    if (fstatat(top->dir.fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
      return aw_fail_sys(err, "inspect", rel, errno);
    *type = S_ISDIR(st.st_mode) ? DT_DIR : S_ISREG(st.st_mode) ? DT_REG
            : S_ISLNK(st.st_mode) ? DT_LNK : DT_SOCK;
  }
  if (*type != DT_DIR)
    return 0;
  fd = openat(top->dir.fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    if (errno != ENOTDIR && errno != ELOOP)
      return aw_fail_sys(err, "open", rel, errno);
    *type = DT_SOCK;   /* replaced since the listing: not a directory we follow */
    return 0;
  }
  if (enter_dir(s, fd, rlen) < 0) {
    close(fd);
    return aw_fail_sys(err, "read directory", rel, errno);
  }
  return 1;
}

int aw_walk(int dfd, char *rel, aw_walk_visit visit, void *ctx, aw_error *err)
{
  walk_stack s = { NULL, 0, 0 };
  int rc = 0;

  rel[0] = '\0';
  if (enter_dir(&s, dfd, 0) < 0) {
    close(dfd);
    free(s.v);
    return aw_fail_sys(err, "read directory", rel, errno);
  }
  while (rc == 0 && s.depth > 0) {
    walk_level *top = &s.v[s.depth - 1];
    size_t rlen = top->rlen, nlen;
    const char *name;
    unsigned char type;
    int r = aw_dir_next(&top->dir, &name, &type);
    if (r <= 0) {   /* this directory is done: back to its parent */
      if (r < 0)
        rc = aw_fail_sys(err, "read directory", rel, errno);
      leave_dir(&s);
      if (s.depth > 0)
        rel[s.v[s.depth - 1].rlen] = '\0';
      continue;
    }
    nlen = strlen(name);
    if (rlen + 1 + nlen > AW_MAX_PATH) {
      rc = visit(ctx, -1, name, DT_UNKNOWN, rel, err);   /* too long to name */
      continue;
    }
    if (rlen)
      rel[rlen] = '/';
    memcpy(rel + (rlen ? rlen + 1 : 0), name, nlen + 1);
    r = try_enter(&s, top, name, &type, rlen ? rlen + 1 + nlen : nlen, rel, err);
    if (r == 0)
      rc = visit(ctx, top->dir.fd, name, type, rel, err);
    else if (r < 0)
      rc = -1;
    if (r <= 0)
      rel[rlen] = '\0';
  }
  while (s.depth > 0)
    leave_dir(&s);
  free(s.v);
  return rc;
}

/* aw_walk's visitor for a snapshot: reads each regular file; symlinks and
 * other kinds are counted in skipped, never followed (nor opened: opening
 * a device or a FIFO can have effects of its own). */
static int snapshot_visit(void *ctx, int dfd, const char *name, unsigned char type,
                          const char *rel, aw_error *err)
{
  aw_snapshot *snap = ctx;
  struct stat st;
  int fd, rc = 0;

  if (dfd < 0 || type != DT_REG) {
    snap->skipped++;
    return 0;
  }
  fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ELOOP || errno == ENXIO) {   /* replaced by a symlink, a socket */
      snap->skipped++;
      return 0;
    }
    return aw_fail_sys(err, "open", rel, errno);
  }
  if (fstat(fd, &st) < 0)
    rc = aw_fail_sys(err, "inspect", rel, errno);
  else if (S_ISREG(st.st_mode))
    rc = add_file(snap, rel, fd, &st, err);
  else
    snap->skipped++;
  close(fd);
  return rc;
}

/* aw_walk's visitor for a listing: one fstatat per regular file, never an
 * open (nor a read). */
static int list_visit(void *ctx, int dfd, const char *name, unsigned char type,
                      const char *rel, aw_error *err)
{
  aw_snapshot *snap = ctx;
  struct stat st;

  if (dfd < 0 || type != DT_REG) {
    snap->skipped++;
    return 0;
  }
  if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
    return aw_fail_sys(err, "inspect", rel, errno);
  if (!S_ISREG(st.st_mode)) {   /* replaced since the listing */
    snap->skipped++;
    return 0;
  }
  return add_file(snap, rel, -1, &st, err);
}

/* aw_walk's visitor for a listing of names: no call per regular file (the
 * listing's type says it is one; aw_walk resolved an unknown type), mode
 * AW_MODE_SOURCE, size 0 and no owners. */
static int names_visit(void *ctx, int dfd, const char *name, unsigned char type,
                       const char *rel, aw_error *err)
{
  aw_snapshot *snap = ctx;
  struct stat st;

  (void)name;
  if (dfd < 0 || type != DT_REG) {
    snap->skipped++;
    return 0;
  }
  memset(&st, 0, sizeof st);
  if (add_file(snap, rel, -1, &st, err) < 0)
    return -1;
  snap->files[snap->n - 1].mode = AW_MODE_SOURCE;
  snap->files[snap->n - 1].uid = snap->files[snap->n - 1].gid = -1;
  return 0;
}

static int walk(aw_snapshot *snap, int dfd, char *rel, aw_error *err)
{
  return aw_walk(dfd, rel, snapshot_visit, snap, err);
}

/* Scratch for walk's relative paths: on the heap, as it is 4.3 KiB. */
static char *new_rel(aw_error *err)
{
  char *rel = malloc(AW_MAX_PATH + NAME_MAX + 2);
  if (!rel)
    aw_fail_sys(err, "allocate", NULL, ENOMEM);
  return rel;
}

/* Opens directory `path` and walk's scratch: the descriptor, or -1 with
 * err filled (under `step` when the open fails) and nothing left open. */
static int open_for_walk(const char *path, const char *step, char **rel, aw_error *err)
{
  int fd;

  if (!(*rel = new_rel(err)))
    return -1;
  fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    aw_fail_sys(err, step, NULL, errno);
    free(*rel);
    *rel = NULL;
  }
  return fd;
}

/* aw_read_tree (`list` 0), aw_list_tree (1) or aw_list_tree_names (2).
 * A flag, not a visitor pointer: make stack-usage bounds direct calls. */
static int tree(const char *dir, aw_snapshot *snap, int list, aw_error *err)
{
  char *rel;
  int fd, rc;

  memset(snap, 0, sizeof *snap);
  if ((fd = open_for_walk(dir, "open directory", &rel, err)) < 0)
    return -1;
  if (list == 2)
    rc = aw_walk(fd, rel, names_visit, snap, err);
  else if (list)
    rc = aw_walk(fd, rel, list_visit, snap, err);
  else
    rc = walk(snap, fd, rel, err);
  if (rc < 0) {
    aw_snapshot_free(snap);
    free(rel);
    return -1;
  }
  free(rel);
  return 0;
}

int aw_read_tree(const char *dir, aw_snapshot *snap, aw_error *err)
{
  return tree(dir, snap, 0, err);
}

int aw_list_tree(const char *dir, aw_snapshot *snap, aw_error *err)
{
  return tree(dir, snap, 1, err);
}

int aw_list_tree_names(const char *dir, aw_snapshot *snap, aw_error *err)
{
  return tree(dir, snap, 2, err);
}

/* ..data's version name into buf; 0 with buf "" when there is none. */
static int current_name(int tfd, char *buf, size_t size, aw_error *err)
{
  return aw_read_data_link(tfd, buf, size, "read", err);
}

int aw_version(const char *target, char *buf, size_t size, aw_error *err)
{
  int rc, tfd;
  if (size < 2)
    return aw_fail_sys(err, "read version", NULL, EINVAL);
  tfd = open(target, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (tfd < 0)
    return aw_fail_sys(err, "open target directory", NULL, errno);
  rc = current_name(tfd, buf, size, err);
  if (rc == 0 && !buf[0])   /* none, or a swap that is not atomic (see aw_read) */
    rc = aw_reader_lock(tfd, AW_LOCK_FREE_ATTEMPTS, err) < 0 ? -1 : current_name(tfd, buf, size, err);
  close(tfd);
  return rc;
}

int aw_read(const char *target, aw_snapshot *snap, aw_error *err)
{
  char *rel, again[AW_NAME_SIZE];
  int attempt, locked = 0, rc = -1, tfd;

  memset(snap, 0, sizeof *snap);
  if ((tfd = open_for_walk(target, "open target directory", &rel, err)) < 0)
    return -1;
  for (attempt = 0;; attempt++) {
    int vfd, r = aw_reader_lock(tfd, attempt, err);
    if (r < 0)
      goto out;
    locked |= r;
    aw_snapshot_free(snap);
    if (current_name(tfd, snap->version, sizeof snap->version, err) < 0)
      goto out;
    if (!snap->version[0] && !locked) {
      /* Where renaming a symlink is not atomic (bindfs, fuse-overlayfs,
       * ntfs-3g: FUSE's rename is unlink, then link) ..data may be gone
       * for a moment during a swap: look again under the writers' lock */
      attempt = AW_LOCK_FREE_ATTEMPTS - 1;
      continue;
    }
    if (!snap->version[0]) {
      rc = 0;   /* nothing published yet: no version, no files */
      goto out;
    }
    vfd = openat(tfd, snap->version, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (vfd < 0) {
      if (errno == ENOENT && !locked)
        continue;   /* swapped and removed since the readlink */
      aw_fail_sys(err, "open version", snap->version, errno);
      goto out;
    }
    if (walk(snap, vfd, rel, err) < 0) {
      if (err->kind == AW_KIND_SYSTEM && err->errnum == ENOENT && !locked)
        continue;   /* a file went with its version */
      goto out;
    }
    if (current_name(tfd, again, sizeof again, err) < 0)
      goto out;
    if (strcmp(again, snap->version) == 0) {
      rc = 0;
      goto out;
    }
  }
out:
  if (rc < 0)
    aw_snapshot_free(snap);
  close(tfd);   /* drops the shared lock, if taken */
  free(rel);
  return rc;
}

/* 1 when `version` is the current version or a kept one, 0 when it is
 * neither, -1 on error. */
static int is_listed(int tfd, const char *version, aw_error *err)
{
  char cur[AW_NAME_SIZE];
  aw_history h;
  int r;

  if (current_name(tfd, cur, sizeof cur, err) < 0)
    return -1;
  if (strcmp(cur, version) == 0)
    return 1;
  memset(&h, 0, sizeof h);
  r = aw_history_load(&h, tfd, cur, err) < 0 ? -1 : aw_history_find(&h, version) >= 0;
  aw_history_free(&h);
  return r;
}

static int no_version(const char *version, aw_error *err)
{
  return aw_fail(err, AW_KIND_NO_VERSION, "read version", version, strlen(version),
                 "no such version: it is neither the current one nor kept");
}

/* A kept version is removed only after the history stops listing it: when
 * it is listed after the walk, nothing was removed during it. */
int aw_read_version(const char *target, const char *version, aw_snapshot *snap,
                    aw_error *err)
{
  char *rel;
  int tfd, vfd, listed, rc = -1;

  if (!version || !version[0])
    return aw_read(target, snap, err);
  memset(snap, 0, sizeof *snap);
  if (!aw_is_version_name(version) || strlen(version) >= sizeof snap->version)
    return no_version(version, err);
  if ((tfd = open_for_walk(target, "open target directory", &rel, err)) < 0)
    return -1;
  if ((listed = is_listed(tfd, version, err)) <= 0) {
    if (listed == 0)
      no_version(version, err);
  } else if ((vfd = openat(tfd, version, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
    if (errno == ENOENT)
      no_version(version, err);
    else
      aw_fail_sys(err, "open version", version, errno);
  } else {
    int walked = walk(snap, vfd, rel, err);
    int gone = walked < 0 && err->kind == AW_KIND_SYSTEM && err->errnum == ENOENT;
    if ((walked == 0 || gone) && (listed = is_listed(tfd, version, err)) >= 0) {
      if (!listed)
        no_version(version, err);   /* dropped from the history meanwhile */
      else if (walked == 0)
        rc = 0;
    }
  }
  if (rc == 0)
    snprintf(snap->version, sizeof snap->version, "%s", version);
  else
    aw_snapshot_free(snap);
  close(tfd);
  free(rel);
  return rc;
}
