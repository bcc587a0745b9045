/*
 * aw_write.c - the write algorithm.
 *
 *   target/
 *     ..data     -> ..2026_11_25_10_04_05.123456789     (1) read, (6) swapped
 *     ..data_tmp -> ..2026_11_25_10_04_06.000000001     (6) only during the swap
 *     ..2026_11_25_10_04_05.123456789/  current version  (3) compared, (8) removed
 *     ..2026_11_25_10_04_06.000000001/  next version     (5) built
 *     name       -> ..data/name                          (7) created / removed
 *     ..manifest  what the writer knows of the current version  (4) read, (8) saved
 *
 * Steps, in order, all relative to the target's directory descriptor and
 * under the target's writer lock:
 *   0. validate and clean the payload (before the target is even opened)
 *   1. open and lock the target; read ..data (must be our own symlink)
 *   2. recover: remove a stale ..data_tmp, ..manifest_tmp and orphan
 *      version directories (none is visible: ..data does not point at them)
 *   3. refuse visible names held by entries the writer did not create
 *   4. walk the current version: which files are unchanged, is it all equal
 *      (equal: repair missing links, return "unchanged"); a file the
 *      manifest knows costs one fstatat, any other is read (see
 *      compare_current)
 *   5. build the next version: directories 0755, files written with their
 *      exact mode and owner, or hard-linked from the current version when
 *      unchanged; with sync, make it durable (syncfs) before the swap
 *   6. swap: symlink ..data_tmp -> next, rename it over ..data; fsync target
 *   7. only now create the new visible links; remove the writer's links
 *      whose names are gone
 *   8. remove the old version; save the manifest; fsync the target
 * A failure before 6 removes the half-built version and leaves the
 * published one as it was.
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
#include <time.h>
#include <unistd.h>

#define LINK_PREFIX "..data/"
#define LINK_PREFIX_LEN (sizeof LINK_PREFIX - 1)

/* The entries of the target directory, by name, read once at the start:
 * the writer's own visible links, and what is anyone else's. */
enum { OURS, FOREIGN_FILE, FOREIGN_DIR, FOREIGN_LINK };
typedef struct name_entry {
  char *name;
  int kind;
} name_entry;

typedef struct names {
  name_entry *v;
  size_t n, cap;
} names;

typedef struct dirlevel {
  int fd;
  const char *path;          /* an entry path this directory is a prefix of */
  size_t end;                /* the directory's length in that path */
} dirlevel;

/* A directory of the current version, as compare_current saw it. */
typedef struct seen_dir {
  const char *path;          /* a prefix of a plan path; "" the version */
  size_t len;
  aw_ident id;
  int known;                 /* no entry added or removed since settled */
} seen_dir;

/* The manifest pays off from this many small files; a bigger file is
 * compared by reading it (cheaper than hashing it). */
#define MANIFEST_MIN_FILES 8
#define MANIFEST_MAX_FILE 32768

typedef struct writer {
  const char *target;
  const aw_options *opts;
  aw_error *err;
  aw_plan plan;
  int tfd;                   /* the target directory, locked */
  int cfd;                   /* the current version, or -1 */
  int vfd;                   /* the version being built, or -1 */
  char cur[NAME_MAX + 1];    /* current version name, "" when none */
  char next[64];             /* next version name, "" until made */
  int tmp_made;              /* ..data_tmp exists and is ours */
  int published;             /* ..data points at next */
  names names;               /* the target's entries, by name */
  dirlevel *dirs;            /* open directories of the next version */
  size_t depth, cap;
  char rel[AW_MAX_PATH + NAME_MAX + 2];  /* scratch relative path */
  /* what compare_current learns, and the manifest it is kept in */
  int manifest_type;         /* the target's ..manifest: 0 none, S_IF* */
  int use_manifest;          /* the payload is hashed and a manifest kept */
  unsigned char key[AW_KEY_SIZE];
  aw_manifest old;           /* the current version's, as read */
  int learned;               /* compare found what the manifest did not say */
  int64_t s0_sec, s0_nsec;   /* the time before the first look */
  seen_dir *seen;
  size_t nseen, seen_cap;
  const char *gone;          /* a directory missing in the current version */
  size_t gone_len;
  dirlevel *cdirs;           /* open directories of the current version */
  size_t cdepth, ccap;
  size_t mpos;               /* cursor into old: lookups come in plan order */
  size_t old_files, old_dirs;  /* plan files and seen directories old has */
} writer;

/* ------------------------------------------------------------------ */
/* Small helpers                                                       */
/* ------------------------------------------------------------------ */

static int names_add(names *l, const char *name, int kind)
{
  name_entry *v = aw_grow(l->v, l->n, &l->cap, sizeof *v);
  if (!v)
    return -1;
  l->v = v;
  if (!(l->v[l->n].name = strdup(name)))
    return -1;
  l->v[l->n].kind = kind;
  l->n++;
  return 0;
}

static int names_cmp(const void *a, const void *b)
{
  return strcmp(((const name_entry *)a)->name, ((const name_entry *)b)->name);
}

