/*
 * paths.c - libFuzzer harness: payload paths -> aw_validate and the plan.
 *
 * Input: the payload's paths, one per line ('\n'); a byte 0x01 stands for
 * a NUL byte in a path. A line starting with 0x02 gives its path mode 01000
 * (out of range), 0x03 an owner out of range.
 *
 * Checks, against a reference written here from the contract alone
 * (/work/shared/CONTRACT.md, "Validation"):
 *   - aw_validate and aw_plan_build accept exactly the payloads the
 *     reference accepts, and a refusal is AW_KIND_INVALID naming a path;
 *   - aw_clean_path accepts each path the reference accepts, cleaned the
 *     same;
 *   - an accepted plan holds each key once, cleaned as the reference
 *     cleans it: relative, no empty, "." or ".." element, no reserved
 *     first element, at most 4096 bytes, elements at most 255 bytes;
 *   - no two entries are equal and no entry is a directory of another;
 *   - the plan is sorted by aw_path_cmp, top_len is the first element's
 *     length, and aw_plan_find / aw_plan_has_dir / aw_plan_has_top answer
 *     as a linear search does.
 */
#include "fuzz.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FILES 256

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  aw_file files[MAX_FILES];
  char *buf, *clean[MAX_FILES];
  size_t clen[MAX_FILES], n = 0, i, j, start = 0;
  int ref_ok = 1, rc;
  aw_error err;
  aw_plan plan;

  buf = malloc(size + 1);
  if (!buf)
    return 0;
  memcpy(buf, data, size);
  for (i = 0; i < size; i++)
    if (buf[i] == 1)
      buf[i] = '\0';
  for (i = 0; i <= size && n < MAX_FILES; i++) {
    if (i < size && buf[i] != '\n')
      continue;
    memset(&files[n], 0, sizeof files[n]);
    files[n].path = buf + start;
    files[n].path_len = i - start;
    files[n].mode = 0644;
    files[n].uid = files[n].gid = -1;
    if (files[n].path_len && (buf[start] == 2 || buf[start] == 3)) {
      if (buf[start] == 2)
        files[n].mode = 01000;
      else
        files[n].uid = (long long)AW_MAX_ID + 1;
      files[n].path++;
      files[n].path_len--;
    }
    n++;
    start = i + 1;
  }

  /* The reference's verdict; aw_clean_path agrees with it path by path. */
  for (i = 0; i < n; i++) {
    char *out = malloc(files[i].path_len + 1);
    int ref;
    clean[i] = malloc(files[i].path_len + 1);
    CHECK(clean[i] && out);
    ref = ref_clean(files[i].path, files[i].path_len, clean[i], &clen[i]);
    memset(&err, 0, sizeof err);
    rc = aw_clean_path(files[i].path, files[i].path_len, out, files[i].path_len + 1, &err);
    CHECK((rc == 0) == (ref == 0));
    if (rc == 0)
      CHECK(strlen(out) == clen[i] && memcmp(out, clean[i], clen[i]) == 0);
    else
      CHECK(err.kind == AW_KIND_INVALID);
    free(out);
    if (files[i].mode > 0777 || files[i].uid > AW_MAX_ID || ref < 0) {
      ref_ok = 0;
      clen[i] = (size_t)-1;
    }
  }
  for (i = 0; ref_ok && i < n; i++)
    for (j = 0; ref_ok && j < n; j++)
      if (i != j && ((clen[i] == clen[j] && memcmp(clean[i], clean[j], clen[i]) == 0) ||
                     ref_is_dir_of(clean[i], clen[i], clean[j], clen[j])))
        ref_ok = 0;

  memset(&err, 0, sizeof err);
  rc = aw_validate(files, n, &err);
  CHECK((rc == 0) == ref_ok);
  if (rc < 0) {
    CHECK(err.kind == AW_KIND_INVALID);
    CHECK(err.has_path);
    CHECK(err.detail[0] != '\0');
  }

  memset(&err, 0, sizeof err);
  rc = aw_plan_build(&plan, files, NULL, n, &err);
  CHECK((rc == 0) == ref_ok);
  if (rc == 0) {
    CHECK(plan.n == n);
    for (i = 0; i < plan.n; i++) {
      const aw_entry *e = &plan.entries[i];
      size_t k = (size_t)(e->file - files);
      CHECK(k < n);
      /* cleaned as the reference cleans that key */
      CHECK(e->len == clen[k] && memcmp(e->path, clean[k], e->len) == 0);
      CHECK(e->path[e->len] == '\0');
      CHECK(e->len > 0 && e->len <= AW_MAX_PATH && e->path[0] != '/');
      CHECK(!(e->path[0] == '.' && e->path[1] == '.'));
      CHECK(memchr(e->path, '/', e->len) ? (size_t)((const char *)memchr(e->path, '/', e->len) - e->path) == e->top_len
                                         : e->top_len == e->len);
      /* every element non-empty, not "." or "..", at most 255 bytes */
      for (j = 0; j <= e->len;) {
        size_t s = j;
        while (j < e->len && e->path[j] != '/')
          j++;
        CHECK(j > s && j - s <= AW_MAX_ELEMENT);
        CHECK(!(j - s == 1 && e->path[s] == '.'));
        CHECK(!(j - s == 2 && e->path[s] == '.' && e->path[s + 1] == '.'));
        j++;
      }
      if (i + 1 < plan.n)
        CHECK(aw_path_cmp(e->path, e->len, plan.entries[i + 1].path, plan.entries[i + 1].len) < 0);
      CHECK(aw_plan_find(&plan, e->path, e->len) == (long)i);
      CHECK(aw_plan_has_top(&plan, e->path, e->top_len));
      /* each directory on the way is one, and the file is not */
      for (j = 0; j < e->len; j++)
        if (e->path[j] == '/')
          CHECK(aw_plan_has_dir(&plan, e->path, j) && aw_plan_find(&plan, e->path, j) < 0);
      CHECK(!aw_plan_has_dir(&plan, e->path, e->len));
    }
    /* a prefix of a path that is no element boundary is neither */
    for (i = 0; i < plan.n; i++) {
      const aw_entry *e = &plan.entries[i];
      size_t cut = e->len / 2;
      int found = 0, dir = 0;
      if (cut == 0)
        continue;
      for (j = 0; j < plan.n; j++) {
        found |= plan.entries[j].len == cut && memcmp(plan.entries[j].path, e->path, cut) == 0;
        dir |= ref_is_dir_of(e->path, cut, plan.entries[j].path, plan.entries[j].len);
      }
      CHECK((aw_plan_find(&plan, e->path, cut) >= 0) == found);
      CHECK(aw_plan_has_dir(&plan, e->path, cut) == dir);
    }
    aw_plan_free(&plan);
  }
  for (i = 0; i < n; i++)
    free(clean[i]);
  free(buf);
  return 0;
}
