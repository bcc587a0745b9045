/*
 * aw_write.c - the write algorithm.
 *
 *   target/
 *     ..data     -> ..2026_11_25_10_04_05.123456789     (1) read, (6) swapped
 *     ..data_tmp -> ..2026_11_25_10_04_06.000000001     (6) only during the swap
 *     ..2026_11_25_10_04_05.123456789/  current version  (4) compared, (8) removed
 *                                       or, with opts.keep, kept (aw_history.c)
 *     ..2026_11_25_10_04_06.000000001/  next version     (5) built
 *     name       -> ..data/name                          (7) created / removed
 *     ..manifest  what the writer knows of the current version  (4) read, (8) saved
 *     ..history   the kept versions, newest first          (2) read, (5) (8) saved
 *
 * Steps, in order, all relative to the target's directory descriptor and
 * under the target's writer lock:
 *   0. validate and clean the payload (before the target is even opened)
 *   1. open and lock the target; read ..data (must be our own symlink),
 *      once step 2's listing has met it (none met: no readlinkat)
 *   2. recover: remove a stale ..data_tmp, ..manifest_tmp, ..history_tmp
 *      and orphan version directories: those neither ..data nor ..history
 *      names (none is visible, none is kept)
 *   3. refuse visible names held by entries the writer did not create
 *   4. walk the current version: which files are unchanged, is it all equal
 *      (equal: repair missing links, return "unchanged"); a file the
 *      manifest knows costs one fstatat, any other is read (aw_compare.c)
 *   5. with keep, list the current version as kept (before the swap that
 *      supersedes it; the history's policy is aw_history.c's); build the next version: directories 0755, files written with their
 *      exact mode and owner, or hard-linked from the current version when
 *      unchanged; with sync, make it durable before the swap: one syncfs,
 *      or (AW_SYNC_FILES) an fsync of each file and directory placed
 *   6. swap: symlink ..data_tmp -> next, rename it over ..data; fsync target
 *   7. only now create the new visible links; remove the writer's links
 *      whose names are gone
 *   8. trim the history to keep (aw_history.c; record first, then the
 *      removals), or
 *      remove the old version; save the manifest; fsync the target
 * aw_publish() runs 0-4, then build (5), then publish (6-8); aw_rollback()
 * runs 1-3, plans the kept version's files (all hard-linked from it, none
 * written), then 5-8. opts.changes lists the current version before 5. A failure
 * before 6 removes the half-built version and leaves the published one as
 * it was; after 6, every remaining step still runs (see publish).
 *
 * The kubelet's AtomicWriter.Write (Go) in these steps: its 1 (validate)
 * is 0; 2 (read ..data) is 1; 3 (which old paths are gone) is the listing
 * of the target in 2 and the removals in 7; 4 (compare) is 4; 5 and 6 (new
 * directory, payload) are 5; 7 and 8 (..data_tmp, rename) are 6; 9 and 10
 * (new visible links, old ones removed) are 7; 11 (old version removed) is
 * 8. Recovery (2), the refusal of foreign names (3), the history and every
 * sync are ours.
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
  int sync;                  /* AW_SYNC_OFF, AW_SYNC_FS or AW_SYNC_FILES */
  int tmp_made;              /* ..data_tmp exists and is ours */
  int published;             /* ..data points at next */
  names names;               /* the target's entries, by name */
  aw_dirstack dirs;          /* open directories of the next version */
  aw_dirstack ldirs;         /* open directories of lfd's version, linked from */
  aw_compare cmp;            /* step 4: what the current version holds */
  aw_history hist;           /* the kept versions (..history) */
  int data_seen;             /* recovery met ..data: read it then */
  int history_seen;          /* recovery met ..history */
  int manifest_type;         /* what recovery met at ..manifest: 0, S_IF* */
  names candidates;          /* version directories ..data does not name */
  aw_history left;           /* version directories left over (..leftovers) */
  int left_seen;             /* recovery met ..leftovers */
  int left_errno;            /* why this write left the first one */
  int ignore_modes;          /* aw_options_set_modes(opts, 0) */
  int own_umask;             /* the file system does not apply the process's
                                umask as is: every mode gets an fchmod */
  int keep;                  /* superseded versions kept after this publish */
  int lfd;                   /* files marked same are linked from here */
  int link_only;             /* a rollback: never write a file's bytes */
  aw_result *res;            /* what the caller is told */
  size_t changes_cap;
  char rolled_to[AW_NAME_SIZE];  /* a rollback's kept version: it stays kept */
  aw_progress_state prog;    /* files placed; what source copies learned */
  char left_first[AW_NAME_SIZE];  /* the first version this write left over */
  char *rel;                 /* a relative path being built (heap: writer_rel) */
  aw_error *later;           /* for steps whose error is not the one reported
                                (after a failure past the swap; abandon; the
                                leftovers' record): allocated by the first */
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
  if (n < 0)   /* not a link (EINVAL), gone, or one sshfs refuses to read
                  (EPERM: it points outside the mount): not ours; else an error */
    return errno == EINVAL || errno == ENOENT || errno == EPERM ? 0 : -1;
  return (size_t)n == LINK_PREFIX_LEN + len &&
         memcmp(buf, LINK_PREFIX, LINK_PREFIX_LEN) == 0 &&
         memcmp(buf + LINK_PREFIX_LEN, name, len) == 0;
}

static int conflict(writer *w, const char *name, size_t len, const char *why)
{
  return aw_fail(w->err, AW_KIND_CONFLICT, "refusing to replace", name, len, why);
}

/* Records the failure of the system call just made (errno). */
static int fail_errno(writer *w, const char *step, const char *path)
{
  return aw_fail_sys(w->err, step, path, errno);
}

#define NO_MODES "this file system does not keep modes (modes = false publishes ignoring them)"
#define NO_OWNERS "this file system does not keep owners"
#define NO_LINKS "this file system has no symbolic links: it cannot hold the ..data layout"

/* A symlink the layout needs could not be made: in plain words when the
 * file system has none (vfat, exfat: EPERM, ENOSYS). */
