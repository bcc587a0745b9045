/*
 * aw_history.c - the versions a writer keeps after superseding them, and
 * reading that list.
 *
 * With opts.keep > 0 a superseded version directory stays in the target,
 * and target/..history (replaced by write-then-rename, like ..manifest)
 * names every kept version, newest first, with the time it was published
 * (when ..data was swapped to it: the mtime of the ..data symlink that
 * pointed at it). The record is what tells a kept version from a crashed
 * writer's orphan, without guessing and across processes: a version
 * directory that ..data does not name and ..history does not list is an
 * orphan, and recovery removes it.
 *
 * The record changes before the directories do: a version is listed
 * before the swap that supersedes it, and unlisted before it is removed.
 * A crash between the two leaves a listed version whole, or an unlisted
 * one that recovery removes. A record that cannot be parsed (cut short by
 * a power loss with sync off) is never taken for "nothing is kept": every
 * version directory but the current one is then treated as kept (and
 * listed by its directory's mtime) until a publish rewrites the record.
 *
 * The first line states the record's format. One newer than FORMAT
 * (written by a later release) is refused with AW_KIND_FORMAT, not read as
 * damaged: which versions are kept is what the record says, and guessing
 * from the directories (then rewriting the record in this format) could
 * remove a version a newer writer keeps, or keep its orphans for ever.
 *
 * The policy of a write lives here too (aw_history_keep_count,
 * aw_history_before_swap, aw_history_after_swap): how many versions stay,
 * the one-second reader grace, and a rollback's version kept; the writer
 * (aw_write.c) calls it once before and once after its swap, and removes
 * the directories the record no longer lists.
 *
 * File layout (text):
 *   atomicwriter history 1
 *   <version name> <seconds> <nanoseconds>      one line per kept version
 *   end
 */
#define _GNU_SOURCE
#include "aw_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define FORMAT 1
#define HEADER_PREFIX "atomicwriter history "
#define HEADER HEADER_PREFIX "1\n"   /* HEADER_PREFIX, FORMAT */
/* The two records kept in this format: the history, and the versions
 * left over (superseded or orphaned, and not removable yet). Only the
 * history refuses a later release's format (see above); the leftovers
 * only inform, and one that cannot be parsed reads as empty. */
typedef struct record {
  const char *name, *tmp, *header;
  int refuse_newer;
} record;
static const record HISTORY = { AW_HISTORY_NAME, AW_HISTORY_TMP_NAME, HEADER, 1 };
static const record LEFTOVERS = { AW_LEFTOVERS_NAME, AW_LEFTOVERS_TMP_NAME,
                                  "atomicwriter leftovers 1\n", 0 };
#define FOOTER "end\n"
#define MAX_RECORD ((size_t)1 << 20)

void aw_history_free(aw_history *h)
{
  free(h->v);
  memset(h, 0, sizeof *h);
}

long aw_history_find(const aw_history *h, const char *name)
{
  size_t i;
  for (i = 0; i < h->n; i++)
    if (strcmp(h->v[i].name, name) == 0)
      return (long)i;
  return -1;
}

int aw_history_insert(aw_history *h, size_t at, const char *name, long long sec, long nsec)
{
  aw_version_info *v = aw_grow(h->v, h->n, &h->cap, sizeof *v);
  if (!v)
    return -1;
  h->v = v;
  memmove(&v[at + 1], &v[at], (h->n - at) * sizeof *v);
  memset(&v[at], 0, sizeof *v);
  snprintf(v[at].name, sizeof v[at].name, "%s", name);
  v[at].published_sec = sec;
  v[at].published_nsec = nsec;
  h->n++;
  return 0;
}

void aw_history_remove(aw_history *h, size_t at)
{
  memmove(&h->v[at], &h->v[at + 1], (h->n - at - 1) * sizeof *h->v);
  h->n--;
}

size_t aw_history_keep_also(aw_history *h, size_t n, const char *name)
{
  long at = aw_history_find(h, name);
  aw_version_info v;

  if (at < 0 || (size_t)at < n)
    return n;
  v = h->v[at];
  memmove(&h->v[n + 1], &h->v[n], ((size_t)at - n) * sizeof *h->v);
  h->v[n] = v;
  return n + 1;
}

