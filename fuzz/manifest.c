/*
 * manifest.c - libFuzzer harness: ..manifest bytes -> the manifest loader
 * (aw_manifest_load, reading a real file in a scratch directory).
 *
 * Input: one byte of mode, then the bytes.
 *   mode % 3 == 0  the bytes are the file, as they are (the MAC mostly
 *                  stops them: this covers the header and the MAC check)
 *   mode % 3 == 1  the bytes, with their last 16 replaced by the right MAC
 *                  under the key where the header puts it, so that a
 *                  mutation gets past the MAC and reaches the entries
 *   mode % 3 == 2  a header for VERSION built here ("AWMANIF1", byte-order
 *                  mark, the count from the bytes' first 4, the name, a
 *                  key), then the rest of the bytes as the entries, then
 *                  the MAC: mutations spend themselves on the entries
 *
 * Checks: a manifest either loads whole or is ignored (empty, nothing
 * allocated); one that loads describes VERSION, each entry's path lies
 * inside the bytes read and is at most AW_MAX_PATH long, and written out
 * again it gives back exactly the bytes read (aw_manifest_save finds them
 * equal and writes nothing; it is handed no directory, so any write it
 * tried would fail).
 */
#define _GNU_SOURCE
#include "fuzz.h"

#include <fcntl.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#define VERSION "..2026_11_30_12_00_00.000000001"
#define MAGIC "AWMANIF1"
#define HEADER (8 + 4 + 4 + 4)

static int dir_fd = -1;
static char dir_path[4096];

static void remove_scratch(void)
{
  unlinkat(dir_fd, AW_MANIFEST_NAME, 0);
  unlinkat(dir_fd, AW_MANIFEST_TMP_NAME, 0);
  rmdir(dir_path);
}

static void open_scratch(void)
{
  const char *base = getenv("AW_FUZZ_DIR");
  snprintf(dir_path, sizeof dir_path, "%s/aw-fuzz-manifest.XXXXXX", base ? base : "/tmp");
  CHECK(mkdtemp(dir_path));
  dir_fd = open(dir_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  CHECK(dir_fd >= 0);
  atexit(remove_scratch);   /* libFuzzer ends with exit() */
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
  int mode, loaded;

  if (dir_fd < 0)
    open_scratch();
  if (size < 1)
    return 0;
  mode = data[0] % 3;
  data++;
  size--;
  file = malloc(size + HEADER + sizeof VERSION + AW_KEY_SIZE + AW_DIGEST_SIZE);
  CHECK(file);
  if (mode == 2) {
    uint32_t bom = 0x01020304u, count = 0, name_len = (uint32_t)strlen(VERSION);
    size_t body = size >= 4 ? size - 4 : 0;
    if (size >= 4)
      memcpy(&count, data, 4);
    len = 0;
    memcpy(file + len, MAGIC, 8), len += 8;
    memcpy(file + len, &bom, 4), len += 4;
    memcpy(file + len, &count, 4), len += 4;
    memcpy(file + len, &name_len, 4), len += 4;
    memcpy(file + len, VERSION, name_len), len += name_len;
    memcpy(file + len, key, AW_KEY_SIZE), len += AW_KEY_SIZE;
    if (body)
      memcpy(file + len, data + 4, body);
    len += body;
    aw_siphash128(key, file, len, file + len);
    len += AW_DIGEST_SIZE;
  } else {
    len = size;
    if (size)
      memcpy(file, data, size);
    if (mode == 1 && len >= HEADER) {
      uint32_t name_len;
      memcpy(&name_len, file + 16, 4);
      if ((size_t)name_len <= len && HEADER + (size_t)name_len + AW_KEY_SIZE + AW_DIGEST_SIZE <= len)
        aw_siphash128(file + HEADER + name_len, file, len - AW_DIGEST_SIZE,
                      file + len - AW_DIGEST_SIZE);
    }
  }
  put_file(file, len);

  aw_manifest_init(&m);
  loaded = aw_manifest_load(&m, dir_fd, VERSION);
  CHECK(loaded == 0 || loaded == 1);
  if (!loaded) {
    CHECK(m.n == 0 && m.v == NULL && m.raw == NULL && m.raw_len == 0);
  } else {
    CHECK(m.raw_len == len && memcmp(m.raw, file, len) == 0);
    CHECK(strcmp(m.version, VERSION) == 0);
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
  return 0;
}
