/*
 * core_test.c - the C core checked without Lua, for the platforms the
 * busted suite cannot run on here: built statically for musl, 32-bit x86
 * and a big-endian target (make cross-test; qemu runs the foreign ones).
 *
 * Usage: core-test [DIR]   (DIR, default $TMPDIR or /tmp, gets a scratch
 * directory that is removed at the end). Prints one "ok" / "not ok" line
 * per check, then "N passed, M failed" (.ci/run sums it); exits 1 when a
 * check failed.
 *
 * What it checks: a write, an update, a no-op (read back, and through the
 * manifest), a read, failures (invalid, conflict, ENOENT), both sync
 * methods, a watcher; history (keep, versions, reading a kept version,
 * rollback, changes, noversion); the digest against reference vectors, the manifest
 * written and read back (64-bit fields, a damaged one ignored), the path
 * order, and the widths the on-disk formats rely on.
 */
#define _GNU_SOURCE
#include "aw_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

static int passed, failed;

static void check(int ok, const char *what)
{
  if (ok)
    passed++;
  else
    failed++;
  printf("%s %d - %s\n", ok ? "ok" : "not ok", passed + failed, what);
}

static void check_err(int rc, const aw_error *err, const char *code, const char *what)
{
  char line[512];
  snprintf(line, sizeof line, "%s (got rc %d, code %s)", what, rc,
           rc < 0 ? aw_error_code(err) : "-");
  check(rc < 0 && strcmp(aw_error_code(err), code) == 0, line);
}

static aw_file file_of(const char *path, const char *data, unsigned mode)
{
  aw_file f;
  memset(&f, 0, sizeof f);
  f.path = path;
  f.path_len = strlen(path);
  f.data = data;
  f.size = strlen(data);
  f.mode = mode;
  f.uid = f.gid = -1;
  return f;
}

/* The payload: 10 small files (the manifest takes 8 or more), two below
 * directories; `n` the data of the one that changes. */
#define NFILES 10
static char paths[NFILES][16], datas[NFILES][32];

static void payload(aw_file *files, const char *n)
{
  int i;
  for (i = 0; i < NFILES; i++) {
    snprintf(paths[i], sizeof paths[i], i < 2 ? "d%d/sub/f" : "f%d", i);
    snprintf(datas[i], sizeof datas[i], "file %d\n", i);
    files[i] = file_of(paths[i], datas[i], i == 3 ? 0600 : 0644);
  }
  files[NFILES - 1].data = n;
  files[NFILES - 1].size = strlen(n);
}

/* Is the snapshot exactly `files`? (aw_read's order is the directory's.) */
static int snapshot_is(const aw_snapshot *s, const aw_file *files, size_t n)
{
  size_t i, j;
  if (s->n != n)
    return 0;
  for (i = 0; i < n; i++) {
    for (j = 0; j < s->n; j++)
      if (strlen(s->files[j].path) == files[i].path_len &&
          memcmp(s->files[j].path, files[i].path, files[i].path_len) == 0)
        break;
    if (j == s->n || s->files[j].size != files[i].size ||
        memcmp(s->files[j].data, files[i].data, files[i].size) != 0 ||
        s->files[j].mode != files[i].mode)
      return 0;
  }
  return 1;
}

static int rm_rf(const char *dir)
{
  char cmd[1200];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  return system(cmd);
}