static void names_sort(names *l)
{
  if (l->n > 1)
    qsort(l->v, l->n, sizeof *l->v, names_cmp);
}

/* The kind of the entry named by the first `len` bytes of `name`, or -1
 * when the target has none (binary search of the sorted list). */
static int names_kind(const names *l, const char *name, size_t len)
{
  size_t lo = 0, hi = l->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int c = strncmp(l->v[mid].name, name, len);
    if (c == 0)
      c = l->v[mid].name[len] != '\0';
    if (c == 0)
      return l->v[mid].kind;
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return -1;
}

static void names_free(names *l)
{
  size_t i;
  for (i = 0; i < l->n; i++)
    free(l->v[i].name);
  free(l->v);
  l->v = NULL;
  l->n = l->cap = 0;
}

/* The type of a directory entry, asking the file system when d_type
 * does not say. Returns a S_IF* value, or 0 with errno set. */
static unsigned entry_type(int dfd, const char *name, unsigned char d_type)
{
  struct stat st;
  switch (d_type) {
  case DT_DIR: return S_IFDIR;
  case DT_REG: return S_IFREG;
  case DT_LNK: return S_IFLNK;
  case DT_UNKNOWN: break;
  default: return S_IFSOCK;  /* any other kind: never ours */
  }
  if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
    return 0;
  return st.st_mode & S_IFMT;
}

/* Is `name` in the target a symlink with exactly the content "..data/<name>"? */
static int is_our_link(int tfd, const char *name)
{
  char buf[NAME_MAX + LINK_PREFIX_LEN + 2];
  size_t len = strlen(name);
  ssize_t n = readlinkat(tfd, name, buf, sizeof buf);
  if (n < 0)   /* not a link (EINVAL) or gone: not ours; else an error */
    return errno == EINVAL || errno == ENOENT ? 0 : -1;
  return (size_t)n == LINK_PREFIX_LEN + len &&
         memcmp(buf, LINK_PREFIX, LINK_PREFIX_LEN) == 0 &&
         memcmp(buf + LINK_PREFIX_LEN, name, len) == 0;
}

static int conflict(writer *w, const char *name, size_t len, const char *why)
{
  return aw_fail(w->err, AW_KIND_CONFLICT, "refusing to replace", name, len, why);
}

static int sys(writer *w, const char *step, const char *path)
{
  return aw_fail_sys(w->err, step, path, errno);
}

/* Pushes an open directory on a stack of them (see enter_parent). */
static int push_level(dirlevel **v, size_t *depth, size_t *cap, int fd,
                      const char *path, size_t end, aw_error *err)
{
  dirlevel *d = aw_grow(*v, *depth, cap, sizeof *d);
  if (!d)
    return aw_fail_sys(err, "allocate", NULL, ENOMEM);
  *v = d;
  (*v)[*depth].fd = fd;
  (*v)[*depth].path = path;
  (*v)[*depth].end = end;
  (*depth)++;
  return 0;
}

/* ------------------------------------------------------------------ */
/* 1. Open, lock, read ..data                                          */
/* ------------------------------------------------------------------ */

