/*
 * roundtrip.c - libFuzzer harness: end to end, on the real file system.
 *
 * Input: one byte of flags, one byte saying how to tamper with A's
 * version (see tamper), then payload A, a line "--", payload B (no such
 * line: B is made from A, see derive_b). A payload is one file per
 * line, "path=data" (no '=': empty data). A path may start with "@NNN"
 * (three octal digits): the file's mode, else 0644. Data "*N:c" stands for
 * the byte c N times (N up to 200000: files past the manifest's 32 KiB and
 * the comparison's buffer).
 * Flags: 1 sync, 2 settle the version between writes (mtimes moved into
 * the past, so that the manifest's identities are trusted), 4 plant a
 * user's file in the target, 8 give each file of A an owner (the writer's
 * own uid and gid: fchown runs, and the comparison weighs owners), the
 * high nibble picks how B is derived.
 *
 * In a fresh target: write A, then A again, (tampered with: A again),
 * then B, then B again. Checks:
 *   - a payload that the contract's rules refuse (fuzz.h's reference
 *     cleaning, duplicates, file-and-directory) fails with "invalid" and
 *     changes nothing; any other write succeeds;
 *   - `changed` is 1 exactly when the target did not hold the payload
 *     already (bytes, mode, cleaned paths), so the second write of each
 *     is a no-op;
 *   - after each: aw_read gives back exactly the payload (cleaned paths,
 *     bytes, modes), and so do the visible names; the layout is whole:
 *     ..data -> the only version directory (0755, its directories 0755),
 *     one link "..data/<name>" per top-level name, a ..manifest only as a
 *     0600 file, no ..data_tmp or ..manifest_tmp, nothing else but the
 *     planted user's file, untouched;
 *   - a file that B keeps as A had it is A's file hard-linked (same inode).
 * The target lives in $AW_FUZZ_DIR, else /dev/shm (tmpfs), else /tmp.
 */
#define _GNU_SOURCE
#include "fuzz.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <time.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_FILES 64
#define MAX_REPEAT 200000
#define USER_FILE "user-file"

typedef struct payload {
  aw_file f[MAX_FILES + 1];
  char *owned[MAX_FILES + 1];   /* data this harness allocated */
  size_t n;
  size_t repeated;              /* bytes of "*N:c" data so far (1 MiB at most) */
  int valid;                    /* the reference's verdict */
  char *clean[MAX_FILES + 1];   /* cleaned paths when valid */
  size_t clen[MAX_FILES + 1];
} payload;

static char base[PATH_MAX];
static int is_root, owner_given;

static void init(void)
{
  const char *dir = getenv("AW_FUZZ_DIR");
  struct stat st;
  if (!dir)
    dir = stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) ? "/dev/shm" : "/tmp";
  snprintf(base, sizeof base, "%s", dir);
  is_root = geteuid() == 0;
}

/* ---- payloads ---- */

static void add_line(payload *p, const char *line, size_t len)
{
  const char *eq = memchr(line, '=', len);
  aw_file *f;
  size_t plen = eq ? (size_t)(eq - line) : len;
  if (p->n == MAX_FILES)
    return;
  f = &p->f[p->n];
  memset(f, 0, sizeof *f);
  f->uid = owner_given ? (long long)geteuid() : -1;
  f->gid = owner_given ? (long long)getegid() : -1;
  f->mode = 0644;
  if (plen >= 4 && line[0] == '@' && line[1] >= '0' && line[1] <= '7' &&
      line[2] >= '0' && line[2] <= '7' && line[3] >= '0' && line[3] <= '7') {
    f->mode = (unsigned)((line[1] - '0') * 64 + (line[2] - '0') * 8 + (line[3] - '0'));
    line += 4;
    len -= 4;
    plen -= 4;
  }
  if (!is_root)
    f->mode |= 0400;   /* aw_read must be able to read it back */
  f->path = line;
  f->path_len = plen;
  p->owned[p->n] = NULL;
  if (eq) {
    const char *d = eq + 1;
    size_t dlen = len - plen - 1, count = 0, i = 1;
    if (dlen >= 3 && d[0] == '*') {
      while (i < dlen && d[i] >= '0' && d[i] <= '9' && count <= MAX_REPEAT)
        count = count * 10 + (size_t)(d[i++] - '0');
      if (i + 2 == dlen && d[i] == ':' && count <= MAX_REPEAT &&
          p->repeated + count <= ((size_t)1 << 20)) {
        p->repeated += count;
        char *rep = malloc(count ? count : 1);
        CHECK(rep);
        memset(rep, d[i + 1], count);
        p->owned[p->n] = rep;
        d = rep;
        dlen = count;
      }
    }
    f->data = d;
    f->size = dlen;
  }
  p->n++;
}