static void test_writes(const char *target)
{
  aw_file files[NFILES + 1];
  aw_options opts;
  aw_error err;
  aw_snapshot snap;
  char version[256], link[256], path[1200];
  int changed = -1, rc;
  ssize_t n;

  aw_options_init(&opts);
  payload(files, "one\n");
  rc = aw_write(target, files, NFILES, &opts, &changed, &err);
  check(rc == 0 && changed == 1, "a first write publishes");

  rc = aw_read(target, &snap, &err);
  check(rc == 0 && snapshot_is(&snap, files, NFILES), "a read returns exactly the payload");
  if (rc == 0)
    aw_snapshot_free(&snap);
  snprintf(path, sizeof path, "%s/" AW_DATA_NAME, target);
  n = readlink(path, link, sizeof link - 1);
  link[n > 0 ? n : 0] = '\0';
  check(aw_version(target, version, sizeof version, &err) == 0 && n > 0 &&
        strcmp(version, link) == 0 && aw_is_version_name(version),
        "aw_version names the version ..data points at");
  snprintf(path, sizeof path, "%s/d0", target);
  n = readlink(path, link, sizeof link - 1);
  link[n > 0 ? n : 0] = '\0';
  check(n > 0 && strcmp(link, "..data/d0") == 0, "a top-level name is a link through ..data");

  changed = -1;
  rc = aw_write(target, files, NFILES, &opts, &changed, &err);
  check(rc == 0 && changed == 0, "the same payload again is a no-op");
  changed = -1;
  rc = aw_write(target, files, NFILES, &opts, &changed, &err);
  check(rc == 0 && changed == 0, "and again, through the manifest");

  payload(files, "two\n");
  changed = -1;
  rc = aw_write(target, files, NFILES, &opts, &changed, &err);
  check(rc == 0 && changed == 1, "an update publishes");
  rc = aw_read(target, &snap, &err);
  check(rc == 0 && snapshot_is(&snap, files, NFILES) &&
        strcmp(snap.version, version) != 0, "the update reads back as a new version");
  if (rc == 0)
    aw_snapshot_free(&snap);

  files[3].mode = 0640;   /* a mode alone is a change */
  changed = -1;
  rc = aw_write(target, files, NFILES, &opts, &changed, &err);
  check(rc == 0 && changed == 1, "a change of mode alone publishes");

  opts.sync = AW_SYNC_FILES;
  payload(files, "three\n");
  changed = -1;
  rc = aw_write(target, files, NFILES, &opts, &changed, &err);
  check(rc == 0 && changed == 1, "a write synced file by file publishes");
  opts.sync = AW_SYNC_FS;
  payload(files, "four\n");
  changed = -1;
  rc = aw_write(target, files, NFILES, &opts, &changed, &err);
  check(rc == 0 && changed == 1, "a write synced by file system publishes");
  rc = aw_read(target, &snap, &err);
  check(rc == 0 && snapshot_is(&snap, files, NFILES), "and reads back");
  if (rc == 0)
    aw_snapshot_free(&snap);

  /* Failures leave the published version as it was. */
  files[NFILES] = file_of("../escape", "x", 0644);
  rc = aw_write(target, files, NFILES + 1, &opts, &changed, &err);
  check_err(rc, &err, "invalid", "a '..' path is refused as invalid");
  files[NFILES] = file_of("user", "x", 0644);
  snprintf(path, sizeof path, "%s/user", target);
  {
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
    check(fd >= 0 && close(fd) == 0, "a user's file planted in the target");
  }
  rc = aw_write(target, files, NFILES + 1, &opts, &changed, &err);
  check_err(rc, &err, "conflict", "a name held by the user's file is a conflict");
  rc = aw_read(target, &snap, &err);
  check(rc == 0 && snapshot_is(&snap, files, NFILES), "after the failures the last version is intact");
  if (rc == 0)
    aw_snapshot_free(&snap);
  snprintf(path, sizeof path, "%s/missing", target);
  rc = aw_write(path, files, NFILES, &opts, &changed, &err);
  check_err(rc, &err, "ENOENT", "a missing target is ENOENT");
}

/* History without Lua: aw_publish with keep and changes, aw_versions,
 * aw_read_version of the kept one, aw_rollback, noversion. */
