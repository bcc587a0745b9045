/*
 * aw_internal.h - what the core's files share and nobody else sees.
 */
#ifndef AW_INTERNAL_H
#define AW_INTERNAL_H

#include "aw.h"
#include "aw_sys.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* What follows is internal: hidden from the shared library and the module
 * whatever the compiler flags (a definition takes the visibility of its
 * first declaration, this one). */
#if defined(__GNUC__) && __GNUC__ >= 4
#pragma GCC visibility push(hidden)
#endif

/* A macro's value as a string literal, for messages that name a limit:
 * AW_STR(AW_MAX_ELEMENT) is "255". */
#define AW_STR_(x) #x
#define AW_STR(x) AW_STR_(x)

#define AW_KEY_SIZE 16
#define AW_DIGEST_SIZE 16

/* What the manifest remembers of a file or directory of a version: the
 * fields any change of its content (or of a directory's entries) moves.
 * ctime is not among them: a hard link to the next version changes it. */
typedef struct aw_ident {
  uint64_t dev, ino, size;
  int64_t mtime_sec;
  int64_t mtime_nsec;
} aw_ident;

/* One payload file after validation: its cleaned, NUL-terminated path
 * (in the plan's arena) and the caller's spec. */
typedef struct aw_entry {
  /* What the digest pass and the comparison read, in the first 128 bytes
   * (two cache lines): at 100,000 files the entries do not stay cached. */
  const char *path;       /* cleaned: no "//", no "./", no trailing "/" */
  size_t len;
  size_t dir_len;         /* length of the directory part (aw_dir_len) */
  const char *data;       /* file->data, read from the entry alone */
  uint64_t size;          /* its size: the data's, or its source's */
  unsigned mode;          /* the file's mode: the spec's, or its source's */
  unsigned char same;     /* the current version holds exactly this file */
  unsigned char hashed;   /* digest holds the keyed digest of the data */
  unsigned char settled;  /* id: the current version's file, settled (manifest) */
  unsigned char linked;   /* placed by a hard link from the current version */
  long long uid, gid;     /* the spec's owner (-1: none), beside mode and
                             size: the comparison reads the entry only */
  const char *source;     /* the file its bytes come from, or NULL: data */
  unsigned char digest[AW_DIGEST_SIZE];
  aw_ident id;
  /* the rest */
  size_t top_len;         /* length of the first element */
  const aw_file *file;    /* caller's spec: data, size, mode, owner */
  aw_ident src;           /* a source's identity, taken under the lock */
  unsigned char src_settled; /* src is settled: the manifest may record it */
} aw_entry;

/* A validated payload, sorted element-wise (see aw_path_cmp). */
typedef struct aw_plan {
  aw_entry *entries;
  size_t n;
  char *arena;            /* the cleaned paths */
  size_t sources;         /* entries whose file names a source */
} aw_plan;

/* ..data's length, for messages that name it by pointer and length. */
#define AW_DATA_NAME_LEN (sizeof AW_DATA_NAME - 1)

/* ---- aw_error.c: recording a failure once, where it happens ---- */
int aw_fail_sys(aw_error *err, const char *step, const char *path, int errnum);
/* The same for the first `len` bytes of `path` (a directory of a payload
 * path, named without copying it out). */
int aw_fail_sys_len(aw_error *err, const char *step, const char *path, size_t len,
                    int errnum);
/* Fills aw_result's leftovers (aw_changes.c; aw_result_leftovers reads them). */
void aw_result_set_leftovers(aw_result *res, size_t n, const char *first, int errnum);
/* Names the source a failure concerns (aw_error_source). */
void aw_fail_source(aw_error *err, const char *source);
/* A system failure explained in plain words (`detail`, a static string;
 * NULL: none) rather than the errno's own text: "this file system has no
 * symbolic links". The code stays the errno's name. */
int aw_fail_sys_why(aw_error *err, const char *step, const char *path, size_t len,
                    int errnum, const char *detail);
int aw_fail(aw_error *err, enum aw_kind kind, const char *step,
            const char *path, size_t path_len, const char *detail);

/* ---- aw_path.c: validation and cleaning ---- */
/* `sources` (may be NULL) as aw_publish_sources takes them. */
int aw_plan_build(aw_plan *plan, const aw_file *files, const char *const *sources, size_t nfiles,
                  aw_error *err);