static int open_target(writer *w)
{
  w->tfd = open(w->target, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (w->tfd < 0)
    return sys(w, "open target directory", NULL);
  return aw_lock(w->tfd, w->opts->timeout_ms, w->err);
}

static int read_current(writer *w)
{
  struct stat st;

  if (aw_read_data_link(w->tfd, w->cur, sizeof w->cur, "refusing to replace", w->err) < 0)
    return -1;
  if (!w->cur[0])
    return 0;
  if (fstatat(w->tfd, w->cur, &st, AT_SYMLINK_NOFOLLOW) < 0) {
    if (errno != ENOENT)
      return sys(w, "inspect", w->cur);
    w->cfd = -1;   /* dangling: as if there were no version */
    return 0;
  }
  if (!S_ISDIR(st.st_mode))
    return conflict(w, AW_DATA_NAME, 6, "it points at an entry that is not a directory");
  w->cfd = openat(w->tfd, w->cur, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (w->cfd < 0)
    return sys(w, "open current version", w->cur);
  return 0;
}

/* ------------------------------------------------------------------ */
/* 2. Recover what a crashed writer left                               */
/* ------------------------------------------------------------------ */

static int recover_entry(writer *w, const char *name, unsigned char d_type)
{
  unsigned type = entry_type(w->tfd, name, d_type);
  int kind;

  if (!type)
    return errno == ENOENT ? 0 : sys(w, "inspect", name);
  if (strcmp(name, AW_DATA_TMP_NAME) == 0) {
    if (type != S_IFLNK)
      return conflict(w, name, strlen(name), "it is not a symlink the writer created");
    if (unlinkat(w->tfd, name, 0) < 0 && errno != ENOENT)
      return sys(w, "remove stale", name);
    return 0;
  }
  if (strcmp(name, AW_MANIFEST_NAME) == 0) {
    w->manifest_type = (int)type;
    return 0;
  }
  if (strcmp(name, AW_MANIFEST_TMP_NAME) == 0) {   /* a crashed save */
    if ((type == S_IFREG || type == S_IFLNK) && unlinkat(w->tfd, name, 0) < 0 &&
        errno != ENOENT)
      return sys(w, "remove stale", name);
    return 0;
  }
  if (type == S_IFDIR && aw_is_version_name(name) && strcmp(name, w->cur) != 0)
    return aw_remove_tree(w->tfd, name, DT_DIR, w->err);   /* an orphan version */
  if (type == S_IFLNK) {
    int ours = is_our_link(w->tfd, name);
    if (ours < 0)
      return sys(w, "read link", name);
    kind = ours ? OURS : FOREIGN_LINK;
  } else
    kind = type == S_IFDIR ? FOREIGN_DIR : FOREIGN_FILE;
  if (names_add(&w->names, name, kind) < 0)
    return aw_fail_sys(w->err, "remember entry", name, ENOMEM);
  return 0;
}

/* Reads the target once: repairs what a crashed writer left, and notes
 * every other entry for the checks and link updates that follow. */
static int recover(writer *w)
{
  aw_dir dir;
  const char *name;
  unsigned char type;
  int r, rc = 0;

  if (aw_dir_open(&dir, w->tfd) < 0)
    return sys(w, "read target directory", NULL);
  while ((r = aw_dir_next(&dir, &name, &type)) > 0)
    if (strcmp(name, AW_DATA_NAME) != 0 && (rc = recover_entry(w, name, type)) < 0)
      break;
  if (r < 0)
    rc = sys(w, "read target directory", NULL);
  aw_dir_close(&dir);
  names_sort(&w->names);
  return rc;
}

/* ------------------------------------------------------------------ */
/* 3. Visible names must be free or ours                               */
/* ------------------------------------------------------------------ */

/* A first element of the plan, once per run of entries sharing it. */
static int is_new_top(const aw_plan *plan, size_t i)
{
  const aw_entry *e = &plan->entries[i], *prev = i ? &plan->entries[i - 1] : NULL;
  return !prev || prev->top_len != e->top_len || memcmp(e->path, prev->path, e->top_len) != 0;
}

static int check_visible_names(writer *w)
{
  static const char *const why[] = {
    NULL, "it is a file the writer did not create",
    "it is a directory the writer did not create", "it is a symlink the writer did not create",
  };
  size_t i;

  for (i = 0; i < w->plan.n; i++) {
    const aw_entry *e = &w->plan.entries[i];
    int kind;
    if (!is_new_top(&w->plan, i))
      continue;
    kind = names_kind(&w->names, e->path, e->top_len);
    if (kind > OURS)
      return conflict(w, e->path, e->top_len, why[kind]);
  }
  return 0;
}

/* ------------------------------------------------------------------ */
/* 4. Compare with the current version                                 */
/* ------------------------------------------------------------------ */

/* Is an identity taken now proof against later changes? Only when the
 * entry's mtime lies a clock tick before the moment we started looking:
 * a change after that moment gets a later mtime, even from a file system
 * whose clock advances by ticks. Whole-second stamps (nanoseconds 0) need
 * seconds of margin. Otherwise the entry is read again next time. */
static int settled(const writer *w, const aw_ident *id)
{
  int64_t margin = id->mtime_nsec == 0 ? 3000000000 : 20000000;
  int64_t age = w->s0_sec - id->mtime_sec;
  if (age > 4)
    return 1;
  if (age < -1)
    return 0;
  return age * 1000000000 + (w->s0_nsec - id->mtime_nsec) > margin;
}

static void ident_of(aw_ident *id, const struct stat *st)
{
  id->dev = (uint64_t)st->st_dev;
  id->ino = (uint64_t)st->st_ino;
  id->size = (uint64_t)st->st_size;
  id->mtime_sec = (int64_t)st->st_mtim.tv_sec;
  id->mtime_nsec = (int64_t)st->st_mtim.tv_nsec;
}

static int ident_eq(const aw_ident *a, const aw_ident *b)
{
  return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
         a->mtime_sec == b->mtime_sec && a->mtime_nsec == b->mtime_nsec;
}

/* Mode and owner as the payload asks (owner only where given). */
static int same_attrs(const struct stat *st, const aw_file *f)
{
  return S_ISREG(st->st_mode) && (unsigned)(st->st_mode & 07777) == f->mode &&
         (f->uid < 0 || (long long)st->st_uid == f->uid) &&
         (f->gid < 0 || (long long)st->st_gid == f->gid) &&
         (unsigned long long)st->st_size == (unsigned long long)f->size;
}

/* 1 when the current version's file holds exactly `e` (bytes, mode, and
 * owner where given), 0 when not or missing, -1 on error. Opened, then
 * inspected through the descriptor: four calls for a file that matches. */
static int read_compare(writer *w, aw_entry *e, int dfd, const char *name)
{
  struct stat st;
  int same = 0;
  int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);

  if (fd < 0) {
    if (errno == ENOENT || errno == ENOTDIR || errno == ELOOP || errno == EACCES ||
        errno == ENXIO)
      return 0;   /* missing, replaced by a link, unreadable, a socket */
    return sys(w, "open current file", e->path);
  }
  if (fstat(fd, &st) < 0) {
    sys(w, "inspect current file", e->path);
    close(fd);
    return -1;
  }
  if (same_attrs(&st, e->file) &&
      (same = aw_same_content(fd, e->file->data, e->file->size)) < 0)
    sys(w, "read current file", e->path);
  close(fd);
  if (same == 1) {
    ident_of(&e->id, &st);
    e->known = settled(w, &e->id);
  }
  return same;
}

/* The old manifest's entry for `path`. Lookups come in plan order (a
 * directory just before what it holds), as the entries are kept: a
 * cursor moving forward finds each. */
static const aw_mentry *old_entry(writer *w, const char *path, size_t len)
{
  const aw_manifest *m = &w->old;
  int c = 1;
  while (w->mpos < m->n &&
         (c = aw_path_cmp(m->v[w->mpos].path, m->v[w->mpos].len, path, len)) < 0)
    w->mpos++;
  return w->mpos < m->n && c == 0 ? &m->v[w->mpos] : NULL;
}

/* 1 same, 0 differs, 2 when only reading the file can tell: the manifest
 * has no settled identity for it, or the file no longer has that identity
 * (changed behind the writer's back, perhaps back to the same bytes). */
static int manifest_compare(writer *w, aw_entry *e, int dfd, const char *name)
{
  const aw_mentry *m;
  struct stat st;

  if (!(m = old_entry(w, e->path, e->len)) || (m->flags & AW_M_DIR))
    return 2;
  w->old_files++;
  if (!e->hashed || (m->flags & (AW_M_KNOWN | AW_M_DIGEST)) != (AW_M_KNOWN | AW_M_DIGEST))
    return 2;
  if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
    if (errno == ENOENT || errno == ENOTDIR)
      return 0;
    return sys(w, "inspect current file", e->path);
  }
  ident_of(&e->id, &st);
  if (!S_ISREG(st.st_mode) || !ident_eq(&e->id, &m->id))
    return 2;
  if (memcmp(m->digest, e->digest, AW_DIGEST_SIZE) != 0 || !same_attrs(&st, e->file))
    return 0;
  e->known = 1;
  return 1;
}