static void test_history(const char *dir)
{
  aw_file one[2], two[1];
  aw_options opts;
  aw_error err;
  aw_result res;
  aw_version_list list;
  aw_snapshot snap;
  char target[1100], v1[AW_NAME_SIZE];
  int rc;

  snprintf(target, sizeof target, "%s/history", dir);
  if (mkdir(target, 0755) < 0) {
    check(0, "history: mkdir");
    return;
  }
  aw_options_init(&opts);
  opts.sync = 0;
  opts.keep = 1;
  opts.changes = 1;
  one[0] = file_of("a", "one\n", 0644);
  one[1] = file_of("d/b", "bee\n", 0600);
  two[0] = file_of("a", "two\n", 0644);
  rc = aw_publish(target, one, 2, &opts, &res, &err);
  check(rc == 0 && res.changed && res.version[0] && res.nchanges == 2 &&
        res.changes[0].kind == AW_ADDED && strcmp(res.changes[1].path, "d/b") == 0,
        "history: a publish says its version and what it added");
  snprintf(v1, sizeof v1, "%s", res.version);
  aw_result_free(&res);
  rc = aw_publish(target, two, 1, &opts, &res, &err);
  check(rc == 0 && res.changed && res.nchanges == 2 && res.changes[0].kind == AW_CHANGED &&
        res.changes[1].kind == AW_REMOVED, "history: an update says what changed and went");
  aw_result_free(&res);
  rc = aw_versions(target, &list, &err);
  check(rc == 0 && list.n == 2 && list.v[0].current && !list.v[1].current &&
        strcmp(list.v[1].name, v1) == 0 && list.v[1].published_sec > 0,
        "history: aw_versions lists the current and the kept version");
  aw_version_list_free(&list);
  rc = aw_read_version(target, v1, &snap, &err);
  check(rc == 0 && snapshot_is(&snap, one, 2), "history: aw_read_version reads the kept one");
  if (rc == 0)
    aw_snapshot_free(&snap);
  rc = aw_rollback(target, NULL, &opts, &res, &err);
  check(rc == 0 && res.changed && strcmp(res.version, v1) != 0,
        "history: aw_rollback publishes the kept version again as a new one");
  aw_result_free(&res);
  rc = aw_read(target, &snap, &err);
  check(rc == 0 && snapshot_is(&snap, one, 2), "history: the rolled back content is current");
  if (rc == 0)
    aw_snapshot_free(&snap);
  rc = aw_rollback(target, "..2001_01_01_00_00_00.1", &opts, &res, &err);
  aw_result_free(&res);
  check_err(rc, &err, "noversion", "history: a version not kept is refused");
}

static void test_watch(const char *target)
{
  aw_watch *w = NULL;
  aw_file files[NFILES];
  aw_error err;
  char version[256], now[256];
  int changed, rc;

  rc = aw_watch_open(&w, target, 0, &err);
  check(rc == 0, "a watcher opens");
  if (rc < 0)
    return;
  check(aw_watch_next(w, 0, version, sizeof version, &err) == 0,
        "the watcher does not report the current version");
  payload(files, "watched\n");
  rc = aw_write(target, files, NFILES, NULL, &changed, &err);
  check(rc == 0 && aw_watch_next(w, 5000, version, sizeof version, &err) == 1 &&
        aw_version(target, now, sizeof now, &err) == 0 && strcmp(version, now) == 0,
        "the watcher reports the version published");
  aw_watch_close(w);
}

static void test_digest(void)
{
  /* SipHash-2-4-128 reference vectors: key 00..0f, message 00..len-1. */
  static const char *const want[] = {
    "a3817f04ba25a8e66df67214c7550293",   /* len 0 */
    "3b62a9ba6258f5610f83e264f31497b4",   /* len 8 */
    "e617346ac9c231bb3650ae34ccca0c5b",   /* len 42 */
    "5150d1772f50834a503e069a973fbd7c",   /* len 63 */
  };
  static const size_t lens[] = { 0, 8, 42, 63 };
  unsigned char key[AW_KEY_SIZE], msg[64], out[AW_DIGEST_SIZE], out2[AW_DIGEST_SIZE];
  char hex[2 * AW_DIGEST_SIZE + 1], line[128];
  int i, j, all = 1, pair = 1;

  for (i = 0; i < AW_KEY_SIZE; i++)
    key[i] = (unsigned char)i;
  for (i = 0; i < 64; i++)
    msg[i] = (unsigned char)i;
  for (i = 0; i < 4; i++) {
    aw_siphash128(key, msg, lens[i], out);
    for (j = 0; j < AW_DIGEST_SIZE; j++)
      sprintf(hex + 2 * j, "%02x", out[j]);
    if (strcmp(hex, want[i]) != 0) {
      all = 0;
      snprintf(line, sizeof line, "# len %u: %s", (unsigned)lens[i], hex);
      puts(line);
    }
    aw_siphash128_pair(key, msg, lens[i], out2, msg, 63, out);
    pair &= memcmp(out2, out, AW_DIGEST_SIZE) == 0 ? lens[i] == 63 : 1;
    aw_siphash128(key, msg, lens[i], out);
    pair &= memcmp(out2, out, AW_DIGEST_SIZE) == 0;
  }
  check(all, "the digest matches SipHash-2-4-128's reference vectors");
  check(pair, "two digests side by side are each the single one");
}

