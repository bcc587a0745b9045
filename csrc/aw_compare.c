/*
 * aw_compare.c - step 4 of a write: comparing the payload with the
 * current version, so that a no-op publishes nothing and an update keeps
 * (hard-links) its unchanged files.
 *
 * Without a manifest every file is opened and read, and every directory
 * listed for entries the payload lacks. With one (target/..manifest, see
 * aw_manifest.c), a file whose identity the manifest recorded as settled
 * costs one fstatat and a comparison of keyed digests, and a directory
 * whose identity did not move is not listed. Whatever the manifest does
 * not vouch for is read as without it, and noted as learned, so that the
 * manifest saved afterwards says more.
 */
#define _GNU_SOURCE
#include "aw_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* The manifest pays off from this many small files; a bigger file is
 * compared by reading it (cheaper than hashing it). */
#define MANIFEST_MIN_FILES 8
#define MANIFEST_MAX_FILE 32768

/* The payload's strings lie where Lua put them, not in plan order: the
 * first bytes of the string this many entries ahead are asked for while
 * the current ones are digested (at 100,000 files each string's start
 * was a wait on memory). */
#define PREFETCH_AHEAD 4
#if defined(__GNUC__)
#define AW_PREFETCH(p) __builtin_prefetch(p)
#else
#define AW_PREFETCH(p) ((void)(p))
#endif

static int fail_errno(aw_compare *c, const char *step, const char *path)
{
  return aw_fail_sys(c->err, step, path, errno);
}

/* ------------------------------------------------------------------ */
/* Identities                                                          */
/* ------------------------------------------------------------------ */

/* Is an identity taken now proof against later changes? Only when the
 * entry's mtime lies a clock tick before the moment we started looking:
 * a change after that moment gets a later mtime, even from a file system
 * whose clock advances by ticks. Whole-second stamps (nanoseconds 0) need
 * seconds of margin. Otherwise the entry is read again next time. */
static int is_settled(const aw_compare *c, const aw_ident *id)
{
  int64_t margin = id->mtime_nsec == 0 ? 3000000000 : 20000000;
  int64_t age = c->s0_sec - id->mtime_sec;
  if (age > 4)
    return 1;
  if (age < -1)
    return 0;
  return age * 1000000000 + (c->s0_nsec - id->mtime_nsec) > margin;
}

static void ident_of(aw_ident *id, const struct stat *st)
{
  id->dev = (uint64_t)st->st_dev;
  id->ino = (uint64_t)st->st_ino;
  id->size = (uint64_t)st->st_size;
  id->mtime_sec = (int64_t)AW_ST_MTIM(st).tv_sec;
  id->mtime_nsec = (int64_t)AW_ST_MTIM(st).tv_nsec;
}

static int ident_eq(const aw_ident *a, const aw_ident *b)
{
  return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
         a->mtime_sec == b->mtime_sec && a->mtime_nsec == b->mtime_nsec;
}

void aw_ident_from(aw_ident *id, const struct stat *st)
{
  ident_of(id, st);
}

int aw_ident_matches(const aw_ident *id, const struct stat *st)
{
  aw_ident now;
  ident_of(&now, st);
  return ident_eq(id, &now);
}

/* Mode and owner as the payload asks (owner only where given; the mode
 * not with ignore_modes); size. */
static int same_attrs(const aw_compare *c, const struct stat *st, const aw_entry *e)
{
  return S_ISREG(st->st_mode) &&
         (c->ignore_modes || (unsigned)(st->st_mode & 07777) == e->mode) &&
         (e->uid < 0 || (long long)st->st_uid == e->uid) &&
         (e->gid < 0 || (long long)st->st_gid == e->gid) &&
         (unsigned long long)st->st_size == (unsigned long long)e->size;
}

/* ------------------------------------------------------------------ */
/* One file                                                            */
/* ------------------------------------------------------------------ */

/* The buffer a current file of `size` bytes is read into: as big as the
 * file, up to AW_COMPARE_BUF (a small payload never asks for 64 KiB);
 * twice that for a file compared with its source. */
static char *compare_buffer(aw_compare *c, const aw_entry *e)
{
  size_t want = e->size < AW_COMPARE_BUF ? (size_t)e->size : AW_COMPARE_BUF;
  if (e->source)
    want *= 2;
  if (want > c->buf_cap) {
    char *b = malloc(want);
    if (!b)
      return NULL;
    free(c->buf);
    c->buf = b;
    c->buf_cap = want;
  }
  return c->buf;
}
/* 1 when the current version's file holds exactly `e` (bytes, mode, and
 * owner where given), 0 when not or missing, -1 on error. Opened, then
 * inspected through the descriptor: four calls for a file that matches. */
