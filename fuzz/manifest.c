/*
 * manifest.c - libFuzzer harness: ..manifest bytes -> the manifest loader
 * (aw_manifest_load, reading a real file in a scratch directory).
 *
 * Input: one byte of mode (its low 4 bits % 3, and a flag 16), then the
 * bytes.
 *   mode % 3 == 0  the bytes are the file, as they are (the MAC mostly
 *                  stops them: this covers the header and the MAC check)
 *   mode % 3 == 1  the bytes, with their last 16 replaced by the right MAC
 *                  under the key where the header puts it, so that a
 *                  mutation gets past the MAC and reaches the entries
 *   mode % 3 == 2  a header for the scratch target's version built here ("AWMANIF3", byte-order
 *                  mark, the count from the bytes' first 4, the name, a
 *                  key), then the rest of the bytes as the entries, then
 *                  the MAC: mutations spend themselves on the entries
 *
 *   mode & 16      then a write, through the writer, of the payload the
 *                  scratch directory holds as a target: with mode 2 the
 *                  header names its current version, so the writer
 *                  consults the entries
 *
 * Checks: a manifest either loads whole or is ignored (empty, nothing
 * allocated); one that loads describes the version asked for, each entry's path lies
 * inside the bytes read and is at most AW_MAX_PATH long, and written out
 * again it gives back exactly the bytes read (aw_manifest_save finds them
 * equal and writes nothing; it is handed no directory, so any write it
 * tried would fail).
 */
#define _GNU_SOURCE
#include "fuzz.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#define VERSION "..2026_11_30_12_00_00.000000001"
#define MAGIC "AWMANIF3"
#define HEADER (8 + 4 + 4 + 4)

static int dir_fd = -1;
static char dir_path[4096];

/* The scratch directory is a real target too, holding PAYLOAD: enough
 * small files that the writer keeps a manifest and consults it. */
#define NFILES 10
static aw_file payload[NFILES];
static char names[NFILES][8];