static void test_manifest(const char *dir)
{
  aw_manifest m, back;
  aw_ident id;
  unsigned char digest[AW_DIGEST_SIZE];
  char path[1200];
  int tfd, ok, fd;
  unsigned char byte = 0;

  aw_manifest_init(&m);
  aw_manifest_init(&back);
  check(aw_manifest_new_key(m.key) == 0, "a manifest key comes from the random source");
  snprintf(m.version, sizeof m.version, "..2026_11_30_12_00_00.000000001");
  id.dev = 0x0123456789abcdefULL;   /* beyond 32 bits, both halves distinct */
  id.ino = 0xfedcba9876543210ULL;
  id.size = 5000000000ULL;
  id.mtime_sec = -2;                /* before 1970: signed */
  id.mtime_nsec = 999999999;
  memset(digest, 0xa5, sizeof digest);
  ok = aw_manifest_add(&m, "a", 1, AW_M_DIR | AW_M_SETTLED, &id, NULL, NULL) == 0 &&
       aw_manifest_add(&m, "a/b", 3, AW_M_SETTLED | AW_M_DIGEST, &id, digest, NULL) == 0;
  tfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  check(ok && tfd >= 0 && aw_manifest_save(&m, NULL, tfd) == 0, "a manifest is saved");
  ok = aw_manifest_load(&back, tfd, m.version) == 1 && back.n == 2 &&
       memcmp(back.key, m.key, AW_KEY_SIZE) == 0 &&
       back.v[1].len == 3 && memcmp(back.v[1].path, "a/b", 3) == 0 &&
       back.v[1].flags == (AW_M_SETTLED | AW_M_DIGEST) &&
       back.v[1].id.dev == id.dev && back.v[1].id.ino == id.ino &&
       back.v[1].id.size == id.size && back.v[1].id.mtime_sec == -2 &&
       back.v[1].id.mtime_nsec == 999999999 &&
       memcmp(back.v[1].digest, digest, AW_DIGEST_SIZE) == 0 && back.v[0].flags == (AW_M_DIR | AW_M_SETTLED);
  check(ok, "the manifest reads back with every 64-bit field as written");
  aw_manifest_free(&back);
  check(aw_manifest_load(&back, tfd, "..2026_11_30_12_00_00.000000002") == 0 && back.n == 0,
        "a manifest of another version is ignored");
  snprintf(path, sizeof path, "%s/" AW_MANIFEST_NAME, dir);
  fd = open(path, O_RDWR);
  ok = fd >= 0 && pread(fd, &byte, 1, 60) == 1;
  byte ^= 1;
  ok = ok && pwrite(fd, &byte, 1, 60) == 1;
  if (fd >= 0)
    close(fd);
  check(ok && aw_manifest_load(&back, tfd, m.version) == 0 && back.n == 0,
        "a damaged manifest (one bit) is ignored");
  aw_manifest_free(&back);
  aw_manifest_free(&m);
  if (tfd >= 0)
    close(tfd);
}

static void test_order(void)
{
  /* '/' sorts before every other byte: a directory's files follow it. */
  static const char *const in[] = { "a.b", "a/z", "b", "a0", "a/b/c", "a-", "A", "a/b0" };
  static const char *const want[] = { "A", "a/b/c", "a/b0", "a/z", "a-", "a.b", "a0", "b" };
  aw_file files[8];
  aw_plan plan;
  aw_error err;
  size_t i;
  int ok;

  ok = aw_path_cmp("a", 1, "a/b", 3) < 0 && aw_path_cmp("a/b", 3, "a.b", 3) < 0 &&
       aw_path_cmp("abcdefgh/x", 10, "abcdefgh.x", 10) < 0 &&
       aw_path_cmp("abcdefgh.x", 10, "abcdefgh/x", 10) > 0 &&
       aw_path_cmp("abcdefghij", 10, "abcdefghij", 10) == 0 &&
       aw_path_cmp("abcdefghik", 10, "abcdefghij", 10) > 0 &&
       aw_path_cmp("abcdefghij", 10, "abcdefghijk", 11) < 0;
  check(ok, "the path order puts '/' first, eight bytes at a time too");
  for (i = 0; i < 8; i++)
    files[i] = file_of(in[i], "", 0644);
  memset(&plan, 0, sizeof plan);
  ok = aw_plan_build(&plan, files, NULL, 8, &err) == 0;
  for (i = 0; ok && i < 8; i++)
    ok = plan.n == 8 && strcmp(plan.entries[i].path, want[i]) == 0;
  aw_plan_free(&plan);
  check(ok, "a payload's plan is sorted in that order");
}