static int read_compare(aw_compare *c, aw_entry *e, int dfd, const char *name)
{
  struct stat st;
  int same = 0;
  int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);

  if (fd < 0) {
    if (errno == ENOENT || errno == ENOTDIR || errno == ELOOP || errno == EACCES ||
        errno == ENXIO)
      return 0;   /* missing, replaced by a link, unreadable, a socket */
    return fail_errno(c, "open current file", e->path);
  }
  if (fstat(fd, &st) < 0) {
    fail_errno(c, "inspect current file", e->path);
    close(fd);
    return -1;
  }
  if (!same_attrs(c, &st, e))
    same = 0;
  else if (e->size == 0)
    same = 1;
  else if (!compare_buffer(c, e))
    same = aw_fail_sys(c->err, "allocate", e->path, ENOMEM);
  else if (e->source)
    same = aw_source_same(fd, e, c->buf, c->buf_cap / 2, c->err);
  else if ((same = aw_same_content(fd, e->data, e->size,
                                   c->buf, c->buf_cap)) < 0)
    fail_errno(c, "read current file", e->path);
  close(fd);
  if (same == 1) {
    ident_of(&e->id, &st);
    e->settled = is_settled(c, &e->id);
  }
  return same;
}

/* The old manifest's entry for `path`. Lookups come in plan order (a
 * directory just before what it holds), as the entries are kept: a
 * cursor moving forward finds each. */
static const aw_mentry *old_entry(aw_compare *c, const char *path, size_t len)
{
  const aw_manifest *m = &c->old;
  int cmp = 1;
  while (c->mpos < m->n &&
         (cmp = aw_path_cmp(m->v[c->mpos].path, m->v[c->mpos].len, path, len)) < 0)
    c->mpos++;
  return c->mpos < m->n && cmp == 0 ? &m->v[c->mpos] : NULL;
}

/* 1 same, 0 differs, 2 when only reading the file can tell: the manifest
 * has no settled identity for it, or the file no longer has that identity
 * (changed behind the writer's back, perhaps back to the same bytes). */
static int manifest_compare(aw_compare *c, aw_entry *e, int dfd, const char *name)
{
  const aw_mentry *m;
  struct stat st;

  if (!(m = old_entry(c, e->path, e->len)) || (m->flags & AW_M_DIR))
    return 2;
  c->old_files++;
  if (c->checksum)
    return 2;
  if (e->source) {   /* the same source, untouched: the same bytes */
    if ((m->flags & (AW_M_SETTLED | AW_M_SOURCE)) != (AW_M_SETTLED | AW_M_SOURCE) ||
        !ident_eq(&e->src, &m->src))
      return 2;
  } else if (!e->hashed ||
             (m->flags & (AW_M_SETTLED | AW_M_DIGEST)) != (AW_M_SETTLED | AW_M_DIGEST))
    return 2;
  if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
    if (errno == ENOENT || errno == ENOTDIR)
      return 0;
    return fail_errno(c, "inspect current file", e->path);
  }
  ident_of(&e->id, &st);
  if (!S_ISREG(st.st_mode) || !ident_eq(&e->id, &m->id))
    return 2;
  if ((!e->source && memcmp(m->digest, e->digest, AW_DIGEST_SIZE) != 0) ||
      !same_attrs(c, &st, e))
    return 0;
  e->settled = 1;
  return 1;
}

/* ------------------------------------------------------------------ */
/* Directories                                                         */
/* ------------------------------------------------------------------ */

/* A directory of the current version on the way to the payload's files. */
static int see_dir(aw_compare *c, const char *path, size_t len, const struct stat *st)
{
  aw_seen_dir *d = aw_grow(c->seen, c->nseen, &c->seen_cap, sizeof *d);
  const aw_mentry *m;

  if (!d)
    return aw_fail_sys(c->err, "allocate", NULL, ENOMEM);
  c->seen = d;
  d = &c->seen[c->nseen++];
  d->path = path;
  d->len = len;
  ident_of(&d->id, st);
  m = old_entry(c, path, len);
  c->old_dirs += m && (m->flags & AW_M_DIR);
  /* nothing added or removed since the manifest saw its entries */
  d->settled = m && (m->flags & (AW_M_DIR | AW_M_SETTLED)) == (AW_M_DIR | AW_M_SETTLED) &&
             ident_eq(&d->id, &m->id);
  return 0;
}