/* ---- reading the record ---- */

/* Parses one line "name sec nsec"; 0, -1 when it is not one, -2 when
 * memory ran out. */
static int parse_line(aw_history *h, const char *line, size_t len)
{
  char copy[AW_NAME_SIZE + 64];
  const char *space = memchr(line, ' ', len);
  size_t name_len = space ? (size_t)(space - line) : len;
  long long sec;
  long nsec;
  int used = 0;

  if (!space || name_len >= AW_NAME_SIZE || len >= sizeof copy)
    return -1;
  memcpy(copy, line, len);
  copy[len] = '\0';
  copy[name_len] = '\0';   /* the name, then the times after it */
  if (!aw_is_version_name(copy) ||
      sscanf(copy + name_len + 1, "%lld %ld%n", &sec, &nsec, &used) != 2 ||
      (size_t)used != len - name_len - 1 || nsec < 0 || nsec > 999999999)
    return -1;
  return aw_history_insert(h, h->n, copy, sec, nsec) < 0 ? -2 : 0;   /* -2: no memory */
}

static int parse(aw_history *h, const record *r, const char *buf, size_t len)
{
  size_t hl = strlen(r->header), fl = sizeof FOOTER - 1, pos;

  if (len < hl + fl || memcmp(buf, r->header, hl) != 0 ||
      memcmp(buf + len - fl, FOOTER, fl) != 0)
    return -1;
  for (pos = hl; pos < len - fl;) {
    const char *nl = memchr(buf + pos, '\n', len - fl - pos);
    int rc = nl ? parse_line(h, buf + pos, (size_t)(nl - (buf + pos))) : -1;
    if (rc < 0)
      return rc;
    pos = (size_t)(nl - buf) + 1;
  }
  return 0;
}

static int not_ours(const record *r, aw_error *err)
{
  return aw_fail(err, AW_KIND_CONFLICT, "read", r->name, strlen(r->name),
                 "it is not the writer's record file");
}

/* A header "atomicwriter history <N>" with N > FORMAT: a later release's
 * record. Returns 0 when the header is not that (ours, or damaged), else
 * -1 with AW_KIND_FORMAT. */
static int newer_format(const char *buf, size_t len, aw_error *err)
{
  static const char *const found[] = {
    "it is in format 2; this release reads format 1 (a newer release wrote it)",
    "it is in format 3; this release reads format 1 (a newer release wrote it)",
    "it is in format 4; this release reads format 1 (a newer release wrote it)",
    "it is in format 5; this release reads format 1 (a newer release wrote it)",
    "it is in format 6; this release reads format 1 (a newer release wrote it)",
    "it is in format 7; this release reads format 1 (a newer release wrote it)",
    "it is in format 8; this release reads format 1 (a newer release wrote it)",
    "it is in format 9; this release reads format 1 (a newer release wrote it)",
    "it is in a format over 9; this release reads format 1 (a newer release wrote it)",
  };
  size_t pl = sizeof HEADER_PREFIX - 1, i;
  unsigned long n = 0;

  if (len <= pl || memcmp(buf, HEADER_PREFIX, pl) != 0)
    return 0;
  for (i = pl; i < len && buf[i] >= '0' && buf[i] <= '9'; i++)
    if (n < 1000)   /* any larger is "over 9" too */
      n = n * 10 + (unsigned long)(buf[i] - '0');
  if (i == pl || i >= len || buf[i] != '\n' || buf[pl] == '0' || n <= FORMAT)
    return 0;
  return aw_fail(err, AW_KIND_FORMAT, "read", AW_HISTORY_NAME, sizeof AW_HISTORY_NAME - 1,
                 found[n - 2 < 8 ? n - 2 : 8]);
}

/* The whole record into a malloc'd buffer; 0 with *buf NULL when absent.
 * One too big to be ours is read as empty (damaged). */