void aw_plan_free(aw_plan *plan);
int aw_path_cmp(const char *a, size_t alen, const char *b, size_t blen);
/* Index of the entry whose path equals `path`, or -1. */
long aw_plan_find(const aw_plan *plan, const char *path, size_t len);
/* Nonzero when some entry lies below directory `dir` (dir + "/..."). */
int aw_plan_has_dir(const aw_plan *plan, const char *dir, size_t len);
/* Nonzero when entry `e` lies below directory `dir` (dir + "/..."). */
int aw_entry_below(const aw_entry *e, const char *dir, size_t len);
/* Nonzero when `name` is the first element of some entry. */
int aw_plan_has_top(const aw_plan *plan, const char *name, size_t len);

/* ---- aw_fs.c: file-system steps relative to directory descriptors ---- */

/* Room for element `n` of an array of `size`-byte elements with `*cap`
 * slots: doubles it (from 16) when full. Returns the array, perhaps moved,
 * or NULL (out of memory) with the old array and *cap untouched. */
void *aw_grow(void *v, size_t n, size_t *cap, size_t size);

/* The chain of open directories from a base (level 0, whose descriptor
 * belongs to someone else) down to the directory of the payload path being
 * handled. The plan is sorted element-wise (aw_path_cmp), so a directory,
 * once left, is never needed again: a stack suffices, and every open is
 * relative to the parent's descriptor (no path walk, no PATH_MAX limit
 * for 4096-byte payload paths). A walk to directory path[0..dlen):
 *
 *   aw_dirs_leave(s, path, dlen);
 *   while (aw_dirs_next(s, path, dlen, name, &end))
 *     open `name` in aw_dirs_top(s), then aw_dirs_push(s, fd, path, end);
 */
typedef struct aw_dirlevel {
  int fd;
  const char *path;          /* a payload path this directory is a prefix of */
  size_t end;                /* the directory's length in that path */
} aw_dirlevel;

typedef struct aw_dirstack {
  aw_dirlevel *v;
  size_t depth, cap;
  int sync;                  /* fsync each level (but 0) before closing it */
  int sync_errno;            /* the first such fsync's failure, or 0 */
} aw_dirstack;

/* err may be NULL (a failure is then errno ENOMEM only). */
int aw_dirs_push(aw_dirstack *s, int fd, const char *path, size_t end, aw_error *err);
/* The descriptor of the deepest open directory. */
int aw_dirs_top(const aw_dirstack *s);
/* Closes the levels (never level 0) that directory path[0..dlen) is not in. */
void aw_dirs_leave(aw_dirstack *s, const char *path, size_t dlen);
/* 1 with the next element of path[0..dlen) below the deepest level in
 * `name` (NUL-terminated; room for AW_MAX_ELEMENT + 1 bytes) and its end in
 * path in *end; 0 when the deepest level is that directory. */
int aw_dirs_next(const aw_dirstack *s, const char *path, size_t dlen, char *name,
                 size_t *end);
/* aw_dirs_leave, then aw_dirs_next's elements opened in turn (O_DIRECTORY,
 * O_NOFOLLOW: never through a symlink) and pushed, `name` the scratch for
 * each: the descriptor of directory path[0..dlen), or -1 with errno. */
int aw_dirs_enter(aw_dirstack *s, const char *path, size_t dlen, char *name);
/* Closes every level but 0 and empties the stack; aw_dirs_free also frees it.
 * With s->sync, leaving and closing fsync each level first. */
void aw_dirs_close(aw_dirstack *s);
void aw_dirs_free(aw_dirstack *s);
/* The length of the directory part of a payload path ("a/b/c" -> 3, "c" -> 0). */
size_t aw_dir_len(const char *path, size_t len);

int aw_is_version_name(const char *name);
int aw_read_data_link(int tfd, char *buf, size_t size, const char *step, aw_error *err);
/* Removes `name` in dirfd, a whole tree if a directory; `type` is its DT_*
 * value when known (DT_UNKNOWN otherwise). Never follows a symlink. */