static void parse(payload *p, const char *text, size_t len)
{
  size_t i, start = 0;
  memset(p, 0, sizeof *p);
  for (i = 0; i <= len; i++)
    if (i == len || text[i] == '\n') {
      if (i > start || i < len)
        add_line(p, text + start, i - start);
      start = i + 1;
    }
}

/* B from A: each file kept, given new bytes, a new mode, or dropped by
 * turns, and one file added. */
static void derive_b(payload *b, const payload *a, unsigned pick)
{
  static const char added[] = "added/new-file";
  size_t i;
  memset(b, 0, sizeof *b);
  for (i = 0; i < a->n; i++) {
    aw_file f = a->f[i];
    switch ((i + pick) % 4) {
    case 0: break;
    case 1: {
      char *d = malloc(f.size + 1);
      CHECK(d);
      if (f.size)
        memcpy(d, f.data, f.size);
      d[f.size] = 'x';
      f.data = d;
      f.size++;
      b->owned[b->n] = d;
      break;
    }
    case 2: f.mode ^= 0111; break;
    case 3: continue;
    }
    b->f[b->n++] = f;
  }
  if (pick & 8) {
    aw_file *f = &b->f[b->n++];
    memset(f, 0, sizeof *f);
    f->path = added;
    f->path_len = sizeof added - 1;
    f->data = "new";
    f->size = 3;
    f->mode = 0600;
    f->uid = f->gid = -1;
  }
}

/* The reference's verdict and cleaned paths. */
static void judge(payload *p)
{
  size_t i, j;
  p->valid = 1;
  for (i = 0; i < p->n; i++) {
    p->clean[i] = malloc(p->f[i].path_len + 1);
    CHECK(p->clean[i]);
    if (ref_clean(p->f[i].path, p->f[i].path_len, p->clean[i], &p->clen[i]) < 0)
      p->valid = 0;
  }
  for (i = 0; p->valid && i < p->n; i++)
    for (j = 0; p->valid && j < p->n; j++)
      if (i != j && ((p->clen[i] == p->clen[j] && memcmp(p->clean[i], p->clean[j], p->clen[i]) == 0) ||
                     ref_is_dir_of(p->clean[i], p->clen[i], p->clean[j], p->clen[j])))
        p->valid = 0;
}

static void payload_free(payload *p)
{
  size_t i;
  for (i = 0; i < p->n; i++) {
    free(p->owned[i]);
    free(p->clean[i]);
  }
}

/* ---- what is on disk ---- */

/* The index of the payload's file whose cleaned path is `path`, or -1. */
static long find(const payload *p, const char *path)
{
  size_t i, len = strlen(path);
  for (i = 0; i < p->n; i++)
    if (p->clen[i] == len && memcmp(p->clean[i], path, len) == 0)
      return (long)i;
  return -1;
}

/* Nonzero when the target's current version holds exactly `p`. */
static int holds(const char *target, const payload *p)
{
  aw_snapshot snap;
  aw_error err;
  size_t i;
  int same;
  CHECK(aw_read(target, &snap, &err) == 0);
  same = snap.version[0] && snap.n == p->n && snap.skipped == 0;
  for (i = 0; same && i < snap.n; i++) {
    long k = find(p, snap.files[i].path);
    same = k >= 0 && snap.files[i].size == p->f[k].size &&
           (p->f[k].size == 0 || memcmp(snap.files[i].data, p->f[k].data, p->f[k].size) == 0) &&
           snap.files[i].mode == p->f[k].mode &&
           (p->f[k].uid < 0 || snap.files[i].uid == p->f[k].uid) &&
           (p->f[k].gid < 0 || snap.files[i].gid == p->f[k].gid);
  }
  aw_snapshot_free(&snap);
  return same;
}

static int is_top(const payload *p, const char *name)
{
  size_t i, len = strlen(name);
  for (i = 0; i < p->n; i++)
    if (p->clen[i] >= len && memcmp(p->clean[i], name, len) == 0 &&
        (p->clen[i] == len || p->clean[i][len] == '/'))
      return 1;
  return 0;
}