static int read_record(int tfd, const record *r, char **buf, size_t *len, aw_error *err)
{
  struct stat st;
  size_t size;
  ssize_t got;
  int fd = openat(tfd, r->name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);

  *buf = NULL;
  *len = 0;
  if (fd < 0) {
    if (errno == ENOENT)
      return 0;
    return errno == ELOOP ? not_ours(r, err) : aw_fail_sys(err, "open", r->name, errno);
  }
  if (fstat(fd, &st) < 0) {
    aw_fail_sys(err, "inspect", r->name, errno);
    close(fd);
    return -1;
  }
  if (!S_ISREG(st.st_mode)) {
    close(fd);
    return not_ours(r, err);
  }
  size = (size_t)st.st_size > MAX_RECORD ? 0 : (size_t)st.st_size;
  if (!(*buf = malloc(size + 1))) {
    close(fd);
    return aw_fail_sys(err, "allocate", NULL, ENOMEM);
  }
  if ((got = aw_read_full(fd, *buf, size)) < 0) {
    aw_fail_sys(err, "read", r->name, errno);
    free(*buf);
    *buf = NULL;
    close(fd);
    return -1;
  }
  close(fd);
  *len = (size_t)got;
  return 0;
}

/* A damaged record: every version directory but `cur` counts as kept,
 * newest (by name, which is the time) first. */
static int rebuild(aw_history *h, int tfd, const char *cur, aw_error *err)
{
  aw_dir dir;
  const char *name;
  unsigned char type;
  int r;

  int fd = openat(tfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);   /* listed from its start */

  h->n = 0;
  h->damaged = 1;
  if (fd < 0 || aw_dir_open(&dir, fd) < 0) {
    aw_fail_sys(err, "read target directory", NULL, errno);
    if (fd >= 0)
      close(fd);
    return -1;
  }
  while ((r = aw_dir_next(&dir, &name, &type)) > 0) {
    struct stat st;
    size_t at = 0;
    if (!aw_is_version_name(name) || strcmp(name, cur) == 0 ||
        fstatat(tfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode))
      continue;
    while (at < h->n && strcmp(h->v[at].name, name) > 0)
      at++;
    if (aw_history_insert(h, at, name, (long long)AW_ST_MTIM(&st).tv_sec, (long)AW_ST_MTIM(&st).tv_nsec) < 0) {
      r = -1;
      errno = ENOMEM;
      break;
    }
  }
  if (r < 0)
    aw_fail_sys(err, "read target directory", NULL, errno);
  aw_dir_close(&dir);
  close(fd);
  return r < 0 ? -1 : 0;
}

/* Reads record r of the target into h: 0 when it is absent (h empty) or
 * parsed, 1 when it is there but cannot be parsed (h empty and damaged),
 * -1 on failure (out of memory included: that is not a damaged record). */
static int load_record(aw_history *h, const record *r, int tfd, aw_error *err)
{
  char *buf;
  size_t len;
  int rc;

  h->n = 0;
  h->damaged = 0;
  h->exists = 0;
  if (read_record(tfd, r, &buf, &len, err) < 0)
    return -1;
  if (!buf)
    return 0;
  h->exists = 1;
  if (r->refuse_newer && newer_format(buf, len, err) < 0)
    rc = -1;
  else if ((rc = parse(h, r, buf, len)) < 0) {
    h->n = 0;
    h->damaged = 1;
    rc = rc == -2 ? aw_fail_sys(err, "read", r->name, ENOMEM) : 1;
  }
  free(buf);
  return rc;
}

int aw_history_load(aw_history *h, int tfd, const char *cur, aw_error *err)
{
  int rc = load_record(h, &HISTORY, tfd, err);

  return rc > 0 ? rebuild(h, tfd, cur, err) : rc;
}

/* ---- writing the record ---- */

static int save_record(const aw_history *h, const record *r, int tfd, int sync, aw_error *err)
{
  size_t size = strlen(r->header) + sizeof FOOTER, i, pos = 0;
  char *buf;
  int rc;

  if (h->n == 0) {   /* nothing kept or left: no record, as the kubelet's layout */
    if (unlinkat(tfd, r->name, 0) < 0 && errno != ENOENT)
      return aw_fail_sys(err, "remove", r->name, errno);
    return 0;
  }
  for (i = 0; i < h->n; i++)
    size += strlen(h->v[i].name) + 48;
  if (!(buf = malloc(size)))
    return aw_fail_sys(err, "allocate", NULL, ENOMEM);
  pos += (size_t)snprintf(buf + pos, size - pos, "%s", r->header);
  for (i = 0; i < h->n; i++)
    pos += (size_t)snprintf(buf + pos, size - pos, "%s %lld %ld\n", h->v[i].name,
                            h->v[i].published_sec, h->v[i].published_nsec);
  pos += (size_t)snprintf(buf + pos, size - pos, "%s", FOOTER);

  rc = aw_replace_file(tfd, r->name, r->tmp, 0644, buf, pos, sync, err);
  free(buf);
  return rc;
}