/* A directory of the current version on the way to the payload's files. */
static int see_dir(writer *w, const char *path, size_t len, const struct stat *st)
{
  seen_dir *d = aw_grow(w->seen, w->nseen, &w->seen_cap, sizeof *d);
  const aw_mentry *m;

  if (!d)
    return aw_fail_sys(w->err, "allocate", NULL, ENOMEM);
  w->seen = d;
  d = &w->seen[w->nseen++];
  d->path = path;
  d->len = len;
  ident_of(&d->id, st);
  m = old_entry(w, path, len);
  w->old_dirs += m && (m->flags & AW_M_DIR);
  /* nothing added or removed since the manifest saw its entries */
  d->known = m && (m->flags & (AW_M_DIR | AW_M_KNOWN)) == (AW_M_DIR | AW_M_KNOWN) &&
             ident_eq(&d->id, &m->id);
  return 0;
}

static size_t dir_len(const aw_entry *e)
{
  const char *slash = memrchr(e->path, '/', e->len);
  return slash ? (size_t)(slash - e->path) : 0;
}

static void cdirs_close(writer *w)
{
  while (w->cdepth > 1)   /* level 0 is cfd */
    close(w->cdirs[--w->cdepth].fd);
}

/* Makes the top of w->cdirs the current version's directory of `e`,
 * opening what the previous entry did not pass: each must be a real
 * directory (nothing below the version is followed through a symlink).
 * One that is not, or is missing, is noted in w->gone, and every file
 * below it differs. Returns the offset of e's name, or -1 on error. */
static long look_at_dirs(writer *w, const aw_entry *e)
{
  size_t dlen = dir_len(e), i;
  struct stat st;

  if (w->gone_len) {
    if (aw_entry_below(e, w->gone, w->gone_len))
      return 0;
    w->gone_len = 0;
  }
  while (w->cdepth > 1) {   /* leave the directories e is not in */
    const dirlevel *top = &w->cdirs[w->cdepth - 1];
    if (top->end <= dlen && e->path[top->end] == '/' &&
        memcmp(top->path, e->path, top->end) == 0)
      break;
    close(w->cdirs[--w->cdepth].fd);
  }
  for (i = w->cdirs[w->cdepth - 1].end; dlen && i <= dlen; i++) {
    size_t start = w->cdirs[w->cdepth - 1].end;
    int fd;
    if (i == start || (i < dlen && e->path[i] != '/'))
      continue;
    if (start)
      start++;   /* past the '/' */
    memcpy(w->rel, e->path + start, i - start);
    w->rel[i - start] = '\0';
    fd = openat(w->cdirs[w->cdepth - 1].fd, w->rel,
                O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) < 0 || !S_ISDIR(st.st_mode)) {
      int errnum = fd >= 0 && fstat(fd, &st) == 0 ? ENOTDIR : errno;
      if (fd >= 0)
        close(fd);
      if (errnum != ENOENT && errnum != ENOTDIR && errnum != ELOOP) {
        memcpy(w->rel, e->path, i);
        w->rel[i] = '\0';
        return aw_fail_sys(w->err, "open current version directory", w->rel, errnum);
      }
      w->gone = e->path;
      w->gone_len = i;
      return 0;
    }
    if (push_level(&w->cdirs, &w->cdepth, &w->ccap, fd, e->path, i, w->err) < 0) {
      close(fd);
      return -1;
    }
    if (see_dir(w, e->path, i, &st) < 0)
      return -1;
  }
  return dlen ? (long)dlen + 1 : 0;
}