int aw_remove_tree(int dirfd, const char *name, unsigned char type, aw_error *err);
/* aw_remove_tree of directory `name` already open as `fd` (opened with
 * O_DIRECTORY | O_NOFOLLOW and never listed): saves opening it again.
 * Closes fd. */
int aw_remove_open_dir(int dirfd, const char *name, int fd, aw_error *err);
/* The i-th path of a list a caller knows, with its length; NULL skips it. */
typedef const char *(*aw_path_at)(const void *list, size_t i, size_t *len);
/* Removes directory `name` of `dirfd`, open as `fd`, by the relative paths
 * of files the caller knows it holds (path_at(list, i) for i < n, in
 * aw_path_cmp order), with no listing: each file unlinked through its
 * directory's descriptor (opened one element at a time, O_NOFOLLOW),
 * each directory removed once left. 0 when `name` is gone (fd closed);
 * 1 when anything stood in the way (an entry not known, an element that
 * is no plain name, a removal refused): fd is then still open and never
 * listed, for aw_remove_open_dir to finish and name the failure. */
int aw_remove_known(int dirfd, const char *name, int fd, aw_path_at path_at, const void *list,
                    size_t n, char *elem);
int aw_lock(int fd, long timeout_ms, aw_error *err);
/* A reader retries lock-free while writers' swaps race it; at attempt
 * AW_LOCK_FREE_ATTEMPTS (counted from 0) it waits for the writers' lock,
 * shared, which writers respect: its next attempt is its last. 1 when
 * this call took the lock, 0 when not, -1 (err filled). */
#define AW_LOCK_FREE_ATTEMPTS 8
int aw_reader_lock(int tfd, int attempt, aw_error *err);
int aw_write_all(int fd, const char *data, size_t size);
/* Reads up to `size` bytes of `fd` into buf, retrying after EINTR and
 * short reads, never past `size` (the caller knows the size from fstat:
 * no read to end of file): the count read, short only at end of file, or
 * -1 (errno). */
ssize_t aw_read_full(int fd, char *buf, size_t size);
/* Replaces entry `name` of directory tfd by a regular file of `mode`
 * holding buf: written as `tmp` (a stale one replaced), fsync'd when
 * `sync`, renamed over `name`. 0, or -1 with err filled when err is not
 * NULL (a cache may fail quietly); nothing is left at tmp. */
int aw_replace_file(int tfd, const char *name, const char *tmp, unsigned mode,
                    const char *buf, size_t len, int sync, aw_error *err);
/* Compares the first `size` bytes of the open file `fd` (whose size is
 * `size`) with data, reading into the caller's buffer `buf` of `cap`
 * bytes (not the stack: see docs/stack.md); 1 same, 0 differs, -1 error
 * (errno). */
int aw_same_content(int fd, const char *data, size_t size, char *buf, size_t cap);

/* ---- aw_manifest.c: what the writer remembers of its version ---- */
#define AW_MANIFEST_NAME "..manifest"
#define AW_MANIFEST_TMP_NAME "..manifest_tmp"
enum { AW_M_DIR = 1, AW_M_SETTLED = 2, AW_M_DIGEST = 4, AW_M_SOURCE = 8 };

typedef struct aw_mentry {
  const char *path;        /* not NUL-terminated */
  size_t len;
  unsigned flags;          /* AW_M_*: a directory; id is settled; digest set;
                              src is the settled identity of the file's source */
  aw_ident id;
  unsigned char digest[AW_DIGEST_SIZE];
  aw_ident src;
} aw_mentry;

typedef struct aw_manifest {
  unsigned char key[AW_KEY_SIZE];
  char version[64];        /* the version directory it describes */
  aw_mentry *v;            /* sorted by aw_path_cmp */
  size_t n, cap;
  unsigned char *raw;      /* the file as read; loaded paths point into it */
  size_t raw_len;
} aw_manifest;

void aw_manifest_init(aw_manifest *m);
void aw_manifest_free(aw_manifest *m);
int aw_manifest_new_key(unsigned char key[AW_KEY_SIZE]);
/* 1 when target's manifest is whole and describes `version`; otherwise 0
 * and m is empty. Never an error: the manifest is only a shortcut. */