/* Every directory below dfd (closed here) is 0755 and on the way to a file. */
static void check_dirs(const payload *p, int dfd, char *rel, size_t rlen)
{
  DIR *d = fdopendir(dfd);
  struct dirent *de;
  CHECK(d);
  while ((de = readdir(d))) {
    struct stat st;
    size_t nlen = strlen(de->d_name);
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
      continue;
    CHECK(fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0);
    CHECK(rlen + 1 + nlen < AW_MAX_PATH + NAME_MAX);
    if (rlen)
      rel[rlen] = '/';
    memcpy(rel + (rlen ? rlen + 1 : 0), de->d_name, nlen + 1);
    if (S_ISDIR(st.st_mode)) {
      size_t i, len = strlen(rel);
      int needed = 0;
      int sub = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      CHECK((st.st_mode & 07777) == 0755);
      for (i = 0; i < p->n && !needed; i++)
        needed = ref_is_dir_of(rel, len, p->clean[i], p->clen[i]);
      CHECK(needed);
      CHECK(sub >= 0);
      check_dirs(p, sub, rel, len);
    } else {
      CHECK(S_ISREG(st.st_mode));   /* aw_read compares the files */
    }
    rel[rlen] = '\0';
  }
  closedir(d);
}

static void check_layout(const char *target, const payload *p, int user_file)
{
  char version[NAME_MAX + 1], link[NAME_MAX + 16], rel[AW_MAX_PATH + NAME_MAX + 2];
  int tfd = open(target, O_RDONLY | O_DIRECTORY | O_CLOEXEC), vfd, versions = 0;
  DIR *d;
  struct dirent *de;
  ssize_t n;
  size_t i;

  CHECK(tfd >= 0);
  n = readlinkat(tfd, AW_DATA_NAME, version, sizeof version - 1);
  CHECK(n > 0);
  version[n] = '\0';
  CHECK(aw_is_version_name(version));
  d = fdopendir(dup(tfd));
  CHECK(d);
  while ((de = readdir(d))) {
    const char *name = de->d_name;
    struct stat st;
    if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0 || strcmp(name, AW_DATA_NAME) == 0)
      continue;
    CHECK(fstatat(tfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0);
    if (strcmp(name, version) == 0) {
      CHECK(S_ISDIR(st.st_mode) && (st.st_mode & 07777) == 0755);
      versions++;
    } else if (strcmp(name, AW_MANIFEST_NAME) == 0) {
      CHECK(S_ISREG(st.st_mode) && (st.st_mode & 07777) == 0600);
    } else if (user_file && strcmp(name, USER_FILE) == 0) {
      char buf[16];
      int fd = openat(tfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
      CHECK(fd >= 0 && read(fd, buf, sizeof buf) == 4 && memcmp(buf, "mine", 4) == 0);
      close(fd);
    } else {
      /* a visible link, exactly "..data/<name>", for a top-level name */
      CHECK(S_ISLNK(st.st_mode));
      n = readlinkat(tfd, name, link, sizeof link - 1);
      CHECK(n > 0);
      link[n] = '\0';
      CHECK(strncmp(link, "..data/", 7) == 0 && strcmp(link + 7, name) == 0);
      CHECK(is_top(p, name));
    }
  }
  closedir(d);
  CHECK(versions == 1);
  /* every top-level name has its link, and reading through the visible
   * names gives the payload */
  for (i = 0; i < p->n; i++) {
    int fd = openat(tfd, p->clean[i], O_RDONLY | O_CLOEXEC);
    struct stat st;
    char *got;
    CHECK(fd >= 0 && fstat(fd, &st) == 0);
    CHECK((size_t)st.st_size == p->f[i].size && (unsigned)(st.st_mode & 07777) == p->f[i].mode);
    got = malloc(p->f[i].size + 1);
    CHECK(got);
    CHECK(read(fd, got, p->f[i].size + 1) == (ssize_t)p->f[i].size);
    CHECK(p->f[i].size == 0 || memcmp(got, p->f[i].data, p->f[i].size) == 0);
    free(got);
    close(fd);
  }
  vfd = openat(tfd, version, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  CHECK(vfd >= 0);
  rel[0] = '\0';
  check_dirs(p, vfd, rel, 0);
  close(tfd);
}

/* Moves the mtimes of the version's files and directories an hour into
 * the past, as time does: the manifest then trusts their identities. */
static void settle_dir(int dfd)
{
  DIR *d = fdopendir(dfd);
  struct dirent *de;
  struct timespec old[2];
  CHECK(d);
  clock_gettime(CLOCK_REALTIME, &old[0]);
  old[0].tv_sec -= 3600;
  old[1] = old[0];
  while ((de = readdir(d))) {
    struct stat st;
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
      continue;
    CHECK(fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0);
    if (S_ISDIR(st.st_mode)) {
      int sub = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      CHECK(sub >= 0);
      settle_dir(sub);
    }
    CHECK(utimensat(dirfd(d), de->d_name, old, AT_SYMLINK_NOFOLLOW) == 0);
  }
  CHECK(futimens(dirfd(d), old) == 0);
  closedir(d);
}

static void settle(const char *target)
{
  char path[PATH_MAX];
  int fd;
  snprintf(path, sizeof path, "%s/" AW_DATA_NAME, target);
  fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  CHECK(fd >= 0);
  settle_dir(fd);
}

/* Changes the current version behind the writer's back, as a user or
 * another program might: `op` picks how, `k` which file of `p`. The next
 * write of `p` must see it (mtimes move as they do: this is not the
 * same-tick case the manifest cannot see). Returns nonzero when it did. */
static int tamper(const char *target, const payload *p, unsigned op, size_t k)
{
  char path[PATH_MAX + AW_MAX_PATH], copy[PATH_MAX + 16];
  const aw_file *f;
  int fd;

  if (p->n == 0 || op % 8 == 0)
    return 0;
  k %= p->n;
  f = &p->f[k];
  snprintf(path, sizeof path, "%s/" AW_DATA_NAME "/%s", target, p->clean[k]);
  switch (op % 8) {
  case 1:   /* other bytes, same size, in place */
    if (f->size == 0)
      return 0;
    CHECK(chmod(path, f->mode | 0200) == 0);   /* as its owner may */
    fd = open(path, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
    CHECK(fd >= 0);
    CHECK(pwrite(fd, f->data[0] == 'Z' ? "Y" : "Z", 1, 0) == 1);
    close(fd);
    CHECK(chmod(path, f->mode) == 0);
    return 1;
  case 2:   /* another mode */
    CHECK(chmod(path, f->mode ^ 0100) == 0);
    return 1;
  case 3: { /* an extra file beside it */
    char *slash;
    FILE *extra;
    slash = strrchr(path, '/');
    snprintf(slash + 1, sizeof path - (size_t)(slash + 1 - path), "%s", "extra~file");
    if (find(p, strchr(path + strlen(target) + 1, '/') + 1) >= 0)
      return 0;   /* the payload has it */
    CHECK((extra = fopen(path, "w")) && fclose(extra) == 0);
    return 1;
  }
  case 4:   /* gone */
    CHECK(unlink(path) == 0);
    return 1;
  case 5:   /* a symlink to a copy outside the target, same bytes and mode */
  default: {
    FILE *c;
    snprintf(copy, sizeof copy, "%s.copy", target);
    CHECK((c = fopen(copy, "w")) && (f->size == 0 || fwrite(f->data, f->size, 1, c) == 1) &&
          fclose(c) == 0);
    CHECK(chmod(copy, f->mode) == 0);
    CHECK(unlink(path) == 0 && symlink(copy, path) == 0);
    return 1;
  }
  }
}

/* The inode of each file of the current version, by payload index. */
static void inodes(const char *target, const payload *p, ino_t *ino)
{
  char path[PATH_MAX + AW_MAX_PATH];
  size_t i;
  for (i = 0; i < p->n; i++) {
    struct stat st;
    snprintf(path, sizeof path, "%s/" AW_DATA_NAME "/%s", target, p->clean[i]);
    CHECK(lstat(path, &st) == 0);
    ino[i] = st.st_ino;
  }
}

/* ---- the writes ---- */

/* Writes p; `held` is the payload the target holds now, or NULL. */
static void write_once(const char *target, const payload *p, const payload *held,
                       int sync, int user_file)
{
  aw_options opts;
  aw_error err;
  char before[NAME_MAX + 1], after[NAME_MAX + 1];
  int changed = -1, rc, expect_changed;

  aw_options_init(&opts);
  opts.sync = sync;
  CHECK(aw_version(target, before, sizeof before, &err) == 0);
  expect_changed = !held || !holds(target, p);
  memset(&err, 0, sizeof err);
  rc = aw_write(target, p->f, p->n, &opts, &changed, &err);
  if (!p->valid) {
    CHECK(rc == -1 && err.kind == AW_KIND_INVALID && changed == 0);
    CHECK(aw_version(target, after, sizeof after, &err) == 0 && strcmp(before, after) == 0);
    if (held)
      check_layout(target, held, user_file);
    return;
  }
  if (rc != 0)
    fprintf(stderr, "aw_write: %s %d %s\n", aw_error_code(&err), err.errnum, err.path);
  CHECK(rc == 0);
  CHECK(changed == expect_changed);
  CHECK(aw_version(target, after, sizeof after, &err) == 0);
  CHECK(changed ? strcmp(before, after) != 0 : strcmp(before, after) == 0);
  CHECK(holds(target, p));
  check_layout(target, p, user_file);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  static payload a, b;
  char target[PATH_MAX];
  const char *text, *sep;
  ino_t ino_a[MAX_FILES + 1], now[MAX_FILES + 1];
  unsigned flags, tamper_op;
  aw_error err;
  size_t i, tlen;
  int sync, user_file, a_ok;

  if (!base[0])
    init();
  if (size < 2)
    return 0;
  flags = data[0];
  tamper_op = data[1];
  sync = flags & 1;
  user_file = (flags & 4) != 0;
  owner_given = (flags & 8) != 0;
  text = (const char *)data + 2;
  tlen = size - 2;
  sep = memmem(text, tlen, "\n--\n", 4);
  if (sep) {
    parse(&a, text, (size_t)(sep - text));
    parse(&b, sep + 4, tlen - (size_t)(sep - text) - 4);
  } else {
    parse(&a, text, tlen);
    derive_b(&b, &a, flags >> 4);
  }
  judge(&a);
  judge(&b);

  snprintf(target, sizeof target, "%s/aw-fuzz-target.XXXXXX", base);
  CHECK(mkdtemp(target));
  if (user_file) {
    char path[PATH_MAX + 16];
    FILE *f;
    snprintf(path, sizeof path, "%s/" USER_FILE, target);
    CHECK((f = fopen(path, "w")) && fputs("mine", f) >= 0 && fclose(f) == 0);
  }

  /* A user's file at a name the payload needs is a conflict; leave those
   * payloads to the other inputs. */
  if ((user_file && a.valid && is_top(&a, USER_FILE)) ||
      (user_file && b.valid && is_top(&b, USER_FILE)))
    goto out;

  write_once(target, &a, NULL, sync, user_file);
  a_ok = a.valid;
  if (a_ok) {
    write_once(target, &a, &a, sync, user_file);
    if (flags & 2) {
      settle(target);
      write_once(target, &a, &a, sync, user_file);   /* learns, saves the manifest */
      write_once(target, &a, &a, sync, user_file);   /* the manifest's shortcut */
    }
    if (tamper(target, &a, tamper_op, tamper_op >> 3))
      write_once(target, &a, &a, sync, user_file);   /* must see it and republish */
    inodes(target, &a, ino_a);
  }
  write_once(target, &b, a_ok ? &a : NULL, sync, user_file);
  if (b.valid) {
    write_once(target, &b, &b, sync, user_file);
    /* what B keeps as A had it is A's file, linked */
    inodes(target, &b, now);
    for (i = 0; a_ok && i < b.n; i++) {
      long k = find(&a, b.clean[i]);
      if (k < 0 || a.f[k].size != b.f[i].size || a.f[k].mode != b.f[i].mode ||
          (b.f[i].size && memcmp(a.f[k].data, b.f[i].data, b.f[i].size) != 0))
        continue;
      CHECK(now[i] == ino_a[k]);
    }
  }

out:
  {
    char copy[PATH_MAX + 16];
    int dfd = open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    snprintf(copy, sizeof copy, "%s.copy", target);
    unlink(copy);
    CHECK(dfd >= 0);
    CHECK(aw_remove_tree(dfd, strrchr(target, '/') + 1, DT_DIR, &err) == 0);
    close(dfd);
  }
  payload_free(&a);
  payload_free(&b);
  return 0;
}
