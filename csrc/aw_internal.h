/*
 * aw_internal.h - what the core's files share and nobody else sees.
 */
#ifndef AW_INTERNAL_H
#define AW_INTERNAL_H

#include "aw.h"

#include <stddef.h>

/* One payload file after validation: its cleaned, NUL-terminated path
 * (in the plan's arena) and the caller's spec. */
typedef struct aw_entry {
  const char *path;       /* cleaned: no "//", no "./", no trailing "/" */
  size_t len;
  size_t top_len;         /* length of the first element */
  const aw_file *file;    /* caller's spec: data, size, mode, owner */
  int same;               /* the current version holds exactly this file */
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
/* Nonzero when `name` is the first element of some entry. */
int aw_plan_has_top(const aw_plan *plan, const char *name, size_t len);

/* ---- aw_fs.c: file-system steps relative to directory descriptors ---- */

/* Reading a directory straight from its descriptor with getdents64: no
 * dup, fdopendir and closedir around it. The descriptor is the caller's. */
typedef struct aw_dir {
  int fd;
  char *buf;
  size_t pos, len;
} aw_dir;

int aw_dir_open(aw_dir *d, int fd);
/* 1 with the next entry (never "." or ".."; type is a DT_* value, maybe
 * DT_UNKNOWN), 0 at the end, -1 on error with errno set. */
int aw_dir_next(aw_dir *d, const char **name, unsigned char *type);
void aw_dir_close(aw_dir *d);   /* frees the buffer, not the descriptor */

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

#endif /* AW_INTERNAL_H */