int aw_manifest_load(aw_manifest *m, int tfd, const char *version);
int aw_manifest_add(aw_manifest *m, const char *path, size_t len, unsigned flags,
                    const aw_ident *id, const unsigned char *digest, const aw_ident *src);
/* Replaces target's manifest with m (tmp + rename) unless `old`, as read,
 * already says exactly that. 0, or -1 (nothing left behind). */
int aw_manifest_save(const aw_manifest *m, const aw_manifest *old, int tfd);

/* ---- aw_read.c: walking a tree ---- */

/* Called for every entry of a walk that is not a directory: `dfd` holds
 * `name` (-1 when the path would pass AW_MAX_PATH), `type` a DT_* value
 * (never DT_UNKNOWN for dfd >= 0), `rel` its path below the walk's top.
 * 0 to go on, -1 to stop (err filled). */
typedef int (*aw_walk_visit)(void *ctx, int dfd, const char *name, unsigned char type,
                             const char *rel, aw_error *err);
/* Walks the tree below directory `dfd` (closed here), depth first in
 * directory order, never through a symlink. `rel` is scratch of
 * AW_MAX_PATH + NAME_MAX + 2 bytes. */
int aw_walk(int dfd, char *rel, aw_walk_visit visit, void *ctx, aw_error *err);

/* ---- aw_changes.c: what a publish changed; a version's files ---- */
typedef struct aw_pathlist {
  char **v;                  /* sorted by aw_path_cmp */
  size_t n, cap;
} aw_pathlist;

/* The regular files below directory `dfd` (not closed). With `strict`, an
 * entry of any other kind is a conflict (a version to roll back to);
 * otherwise it is left out. `rel` is aw_walk's scratch. */
int aw_list_files(int dfd, int strict, aw_pathlist *out, char *rel, aw_error *err);
void aw_pathlist_free(aw_pathlist *l);
int aw_result_add_change(aw_result *res, const char *path, size_t len, enum aw_change_kind kind,
                         size_t *cap, aw_error *err);
/* 1 when `path` below directories adir and bdir is one file, or two with
 * the same bytes, mode and owner; 0 when not (or missing); -1 (errno). */
int aw_same_file(int adir, int bdir, const char *path);

/* ---- aw_history.c: the versions kept after they were superseded ---- */
#define AW_HISTORY_NAME "..history"
#define AW_HISTORY_TMP_NAME "..history_tmp"
#define AW_LEFTOVERS_NAME "..leftovers"
#define AW_LEFTOVERS_TMP_NAME "..leftovers_tmp"

typedef struct aw_history {
  aw_version_info *v;        /* newest first; published times as recorded */
  size_t n, cap;
  int exists;                /* target/..history exists */
  int damaged;               /* it could not be parsed: v lists every version
                                directory but the current one */
} aw_history;

void aw_history_free(aw_history *h);
/* Reads target's record; `cur` is the current version, left out of a list
 * rebuilt for a damaged record. 0, or -1 (AW_KIND_CONFLICT when
 * ..history is not a regular file). */
int aw_history_load(aw_history *h, int tfd, const char *cur, aw_error *err);
/* Replaces the record with h (write, fsync when `sync`, rename), or
 * removes it when h is empty. */
int aw_history_save(const aw_history *h, int tfd, int sync, aw_error *err);
/* The versions left over (not removable yet: a reader's open file on
 * FUSE or NFS, an immutable file), in the same format: read (damaged:
 * empty), replaced (no fsync: the record only informs), or removed when
 * empty. */
int aw_leftovers_load(aw_history *h, int tfd, aw_error *err);
int aw_leftovers_save(const aw_history *h, int tfd, aw_error *err);
long aw_history_find(const aw_history *h, const char *name);
int aw_history_insert(aw_history *h, size_t at, const char *name, long long sec, long nsec);
/* Drops entry `at` (a leftover removed at last). */
void aw_history_remove(aw_history *h, size_t at);
/* With the first `n` entries about to stay and the rest to go: moves
 * the entry named `name`, when it is among those to go, to position n so
 * that it stays too. Returns how many stay. */
size_t aw_history_keep_also(aw_history *h, size_t n, const char *name);
/* When ..data was last swapped: its symlink's mtime. */
int aw_data_link_time(int tfd, long long *sec, long *nsec);