static int fail_link(writer *w, const char *path, size_t len)
{
  int e = errno;
  return aw_fail_sys_why(w->err, "create link", path, len, e,
                         e == EPERM || e == ENOSYS || e == ENOTSUP ? NO_LINKS : NULL);
}

/* A failed fchmod of the writer's own new file or directory: in plain
 * words when the file system has no modes (vfat: EPERM; fusefat: ENOSYS). */
static int fail_mode(writer *w, const char *step, const char *path, size_t len)
{
  int e = errno;
  return aw_fail_sys_why(w->err, step, path, len, e,
                         e == EPERM || e == ENOSYS || e == ENOTSUP ? NO_MODES : NULL);
}

/* Sets the mode of open file or directory `fd` when `chmod` (and not
 * opts.ignore_modes), then checks through the descriptor (fstat) that the
 * mode held, and the owner where `f` gives one: a file system that ignores
 * chmod (ntfs-3g without permissions: every mode reads 0777) fails the
 * write rather than publishing the wrong mode. */
static int check_modes(writer *w, int fd, int chmod, unsigned mode, const aw_file *f,
                       const char *step, const char *path, size_t len)
{
  struct stat st;

  if (w->ignore_modes && (!f || (f->uid < 0 && f->gid < 0)))
    return 0;
  if (!w->ignore_modes && chmod && fchmod(fd, mode) < 0)
    return fail_mode(w, step, path, len);
  if (fstat(fd, &st) < 0)
    return aw_fail_sys_len(w->err, step, path, len, errno);
  if (!w->ignore_modes && (unsigned)(st.st_mode & 07777) != mode)
    return aw_fail_sys_why(w->err, step, path, len, ENOTSUP, NO_MODES);
  if (f && ((f->uid >= 0 && (long long)st.st_uid != f->uid) ||
            (f->gid >= 0 && (long long)st.st_gid != f->gid)))
    return aw_fail_sys_why(w->err, "set owner of", path, len, ENOTSUP, NO_OWNERS);
  return 0;
}

/* ------------------------------------------------------------------ */
/* 1. Open, lock, read ..data                                          */
/* ------------------------------------------------------------------ */