static void test_widths(void)
{
  char line[160];
  snprintf(line, sizeof line, "off_t, ino_t and time_t hold 64-bit values (%u %u %u, size_t %u)",
           (unsigned)sizeof(off_t), (unsigned)sizeof(ino_t), (unsigned)sizeof(time_t),
           (unsigned)sizeof(size_t));
  check(sizeof(off_t) == 8 && sizeof(ino_t) == 8, line);
}

/* Files from sources through the C API: copied (a 300 KiB source crosses
 * the portable loop's 128 KiB buffer), mode from the source, not read
 * again while unchanged (the progress counts the linked file), refused
 * with both paths named, and checksum set: through aw_options' fields,
 * the documented way. */
static void progress_count(void *ctx, unsigned long long files, unsigned long long bytes)
{
  unsigned long long *last = ctx;
  last[0] = files;
  last[1] = bytes;
}

/* The setters 1.0.0 exported, kept for compatibility: each sets its
 * fields as aw.h says and nothing else. */
static void test_option_setters(void)
{
  aw_options by_field, by_setter;
  int ctx = 0, ok;
  size_t i;

  aw_options_init(&by_field);
  aw_options_init(&by_setter);
  by_field.checksum = 1;
  by_field.ignore_modes = 1;
  by_field.progress = progress_count;
  by_field.progress_ctx = &ctx;
  aw_options_set_checksum(&by_setter, 7);
  aw_options_set_modes(&by_setter, 0);
  aw_options_set_progress(&by_setter, progress_count, &ctx);
  ok = by_setter.checksum == by_field.checksum && by_setter.ignore_modes == by_field.ignore_modes &&
       by_setter.progress == by_field.progress && by_setter.progress_ctx == by_field.progress_ctx &&
       by_setter.sync == by_field.sync && by_setter.timeout_ms == by_field.timeout_ms &&
       by_setter.keep == by_field.keep && by_setter.changes == by_field.changes;
  for (i = 0; i < sizeof by_setter.reserved / sizeof by_setter.reserved[0]; i++)
    ok = ok && by_setter.reserved[i] == NULL;
  check(ok, "aw_options_set_checksum/_modes/_progress set exactly the fields checksum (0 or 1), "
            "ignore_modes (!modes), progress and progress_ctx");
  aw_options_set_checksum(&by_setter, 0);
  aw_options_set_modes(&by_setter, 1);
  aw_options_set_progress(&by_setter, NULL, &ctx);
  check(by_setter.checksum == 0 && by_setter.ignore_modes == 0 && by_setter.progress == NULL &&
            by_setter.progress_ctx == NULL,
        "and set them back (no progress: no context either)");
}