int aw_history_save(const aw_history *h, int tfd, int sync, aw_error *err)
{
  return save_record(h, &HISTORY, tfd, sync, err);
}

/* ---- the leftovers: versions that could not be removed yet ---- */

/* The record only lists them for aw_versions and the caller: a leftover
 * is a version directory that neither ..data nor ..history names, so the
 * next write's orphan sweep retries it whatever the record says (a crash
 * before the record is saved loses nothing). A damaged record reads as
 * empty, and the next save rewrites it. */
int aw_leftovers_load(aw_history *h, int tfd, aw_error *err)
{
  return load_record(h, &LEFTOVERS, tfd, err) < 0 ? -1 : 0;
}

int aw_leftovers_save(const aw_history *h, int tfd, aw_error *err)
{
  return save_record(h, &LEFTOVERS, tfd, 0, err);
}

/* ---- the history in a write ---- */

/* A version superseded less than this long ago stays, even beyond keep,
 * so that a reader that resolved ..data to it just before the swap can
 * finish: with keep > 0 no reader sees a file vanish unless it stalls
 * this long inside one version. */
#define READER_GRACE_NS 1000000000LL

int aw_history_keep_count(const aw_history *h, const char *cur, int keep)
{
  if (keep == AW_KEEP_AS_IS)
    return (int)(h->n - (aw_history_find(h, cur) >= 0));
  return keep > 0 ? keep : 0;
}

int aw_history_before_swap(aw_history *h, int tfd, const char *cur, int keep, int sync,
                           aw_error *err)
{
  long long sec;
  long nsec;

  if (keep == 0 || !cur[0] || aw_history_find(h, cur) >= 0)
    return 0;
  if (aw_data_link_time(tfd, &sec, &nsec) < 0)
    return aw_fail_sys(err, "inspect", AW_DATA_NAME, errno);
  if (aw_history_insert(h, 0, cur, sec, nsec) < 0)
    return aw_fail_sys(err, "allocate", NULL, ENOMEM);
  if (aw_history_save(h, tfd, sync == AW_SYNC_FILES, err) < 0)
    return -1;
  if (sync == AW_SYNC_FILES && aw_sync_file(tfd) < 0)
    return aw_fail_sys(err, "sync target directory", NULL, errno);
  return 0;
}

/* How many kept versions stay: the newest `keep`, and after them those
 * superseded (by the version listed before them) within the grace. */
static size_t versions_to_keep(const aw_history *h, int keep)
{
  size_t n = h->n < (size_t)keep ? h->n : (size_t)keep;
  struct timespec now;

  if (keep == 0 || n == 0)
    return n;
  clock_gettime(CLOCK_REALTIME, &now);
  for (; n < h->n; n++) {
    const aw_version_info *newer = &h->v[n - 1];
    long long age = ((long long)now.tv_sec - newer->published_sec) * 1000000000LL +
                    (now.tv_nsec - newer->published_nsec);
    if (age < 0 || age >= READER_GRACE_NS)
      break;   /* older ones were superseded earlier still */
  }
  return n;
}

int aw_history_after_swap(aw_history *h, int tfd, int keep, const char *also, int sync,
                          size_t *old_n, aw_error *err)
{
  size_t n = versions_to_keep(h, keep);

  *old_n = h->n;
  if (keep > 0 && also && also[0])
    n = aw_history_keep_also(h, n, also);
  if (n == h->n && !h->damaged)
    return 0;
  h->n = n;
  return aw_history_save(h, tfd, sync != AW_SYNC_OFF, err);
}

/* ---- reading the list ---- */

int aw_data_link_time(int tfd, long long *sec, long *nsec)
{
  struct stat st;
  if (fstatat(tfd, AW_DATA_NAME, &st, AT_SYMLINK_NOFOLLOW) < 0)
    return -1;
  *sec = (long long)AW_ST_MTIM(&st).tv_sec;
  *nsec = (long)AW_ST_MTIM(&st).tv_nsec;
  return 0;
}