static int open_target(writer *w)
{
  w->tfd = open(w->target, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (w->tfd < 0)
    return fail_errno(w, "open target directory", NULL);
  return aw_lock(w->tfd, w->opts->timeout_ms, w->err);
}

/* Opens the version ..data names (w->cfd), when there is one: open
 * tells what it is (ENOENT: dangling, as if there were no version;
 * ENOTDIR or ELOOP: not a directory), no fstatat first. Called once the
 * recovery's listing is read: where it met no ..data there is nothing to
 * read (a first publish saves the readlinkat). */
static int open_current(writer *w)
{
  if (!w->data_seen)
    return 0;
  if (aw_read_data_link(w->tfd, w->cur, sizeof w->cur, "refusing to replace", w->err) < 0)
    return -1;
  if (!w->cur[0])
    return 0;
  w->cfd = openat(w->tfd, w->cur, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (w->cfd >= 0 || errno == ENOENT)
    return 0;
  if (errno == ENOTDIR || errno == ELOOP)
    return conflict(w, AW_DATA_NAME, AW_DATA_NAME_LEN, "it points at an entry that is not a directory");
  return fail_errno(w, "open current version", w->cur);
}

/* ------------------------------------------------------------------ */
/* 2. Recover what a crashed writer left                               */
/* ------------------------------------------------------------------ */

static int recover_entry(writer *w, const char *name, unsigned char d_type)
{
  unsigned type = entry_type(w->tfd, name, d_type);
  int kind;

  if (!type)
    return errno == ENOENT ? 0 : fail_errno(w, "inspect", name);
  if (strcmp(name, AW_DATA_TMP_NAME) == 0) {
    if (type != S_IFLNK)
      return conflict(w, name, strlen(name), "it is not a symlink the writer created");
    if (unlinkat(w->tfd, name, 0) < 0 && errno != ENOENT)
      return fail_errno(w, "remove stale", name);
    return 0;
  }
  if (strcmp(name, AW_MANIFEST_NAME) == 0) {
    w->manifest_type = (int)type;   /* for the comparison (step 4) */
    return 0;
  }
  if (strcmp(name, AW_HISTORY_NAME) == 0) {
    w->history_seen = 1;   /* read once the listing is done */
    return 0;
  }
  if (strcmp(name, AW_LEFTOVERS_NAME) == 0) {
    w->left_seen = 1;
    return 0;
  }
  if (strcmp(name, AW_MANIFEST_TMP_NAME) == 0 || strcmp(name, AW_HISTORY_TMP_NAME) == 0 ||
      strcmp(name, AW_LEFTOVERS_TMP_NAME) == 0) {   /* a crashed save */
    if ((type == S_IFREG || type == S_IFLNK) && unlinkat(w->tfd, name, 0) < 0 &&
        errno != ENOENT)
      return fail_errno(w, "remove stale", name);
    return 0;
  }
  if (type == S_IFDIR && aw_is_version_name(name)) {
    /* kept, an orphan, or the current one (..data is read after the
     * listing: remove_orphans passes it over) */
    if (names_add(&w->candidates, name, OURS) < 0)
      return aw_fail_sys(w->err, "remember entry", name, ENOMEM);
    return 0;
  }
  if (type == S_IFLNK) {
    int ours = is_our_link(w->tfd, name);
    if (ours < 0)
      return fail_errno(w, "read link", name);
    kind = ours ? OURS : FOREIGN_LINK;
  } else
    kind = type == S_IFDIR ? FOREIGN_DIR : FOREIGN_FILE;
  if (names_add(&w->names, name, kind) < 0)
    return aw_fail_sys(w->err, "remember entry", name, ENOMEM);
  return 0;
}

/* Whether a removal failed in a way that only time mends: a file a
 * reader holds open on FUSE or NFS (the file system hides it as
 * .fuse_hidden* or .nfs*, and its directory is not empty), a busy mount
 * point, an immutable or append-only file (EPERM, EACCES). */
static int is_leftover_errno(int e)
{
  return e == ENOTEMPTY || e == EEXIST || e == EBUSY || e == EPERM || e == EACCES;
}

static const char *manifest_path_at(const void *list, size_t i, size_t *len)
{
  const aw_mentry *e = &((const aw_manifest *)list)->v[i];
  if (e->flags & AW_M_DIR)
    return NULL;
  *len = e->len;
  return e->path;
}

static const char *plan_path_at(const void *list, size_t i, size_t *len)
{
  const aw_entry *e = &((const aw_plan *)list)->entries[i];
  *len = e->len;
  return e->path;
}

/* Removes the superseded version `name`, open as `fd`, by the files the
 * writer knows it holds, without listing it: its manifest's, or else the
 * payload's paths (the unchanged and changed files of an update). 0 when
 * it is gone; 1 when something remains (a file the writer did not know
 * of: the caller's listing removes the rest). */
static int remove_known(writer *w, const char *name, int fd)
{
  const aw_manifest *m = &w->cmp.old;

  if (m->n > 0 && strcmp(m->version, name) == 0)
    return aw_remove_known(w->tfd, name, fd, manifest_path_at, m, m->n, w->rel);
  return aw_remove_known(w->tfd, name, fd, plan_path_at, &w->plan, w->plan.n, w->rel);
}

/* Removes version directory `name` (superseded or orphaned; through `fd`,
 * its open descriptor, when not -1, which is closed: first by the names
 * the writer knows, remove_known); one the file system refuses to remove
 * yet is left over: listed in w->left, and not a failure. Its removal is
 * retried by every later write, since neither ..data nor ..history names
 * it. */
static int retire_dir(writer *w, const char *name, int fd)
{
  long long sec = 0;
  long nsec = 0;
  struct timespec now;
  long at;

  if ((fd >= 0 ? (remove_known(w, name, fd) == 0 ? 0 : aw_remove_open_dir(w->tfd, name, fd, w->err))
               : aw_remove_tree(w->tfd, name, DT_DIR, w->err)) == 0) {
    if ((at = aw_history_find(&w->left, name)) >= 0)
      aw_history_remove(&w->left, (size_t)at);
    return 0;
  }
  if (w->err->kind != AW_KIND_SYSTEM || !is_leftover_errno(w->err->errnum))
    return -1;
  if (!w->left_errno) {   /* the first one: what the caller is told */
    w->left_errno = w->err->errnum;
    snprintf(w->left_first, sizeof w->left_first, "%s", name);
  }
  w->err->kind = AW_KIND_NONE;
  if (aw_history_find(&w->left, name) >= 0)
    return 0;   /* left by an earlier write */
  if (clock_gettime(CLOCK_REALTIME, &now) == 0) {
    sec = (long long)now.tv_sec;
    nsec = now.tv_nsec;
  }
  if (aw_history_insert(&w->left, w->left.n, name, sec, nsec) < 0)
    return aw_fail_sys(w->err, "allocate", NULL, ENOMEM);
  return 0;
}

/* The leftovers listed that are still there (an earlier write's, gone by
 * another hand, drop out); -1 only on a failure to read. */
static int load_leftovers(writer *w)
{
  size_t i = 0;
  struct stat st;

  if (!w->left_seen)
    return 0;
  if (aw_leftovers_load(&w->left, w->tfd, w->err) < 0)
    return -1;
  while (i < w->left.n)
    if (fstatat(w->tfd, w->left.v[i].name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode))
      aw_history_remove(&w->left, i);
    else
      i++;
  return 0;
}

/* The version directories that neither ..data nor ..history names are
 * orphans (a crashed writer's, or left over by an earlier write): removed,
 * or left over again. Kept versions stay. Also settles how many versions
 * this write keeps. */
static int remove_orphans(writer *w)
{
  size_t i;

  if (w->history_seen && aw_history_load(&w->hist, w->tfd, w->cur, w->err) < 0)
    return -1;
  if (load_leftovers(w) < 0)
    return -1;
  for (i = 0; i < w->candidates.n; i++) {
    const char *name = w->candidates.v[i].name;
    if (strcmp(name, w->cur) != 0 && aw_history_find(&w->hist, name) < 0 &&
        retire_dir(w, name, -1) < 0)
      return -1;
  }
  w->keep = aw_history_keep_count(&w->hist, w->cur, w->opts->keep);
  return 0;
}

/* Reads the target once: repairs what a crashed writer left, and notes
 * every other entry for the checks and link updates that follow; then
 * reads ..data (open_current) when the listing met it, and removes the
 * orphans, which only ..data's name tells from the current version. */
static int recover(writer *w)
{
  aw_dir dir;
  union {   /* aligned as the records read from it must be */
    char b[AW_DIR_SMALL];
    uint64_t align;
  } buf;    /* a target of a few names: no allocation */
  const char *name;
  unsigned char type;
  int r, rc = 0;

  if (aw_dir_open_in(&dir, w->tfd, buf.b, sizeof buf.b) < 0)
    return fail_errno(w, "read target directory", NULL);
  while ((r = aw_dir_next(&dir, &name, &type)) > 0) {
    if (strcmp(name, AW_DATA_NAME) == 0)
      w->data_seen = 1;
    else if ((rc = recover_entry(w, name, type)) < 0)
      break;
  }
  if (r < 0)
    rc = fail_errno(w, "read target directory", NULL);
  aw_dir_close(&dir);
  names_sort(&w->names);
  return rc < 0 || open_current(w) < 0 ? -1 : remove_orphans(w);
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
    [FOREIGN_FILE] = "it is a file the writer did not create",
    [FOREIGN_DIR] = "it is a directory the writer did not create",
    [FOREIGN_LINK] = "it is a symlink the writer did not create",
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
/* 5. Build the next version                                           */
/* ------------------------------------------------------------------ */

/* Opens directory `name`, just made in `parent` with mode 0755 less the
 * umask (the caller then sets 0755 exactly). A umask that takes the
 * owner's read or search bit (0777, 0577) leaves a directory that only
 * root may open: then it gets its mode first, never through a symlink,
 * and is opened again. */
static int open_new_dir(int parent, const char *name)
{
  int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0 && errno == EACCES) {
    if (fchmodat(parent, name, 0755, AT_SYMLINK_NOFOLLOW) < 0) {
      errno = EACCES;
      return -1;
    }
    fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  }
  return fd;
}

/* `n` decimal digits of v at p. */
static char *put_digits(char *p, long v, int n)
{
  int i;
  for (i = n - 1; i >= 0; i--, v /= 10)
    p[i] = (char)('0' + v % 10);
  return p + n;
}

/* "..YYYY_MM_DD_HH_MM_SS.nnnnnnnnn": by hand, as snprintf's formatting
 * was a sixth of a one-file write's instructions; snprintf for a year
 * beyond four digits. */
static void version_name(char *buf, size_t size, const struct tm *tm, long nsec)
{
  char *p = buf;
  int year = tm->tm_year + 1900;

  if (year < 0 || year > 9999 || size < 32) {
    snprintf(buf, size, "..%04d_%02d_%02d_%02d_%02d_%02d.%09ld", year, tm->tm_mon + 1,
             tm->tm_mday, tm->tm_hour, tm->tm_min, tm->tm_sec, nsec);
    return;
  }
  *p++ = '.';
  *p++ = '.';
  p = put_digits(p, year, 4);
  *p++ = '_';
  p = put_digits(p, tm->tm_mon + 1, 2);
  *p++ = '_';
  p = put_digits(p, tm->tm_mday, 2);
  *p++ = '_';
  p = put_digits(p, tm->tm_hour, 2);
  *p++ = '_';
  p = put_digits(p, tm->tm_min, 2);
  *p++ = '_';
  p = put_digits(p, tm->tm_sec, 2);
  *p++ = '.';
  p = put_digits(p, nsec, 9);
  *p = '\0';
}

/* UTC of `t` into tm's date and time fields (the ones version_name reads):
 * the civil-from-days arithmetic for years 1970-9999, gmtime_r beyond
 * (its time-zone lock and bookkeeping were 300 instructions of a one-file
 * write). */
static void utc_time(time_t t, struct tm *tm)
{
  long long days, secs, z, era, doe, yoe, doy, mp;

  if (t < 0 || (long long)t > 253402300799LL) {   /* 9999-12-31 23:59:59 */
    gmtime_r(&t, tm);
    return;
  }
  days = (long long)t / 86400;
  secs = (long long)t % 86400;
  tm->tm_hour = (int)(secs / 3600);
  tm->tm_min = (int)(secs / 60 % 60);
  tm->tm_sec = (int)(secs % 60);
  z = days + 719468;   /* days since 0000-03-01 */
  era = z / 146097;
  doe = z - era * 146097;
  yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  mp = (5 * doy + 2) / 153;   /* months since March */
  tm->tm_mday = (int)(doy - (153 * mp + 2) / 5 + 1);
  tm->tm_mon = (int)(mp < 10 ? mp + 2 : mp - 10);
  tm->tm_year = (int)(yoe + era * 400 + (tm->tm_mon < 2)) - 1900;
}

/* The version directory, made 0777 less the umask, is inspected once per
 * write (fstat): where it did not get exactly that, the file system
 * applies a umask of its own (sshfs: the server's) or keeps no modes
 * (ntfs-3g: 0777), so no file is created with its mode trusted to the
 * process's umask (own_umask: each gets an fchmod). Then it gets 0755,
 * exactly, and checked: a file system that does not keep modes fails
 * here, before any file. Under umask 022 it is 0755 at once: no call but
 * the fstat. */
static int check_version_mode(writer *w)
{
  struct stat st;
  int mask = aw_umask();
  unsigned mode;

  if (w->ignore_modes)
    return 0;
  if (fstat(w->vfd, &st) < 0)
    return fail_errno(w, "inspect", w->next);
  mode = (unsigned)st.st_mode & 07777;
  if (mask < 0 || mode != (0777u & ~(unsigned)mask))
    w->own_umask = 1;
  if (mode == 0755)
    return 0;
  return check_modes(w, w->vfd, 1, 0755, NULL, "set mode of", w->next, strlen(w->next));
}

static int make_version_dir(writer *w)
{
  struct timespec ts;
  struct tm tm;
  int attempt;

  /* The name is the time; on a clash (same nanosecond, or the clock
   * went back onto the current name) try the next nanosecond. */
  clock_gettime(CLOCK_REALTIME, &ts);
  for (attempt = 0;; attempt++) {
    utc_time(ts.tv_sec, &tm);
    version_name(w->next, sizeof w->next, &tm, (long)ts.tv_nsec);
    errno = EEXIST;
    if (strcmp(w->next, w->cur) != 0 && mkdirat(w->tfd, w->next, 0777) == 0)
      break;
    if (errno != EEXIST || attempt == 1000) {
      w->next[0] = '\0';
      return fail_errno(w, "create version directory", NULL);
    }
    if (++ts.tv_nsec == 1000000000L) {
      ts.tv_nsec = 0;
      ts.tv_sec++;
    }
  }
  w->vfd = open_new_dir(w->tfd, w->next);
  if (w->vfd < 0)
    return fail_errno(w, "open version directory", w->next);
  return check_version_mode(w);
}

/* Makes the deepest open directory the next version's directory of `e`
 * (creating what is missing, mode 0755 whatever the umask); returns the
 * offset of the file's name in e->path. */
static long enter_parent(writer *w, const aw_entry *e)
{
  size_t dlen = e->dir_len, end;

  aw_dirs_leave(&w->dirs, e->path, dlen);
  while (aw_dirs_next(&w->dirs, e->path, dlen, w->rel, &end)) {
    int fd, parent = aw_dirs_top(&w->dirs);
    if (mkdirat(parent, w->rel, 0755) < 0 || (fd = open_new_dir(parent, w->rel)) < 0)
      return aw_fail_sys_len(w->err, "create directory", e->path, end, errno);
    if (aw_dirs_push(&w->dirs, fd, e->path, end, w->err) < 0) {
      close(fd);
      return -1;
    }
    if (!w->ignore_modes && (w->own_umask || aw_umask_clears(0755)) && fchmod(fd, 0755) < 0)
      return fail_mode(w, "set mode of directory", e->path, end);
  }
  return dlen ? (long)dlen + 1 : 0;
}

static int write_file(writer *w, aw_entry *e, int dfd, const char *name)
{
  const aw_file *f = e->file;
  const char *step;
  /* Created with its mode when nothing changes it afterwards (no owner
   * to set, no bit the umask clears) and the owner may write it (a file
   * system that reopens a new file to write it, as some FUSE ones do,
   * would refuse 0444); else created 0600 and its mode set after the
   * owner. Saves an fchmod per file (docs/performance.md). With
   * ignore_modes the mode is only asked here (the umask applies). */
  int direct = w->ignore_modes ||
               (!w->own_umask && f->uid < 0 && f->gid < 0 && (e->mode & ~0777u) == 0 &&
                (e->mode & 0200) && !aw_umask_clears(e->mode));
  int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                  direct ? (mode_t)e->mode : 0600);

  if (fd < 0)
    return fail_errno(w, "create file", e->path);
  step = "write file";
  if (e->source && aw_source_copy(fd, e, &w->prog, w->err) < 0) {
    close(fd);
    return -1;
  }
  if (!e->source && aw_write_all(fd, f->data, f->size) < 0)
    goto fail;
  step = "set owner of";
  if ((f->uid >= 0 || f->gid >= 0) &&
      fchown(fd, f->uid >= 0 ? (uid_t)f->uid : (uid_t)-1,
             f->gid >= 0 ? (gid_t)f->gid : (gid_t)-1) < 0)
    goto fail;
  /* after chown, which may clear bits; checked (fstat) where an owner
   * was given */
  if ((!direct || f->uid >= 0 || f->gid >= 0) &&
      check_modes(w, fd, !direct, e->mode, f, "set mode of", e->path, e->len) < 0) {
    close(fd);
    return -1;
  }
  step = "set time of";
  if (e->source && aw_source_stamp(fd, e) < 0)   /* the source's mtime */
    goto fail;
  step = "sync file";
  if (w->sync == AW_SYNC_FILES && aw_sync_file(fd) < 0)
    goto fail;
  if (close(fd) < 0)
    return fail_errno(w, "close file", e->path);
  return 0;

fail:
  fail_errno(w, step, e->path);
  close(fd);
  return -1;
}

/* An unchanged file is hard-linked from the current version: no copy of
 * its bytes. Falls back to writing where a link is not possible. */
/* The directory of `e` in the version files are linked from (w->lfd),
 * opened one element at a time relative to its parent, never through a
 * symlink: its descriptor, or -1 with errno. The files are linked in plan
 * order, so each directory is opened once. */
static int link_parent(writer *w, const aw_entry *e)
{
  return aw_dirs_enter(&w->ldirs, e->path, e->dir_len, w->rel);
}

static int place_file(writer *w, aw_entry *e)
{
  long off = enter_parent(w, e);
  int dfd, lfd;

  if (off < 0)
    return -1;
  dfd = aw_dirs_top(&w->dirs);
  if (e->same && w->lfd >= 0) {
    if ((lfd = link_parent(w, e)) >= 0 && linkat(lfd, e->path + off, dfd, e->path + off, 0) == 0) {
      e->linked = 1;
      if (w->prog.fn)
        aw_progress_file(&w->prog, e->size);
      return 0;   /* the same inode: its identity is still settled */
    }
    if (w->link_only || (errno != EXDEV && errno != EMLINK && errno != EPERM &&
                         errno != ENOTSUP && errno != ENAMETOOLONG))
      return fail_errno(w, "link unchanged file", e->path);
  }
  e->settled = 0;
  if (write_file(w, e, dfd, e->path + off) < 0)
    return -1;
  if (w->prog.fn)
    aw_progress_file(&w->prog, e->size);
  return 0;
}

/* AW_SYNC_FILES: the files hard-linked from the current version were
 * written by an earlier write, perhaps one without sync: fsync them too.
 * After the whole build, so that the links' own journal entries are
 * committed by the first fsync, not one each. */
static int sync_linked_files(writer *w)
{
  size_t i;
  for (i = 0; i < w->plan.n; i++) {
    const aw_entry *e = &w->plan.entries[i];
    int fd;
    if (!e->linked)
      continue;
    fd = openat(w->vfd, e->path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0 || aw_sync_file(fd) < 0) {
      fail_errno(w, "sync file", e->path);
      if (fd >= 0)
        close(fd);
      return -1;
    }
    close(fd);
  }
  return 0;
}

/* Makes the version durable before the swap: one syncfs of its file
 * system, or the fsync of each file (written ones fsync'd before their
 * close), each directory (as the stack closes it), then the version
 * directory itself, with the drive's cache emptied (aw_sync_barrier). */
static int sync_version(writer *w)
{
  if (w->sync == AW_SYNC_FS && aw_sync_fs(w->vfd) < 0)
    return fail_errno(w, "sync version", w->next);
  if (w->sync != AW_SYNC_FILES)
    return 0;
  if (w->dirs.sync_errno)
    return aw_fail_sys(w->err, "sync directory of", w->next, w->dirs.sync_errno);
  if (sync_linked_files(w) < 0)
    return -1;
  if (aw_sync_barrier(w->vfd) < 0)
    return fail_errno(w, "sync version", w->next);
  return 0;
}

static int build_version(writer *w)
{
  size_t i;

  if (make_version_dir(w) < 0 || aw_dirs_push(&w->dirs, w->vfd, "", 0, w->err) < 0 ||
      (w->lfd >= 0 && aw_dirs_push(&w->ldirs, w->lfd, "", 0, w->err) < 0))
    return -1;
  w->dirs.sync = w->sync == AW_SYNC_FILES;
  for (i = 0; i < w->plan.n; i++)
    if (place_file(w, &w->plan.entries[i]) < 0)
      return -1;
  aw_dirs_close(&w->ldirs);   /* level 0 is lfd, closed with the writer */
  aw_dirs_close(&w->dirs);   /* level 0 is vfd, closed with the writer */
  w->dirs.sync = 0;
  return sync_version(w);
}

/* ------------------------------------------------------------------ */
/* 6-8. Swap, links, old version                                       */
/* ------------------------------------------------------------------ */

static int sync_target(writer *w)
{
  if (w->sync && (w->sync == AW_SYNC_FILES ? aw_sync_barrier(w->tfd) : aw_sync_file(w->tfd)) < 0)
    return fail_errno(w, "sync target directory", NULL);
  return 0;
}

static int swap_data(writer *w)
{
  if (symlinkat(w->next, w->tfd, AW_DATA_TMP_NAME) < 0)
    return fail_link(w, AW_DATA_TMP_NAME, sizeof AW_DATA_TMP_NAME - 1);
  w->tmp_made = 1;
  if (renameat(w->tfd, AW_DATA_TMP_NAME, w->tfd, AW_DATA_NAME) < 0)
    return fail_errno(w, "swap", AW_DATA_NAME);
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
  char target[LINK_PREFIX_LEN + AW_MAX_ELEMENT + 1];   /* "..data/<name>" */
  const char *name = target + LINK_PREFIX_LEN;         /* the link's own name */

  memcpy(target, LINK_PREFIX, LINK_PREFIX_LEN);
  for (i = 0; i < w->plan.n; i++) {
    const aw_entry *e = &w->plan.entries[i];
    if (!is_new_top(&w->plan, i) || names_kind(&w->names, e->path, e->top_len) == OURS)
      continue;
    memcpy(target + LINK_PREFIX_LEN, e->path, e->top_len);
    target[LINK_PREFIX_LEN + e->top_len] = '\0';
    if (symlinkat(target, w->tfd, name) < 0) {
      int ours;
      if (errno != EEXIST)
        return fail_link(w, name, e->top_len);
      if ((ours = is_our_link(w->tfd, name)) < 0)
        return fail_errno(w, "read link", name);
      if (!ours)
        return conflict(w, name, e->top_len, "an entry appeared there during the write");
      continue;
    }
    changes++;
  }
  for (i = 0; i < w->names.n; i++) {
    const char *old = w->names.v[i].name;
    if (w->names.v[i].kind != OURS || aw_plan_has_top(&w->plan, old, strlen(old)))
      continue;
    if (unlinkat(w->tfd, old, 0) < 0 && errno != ENOENT)
      return fail_errno(w, "remove link", old);
    changes++;
  }
  return changes;
}

/* The writer's scratch error, allocated by its first use (4 KiB: a
 * failure's, never a successful write's), or NULL when out of memory. */
static aw_error *later_error(writer *w)
{
  if (!w->later && (w->later = malloc(sizeof *w->later)) != NULL)
    memset(w->later, 0, sizeof *w->later);
  return w->later;
}

/* After the swap a failing step does not stop the ones after it. Until
 * one fails, w->err is the caller's error, which so keeps the first
 * failure; the steps after it record theirs in the scratch error (out of
 * memory for it: in the caller's, which then tells the last failure
 * rather than the first; the write still fails, every step still runs). */
static void keep_first_error(writer *w, int step_rc, int *rc)
{
  if (step_rc < 0 && *rc == 0) {
    aw_error *later = later_error(w);
    *rc = -1;
    if (later)
      w->err = later;
  }
}

/* After the swap: the history decides which kept versions stay
 * (aw_history_after_swap: keep, the reader grace, a rollback's version)
 * and changes its record first; then the versions it no longer lists are
 * removed (a crash between leaves orphans, which recovery removes), and
 * the superseded version unless it is kept. */
static void retire_versions(writer *w, int cfd, int *rc)
{
  size_t old_n, i;
  int saved = aw_history_after_swap(&w->hist, w->tfd, w->keep, w->rolled_to, w->sync, &old_n,
                                    w->err);

  keep_first_error(w, saved, rc);
  for (i = w->hist.n; saved == 0 && i < old_n; i++)   /* the superseded one: below */
    if (strcmp(w->hist.v[i].name, w->cur) != 0)
      keep_first_error(w, retire_dir(w, w->hist.v[i].name, -1), rc);
  if (w->cur[0] && aw_history_find(&w->hist, w->cur) < 0)   /* removed through cfd */
    keep_first_error(w, retire_dir(w, w->cur, cfd), rc);
  else if (cfd >= 0)
    close(cfd);
}

/* Saves the list of leftovers when it changed (or removes the record when
 * none is left), and tells the caller. A failure to save it is not the
 * write's: the record only informs, and the next write rebuilds it. */
static void note_leftovers(writer *w)
{
  aw_error *scratch;

  if ((w->left.n > 0 || w->left_seen) && (scratch = later_error(w)) != NULL)
    aw_leftovers_save(&w->left, w->tfd, scratch);
  if (w->left.n > 0)
    aw_result_set_leftovers(w->res, w->left.n, w->left_first[0] ? w->left_first
                                                                : w->left.v[0].name,
                            w->left_errno);
}

/* Swaps ..data to the built version, then makes the rest agree with it:
 * links, old version, manifest, sync. Once ..data is swapped the new
 * version is what readers see: every later step runs even when one fails,
 * and the first failure is the one reported. */
static int publish(writer *w)
{
  aw_error *first = w->err;
  int rc = 0, cfd;

  if (swap_data(w) < 0)   /* 6 */
    return -1;
  keep_first_error(w, sync_target(w), &rc);
  keep_first_error(w, update_links(w), &rc);   /* 7 */
  if (w->lfd == w->cfd)
    w->lfd = -1;
  cfd = w->cfd;   /* 8: retire_versions closes it */
  w->cfd = -1;
  retire_versions(w, cfd, &rc);
  note_leftovers(w);
  aw_compare_after_publish(&w->cmp, w->tfd, w->next, w->manifest_type);
  keep_first_error(w, sync_target(w), &rc);
  /* without a scratch error (out of memory), a later step that failed and
   * recovered (a leftover) may have cleared the caller's: never report a
   * failure without its reason */
  if (rc < 0 && first->kind == AW_KIND_NONE)
    aw_fail_sys(first, "allocate", NULL, ENOMEM);
  w->err = first;
  return rc;
}

/* The target already holds the payload: save what the comparison learned,
 * and repair visible links that went missing. */
static int keep_current(writer *w)
{
  int fixed;

  aw_compare_save_manifest(&w->cmp, w->cur, 1);
  if ((fixed = update_links(w)) < 0 || (fixed > 0 && sync_target(w) < 0))
    return -1;
  note_leftovers(w);
  return 0;
}

/* ------------------------------------------------------------------ */
/* The whole write                                                     */
/* ------------------------------------------------------------------ */

/* Undoes what an unpublished write made; keeps the first error. */
static void abandon(writer *w)
{
  if (w->vfd >= 0) {
    close(w->vfd);
    w->vfd = -1;
  }
  if (w->tmp_made)
    unlinkat(w->tfd, AW_DATA_TMP_NAME, 0);
  if (w->next[0] && !w->published) {
    aw_error *scratch = later_error(w);
    /* out of memory for it: the version stays, an orphan the next write's
     * recovery removes, rather than a failure of its removal overwriting
     * the error this write reports */
    if (scratch)
      aw_remove_tree(w->tfd, w->next, DT_DIR, scratch);
  }
}

void aw_options_init(aw_options *opts)
{
  memset(opts, 0, sizeof *opts);   /* reserved members too (aw.h's ABI policy) */
  opts->sync = AW_SYNC_ON;
  opts->timeout_ms = -1;
  opts->keep = 0;
  opts->changes = 0;
}

void aw_options_set_checksum(aw_options *opts, int checksum)
{
  opts->checksum = checksum != 0;
}

void aw_options_set_progress(aw_options *opts, aw_progress_fn fn, void *ctx)
{
  opts->progress = fn;
  opts->progress_ctx = fn ? ctx : NULL;
}

void aw_options_set_modes(aw_options *opts, int modes)
{
  opts->ignore_modes = !modes;
}

static void writer_init(writer *w, const char *target, const aw_options *opts,
                        aw_result *res, aw_error *err)
{
  memset(w, 0, sizeof *w);
  w->target = target;
  w->opts = opts;
  w->sync = aw_sync_method(opts->sync);
  w->err = err;
  w->res = res;
  w->tfd = w->cfd = w->vfd = w->lfd = -1;
  aw_compare_init(&w->cmp, &w->plan, NULL, err);   /* rel: writer_rel */
  w->cmp.checksum = opts->checksum != 0;
  w->prog.fn = opts->progress;
  w->prog.ctx = opts->progress_ctx;
  w->ignore_modes = opts->ignore_modes != 0;
  w->cmp.ignore_modes = w->ignore_modes;
  memset(res, 0, sizeof *res);
  err->kind = AW_KIND_NONE;
  err->source = NULL;
}

/* Closes and frees what the write holds; closing the target releases the
 * lock. Tells the caller the version published, or the current one. */
static int writer_finish(writer *w, int rc)
{
  w->dirs.sync = 0;   /* a failed build's directories need no fsync */
  aw_dirs_free(&w->dirs);
  aw_dirs_free(&w->ldirs);
  if (rc < 0)
    abandon(w);
  w->res->changed = w->published;   /* also after a failure past the swap */
  if (w->published || rc == 0) {   /* both fit: NAME_MAX + 1 */
    const char *v = w->published ? w->next : w->cur;
    size_t len = strlen(v);
    if (len >= sizeof w->res->version)
      len = sizeof w->res->version - 1;
    memcpy(w->res->version, v, len);
    w->res->version[len] = '\0';
  }
  if (w->vfd >= 0)
    close(w->vfd);
  if (w->cfd >= 0)
    close(w->cfd);
  if (w->lfd >= 0 && w->lfd != w->cfd)
    close(w->lfd);
  if (w->tfd >= 0)
    close(w->tfd);
  names_free(&w->names);
  names_free(&w->candidates);
  aw_history_free(&w->hist);
  aw_history_free(&w->left);
  aw_compare_free(&w->cmp);
  aw_plan_free(&w->plan);
  free(w->rel);
  free(w->later);
  return rc;
}

/* Allocates w->rel, the relative-path scratch (the comparison's too): whole
 * (AW_MAX_PATH + NAME_MAX + 2 bytes) with `whole` (a walk of a version's
 * files: changes, a rollback; a source's path); otherwise as long as a
 * write's uses of it need: a directory of the plan and a name listed in
 * it (the comparison's), or an element of a path (building, removing),
 * which for the usual short paths fits the allocator's per-thread cache
 * (the 8.5 KiB of scratch the writer had, with its error, made a large
 * request of every write: glibc then consolidates its fast bins). */
static int writer_rel(writer *w, int whole)
{
  size_t longest = AW_MAX_PATH, i;

  if (!whole)
    for (longest = AW_MAX_ELEMENT, i = 0; i < w->plan.n; i++)
      if (w->plan.entries[i].len > longest)
        longest = w->plan.entries[i].len;
  w->cmp.rel_size = longest + NAME_MAX + 2;
  if (!(w->rel = malloc(w->cmp.rel_size)))
    return aw_fail_sys(w->err, "allocate", NULL, ENOMEM);
  w->rel[0] = '\0';
  w->cmp.rel = w->rel;
  return 0;
}

static int add_change(writer *w, const char *path, size_t len, enum aw_change_kind kind)
{
  return aw_result_add_change(w->res, path, len, kind, &w->changes_cap, w->err);
}

/* With opts->changes, before the build: the plan against the current
 * version's files (listed only now, only when asked). A plan entry found
 * there is changed unless the comparison marked it the same, or, for a
 * rollback (link_only), unless it is the same file. */
static int note_changes(writer *w)
{
  aw_pathlist cur;
  size_t i = 0, j = 0;
  int rc = 0;

  if (!w->opts->changes)
    return 0;
  memset(&cur, 0, sizeof cur);
  if (w->cfd >= 0 && aw_list_files(w->cfd, 0, &cur, w->rel, w->err) < 0)
    return -1;
  while (rc == 0 && (i < w->plan.n || j < cur.n)) {
    const aw_entry *e = i < w->plan.n ? &w->plan.entries[i] : NULL;
    const char *old = j < cur.n ? cur.v[j] : NULL;   /* one of e, old is set */
    int c = !e ? 1 : !old ? -1 : aw_path_cmp(e->path, e->len, old, strlen(old));
    int same;
    if (c > 0 || !e) {
      if (old)
        rc = add_change(w, old, strlen(old), AW_REMOVED);
    } else if (c < 0)
      rc = add_change(w, e->path, e->len, AW_ADDED);
    else if ((same = w->link_only ? aw_same_file(w->lfd, w->cfd, e->path) : e->same) < 0)
      rc = fail_errno(w, "compare", e->path);
    else if (!same)
      rc = add_change(w, e->path, e->len, AW_CHANGED);
    i += c <= 0;
    j += c >= 0;
  }
  aw_pathlist_free(&cur);
  return rc;
}

/* Builds and publishes the plan, every file marked same linked from lfd. */
static int build_and_publish(writer *w)
{
  if (note_changes(w) < 0 ||
      aw_history_before_swap(&w->hist, w->tfd, w->cfd >= 0 ? w->cur : "", w->keep, w->sync,
                             w->err) < 0 ||   /* 5: listed as kept before the swap */
      build_version(w) < 0)                   /* 5 */
    return -1;
  return publish(w);   /* 6-8 */
}

/* The writer's state (1.5 KiB) is on the stack of aw_publish_sources and
 * aw_rollback, its path scratch and its error for later failures on the
 * heap: hosts call the library on small thread stacks (docs/stack.md). */
int aw_publish_sources(const char *target, const aw_file *files, const char *const *sources,
                       size_t nfiles, const aw_options *opts, aw_result *res, aw_error *err)
{
  writer state, *w = &state;
  aw_options defaults;
  int same;

  if (!opts) {
    aw_options_init(&defaults);
    opts = &defaults;
  }
  writer_init(w, target, opts, res, err);
  if (aw_plan_build(&w->plan, files, sources, nfiles, err) < 0 ||   /* 0 */
      writer_rel(w, w->plan.sources > 0 || opts->changes) < 0 ||
      open_target(w) < 0 ||                                         /* 1 */
      recover(w) < 0 ||                                              /* 1, 2 */
      check_visible_names(w) < 0 ||                                  /* 3 */
      (same = aw_compare_current(&w->cmp, w->tfd, w->cfd, w->cur,
                                 w->manifest_type)) < 0)             /* 4 */
    return writer_finish(w, -1);
  if (same)
    return writer_finish(w, keep_current(w));   /* 4: links repaired, manifest */
  w->lfd = w->cfd;
  return writer_finish(w, build_and_publish(w));
}

int aw_publish(const char *target, const aw_file *files, size_t nfiles,
               const aw_options *opts, aw_result *res, aw_error *err)
{
  return aw_publish_sources(target, files, NULL, nfiles, opts, res, err);
}

int aw_write(const char *target, const aw_file *files, size_t nfiles,
             const aw_options *opts, int *changed, aw_error *err)
{
  aw_result res;
  int rc = aw_publish(target, files, nfiles, opts, &res, err);

  if (changed)
    *changed = res.changed;
  aw_result_free(&res);
  return rc;
}

/* ------------------------------------------------------------------ */
/* Rollback: a kept version published again                            */
/* ------------------------------------------------------------------ */

static int no_version(writer *w, const char *version, const char *why)
{
  return aw_fail(w->err, AW_KIND_NO_VERSION, "roll back to", version,
                 version ? strlen(version) : 0, why);
}

/* The kept version to roll back to: `version`, or the newest kept one. */
static const char *choose_version(writer *w, const char *version)
{
  size_t i;

  if (version && version[0]) {
    if (strcmp(version, w->cur) == 0 || aw_history_find(&w->hist, version) >= 0)
      return version;
    no_version(w, version, "no such version: it is neither the current one nor kept");
    return NULL;
  }
  for (i = 0; i < w->hist.n; i++)
    if (strcmp(w->hist.v[i].name, w->cur) != 0)
      return w->hist.v[i].name;
  no_version(w, NULL, "no version is kept");
  return NULL;
}

/* The plan of a kept version: its files, every one marked same (linked
 * from it, never written). `files` must outlive the plan. */
static int plan_kept_version(writer *w, const char *version, aw_pathlist *list, aw_file **files)
{
  size_t i;

  w->lfd = openat(w->tfd, version, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (w->lfd < 0)
    return errno == ENOENT ? no_version(w, version, "the kept version is gone")
                           : fail_errno(w, "open kept version", version);
  if (aw_list_files(w->lfd, 1, list, w->rel, w->err) < 0)
    return -1;
  if (!(*files = calloc(list->n ? list->n : 1, sizeof **files)))
    return aw_fail_sys(w->err, "allocate", NULL, ENOMEM);
  for (i = 0; i < list->n; i++) {
    (*files)[i].path = list->v[i];
    (*files)[i].path_len = strlen(list->v[i]);
    (*files)[i].mode = 0644;   /* unused: a link keeps the file's own */
    (*files)[i].uid = (*files)[i].gid = -1;
  }
  if (aw_plan_build(&w->plan, *files, NULL, list->n, w->err) < 0)
    return -1;
  for (i = 0; i < w->plan.n; i++)
    w->plan.entries[i].same = 1;
  w->link_only = 1;
  return 0;
}

int aw_rollback(const char *target, const char *version, const aw_options *opts,
                aw_result *res, aw_error *err)
{
  writer state, *w = &state;
  aw_options defaults;
  aw_pathlist list;
  aw_file *files = NULL;
  const char *chosen;
  int rc = -1;

  if (!opts) {
    aw_options_init(&defaults);
    defaults.keep = AW_KEEP_AS_IS;
    opts = &defaults;
  }
  writer_init(w, target, opts, res, err);
  memset(&list, 0, sizeof list);
  if (writer_rel(w, 1) == 0 && open_target(w) == 0 && recover(w) == 0 &&
      (chosen = choose_version(w, version)) != NULL) {
    if (strcmp(chosen, w->cur) == 0)
      rc = 0;   /* already the current version */
    else if (snprintf(w->rolled_to, sizeof w->rolled_to, "%s", chosen) > 0 &&
             plan_kept_version(w, chosen, &list, &files) == 0 &&
             check_visible_names(w) == 0)
      rc = build_and_publish(w);
  }
  rc = writer_finish(w, rc);
  free(files);
  aw_pathlist_free(&list);
  return rc;
}
