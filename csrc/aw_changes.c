/*
 * aw_changes.c - what a publish changed, for callers that reload only
 * what they must (opts->changes), and the listing of a version's files a
 * rollback links from. Nothing here runs unless asked: a write without
 * opts->changes never lists the current version.
 */
#define _GNU_SOURCE
#include "aw_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHUNK 65536

void aw_pathlist_free(aw_pathlist *l)
{
  size_t i;
  for (i = 0; i < l->n; i++)
    free(l->v[i]);
  free(l->v);
  memset(l, 0, sizeof *l);
}

typedef struct lister {
  aw_pathlist *out;
  int strict;
} lister;

static int list_visit(void *ctx, int dfd, const char *name, unsigned char type,
                      const char *rel, aw_error *err)
{
  lister *l = ctx;
  char **v, *copy;

  (void)name;
  if (dfd < 0 || type != DT_REG) {
    if (!l->strict)
      return 0;
    return aw_fail(err, AW_KIND_CONFLICT, "refusing to roll back", rel, strlen(rel),
                   "the kept version holds an entry that is neither a file nor a directory");
  }
  if (!(v = aw_grow(l->out->v, l->out->n, &l->out->cap, sizeof *v)))
    return aw_fail_sys(err, "allocate", rel, ENOMEM);
  l->out->v = v;
  if (!(copy = strdup(rel)))
    return aw_fail_sys(err, "allocate", rel, ENOMEM);
  v[l->out->n++] = copy;
  return 0;
}

static int path_order(const void *a, const void *b)
{
  const char *x = *(const char *const *)a, *y = *(const char *const *)b;
  return aw_path_cmp(x, strlen(x), y, strlen(y));
}

int aw_list_files(int dfd, int strict, aw_pathlist *out, char *rel, aw_error *err)
{
  lister l;
  int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);   /* aw_walk closes it */

  memset(out, 0, sizeof *out);
  if (fd < 0)
    return aw_fail_sys(err, "open version", NULL, errno);
  l.out = out;
  l.strict = strict;
  if (aw_walk(fd, rel, list_visit, &l, err) < 0) {
    aw_pathlist_free(out);
    return -1;
  }
  if (out->n > 1)
    qsort(out->v, out->n, sizeof *out->v, path_order);
  return 0;
}

int aw_result_add_change(aw_result *res, const char *path, size_t len, enum aw_change_kind kind,
                         size_t *cap, aw_error *err)
{
  aw_change *v = aw_grow(res->changes, res->nchanges, cap, sizeof *v);
  char *copy;

  if (!v)
    return aw_fail_sys(err, "allocate", NULL, ENOMEM);
  res->changes = v;
  if (!(copy = malloc(len + 1)))
    return aw_fail_sys(err, "allocate", NULL, ENOMEM);
  memcpy(copy, path, len);
  copy[len] = '\0';
  v[res->nchanges].path = copy;
  v[res->nchanges++].kind = kind;
  return 0;
}

void aw_result_free(aw_result *res)
{
  size_t i;
  for (i = 0; i < res->nchanges; i++)
    free(res->changes[i].path);
  free(res->changes);
  res->changes = NULL;
  res->nchanges = 0;
  free(res->leftover);
  res->leftover = NULL;
  res->nleftovers = 0;
  res->leftover_errnum = 0;
}

void aw_result_set_leftovers(aw_result *res, size_t n, const char *first, int errnum)
{
  free(res->leftover);
  res->nleftovers = n;
  res->leftover = strdup(first);   /* NULL when memory ran out naming it */
  res->leftover_errnum = errnum;
}

size_t aw_result_leftovers(const aw_result *res, const char **first, int *errnum)
{
  if (first)
    *first = res->leftover;
  if (errnum)
    *errnum = res->leftover_errnum;
  return res->nleftovers;
}

/* 1 when two open files hold the same bytes (same size known), 0 when
 * not, -1 on error: each chunk of b compared with a as a write compares
 * a payload's bytes with a file (aw_same_content). */
static int same_bytes(int a, int b, size_t size)
{
  char *x = malloc(2 * CHUNK);
  size_t off = 0;
  int same = 1;

  if (!x)
    return -1;
  while (same == 1 && off < size) {
    size_t want = size - off < CHUNK ? size - off : CHUNK;
    ssize_t m = aw_read_full(b, x, want);
    same = m < 0 ? -1 : (size_t)m != want ? 0 : aw_same_content(a, x, want, x + CHUNK, CHUNK);
    off += want;
  }
  free(x);
  return same;
}

int aw_same_file(int adir, int bdir, const char *path)
{
  struct stat sa, sb;
  int a, b, same;

  if (fstatat(adir, path, &sa, AT_SYMLINK_NOFOLLOW) < 0 ||
      fstatat(bdir, path, &sb, AT_SYMLINK_NOFOLLOW) < 0)
    return errno == ENOENT || errno == ENOTDIR ? 0 : -1;
  if (sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino)
    return 1;   /* one inode: a file kept by a hard link */
  if (!S_ISREG(sa.st_mode) || !S_ISREG(sb.st_mode) || sa.st_mode != sb.st_mode ||
      sa.st_uid != sb.st_uid || sa.st_gid != sb.st_gid || sa.st_size != sb.st_size)
    return 0;
  if ((a = openat(adir, path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0)
    return errno == EACCES ? 0 : -1;
  if ((b = openat(bdir, path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
    close(a);
    return errno == EACCES ? 0 : -1;
  }
  same = same_bytes(a, b, (size_t)sa.st_size);
  close(a);
  close(b);
  return same;
}