void aw_version_list_free(aw_version_list *list)
{
  free(list->v);
  list->v = NULL;
  list->n = list->cap = 0;
}

/* The current version, then the kept ones that still exist. */
static int fill_current(aw_version_list *list, const aw_history *h, int tfd, const char *cur,
                        aw_error *err)
{
  aw_version_info *v = list->v;
  size_t i;

  memset(&v[0], 0, sizeof v[0]);
  snprintf(v[0].name, sizeof v[0].name, "%s", cur);
  v[0].current = 1;
  if (aw_data_link_time(tfd, &v[0].published_sec, &v[0].published_nsec) < 0)
    return aw_fail_sys(err, "inspect", AW_DATA_NAME, errno);
  list->n = 1;
  for (i = 0; i < h->n; i++) {
    struct stat st;
    if (strcmp(h->v[i].name, cur) == 0 ||
        fstatat(tfd, h->v[i].name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode))
      continue;
    v[list->n] = h->v[i];
    v[list->n++].current = 0;
  }
  return 0;
}

/* The current version, then the kept ones that still exist; or, for
 * aw_leftovers (`left` non-NULL), the leftovers that still exist and are
 * neither current nor kept. */
static int fill_list(aw_version_list *list, const aw_history *h, const aw_history *left,
                     int tfd, const char *cur, aw_error *err)
{
  aw_version_info *v;
  size_t i, want = left ? left->n : cur[0] ? h->n + 1 : 0;

  list->n = 0;
  if (want == 0)
    return 0;
  if (!(v = malloc(want * sizeof *v)))
    return aw_fail_sys(err, "allocate", NULL, ENOMEM);
  free(list->v);
  list->v = v;
  list->cap = want;
  if (!left)
    return fill_current(list, h, tfd, cur, err);
  for (i = 0; i < left->n; i++) {
    struct stat st;
    if (strcmp(left->v[i].name, cur) == 0 || aw_history_find(h, left->v[i].name) >= 0 ||
        fstatat(tfd, left->v[i].name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode))
      continue;
    v[list->n] = left->v[i];
    v[list->n++].current = 0;
  }
  return 0;
}

/* One attempt: ..data, the record(s), ..data again. 1 when ..data did not
 * move meanwhile (list filled), 0 when it did, -1 on error. */
static int try_versions(aw_version_list *list, int tfd, int leftovers, aw_error *err)
{
  char cur[AW_NAME_SIZE], again[AW_NAME_SIZE];
  aw_history h, left;
  int rc;

  memset(&h, 0, sizeof h);
  memset(&left, 0, sizeof left);
  if (aw_read_data_link(tfd, cur, sizeof cur, "read", err) < 0 ||
      aw_history_load(&h, tfd, cur, err) < 0 ||
      (leftovers && aw_leftovers_load(&left, tfd, err) < 0) ||
      aw_read_data_link(tfd, again, sizeof again, "read", err) < 0) {
    aw_history_free(&h);
    aw_history_free(&left);
    return -1;
  }
  rc = strcmp(cur, again) != 0 ? 0
       : fill_list(list, &h, leftovers ? &left : NULL, tfd, cur, err) < 0 ? -1 : 1;
  aw_history_free(&h);
  aw_history_free(&left);
  return rc;
}

static int list_versions(const char *target, aw_version_list *list, int leftovers,
                         aw_error *err)
{
  int attempt, rc = 0, tfd = open(target, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

  memset(list, 0, sizeof *list);
  if (tfd < 0)
    return aw_fail_sys(err, "open target directory", NULL, errno);
  for (attempt = 0; rc == 0; attempt++)
    if ((rc = aw_reader_lock(tfd, attempt, err)) >= 0)
      rc = try_versions(list, tfd, leftovers, err);
  close(tfd);
  if (rc < 0)
    aw_version_list_free(list);
  return rc < 0 ? -1 : 0;
}

int aw_versions(const char *target, aw_version_list *list, aw_error *err)
{
  return list_versions(target, list, 0, err);
}

int aw_leftovers(const char *target, aw_version_list *list, aw_error *err)
{
  return list_versions(target, list, 1, err);
}