/* The history's part in a write (aw_write.c's steps 2, 5 and 8). How many
 * superseded versions it keeps: opts->keep, or for AW_KEEP_AS_IS as many
 * as are kept now besides `cur`. */
int aw_history_keep_count(const aw_history *h, const char *cur, int keep);
/* Before the swap (5): `cur`, the version about to be superseded ("" when
 * there is none), listed as kept when keep > 0, so that no crash from here
 * on can leave it an orphan; with AW_SYNC_FILES the record and its rename
 * are durable before the swap (syncfs covers them otherwise). */
int aw_history_before_swap(aw_history *h, int tfd, const char *cur, int keep, int sync,
                           aw_error *err);
/* After the swap (8): the list trimmed to what a write with `keep` keeps
 * (the newest `keep`, those superseded within the reader grace, and
 * `also`, a rollback's version), and the record saved when it changed.
 * The versions dropped are left at h->v[h->n .. *old_n) for the writer to
 * remove, after the record: a crash between leaves orphans. */
int aw_history_after_swap(aw_history *h, int tfd, int keep, const char *also, int sync,
                          size_t *old_n, aw_error *err);

/* ---- aw_compare.c: step 4 of a write, comparing with the current version ---- */

/* A directory of the current version, as the comparison saw it. */
typedef struct aw_seen_dir {
  const char *path;          /* a prefix of a plan path; "" the version */
  size_t len;
  aw_ident id;
  int settled;               /* its identity settled: no entry added or removed since */
} aw_seen_dir;

/* What comparing learns of the current version, and the manifest it is
 * kept in. */
typedef struct aw_compare {
  aw_plan *plan;             /* entries get same, hashed, settled, id, digest */
  aw_error *err;
  char *rel;                 /* the writer's scratch path (rel_size bytes: the plan's
                                longest path or AW_MAX_PATH, + NAME_MAX + 2) */
  size_t rel_size;
  int tfd, cfd;              /* target; current version (level 0 of cdirs) */
  const char *cur;           /* the current version's name */
  int manifest_type;         /* what is at ..manifest: 0 none, an S_IF* value */
  int use_manifest;          /* the payload is hashed and a manifest kept */
  int checksum;              /* compare bytes, never trusting the manifest */
  size_t sources;            /* plan entries with a source, looked at */
  int ignore_modes;          /* modes are not compared (aw_options.ignore_modes) */
  unsigned char key[AW_KEY_SIZE];
  aw_manifest old;           /* the current version's, as read */
  int learned;               /* found what the manifest did not say */
  int64_t s0_sec, s0_nsec;   /* the time before the first look */
  aw_seen_dir *seen;
  size_t nseen, seen_cap;
  const char *gone;          /* a directory missing in the current version */
  size_t gone_len;
  aw_dirstack cdirs;         /* open directories of the current version */
  size_t mpos;               /* cursor into old: lookups come in plan order */
  size_t old_files, old_dirs;  /* plan files and seen directories old has */
  char *buf;                 /* where a current file is read into: grown by
                                the reads, to AW_COMPARE_BUF bytes at most */
  size_t buf_cap;
} aw_compare;

#define AW_COMPARE_BUF 65536

void aw_compare_init(aw_compare *c, aw_plan *plan, char *rel, aw_error *err);
/* Marks the plan entries whose file in version `cur` (open as cfd; -1 when
 * there is none) is identical: 1 when it holds exactly the plan, 0 when
 * not, -1 on error (c->err filled). `manifest_type` is what recovery
 * found at ..manifest (0 none, an S_IF* value). */
int aw_compare_current(aw_compare *c, int tfd, int cfd, const char *cur, int manifest_type);
/* Saves the manifest of `version` (the current one after a no-op, with
 * the directories seen; the next one after a publish, without). Failure
 * is harmless: the manifest is only a shortcut. */
void aw_compare_save_manifest(aw_compare *c, const char *version, int with_dirs);
/* After a publish of `version` into target tfd (step 8): its manifest
 * saved when the comparison kept one; otherwise a manifest at ..manifest
 * (`manifest_type` S_IFREG, as recovery found it) removed: it describes a
 * version now gone. A rollback, which compares nothing, comes here too. */