static void remove_scratch(void)
{
  aw_error err;
  char *slash = strrchr(dir_path, '/');
  int parent;
  *slash = '\0';
  parent = open(dir_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (parent >= 0) {
    aw_remove_tree(parent, slash + 1, DT_DIR, &err);
    close(parent);
  }
}

static void open_scratch(void)
{
  const char *base = getenv("AW_FUZZ_DIR");
  aw_error err;
  size_t i;
  snprintf(dir_path, sizeof dir_path, "%s/aw-fuzz-manifest.XXXXXX", base ? base : "/tmp");
  CHECK(mkdtemp(dir_path));
  dir_fd = open(dir_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  CHECK(dir_fd >= 0);
  atexit(remove_scratch);   /* libFuzzer ends with exit() */
  for (i = 0; i < NFILES; i++) {
    snprintf(names[i], sizeof names[i], i < 3 ? "d/f%zu" : "f%zu", i);
    payload[i].path = names[i];
    payload[i].path_len = strlen(names[i]);
    payload[i].data = names[i];   /* its own name as its bytes */
    payload[i].size = payload[i].path_len;
    payload[i].mode = 0644;
    payload[i].uid = payload[i].gid = -1;
  }
  CHECK(aw_write(dir_path, payload, NFILES, NULL, NULL, &err) == 0);
}

/* The scratch target holds exactly the payload. */
static int holds_payload(void)
{
  aw_snapshot snap;
  aw_error err;
  size_t i, j;
  int same;
  CHECK(aw_read(dir_path, &snap, &err) == 0);
  same = snap.n == NFILES && snap.skipped == 0;
  for (i = 0; same && i < snap.n; i++) {
    for (j = 0; j < NFILES && strcmp(names[j], snap.files[i].path) != 0; j++)
      ;
    same = j < NFILES && snap.files[i].size == payload[j].size &&
           memcmp(snap.files[i].data, payload[j].data, payload[j].size) == 0 &&
           snap.files[i].mode == payload[j].mode;
  }
  aw_snapshot_free(&snap);
  return same;
}

static void put_file(const unsigned char *bytes, size_t len)
{
  int fd = openat(dir_fd, AW_MANIFEST_NAME, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  CHECK(fd >= 0);
  CHECK(aw_write_all(fd, (const char *)bytes, len) == 0);
  CHECK(close(fd) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  static const unsigned char key[AW_KEY_SIZE] = "fuzzing-key-0123";
  aw_manifest m;
  unsigned char *file;
  size_t len, i;
  char current[256];
  const char *version;
  aw_error err;
  int mode, loaded, through_writer;

  if (dir_fd < 0)
    open_scratch();
  if (size < 1)
    return 0;
  mode = (data[0] & 15) % 3;
  through_writer = data[0] & 16;
  CHECK(aw_version(dir_path, current, sizeof current, &err) == 0);
  version = mode == 2 ? current : VERSION;
  data++;
  size--;
  file = malloc(size + HEADER + strlen(version) + 1 + AW_KEY_SIZE + AW_DIGEST_SIZE);
  CHECK(file);
  if (mode == 2) {
    uint32_t bom = 0x01020304u, count = 0, name_len = (uint32_t)strlen(version);
    size_t body = size >= 4 ? size - 4 : 0;
    if (size >= 4)
      memcpy(&count, data, 4);
    len = 0;
    memcpy(file + len, MAGIC, 8), len += 8;
    memcpy(file + len, &bom, 4), len += 4;
    memcpy(file + len, &count, 4), len += 4;
    memcpy(file + len, &name_len, 4), len += 4;
    memcpy(file + len, version, name_len), len += name_len;
    memcpy(file + len, key, AW_KEY_SIZE), len += AW_KEY_SIZE;
    if (body)
      memcpy(file + len, data + 4, body);
    len += body;
    aw_digest128(key, file, len, file + len);
    len += AW_DIGEST_SIZE;
  } else {
    len = size;
    if (size)
      memcpy(file, data, size);
    if (mode == 1 && len >= HEADER) {
      uint32_t name_len;
      memcpy(&name_len, file + 16, 4);
      if ((size_t)name_len <= len && HEADER + (size_t)name_len + AW_KEY_SIZE + AW_DIGEST_SIZE <= len)
        aw_digest128(file + HEADER + name_len, file, len - AW_DIGEST_SIZE,
                     file + len - AW_DIGEST_SIZE);
    }
  }
  put_file(file, len);

  aw_manifest_init(&m);
  loaded = aw_manifest_load(&m, dir_fd, version);
  CHECK(loaded == 0 || loaded == 1);
  if (!loaded) {
    CHECK(m.n == 0 && m.v == NULL && m.raw == NULL && m.raw_len == 0);
  } else {
    CHECK(m.raw_len == len && memcmp(m.raw, file, len) == 0);
    CHECK(strcmp(m.version, version) == 0);
    CHECK(m.n <= m.cap || m.n == 0);
    for (i = 0; i < m.n; i++) {
      const aw_mentry *e = &m.v[i];
      CHECK(e->len <= AW_MAX_PATH);
      CHECK((const unsigned char *)e->path >= m.raw &&
            (const unsigned char *)e->path + e->len <= m.raw + m.raw_len - AW_DIGEST_SIZE);
    }
    CHECK(aw_manifest_save(&m, &m, -1) == 0);   /* the same bytes: nothing to write */
  }
  aw_manifest_free(&m);
  free(file);
  /* Whatever the manifest says of files it cannot know the identity of,
   * a write of the payload the target holds succeeds and leaves it so. */
  if (through_writer) {
    int changed;
    CHECK(aw_write(dir_path, payload, NFILES, NULL, &changed, &err) == 0);
    CHECK(holds_payload());
  }
  return 0;
}
