/*
 * aw_internal.h - what the core's files share and nobody else sees.
 */
#ifndef AW_INTERNAL_H
#define AW_INTERNAL_H

#include "aw.h"
#include "aw_sys.h"

#include <stddef.h>
#include <stdint.h>

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
  const char *path;       /* cleaned: no "//", no "./", no trailing "/" */
  size_t len;
  size_t top_len;         /* length of the first element */
  const aw_file *file;    /* caller's spec: data, size, mode, owner */
  int same;               /* the current version holds exactly this file */
  int hashed;             /* digest holds the keyed digest of the data */
  int known;              /* id: the current version's file, settled (manifest) */
  aw_ident id;
  unsigned char digest[AW_DIGEST_SIZE];
} aw_entry;

/* A validated payload, sorted element-wise (see aw_path_cmp). */
typedef struct aw_plan {
  aw_entry *entries;
  size_t n;
  char *arena;            /* the cleaned paths */
} aw_plan;

/* ---- aw_error.c: recording a failure once, where it happens ---- */
int aw_fail_sys(aw_error *err, const char *step, const char *path, int errnum);
int aw_fail(aw_error *err, enum aw_kind kind, const char *step,
            const char *path, size_t path_len, const char *detail);

/* ---- aw_path.c: validation and cleaning ---- */
int aw_plan_build(aw_plan *plan, const aw_file *files, size_t nfiles,
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

int aw_is_version_name(const char *name);
int aw_read_data_link(int tfd, char *buf, size_t size, const char *step, aw_error *err);
/* Removes `name` in dirfd, a whole tree if a directory; `type` is its DT_*
 * value when known (DT_UNKNOWN otherwise). Never follows a symlink. */
int aw_remove_tree(int dirfd, const char *name, unsigned char type, aw_error *err);
int aw_lock(int fd, long timeout_ms, aw_error *err);
int aw_write_all(int fd, const char *data, size_t size);
/* Compares the first `size` bytes of the open file `fd` (whose size is
 * `size`) with data; 1 same, 0 differs, -1 error (errno). */
int aw_same_content(int fd, const char *data, size_t size);

/* ---- aw_manifest.c: what the writer remembers of its version ---- */
#define AW_MANIFEST_NAME "..manifest"
#define AW_MANIFEST_TMP_NAME "..manifest_tmp"
enum { AW_M_DIR = 1, AW_M_KNOWN = 2, AW_M_DIGEST = 4 };

typedef struct aw_mentry {
  const char *path;        /* not NUL-terminated */
  size_t len;
  unsigned flags;          /* AW_M_*: a directory; id is settled; digest set */
  aw_ident id;
  unsigned char digest[AW_DIGEST_SIZE];
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
                    const aw_ident *id, const unsigned char *digest);
/* Replaces target's manifest with m (tmp + rename) unless `old`, as read,
 * already says exactly that. 0, or -1 (nothing left behind). */
int aw_manifest_save(const aw_manifest *m, const aw_manifest *old, int tfd);

/* ---- aw_hash.c: SipHash-2-4, 128-bit result ---- */
void aw_siphash128(const unsigned char key[AW_KEY_SIZE], const void *data,
                   size_t len, unsigned char out[AW_DIGEST_SIZE]);
void aw_siphash128_pair(const unsigned char key[AW_KEY_SIZE],
                        const void *data_a, size_t len_a, unsigned char out_a[AW_DIGEST_SIZE],
                        const void *data_b, size_t len_b, unsigned char out_b[AW_DIGEST_SIZE]);

#endif /* AW_INTERNAL_H */
