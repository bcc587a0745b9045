/*
 * aw_path.c - validation and cleaning of payload paths, and the sorted
 * plan the write steps walk.
 *
 * Paths are cleaned first ("foo//bar" -> "foo/bar", "./bar" -> "bar",
 * trailing "/" dropped), then refused when the contract says so. The plan
 * is sorted element-wise: '/' sorts before every other byte, so that a
 * directory's files form one run right after the directory's own name.
 * That makes the "a" and "a/b" clash, duplicate keys, and the directories
 * to create all questions about neighbours.
 */
#include "aw_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* Order                                                               */
/* ------------------------------------------------------------------ */

static unsigned weight(unsigned char c)
{
  return c == '/' ? 0u : (unsigned)c;
}

/* aw_path_cmp, inlined into the sort. */
static inline int path_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
  size_t i = 0, n = alen < blen ? alen : blen;
  uint64_t x, y;
  /* Only the first difference is weighed: skip the common prefix eight
   * bytes at a time (paths of one directory share a long one), then find
   * the byte. */
  for (; i + 8 <= n; i += 8) {
    memcpy(&x, a + i, 8);
    memcpy(&y, b + i, 8);
    if (x != y) {
#if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
      i += (size_t)__builtin_ctzll(x ^ y) / 8;   /* the first differing byte */
      return weight((unsigned char)a[i]) < weight((unsigned char)b[i]) ? -1 : 1;
#else
      break;
#endif
    }
  }
  while (i < n && a[i] == b[i])
    i++;
  if (i == n)
    return alen < blen ? -1 : alen > blen;
  return weight((unsigned char)a[i]) < weight((unsigned char)b[i]) ? -1 : 1;
}

int aw_path_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
  return path_cmp(a, alen, b, blen);
}

/* What the plan's paths are sorted by: 16 bytes each, so that the sort
 * moves and reads a compact array, not the entries (at 100,000 files the
 * entries' cache misses were most of the sort); each entry is then made
 * once, in order. A path is at most AW_MAX_PATH bytes; 2^32 files or more
 * are refused as too many to hold. */
typedef struct sort_key {
  const char *path;
  uint32_t len, at;   /* at: the file's index in the caller's list */
} sort_key;

static int key_less(const sort_key *a, const sort_key *b)
{
  return path_cmp(a->path, a->len, b->path, b->len) < 0;
}

#define SORT_RUN 8

/* Merges sorted runs a (na keys) and b (nb) into out. */
static void merge_runs(const sort_key *a, size_t na, const sort_key *b, size_t nb, sort_key *out)
{
  size_t i = 0, j = 0, k = 0;

  if (na && nb && !key_less(&b[0], &a[na - 1])) {   /* already in order */
    memcpy(out, a, na * sizeof *a);
    memcpy(out + na, b, nb * sizeof *b);
    return;
  }
  while (i < na && j < nb)
    out[k++] = key_less(&b[j], &a[i]) ? b[j++] : a[i++];
  while (i < na)
    out[k++] = a[i++];
  while (j < nb)
    out[k++] = b[j++];
}

/* A stable merge sort of the n keys in v, through tmp (room for n): runs
 * of SORT_RUN sorted by insertion, then merged bottom-up. glibc's qsort
 * moves a 16-byte element with memcpy and calls its comparison through a
 * pointer: that was more than half of the sort's instructions. */
static void sort_keys(sort_key *v, sort_key *tmp, size_t n)
{
  sort_key *src = v, *dst = tmp;
  size_t i, width;

  for (i = 0; i < n; i += SORT_RUN) {
    size_t end = n - i < SORT_RUN ? n : i + SORT_RUN, j;
    for (j = i + 1; j < end; j++) {
      sort_key k = v[j];
      size_t m = j;
      for (; m > i && key_less(&k, &v[m - 1]); m--)
        v[m] = v[m - 1];
      v[m] = k;
    }
  }
  for (width = SORT_RUN; width < n; width *= 2) {
    sort_key *swap;
    for (i = 0; i < n; i += 2 * width) {
      size_t mid = n - i < width ? n : i + width;
      size_t end = n - mid < width ? n : mid + width;
      merge_runs(src + i, mid - i, src + mid, end - mid, dst + i);
    }
    swap = src;
    src = dst;
    dst = swap;
  }
  if (src != v)
    memcpy(v, src, n * sizeof *v);
}