/* Opens directory element `name` (ending at `end` in e->path) below the
 * deepest open one: 1 pushed, 0 when it is missing or no real directory
 * (noted in c->gone: every file below it differs), -1 on error. Nothing
 * below the version is followed through a symlink. */
static int open_current_dir(aw_compare *c, const aw_entry *e, const char *name, size_t end)
{
  struct stat st;
  int fd = openat(aw_dirs_top(&c->cdirs), name, AW_O_LOOK | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

  if (fd < 0 || fstat(fd, &st) < 0 || !S_ISDIR(st.st_mode)) {
    int errnum = fd >= 0 && fstat(fd, &st) == 0 ? ENOTDIR : errno;
    if (fd >= 0)
      close(fd);
    if (errnum != ENOENT && errnum != ENOTDIR && errnum != ELOOP)
      return aw_fail_sys_len(c->err, "open current version directory", e->path, end, errnum);
    c->gone = e->path;
    c->gone_len = end;
    return 0;
  }
  if (aw_dirs_push(&c->cdirs, fd, e->path, end, c->err) < 0) {
    close(fd);
    return -1;
  }
  return see_dir(c, e->path, end, &st) < 0 ? -1 : 1;
}

/* Makes the deepest open directory the current version's directory of
 * `e`, opening what the previous entry did not pass. Returns the offset
 * of e's name, 0 when e lies below a directory that is gone, or -1. */
static long look_at_dirs(aw_compare *c, const aw_entry *e)
{
  size_t dlen = e->dir_len, end;
  int r;

  if (c->gone_len) {
    if (aw_entry_below(e, c->gone, c->gone_len))
      return 0;
    c->gone_len = 0;
  }
  aw_dirs_leave(&c->cdirs, e->path, dlen);
  while (aw_dirs_next(&c->cdirs, e->path, dlen, c->rel, &end))
    if ((r = open_current_dir(c, e, c->rel, end)) <= 0)
      return r;
  return dlen ? (long)dlen + 1 : 0;
}

/* Opens directory `d` of the current version one element at a time (no
 * symlink is followed, even one swapped in since look_at_dirs), each
 * relative to its parent on c->cdirs: the directories are seen in plan
 * order, so each is opened once, not once per directory below it. Leaves
 * d's path in c->rel. Returns a descriptor of d (the stack's, but a new
 * one for the version itself, to close), or -1 with errno. */
static int open_seen_dir(aw_compare *c, const aw_seen_dir *d)
{
  size_t end;

  aw_dirs_leave(&c->cdirs, d->path, d->len);
  while (aw_dirs_next(&c->cdirs, d->path, d->len, c->rel, &end)) {
    int fd = openat(aw_dirs_top(&c->cdirs), c->rel, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 || aw_dirs_push(&c->cdirs, fd, d->path, end, c->err) < 0) {
      if (fd >= 0) {
        close(fd);
        errno = ENOMEM;
      }
      memcpy(c->rel, d->path, end);
      c->rel[end] = '\0';
      return -1;
    }
  }
  memcpy(c->rel, d->path, d->len);
  c->rel[d->len] = '\0';
  /* the version's own descriptor is the caller's: listed through another */
  return d->len ? aw_dirs_top(&c->cdirs) : openat(c->cfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

/* 1 when directory `d` of the current version holds an entry the payload
 * does not have, 0 when not, -1 on error. Settles d's identity. */
static int has_extras(aw_compare *c, aw_seen_dir *d)
{
  aw_dir dir;
  const char *name;
  unsigned char type;
  struct stat st;
  int r, extra = 0, fd = open_seen_dir(c, d);

  if (fd < 0)
    return errno == ENOENT || errno == ENOTDIR || errno == ELOOP ? 1
           : fail_errno(c, "open current version directory", c->rel);
  if (fstat(fd, &st) < 0 || aw_dir_open(&dir, fd) < 0) {
    fail_errno(c, "read current version", c->rel);
    if (!d->len)
      close(fd);
    return -1;
  }
  ident_of(&d->id, &st);   /* before the listing: a later change moves it */
  while (!extra && (r = aw_dir_next(&dir, &name, &type)) > 0) {
    size_t nlen = strlen(name), off = d->len ? d->len + 1 : 0;
    /* no payload path has an element this long: an extra, and c->rel
     * (room for the plan's longest path and a NAME_MAX name) never sees
     * it; a name from the listing may be longer than NAME_MAX (vfat,
     * ntfs3 and FUSE give up to 765 or 1024 bytes) */
    if (nlen > AW_MAX_ELEMENT || off + nlen > AW_MAX_PATH) {
      extra = 1;
      break;
    }
    if (d->len)
      c->rel[d->len] = '/';
    memcpy(c->rel + off, name, nlen + 1);
    extra = aw_plan_find(c->plan, c->rel, off + nlen) < 0 &&
            !aw_plan_has_dir(c->plan, c->rel, off + nlen);
  }
  if (!extra && r < 0)
    extra = fail_errno(c, "read current version", c->rel);
  aw_dir_close(&dir);
  if (!d->len)
    close(fd);   /* a deeper one stays on c->cdirs, the parent of the next */
  if (extra == 0)
    d->settled = is_settled(c, &d->id);
  return extra;
}

/* ------------------------------------------------------------------ */
/* The whole comparison                                                */
/* ------------------------------------------------------------------ */

/* Keyed digests of the payload's small files, for the manifest. */
static int hash_payload(aw_compare *c)
{
  size_t i, small = 0;
  aw_entry *pending = NULL;

  if (c->manifest_type != 0 && c->manifest_type != S_IFREG)
    return 0;   /* the name is taken by something else: no manifest */
  for (i = 0; i < c->plan->n; i++)
    small += !c->plan->entries[i].source && c->plan->entries[i].size <= MANIFEST_MAX_FILE;
  if (small < MANIFEST_MIN_FILES && !c->sources)
    return 0;   /* a source's identity is always worth remembering */
  if (c->manifest_type == S_IFREG && aw_manifest_load(&c->old, c->tfd, c->cur))
    memcpy(c->key, c->old.key, AW_KEY_SIZE);
  else if (aw_manifest_new_key(c->key) < 0)
    return 0;
  else
    c->learned = 1;
  for (i = 0; i < c->plan->n; i++) {   /* two at a time: see aw_digest128_pair */
    aw_entry *e = &c->plan->entries[i];
    if (i + PREFETCH_AHEAD < c->plan->n)
      AW_PREFETCH(c->plan->entries[i + PREFETCH_AHEAD].data);
    if (e->source || e->size > MANIFEST_MAX_FILE)
      continue;
    e->hashed = 1;
    if (!pending) {
      pending = e;
      continue;
    }
    aw_digest128_pair(c->key, pending->data, pending->size, pending->digest, e->data, e->size,
                       e->digest);
    pending = NULL;
  }
  if (pending)
    aw_digest128(c->key, pending->data, pending->size, pending->digest);
  c->use_manifest = 1;
  return 0;
}

/* Every source's identity, size and mode, taken after s0: one stat each,
 * relative to the source's directory where the next source shares it
 * (one path lookup per file, not one per element of its path). */
static int stat_sources(aw_compare *c)
{
  aw_source_dirs d;
  size_t i;
  int rc = 0;

  aw_source_dirs_init(&d);
  for (i = 0; rc == 0 && i < c->plan->n; i++) {
    aw_entry *e = &c->plan->entries[i];
    const char *next = i + 1 < c->plan->n ? c->plan->entries[i + 1].source : NULL;
    if (!e->source)
      continue;
    if ((rc = aw_source_stat_in(&d, e, next, c->rel, c->rel_size, c->err)) < 0)
      break;
    e->src_settled = is_settled(c, &e->src);
    c->sources++;
  }
  aw_source_dirs_close(&d);
  return rc;
}

/* Every plan entry against its file in the current version: e->same. 1
 * when all are the same, 0 when not, -1 on error. */
static int compare_files(aw_compare *c)
{
  size_t i;
  int all_same = 1;

  for (i = 0; i < c->plan->n; i++) {
    aw_entry *e = &c->plan->entries[i];
    int same = 0, dfd;
    long off = look_at_dirs(c, e);
    if (off < 0)
      return -1;
    dfd = aw_dirs_top(&c->cdirs);
    if (!c->gone_len && (same = manifest_compare(c, e, dfd, e->path + off)) == 2) {
      same = read_compare(c, e, dfd, e->path + off);
      c->learned = 1;
    }
    if (same < 0)
      return -1;
    e->same = same;
    all_same &= same;
  }
  return all_same;
}

void aw_compare_init(aw_compare *c, aw_plan *plan, char *rel, aw_error *err)
{
  memset(c, 0, sizeof *c);
  aw_manifest_init(&c->old);
  c->plan = plan;
  c->rel = rel;
  c->err = err;
  c->tfd = c->cfd = -1;
}

/* With a manifest, a file costs one fstatat and a directory one (its
 * listing only when it may have changed); without, each file is read and
 * each directory listed. */
int aw_compare_current(aw_compare *c, int tfd, int cfd, const char *cur, int manifest_type)
{
  struct timespec ts;
  struct stat st;
  size_t i;
  int same_names, all_same;

  c->tfd = tfd;
  c->cfd = cfd;
  c->cur = cur;
  c->manifest_type = manifest_type;
  if (cfd < 0 && !c->plan->sources)
    return 0;
  clock_gettime(CLOCK_REALTIME, &ts);
  c->s0_sec = (int64_t)ts.tv_sec;
  c->s0_nsec = (int64_t)ts.tv_nsec;
  if (stat_sources(c) < 0 || hash_payload(c) < 0)
    return -1;
  if (cfd < 0)
    return 0;   /* a first publish of sources keeps a manifest too */
  /* The version's identity goes only into a manifest: without one (a
   * payload of few files) has_extras lists it whatever its identity. */
  if (!c->use_manifest)
    memset(&st, 0, sizeof st);
  else if (fstat(cfd, &st) < 0)
    return fail_errno(c, "inspect current version", cur);
  if (see_dir(c, "", 0, &st) < 0 || aw_dirs_push(&c->cdirs, cfd, "", 0, c->err) < 0)
    return -1;
  all_same = compare_files(c);
  aw_dirs_close(&c->cdirs);
  if (all_same <= 0)
    return all_same;
  /* A directory unchanged since the manifest saw it holds the entries the
   * manifest has below it: those are the plan's only when the manifest
   * names exactly the plan's files and directories. */
  same_names = c->old_files == c->plan->n && c->old_dirs == c->nseen &&
               c->old.n == c->plan->n + c->nseen;
  if (aw_dirs_push(&c->cdirs, cfd, "", 0, c->err) < 0)
    return -1;
  for (i = 0, all_same = 1; all_same == 1 && i < c->nseen; i++) {
    int extra;
    if (c->seen[i].settled && same_names)
      continue;
    c->learned = 1;
    if ((extra = has_extras(c, &c->seen[i])) != 0)
      all_same = extra < 0 ? -1 : 0;
  }
  aw_dirs_close(&c->cdirs);
  return all_same;
}

/* Every file's digest; the identities that are settled; with `with_dirs`,
 * the directories looked at (a version just built has none settled yet).
 * Merged in aw_path_cmp order. */
void aw_compare_save_manifest(aw_compare *c, const char *version, int with_dirs)
{
  aw_manifest m;
  size_t i = 0, j = 0, nd = with_dirs ? c->nseen : 0;

  if (!c->use_manifest || (with_dirs && !c->learned))
    return;   /* a no-op that learned nothing: the manifest says it all */
  aw_manifest_init(&m);
  memcpy(m.key, c->key, AW_KEY_SIZE);
  snprintf(m.version, sizeof m.version, "%s", version);
  while (i < nd || j < c->plan->n) {
    const aw_seen_dir *d = i < nd ? &c->seen[i] : NULL;
    const aw_entry *e = j < c->plan->n ? &c->plan->entries[j] : NULL;
    int r = -1;   /* one of d, e is set: the loop's condition */
    if (d && (!e || aw_path_cmp(d->path, d->len, e->path, e->len) < 0)) {
      r = aw_manifest_add(&m, d->path, d->len, AW_M_DIR | (d->settled ? AW_M_SETTLED : 0),
                          &d->id, NULL, NULL);
      i++;
    } else if (e) {
      int src = e->source && e->src_settled;
      r = aw_manifest_add(&m, e->path, e->len,
                          (e->settled ? AW_M_SETTLED : 0) | (e->hashed ? AW_M_DIGEST : 0) |
                          (src ? AW_M_SOURCE : 0),
                          e->settled ? &e->id : NULL, e->hashed ? e->digest : NULL,
                          src ? &e->src : NULL);
      j++;
    }
    if (r < 0)
      goto out;
  }
  aw_manifest_save(&m, &c->old, c->tfd);   /* a shortcut only: failure is harmless */
out:
  aw_manifest_free(&m);
}

void aw_compare_after_publish(aw_compare *c, int tfd, const char *version, int manifest_type)
{
  if (c->use_manifest)
    aw_compare_save_manifest(c, version, 0);
  else if (manifest_type == S_IFREG)
    unlinkat(tfd, AW_MANIFEST_NAME, 0);   /* a shortcut only: failure is harmless */
}

void aw_compare_free(aw_compare *c)
{
  aw_manifest_free(&c->old);
  aw_dirs_free(&c->cdirs);
  free(c->seen);
  c->seen = NULL;
  free(c->buf);
  c->buf = NULL;
  c->buf_cap = 0;
}