void aw_compare_after_publish(aw_compare *c, int tfd, const char *version, int manifest_type);
void aw_compare_free(aw_compare *c);
struct stat;
/* An identity from a stat; 1 when a stat still shows identity `id`. */
void aw_ident_from(aw_ident *id, const struct stat *st);
int aw_ident_matches(const aw_ident *id, const struct stat *st);

/* ---- aw_source.c: files whose bytes come from a source file ---- */

/* The progress a write reports (aw_options.progress), and what its
 * copies learned of the file systems. */
typedef struct aw_progress_state {
  aw_progress_fn fn;            /* aw_options.progress, or NULL */
  void *ctx;
  unsigned long long files, bytes;
  unsigned long long partial;   /* bytes of the file being copied, told */
  int no_clone;                 /* FICLONE failed as unsupported from ... */
  uint64_t no_clone_dev;        /* ... a source on this device */
} aw_progress_state;
/* `bytes` more of the file being copied; the file done (its whole size). */
void aw_progress_bytes(aw_progress_state *p, unsigned long long bytes);
void aw_progress_file(aw_progress_state *p, unsigned long long size);

/* Takes the identity, size and (AW_MODE_SOURCE) mode of e's source (a
 * stat of `name` relative to `dfd`, following symlinks): 0, or -1 with err
 * naming both paths. */
int aw_source_stat(aw_entry *e, int dfd, const char *name, aw_error *err);
/* The directory of the sources being looked at, open while the next ones
 * share it: aw_source_stat_in stats e's source through it (`next`: the
 * next entry's source, or NULL; rel: scratch of rel_size bytes). */
typedef struct aw_source_dirs {
  int fd;                       /* -1: none open (or it could not be opened) */
  const char *path;             /* the source whose directory part it is */
  size_t len;                   /* that part's length */
} aw_source_dirs;
void aw_source_dirs_init(aw_source_dirs *d);
void aw_source_dirs_close(aw_source_dirs *d);
int aw_source_stat_in(aw_source_dirs *d, aw_entry *e, const char *next, char *rel,
                      size_t rel_size, aw_error *err);
/* Copies e's source into the new file `fd` (FICLONE, copy_file_range, or
 * a bounded loop), checking its identity before and after: 0, or -1 with
 * err filled (AW_KIND_CHANGED when the source changed). */
int aw_source_copy(int fd, const aw_entry *e, aw_progress_state *p, aw_error *err);
/* After the copy, mode and owner: gives the file the source's mtime and
 * takes its identity into e->id (settled when the source's is). */
int aw_source_stamp(int fd, aw_entry *e);
/* Compares e's source with the open file `fd` (already e->size bytes,
 * mode and owner), streaming through buf (2 * half bytes): 1 same, 0
 * differs, -1 with err filled. */
int aw_source_same(int fd, const aw_entry *e, char *buf, size_t half, aw_error *err);

/* ---- aw_hash.c: SipHash, 128-bit result ---- */
/* SipHash-2-4: the reference vectors' variant (spec 15), unused by the writer. */
void aw_siphash128(const unsigned char key[AW_KEY_SIZE], const void *data,
                   size_t len, unsigned char out[AW_DIGEST_SIZE]);
void aw_siphash128_pair(const unsigned char key[AW_KEY_SIZE],
                        const void *data_a, size_t len_a, unsigned char out_a[AW_DIGEST_SIZE],
                        const void *data_b, size_t len_b, unsigned char out_b[AW_DIGEST_SIZE]);
/* SipHash-1-3: the digest of a file's bytes the manifest records, and the
 * manifest's MAC (format 3); _pair computes two at once, each the same as
 * alone. */
void aw_digest128(const unsigned char key[AW_KEY_SIZE], const void *data,
                  size_t len, unsigned char out[AW_DIGEST_SIZE]);
void aw_digest128_pair(const unsigned char key[AW_KEY_SIZE],
                       const void *data_a, size_t len_a, unsigned char out_a[AW_DIGEST_SIZE],
                       const void *data_b, size_t len_b, unsigned char out_b[AW_DIGEST_SIZE]);

#if defined(__GNUC__) && __GNUC__ >= 4
#pragma GCC visibility pop
#endif

#endif /* AW_INTERNAL_H */