/* First index whose path is >= key. */
static size_t lower_bound(const aw_plan *plan, const char *key, size_t len)
{
  size_t lo = 0, hi = plan->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (path_cmp(plan->entries[mid].path, plan->entries[mid].len, key, len) < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

long aw_plan_find(const aw_plan *plan, const char *path, size_t len)
{
  size_t i = lower_bound(plan, path, len);
  if (i < plan->n && plan->entries[i].len == len &&
      memcmp(plan->entries[i].path, path, len) == 0)
    return (long)i;
  return -1;
}

int aw_entry_below(const aw_entry *e, const char *dir, size_t len)
{
  return e->len > len && e->path[len] == '/' && memcmp(e->path, dir, len) == 0;
}

int aw_plan_has_dir(const aw_plan *plan, const char *dir, size_t len)
{
  size_t i = lower_bound(plan, dir, len);
  if (i < plan->n && plan->entries[i].len == len)
    i++;   /* a file of the same name sorts first; validation refuses it anyway */
  return i < plan->n && aw_entry_below(&plan->entries[i], dir, len);
}

int aw_plan_has_top(const aw_plan *plan, const char *name, size_t len)
{
  return aw_plan_find(plan, name, len) >= 0 || aw_plan_has_dir(plan, name, len);
}

/* ------------------------------------------------------------------ */
/* Cleaning                                                            */
/* ------------------------------------------------------------------ */

/* Cleans `in` into `out` (room for len + 1 bytes). Returns NULL, or the
 * reason the path is refused. */
static const char *clean_path(const char *in, size_t len, char *out, size_t *out_len)
{
  size_t i = 0, o = 0;

  if (len == 0)
    return "the path is empty";
  if (memchr(in, '\0', len))
    return "the path contains a NUL byte";
  if (in[0] == '/')
    return "the path is absolute";

  while (i < len) {
    size_t start, elen;
    while (i < len && in[i] == '/')
      i++;
    start = i;
    while (i < len && in[i] != '/')
      i++;
    elen = i - start;
    if (elen == 0 || (elen == 1 && in[start] == '.'))
      continue;
    if (elen == 2 && in[start] == '.' && in[start + 1] == '.')
      return "the path contains a '..' element";
    if (elen > AW_MAX_ELEMENT)
      return "an element of the path is longer than " AW_STR(AW_MAX_ELEMENT) " bytes";
    if (o > 0)
      out[o++] = '/';
    memcpy(out + o, in + start, elen);
    o += elen;
  }
  out[o] = '\0';
  *out_len = o;
  if (o == 0)
    return "the path cleans to '.'";
  if (o > AW_MAX_PATH)   /* counted once cleaned, as the contract says */
    return "the path is longer than " AW_STR(AW_MAX_PATH) " bytes";
  if (out[0] == '.' && out[1] == '.')
    return "the first element starts with '..' (names reserved for the writer)";
  return NULL;
}

/* ------------------------------------------------------------------ */
/* The plan                                                            */
/* ------------------------------------------------------------------ */

void aw_plan_free(aw_plan *plan)
{
  free(plan->entries);
  free(plan->arena);
  plan->entries = NULL;
  plan->arena = NULL;
  plan->n = 0;
  plan->sources = 0;
}

static int refuse(aw_error *err, const char *path, size_t len, const char *why)
{
  return aw_fail(err, AW_KIND_INVALID, "invalid payload path", path, len, why);
}

/* Mode and owner within their ranges. */
static int check_spec(const aw_file *f, const char *source, aw_error *err)
{
  if (source && (f->data || f->size || !source[0]))
    return aw_fail(err, AW_KIND_INVALID, "invalid source for", f->path, f->path_len,
                   source[0] ? "a file has either data or a source, not both"
                             : "the source path is empty");
  if (f->mode > 0777 && !(source && f->mode == AW_MODE_SOURCE))
    return aw_fail(err, AW_KIND_INVALID, "invalid mode for", f->path, f->path_len,
                   "the mode is not within 0-0777");
  if (f->uid < -1 || f->uid > AW_MAX_ID || f->gid < -1 || f->gid > AW_MAX_ID)
    return aw_fail(err, AW_KIND_INVALID, "invalid owner for", f->path, f->path_len,
                   "uid and gid are -1 (none) or within 0-" AW_STR(AW_MAX_ID));
  return 0;
}

/* Each entry made from its sort key, in order: the paths copied into the
 * plan's arena in plan order, so that every later pass over the entries
 * (the comparison, the links, the manifest, the removal) reads them in
 * sequence; at 100,000 files the cleaned paths in the payload's order
 * were a cache miss per file in each of those passes. */
static void make_entries(aw_plan *plan, const sort_key *keys, const aw_file *files,
                         const char *const *sources, size_t nfiles)
{
  char *cursor = plan->arena;
  size_t i;

  for (i = 0; i < nfiles; i++) {
    aw_entry *e = &plan->entries[i];
    const aw_file *f = &files[keys[i].at];
    const char *slash;
    memset(e, 0, sizeof *e);
    memcpy(cursor, keys[i].path, keys[i].len + 1);
    e->path = cursor;
    e->len = keys[i].len;
    cursor += e->len + 1;
    slash = memchr(e->path, '/', e->len);
    e->top_len = slash ? (size_t)(slash - e->path) : e->len;
    e->dir_len = aw_dir_len(e->path, e->len);
    e->file = f;
    e->data = f->data;
    e->mode = f->mode;   /* a source's: when it is looked at */
    e->size = f->size;
    e->uid = f->uid;
    e->gid = f->gid;
    e->source = sources ? sources[keys[i].at] : NULL;
    plan->sources += e->source != NULL;
  }
}

int aw_plan_build(aw_plan *plan, const aw_file *files, const char *const *sources, size_t nfiles,
                  aw_error *err)
{
  size_t i, total = 0;
  sort_key *keys;
  char *cleaned, *cursor;
  int rc = -1;

  plan->entries = NULL;
  plan->arena = NULL;
  plan->n = 0;
  plan->sources = 0;

  for (i = 0; i < nfiles; i++) {
    if (check_spec(&files[i], sources ? sources[i] : NULL, err) < 0)
      return -1;
    total += files[i].path_len + 1;
  }
  /* cleaned: the paths in the payload's order, until make_entries */
  cleaned = malloc(total ? total : 1);
  /* the keys, then as many for sort_keys to merge through */
  keys = nfiles <= UINT32_MAX && nfiles <= SIZE_MAX / (2 * sizeof *keys)
           ? malloc((nfiles ? nfiles : 1) * 2 * sizeof *keys) : NULL;
  if (!cleaned || !keys) {
    aw_fail_sys(err, "allocate the plan", NULL, ENOMEM);
    goto out;
  }

  cursor = cleaned;
  for (i = 0; i < nfiles; i++) {
    size_t len;
    const char *why = clean_path(files[i].path, files[i].path_len, cursor, &len);
    if (why) {
      refuse(err, files[i].path, files[i].path_len, why);
      goto out;
    }
    keys[i].path = cursor;
    keys[i].len = (uint32_t)len;
    keys[i].at = (uint32_t)i;
    cursor += len + 1;
  }
  sort_keys(keys, keys + nfiles, nfiles);
  /* malloc, each entry zeroed by make_entries, not calloc: glibc's calloc
   * skips its per-thread cache, which made a one-file plan's entry 200
   * instructions (a memset of the whole array right after malloc, gcc
   * makes a calloc) */
  plan->entries = nfiles <= SIZE_MAX / sizeof *plan->entries
                    ? malloc((nfiles ? nfiles : 1) * sizeof *plan->entries) : NULL;
  plan->arena = malloc((size_t)(cursor - cleaned) + 1);   /* + 1: no malloc(0) */
  if (!plan->entries || !plan->arena) {
    aw_plan_free(plan);
    aw_fail_sys(err, "allocate the plan", NULL, ENOMEM);
    goto out;
  }
  make_entries(plan, keys, files, sources, nfiles);
  plan->n = nfiles;
  rc = 0;
out:
  free(keys);
  free(cleaned);
  if (rc < 0)
    return -1;

  /* Neighbours: the same path twice, or a file that is also a directory. */
  for (i = 0; i + 1 < plan->n; i++) {
    const aw_entry *a = &plan->entries[i], *b = &plan->entries[i + 1];
    if (a->len == b->len && memcmp(a->path, b->path, a->len) == 0) {
      refuse(err, a->path, a->len, "two keys of the payload clean to this same path");
      aw_plan_free(plan);
      return -1;
    }
    if (aw_entry_below(b, a->path, a->len)) {
      refuse(err, a->path, a->len,
             "the path is a file and also a directory of another path");
      aw_plan_free(plan);
      return -1;
    }
  }
  return 0;
}

int aw_validate(const aw_file *files, size_t nfiles, aw_error *err)
{
  aw_plan plan;
  if (aw_plan_build(&plan, files, NULL, nfiles, err) < 0)
    return -1;
  aw_plan_free(&plan);
  return 0;
}

int aw_clean_path(const char *path, size_t len, char *out, size_t size,
                  aw_error *err)
{
  size_t out_len;
  const char *why;
  if (size < len + 1)
    return refuse(err, path, len, "no room for the clean path");
  why = clean_path(path, len, out, &out_len);
  return why ? refuse(err, path, len, why) : 0;
}