/* 1 when directory `d` of the current version holds an entry the payload
 * does not have, 0 when not, -1 on error. Settles d's identity. */
static int has_extras(writer *w, seen_dir *d)
{
  aw_dir dir;
  const char *name;
  unsigned char type;
  struct stat st;
  int r, extra = 0, fd;

  size_t start = 0, i;

  /* one element at a time: no symlink is followed, even one swapped in
   * since look_at_dirs */
  fd = openat(w->cfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  for (i = 0; fd >= 0 && d->len && i <= d->len; i++) {
    int sub;
    if (i < d->len && d->path[i] != '/')
      continue;
    memcpy(w->rel, d->path + start, i - start);
    w->rel[i - start] = '\0';
    sub = openat(fd, w->rel, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    close(fd);
    fd = sub;
    start = i + 1;
  }
  memcpy(w->rel, d->path, d->len);
  w->rel[d->len] = '\0';
  if (fd < 0)
    return errno == ENOENT || errno == ENOTDIR || errno == ELOOP ? 1
           : sys(w, "open current version directory", w->rel);
  if (fstat(fd, &st) < 0 || aw_dir_open(&dir, fd) < 0) {
    sys(w, "read current version", w->rel);
    close(fd);
    return -1;
  }
  ident_of(&d->id, &st);   /* before the listing: a later change moves it */
  while (!extra && (r = aw_dir_next(&dir, &name, &type)) > 0) {
    size_t nlen = strlen(name), off = d->len ? d->len + 1 : 0;
    if (off + nlen > AW_MAX_PATH) {
      extra = 1;
      break;
    }
    if (d->len)
      w->rel[d->len] = '/';
    memcpy(w->rel + off, name, nlen + 1);
    extra = aw_plan_find(&w->plan, w->rel, off + nlen) < 0 &&
            !aw_plan_has_dir(&w->plan, w->rel, off + nlen);
  }
  if (!extra && r < 0)
    extra = sys(w, "read current version", w->rel);
  aw_dir_close(&dir);
  close(fd);
  if (extra == 0)
    d->known = settled(w, &d->id);
  return extra;
}

/* Keyed digests of the payload's small files, for the manifest. */
static int hash_payload(writer *w)
{
  size_t i, small = 0;
  aw_entry *pending = NULL;

  if (w->manifest_type != 0 && w->manifest_type != S_IFREG)
    return 0;   /* the name is taken by something else: no manifest */
  for (i = 0; i < w->plan.n; i++)
    small += w->plan.entries[i].file->size <= MANIFEST_MAX_FILE;
  if (small < MANIFEST_MIN_FILES)
    return 0;
  if (w->manifest_type == S_IFREG && aw_manifest_load(&w->old, w->tfd, w->cur))
    memcpy(w->key, w->old.key, AW_KEY_SIZE);
  else if (aw_manifest_new_key(w->key) < 0)
    return 0;
  else
    w->learned = 1;
  for (i = 0; i < w->plan.n; i++) {   /* two at a time: see aw_siphash128_pair */
    aw_entry *e = &w->plan.entries[i];
    if (e->file->size > MANIFEST_MAX_FILE)
      continue;
    e->hashed = 1;
    if (!pending) {
      pending = e;
      continue;
    }
    aw_siphash128_pair(w->key, pending->file->data, pending->file->size, pending->digest,
                       e->file->data, e->file->size, e->digest);
    pending = NULL;
  }
  if (pending)
    aw_siphash128(w->key, pending->file->data, pending->file->size, pending->digest);
  w->use_manifest = 1;
  return 0;
}

/* Marks the plan entries whose file in the current version is identical;
 * 1 when the current version holds exactly the plan, 0 when not, -1 on
 * error. With a manifest, a file costs one fstatat and a directory one
 * (its listing only when it may have changed); without, each file is
 * read and each directory listed. */
static int compare_current(writer *w)
{
  struct timespec ts;
  struct stat st;
  size_t i;
  int all_same = 1, same_names;

  if (w->cfd < 0)
    return 0;
  clock_gettime(CLOCK_REALTIME, &ts);
  w->s0_sec = (int64_t)ts.tv_sec;
  w->s0_nsec = (int64_t)ts.tv_nsec;
  if (hash_payload(w) < 0)
    return -1;
  if (fstat(w->cfd, &st) < 0)
    return sys(w, "inspect current version", w->cur);
  if (see_dir(w, "", 0, &st) < 0 ||
      push_level(&w->cdirs, &w->cdepth, &w->ccap, w->cfd, "", 0, w->err) < 0)
    return -1;
  for (i = 0; i < w->plan.n; i++) {
    aw_entry *e = &w->plan.entries[i];
    int same = 0;
    long off = look_at_dirs(w, e);
    int dfd = w->cdirs[w->cdepth - 1].fd;
    if (off < 0)
      return -1;
    if (!w->gone_len && (same = manifest_compare(w, e, dfd, e->path + off)) == 2) {
      same = read_compare(w, e, dfd, e->path + off);
      w->learned = 1;
    }
    if (same < 0)
      return -1;
    e->same = same;
    all_same &= same;
  }
  cdirs_close(w);
  if (!all_same)
    return 0;
  /* A directory unchanged since the manifest saw it holds the entries the
   * manifest has below it: those are the plan's only when the manifest
   * names exactly the plan's files and directories. */
  same_names = w->old_files == w->plan.n && w->old_dirs == w->nseen &&
               w->old.n == w->plan.n + w->nseen;
  for (i = 0; i < w->nseen; i++) {
    int extra;
    if (w->seen[i].known && same_names)
      continue;
    w->learned = 1;
    if ((extra = has_extras(w, &w->seen[i])) != 0)
      return extra < 0 ? -1 : 0;
  }
  return 1;
}

/* The manifest of `version`: every file's digest; the identities that are
 * settled; with `dirs`, the directories looked at (a version just built
 * has none settled yet). Merged in aw_path_cmp order. */
static void remember(writer *w, const char *version, int dirs)
{
  aw_manifest m;
  size_t i = 0, j = 0, nd = dirs ? w->nseen : 0;

  if (!w->use_manifest || (dirs && !w->learned))
    return;   /* a no-op that learned nothing: the manifest says it all */
  aw_manifest_init(&m);
  memcpy(m.key, w->key, AW_KEY_SIZE);
  snprintf(m.version, sizeof m.version, "%s", version);
  while (i < nd || j < w->plan.n) {
    const seen_dir *d = i < nd ? &w->seen[i] : NULL;
    const aw_entry *e = j < w->plan.n ? &w->plan.entries[j] : NULL;
    int r = -1;   /* one of d, e is set: the loop's condition */
    if (d && (!e || aw_path_cmp(d->path, d->len, e->path, e->len) < 0)) {
      r = aw_manifest_add(&m, d->path, d->len, AW_M_DIR | (d->known ? AW_M_KNOWN : 0),
                          &d->id, NULL);
      i++;
    } else if (e) {
      r = aw_manifest_add(&m, e->path, e->len,
                          (e->known ? AW_M_KNOWN : 0) | (e->hashed ? AW_M_DIGEST : 0),
                          e->known ? &e->id : NULL, e->hashed ? e->digest : NULL);
      j++;
    }
    if (r < 0)
      goto out;
  }
  aw_manifest_save(&m, &w->old, w->tfd);   /* a shortcut only: failure is harmless */
out:
  aw_manifest_free(&m);
}

/* ------------------------------------------------------------------ */
/* 5. Build the next version                                           */
/* ------------------------------------------------------------------ */

static int make_version_dir(writer *w)
{
  struct timespec ts;
  struct tm tm;
  int attempt;

  /* The name is the time; on a clash (same nanosecond, or the clock
   * went back onto the current name) try the next nanosecond. */
  clock_gettime(CLOCK_REALTIME, &ts);
  for (attempt = 0;; attempt++) {
    gmtime_r(&ts.tv_sec, &tm);
    snprintf(w->next, sizeof w->next, "..%04d_%02d_%02d_%02d_%02d_%02d.%09ld",
             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
             tm.tm_min, tm.tm_sec, (long)ts.tv_nsec);
    errno = EEXIST;
    if (strcmp(w->next, w->cur) != 0 && mkdirat(w->tfd, w->next, 0755) == 0)
      break;
    if (errno != EEXIST || attempt == 1000) {
      w->next[0] = '\0';
      return sys(w, "create version directory", NULL);
    }
    if (++ts.tv_nsec == 1000000000L) {
      ts.tv_nsec = 0;
      ts.tv_sec++;
    }
  }
  w->vfd = openat(w->tfd, w->next, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (w->vfd < 0)
    return sys(w, "open version directory", w->next);
  if (fchmod(w->vfd, 0755) < 0)   /* exact, whatever the umask */
    return sys(w, "set mode of", w->next);
  return 0;
}

/* The chain of open directories from the version down to the directory
 * of the file being placed. The plan is sorted element-wise, so a
 * directory, once left, is never needed again: a stack suffices, and
 * every open and create is relative to the parent's descriptor (no path
 * walk, no PATH_MAX limit for 4096-byte payload paths). */
static int dirs_push(writer *w, int fd, const char *path, size_t end)
{
  return push_level(&w->dirs, &w->depth, &w->cap, fd, path, end, w->err);
}

static void dirs_close(writer *w)
{
  while (w->depth > 1)   /* level 0 is vfd, closed with the writer */
    close(w->dirs[--w->depth].fd);
  w->depth = 0;
}

/* Makes the top of the stack the directory of `e` (creating what is
 * missing, mode 0755 whatever the umask); returns the offset of the
 * file's name in e->path. */
static long enter_parent(writer *w, const aw_entry *e)
{
  size_t dlen = 0, i, start;
  const char *slash = memrchr(e->path, '/', e->len);

  if (slash)
    dlen = (size_t)(slash - e->path);
  while (w->depth > 1) {
    const dirlevel *top = &w->dirs[w->depth - 1];
    if (top->end <= dlen && e->path[top->end] == '/' &&
        memcmp(top->path, e->path, top->end) == 0)
      break;
    close(w->dirs[--w->depth].fd);
  }
  start = w->dirs[w->depth - 1].end;
  if (start)
    start++;   /* past the '/' */
  for (i = start; i <= dlen && slash; i++) {
    int fd, parent = w->dirs[w->depth - 1].fd;
    if (i < dlen && e->path[i] != '/')
      continue;
    memcpy(w->rel, e->path + start, i - start);
    w->rel[i - start] = '\0';
    if (mkdirat(parent, w->rel, 0755) < 0 ||
        (fd = openat(parent, w->rel, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
      memcpy(w->rel, e->path, i);
      w->rel[i] = '\0';
      return sys(w, "create directory", w->rel);
    }
    if (dirs_push(w, fd, e->path, i) < 0) {
      close(fd);
      return -1;
    }
    if (fchmod(fd, 0755) < 0) {
      memcpy(w->rel, e->path, i);
      w->rel[i] = '\0';
      return sys(w, "set mode of directory", w->rel);
    }
    start = i + 1;
  }
  return slash ? (long)dlen + 1 : 0;
}

static int write_file(writer *w, const aw_entry *e, int dfd, const char *name)
{
  const aw_file *f = e->file;
  const char *step;
  int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);

  if (fd < 0)
    return sys(w, "create file", e->path);
  step = "write file";
  if (aw_write_all(fd, f->data, f->size) < 0)
    goto fail;
  step = "set owner of";
  if ((f->uid >= 0 || f->gid >= 0) &&
      fchown(fd, f->uid >= 0 ? (uid_t)f->uid : (uid_t)-1,
             f->gid >= 0 ? (gid_t)f->gid : (gid_t)-1) < 0)
    goto fail;
  step = "set mode of";
  if (fchmod(fd, f->mode) < 0)   /* after chown, which may clear bits */
    goto fail;
  if (close(fd) < 0)
    return sys(w, "close file", e->path);
  return 0;

fail:
  sys(w, step, e->path);
  close(fd);
  return -1;
}

/* An unchanged file is hard-linked from the current version: no copy of
 * its bytes. Falls back to writing where a link is not possible. */
static int place_file(writer *w, aw_entry *e)
{
  long off = enter_parent(w, e);
  int dfd;

  if (off < 0)
    return -1;
  dfd = w->dirs[w->depth - 1].fd;
  if (e->same && w->cfd >= 0) {
    if (linkat(w->cfd, e->path, dfd, e->path + off, 0) == 0)
      return 0;   /* the same inode: its identity is still known */
    if (errno != EXDEV && errno != EMLINK && errno != EPERM &&
        errno != ENOTSUP && errno != ENAMETOOLONG)
      return sys(w, "link unchanged file", e->path);
  }
  e->known = 0;
  return write_file(w, e, dfd, e->path + off);
}

static int build_version(writer *w)
{
  size_t i;

  if (make_version_dir(w) < 0 || dirs_push(w, w->vfd, "", 0) < 0)
    return -1;
  for (i = 0; i < w->plan.n; i++)
    if (place_file(w, &w->plan.entries[i]) < 0)
      return -1;
  dirs_close(w);
  if (w->opts->sync && syncfs(w->vfd) < 0)
    return sys(w, "sync version", w->next);
  return 0;
}

/* ------------------------------------------------------------------ */
/* 6-8. Swap, links, old version                                       */
/* ------------------------------------------------------------------ */

static int sync_target(writer *w)
{
  if (w->opts->sync && fsync(w->tfd) < 0)
    return sys(w, "sync target directory", NULL);
  return 0;
}

static int swap_data(writer *w)
{
  if (symlinkat(w->next, w->tfd, AW_DATA_TMP_NAME) < 0)
    return sys(w, "create link", AW_DATA_TMP_NAME);
  w->tmp_made = 1;
  if (renameat(w->tfd, AW_DATA_TMP_NAME, w->tfd, AW_DATA_NAME) < 0)
    return sys(w, "swap", AW_DATA_NAME);
  w->tmp_made = 0;
  w->published = 1;
  return 0;
}

/* Creates the missing visible links and removes ours whose name is gone.
 * Returns the number of changes made, or -1. */
static int update_links(writer *w)
{
  size_t i;
  int changes = 0;
  char target[LINK_PREFIX_LEN + AW_MAX_ELEMENT + 1];

  for (i = 0; i < w->plan.n; i++) {
    const aw_entry *e = &w->plan.entries[i];
    if (!is_new_top(&w->plan, i) || names_kind(&w->names, e->path, e->top_len) == OURS)
      continue;
    memcpy(w->rel, e->path, e->top_len);
    w->rel[e->top_len] = '\0';
    memcpy(target, LINK_PREFIX, LINK_PREFIX_LEN);
    memcpy(target + LINK_PREFIX_LEN, e->path, e->top_len);
    target[LINK_PREFIX_LEN + e->top_len] = '\0';
    if (symlinkat(target, w->tfd, w->rel) < 0) {
      int ours;
      if (errno != EEXIST)
        return sys(w, "create link", w->rel);
      if ((ours = is_our_link(w->tfd, w->rel)) < 0)
        return sys(w, "read link", w->rel);
      if (!ours)
        return conflict(w, w->rel, e->top_len, "an entry appeared there during the write");
      continue;
    }
    changes++;
  }
  for (i = 0; i < w->names.n; i++) {
    const char *name = w->names.v[i].name;
    if (w->names.v[i].kind != OURS || aw_plan_has_top(&w->plan, name, strlen(name)))
      continue;
    if (unlinkat(w->tfd, name, 0) < 0 && errno != ENOENT)
      return sys(w, "remove link", name);
    changes++;
  }
  return changes;
}

/* Once ..data is swapped the new version is what readers see: every
 * later step still runs when one fails (links, old version, sync), and
 * the first failure is the one reported. */
static int publish(writer *w)
{
  aw_error later;
  aw_error *first = w->err;
  int rc = 0;

  memset(&later, 0, sizeof later);   /* filled by the first failing step */
  if (build_version(w) < 0 || swap_data(w) < 0)
    return -1;
  w->err = &later;
  if (sync_target(w) < 0 && rc == 0)
    rc = -1, *first = later;
  if (update_links(w) < 0 && rc == 0)
    rc = -1, *first = later;
  if (w->cfd >= 0) {
    close(w->cfd);
    w->cfd = -1;
  }
  if (w->cur[0] && aw_remove_tree(w->tfd, w->cur, DT_DIR, w->err) < 0 && rc == 0)
    rc = -1, *first = later;
  if (w->use_manifest)
    remember(w, w->next, 0);
  else if (w->manifest_type == S_IFREG)
    unlinkat(w->tfd, AW_MANIFEST_NAME, 0);   /* describes a version now gone */
  if (sync_target(w) < 0 && rc == 0)
    rc = -1, *first = later;
  w->err = first;
  return rc;
}

/* ------------------------------------------------------------------ */
/* The whole write                                                     */
/* ------------------------------------------------------------------ */

/* Undoes what an unpublished write made; keeps the first error. */
static void abandon(writer *w)
{
  aw_error ignored;
  if (w->vfd >= 0) {
    close(w->vfd);
    w->vfd = -1;
  }
  if (w->tmp_made)
    unlinkat(w->tfd, AW_DATA_TMP_NAME, 0);
  if (w->next[0] && !w->published)
    aw_remove_tree(w->tfd, w->next, DT_DIR, &ignored);
}

void aw_options_init(aw_options *opts)
{
  opts->sync = 1;
  opts->timeout_ms = -1;
}

int aw_write(const char *target, const aw_file *files, size_t nfiles,
             const aw_options *opts, int *changed, aw_error *err)
{
  writer w;
  aw_options defaults;
  int rc = -1, same, fixed;

  memset(&w, 0, sizeof w);
  aw_manifest_init(&w.old);
  if (!opts) {
    aw_options_init(&defaults);
    opts = &defaults;
  }
  w.target = target;
  w.opts = opts;
  w.err = err;
  w.tfd = w.cfd = w.vfd = -1;
  err->kind = AW_KIND_NONE;
  if (changed)
    *changed = 0;

  if (aw_plan_build(&w.plan, files, nfiles, err) < 0)
    return -1;
  if (open_target(&w) < 0 || read_current(&w) < 0 || recover(&w) < 0 ||
      check_visible_names(&w) < 0 || (same = compare_current(&w)) < 0)
    goto out;
  if (same) {
    remember(&w, w.cur, 1);
    if ((fixed = update_links(&w)) < 0 || (fixed > 0 && sync_target(&w) < 0))
      goto out;
    rc = 0;
    goto out;
  }
  if (publish(&w) < 0)
    goto out;
  if (changed)
    *changed = 1;
  rc = 0;

out:
  dirs_close(&w);
  free(w.dirs);
  if (rc < 0)
    abandon(&w);
  if (w.published && changed)
    *changed = 1;   /* a failure after the swap still published */
  if (w.vfd >= 0)
    close(w.vfd);
  if (w.cfd >= 0)
    close(w.cfd);
  if (w.tfd >= 0)
    close(w.tfd);   /* releases the lock */
  names_free(&w.names);
  aw_manifest_free(&w.old);
  cdirs_close(&w);
  free(w.cdirs);
  free(w.seen);
  aw_plan_free(&w.plan);
  return rc;
}

int aw_check_target(const char *target, aw_error *err)
{
  struct stat st;
  if (stat(target, &st) < 0)
    return aw_fail_sys(err, "open target directory", NULL, errno);
  if (!S_ISDIR(st.st_mode))
    return aw_fail_sys(err, "open target directory", NULL, ENOTDIR);
  return 0;
}