static void test_sources(const char *dir)
{
  char src[1200], target[1200], big[1200], line[4096], *data;
  const char *sources[2];
  aw_file files[2];
  aw_options opts;
  aw_result res;
  aw_error err;
  aw_snapshot snap;
  unsigned long long last[2] = { 0, 0 };
  size_t size = 300 * 1024, i;
  int fd, rc;

  snprintf(src, sizeof src, "%s/src.txt", dir);
  snprintf(big, sizeof big, "%s/big.bin", dir);
  snprintf(target, sizeof target, "%s/sources", dir);
  data = malloc(size);
  for (i = 0; data && i < size; i++)
    data[i] = (char)(i * 7 + i / 251);
  fd = open(big, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  check(data && fd >= 0 && aw_write_all(fd, data, size) == 0 && close(fd) == 0,
        "a 300 KiB source is made");
  fd = open(src, O_WRONLY | O_CREAT | O_TRUNC, 0640);
  check(fd >= 0 && aw_write_all(fd, "from a file\n", 12) == 0 && fchmod(fd, 0640) == 0 &&
        close(fd) == 0 && mkdir(target, 0755) == 0, "a small source and a target are made");

  files[0] = file_of("a/big", "", AW_MODE_SOURCE);
  files[0].data = NULL;
  files[0].size = 0;
  files[1] = file_of("txt", "", 0444);
  files[1].data = NULL;
  files[1].size = 0;
  sources[0] = big;
  sources[1] = src;
  aw_options_init(&opts);
  opts.sync = AW_SYNC_OFF;
  opts.progress = progress_count;
  opts.progress_ctx = last;
  rc = aw_publish_sources(target, files, sources, 2, &opts, &res, &err);
  check(rc == 0 && res.changed == 1 && last[0] == 2 && last[1] == size + 12,
        "aw_publish_sources publishes both, the progress counts 2 files and their bytes");
  aw_result_free(&res);
  rc = aw_read(target, &snap, &err);
  check(rc == 0 && snap.n == 2, "aw_read finds the two files");
  for (i = 0; rc == 0 && i < snap.n; i++) {
    int is_big = strcmp(snap.files[i].path, "a/big") == 0;
    check(is_big ? snap.files[i].size == size && memcmp(snap.files[i].data, data, size) == 0 &&
                       snap.files[i].mode == 0600
                 : snap.files[i].size == 12 && memcmp(snap.files[i].data, "from a file\n", 12) == 0 &&
                       snap.files[i].mode == 0444,
          is_big ? "the big file holds the source's bytes and mode" : "the small one its bytes, 0444");
  }
  if (rc == 0)
    aw_snapshot_free(&snap);

  opts.checksum = 1;
  rc = aw_publish_sources(target, files, sources, 2, &opts, &res, &err);
  check(rc == 0 && res.changed == 0, "an unchanged source is a no-op, with checksum too");
  aw_result_free(&res);

  sources[1] = dir;   /* a directory */
  rc = aw_publish_sources(target, files, sources, 2, &opts, &res, &err);
  aw_result_free(&res);
  check_err(rc, &err, "invalid", "a directory as a source is refused");
  aw_error_format(&err, NULL, target, line, sizeof line);
  check(aw_error_source(&err) == dir && strstr(line, "\"txt\" from source") != NULL,
        "the error names the payload path and the source");
  sources[1] = src;
  files[1].data = "x";
  files[1].size = 1;
  rc = aw_publish_sources(target, files, sources, 2, &opts, &res, &err);
  aw_result_free(&res);
  check_err(rc, &err, "invalid", "data and a source together are refused");

  /* aw_list_tree_names: paths only, every mode AW_MODE_SOURCE */
  rc = aw_list_tree_names(dir, &snap, &err);
  for (i = 0, fd = 0; rc == 0 && i < snap.n; i++) {
    fd += strcmp(snap.files[i].path, "big.bin") == 0 || strcmp(snap.files[i].path, "src.txt") == 0;
    if (snap.files[i].mode != AW_MODE_SOURCE || snap.files[i].size != 0 || snap.files[i].data ||
        snap.files[i].uid != -1)
      fd = -1000;
  }
  check(rc == 0 && fd == 2, "aw_list_tree_names lists the sources with mode AW_MODE_SOURCE, no size");
  if (rc == 0)
    aw_snapshot_free(&snap);
  free(data);
}

int main(int argc, char **argv)
{
  const char *base = argc > 1 ? argv[1] : getenv("TMPDIR");
  const aw_platform_info *p = aw_platform();
  const unsigned one = 1;
  char dir[1024], target[1100];

  printf("# platform: listing %s, random %s, sync %s, watch %s; %s-endian, %u-bit\n",
         p->listing, p->random, p->sync, p->watch,
         *(const unsigned char *)&one ? "little" : "big",
         (unsigned)(8 * sizeof(void *)));
  snprintf(dir, sizeof dir, "%s/aw-core-test.XXXXXX", base && *base ? base : "/tmp");
  if (!mkdtemp(dir)) {
    perror("mkdtemp");
    return 2;
  }
  snprintf(target, sizeof target, "%s/target", dir);
  if (mkdir(target, 0755) < 0) {
    perror("mkdir");
    return 2;
  }
  test_writes(target);
  test_history(dir);
  test_watch(target);
  test_digest();
  test_manifest(dir);
  test_order();
  test_widths();
  test_option_setters();
  test_sources(dir);
  rm_rf(dir);
  printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
