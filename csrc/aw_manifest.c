/*
 * aw_manifest.c - what the writer remembers of the version it published.
 *
 * target/..manifest (mode 0600, the writer's only) describes one version:
 * for each file its identity when last seen settled (device, inode, size,
 * mtime) and a keyed digest of the data written; for each directory its
 * identity. A later write that finds a file with the recorded identity
 * knows its bytes without reading them, and a directory with the recorded
 * identity has gained and lost no entry. Nothing depends on the manifest
 * being there or right: a missing, damaged or foreign one (wrong magic,
 * byte order, version, or MAC) is ignored, and the writer reads the files.
 * The magic's digit is the format: one of another format (a newer or
 * older release's) is ignored the same way and replaced by this one's,
 * not refused as a newer ..history is: a cache never decides what is kept
 * or removed (the removal of a superseded version unlinks the names it
 * lists first, then lists whatever is left), so ignoring it costs one full
 * comparison and loses nothing, while refusing would stop a target shared
 * by two releases.
 *
 * File layout, native byte order (the file never leaves the machine):
 *   "AWMANIF3" u32 0x01020304  u32 count  u32 name_len  name  key[16]
 *   count x { u32 path_len  u32 flags  u64 dev ino size  i64 mtime_sec
 *             i64 mtime_nsec  digest[16]  [source]  path }
 *   where digest = SipHash-1-3-128(key, the file's bytes), and [source],
 *   only in an entry whose flags have AW_M_SOURCE, is the source's
 *   identity: u64 dev ino size  i64 mtime_sec  i64 mtime_nsec
 *   mac[16] = SipHash-1-3-128(key, everything before)
 * (Format 1, without the source's identity, and format 2, whose digests
 * and MAC were SipHash-2-4, are ignored as any other.) The MAC tells a
 * damaged or foreign file from this writer's: whoever can rewrite the
 * file can read its key, so it is no defence against the file's writer
 * (nothing here relies on the file being right), and the cheaper
 * variant does that as well: it is read and written at every update.
 */
#define _GNU_SOURCE
#include "aw_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAGIC "AWMANIF3"
#define MAGIC_LEN 8
#define BYTE_ORDER_MARK 0x01020304u
#define ENTRY_FIXED (4 + 4 + 8 * 5 + AW_DIGEST_SIZE)
#define ENTRY_SOURCE (8 * 5)   /* more in an entry with AW_M_SOURCE */
#define MAX_FILE_SIZE ((size_t)1 << 30)

void aw_manifest_init(aw_manifest *m)
{
  memset(m, 0, sizeof *m);
}

void aw_manifest_free(aw_manifest *m)
{
  free(m->v);
  free(m->raw);
  aw_manifest_init(m);
}

int aw_manifest_new_key(unsigned char key[AW_KEY_SIZE])
{
  return aw_random(key, AW_KEY_SIZE);
}

int aw_manifest_add(aw_manifest *m, const char *path, size_t len, unsigned flags,
                    const aw_ident *id, const unsigned char *digest, const aw_ident *src)
{
  aw_mentry *e = aw_grow(m->v, m->n, &m->cap, sizeof *e);
  if (!e)
    return -1;
  m->v = e;
  e = &m->v[m->n++];
  memset(e, 0, sizeof *e);
  e->path = path;
  e->len = len;
  e->flags = flags;
  if (id)
    e->id = *id;
  if (digest)
    memcpy(e->digest, digest, AW_DIGEST_SIZE);
  if (src)
    e->src = *src;
  return 0;
}

/* ---- reading ---- */

typedef struct cursor {
  const unsigned char *p, *end;
} cursor;

static int take(cursor *c, void *out, size_t n)
{
  if ((size_t)(c->end - c->p) < n)
    return -1;
  memcpy(out, c->p, n);
  c->p += n;
  return 0;
}

static int parse(aw_manifest *m, const char *version)
{
  cursor c = { m->raw, m->raw + m->raw_len };
  char magic[MAGIC_LEN];
  uint32_t bom, count, name_len, i;
  unsigned char mac[AW_DIGEST_SIZE];

  if (m->raw_len < AW_DIGEST_SIZE)
    return -1;
  c.end -= AW_DIGEST_SIZE;
  if (take(&c, magic, MAGIC_LEN) < 0 || memcmp(magic, MAGIC, MAGIC_LEN) != 0 ||
      take(&c, &bom, 4) < 0 || bom != BYTE_ORDER_MARK ||
      take(&c, &count, 4) < 0 || take(&c, &name_len, 4) < 0 ||
      name_len != strlen(version) || name_len >= sizeof m->version || (size_t)(c.end - c.p) < name_len ||
      memcmp(c.p, version, name_len) != 0)
    return -1;
  memcpy(m->version, version, name_len + 1);
  c.p += name_len;
  if (take(&c, m->key, AW_KEY_SIZE) < 0)
    return -1;
  aw_digest128(m->key, m->raw, m->raw_len - AW_DIGEST_SIZE, mac);
  if (memcmp(mac, c.end, AW_DIGEST_SIZE) != 0)
    return -1;
  if (count > (size_t)(c.end - c.p) / ENTRY_FIXED)
    return -1;
  m->v = malloc((count ? count : 1) * sizeof *m->v);
  if (!m->v)
    return -1;
  m->cap = count;
  for (i = 0; i < count; i++) {
    aw_mentry *e = &m->v[i];
    uint32_t len, flags;
    if (take(&c, &len, 4) < 0 || take(&c, &flags, 4) < 0 ||
        take(&c, &e->id.dev, 8) < 0 || take(&c, &e->id.ino, 8) < 0 ||
        take(&c, &e->id.size, 8) < 0 || take(&c, &e->id.mtime_sec, 8) < 0 ||
        take(&c, &e->id.mtime_nsec, 8) < 0 || take(&c, e->digest, AW_DIGEST_SIZE) < 0 ||
        ((flags & AW_M_SOURCE) &&
         (take(&c, &e->src.dev, 8) < 0 || take(&c, &e->src.ino, 8) < 0 ||
          take(&c, &e->src.size, 8) < 0 || take(&c, &e->src.mtime_sec, 8) < 0 ||
          take(&c, &e->src.mtime_nsec, 8) < 0)) ||
        len > AW_MAX_PATH || (size_t)(c.end - c.p) < len)
      return -1;
    e->path = (const char *)c.p;
    e->len = len;
    e->flags = flags;
    c.p += len;
    m->n++;
  }
  return c.p == c.end ? 0 : -1;
}

int aw_manifest_load(aw_manifest *m, int tfd, const char *version)
{
  struct stat st;
  int fd;

  aw_manifest_free(m);
  fd = openat(tfd, AW_MANIFEST_NAME, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  if (fd < 0)
    return 0;
  if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size <= 0 ||
      (unsigned long long)st.st_size > MAX_FILE_SIZE ||
      !(m->raw = malloc((size_t)st.st_size)))
    goto ignore;
  m->raw_len = (size_t)st.st_size;
  if (aw_read_full(fd, (char *)m->raw, m->raw_len) != (ssize_t)m->raw_len)
    goto ignore;
  close(fd);
  fd = -1;
  if (parse(m, version) == 0)
    return 1;

ignore:
  if (fd >= 0)
    close(fd);
  aw_manifest_free(m);
  return 0;
}

/* ---- writing ---- */

static void put(unsigned char **p, const void *v, size_t n)
{
  memcpy(*p, v, n);
  *p += n;
}

int aw_manifest_save(const aw_manifest *m, const aw_manifest *old, int tfd)
{
  uint32_t bom = BYTE_ORDER_MARK, count = (uint32_t)m->n, name_len = (uint32_t)strlen(m->version);
  size_t size = MAGIC_LEN + 12 + name_len + AW_KEY_SIZE + AW_DIGEST_SIZE, i;
  unsigned char *buf, *p;
  int rc;

  for (i = 0; i < m->n; i++)
    size += ENTRY_FIXED + m->v[i].len + (m->v[i].flags & AW_M_SOURCE ? ENTRY_SOURCE : 0);
  if (!(buf = malloc(size)))
    return -1;
  p = buf;
  put(&p, MAGIC, MAGIC_LEN);
  put(&p, &bom, 4);
  put(&p, &count, 4);
  put(&p, &name_len, 4);
  put(&p, m->version, name_len);
  put(&p, m->key, AW_KEY_SIZE);
  for (i = 0; i < m->n; i++) {
    const aw_mentry *e = &m->v[i];
    uint32_t len = (uint32_t)e->len, flags = e->flags;
    put(&p, &len, 4);
    put(&p, &flags, 4);
    put(&p, &e->id.dev, 8);
    put(&p, &e->id.ino, 8);
    put(&p, &e->id.size, 8);
    put(&p, &e->id.mtime_sec, 8);
    put(&p, &e->id.mtime_nsec, 8);
    put(&p, e->digest, AW_DIGEST_SIZE);
    if (flags & AW_M_SOURCE) {
      put(&p, &e->src.dev, 8);
      put(&p, &e->src.ino, 8);
      put(&p, &e->src.size, 8);
      put(&p, &e->src.mtime_sec, 8);
      put(&p, &e->src.mtime_nsec, 8);
    }
    put(&p, e->path, e->len);
  }
  aw_digest128(m->key, buf, (size_t)(p - buf), p);

  if (old && old->raw_len == size && memcmp(old->raw, buf, size) == 0) {
    free(buf);   /* the file says exactly this already */
    return 0;
  }
  /* a cache: never fsync'd, a failure is quiet (the next write reads) */
  rc = aw_replace_file(tfd, AW_MANIFEST_NAME, AW_MANIFEST_TMP_NAME, 0600, (const char *)buf,
                       size, 0, NULL);
  free(buf);
  return rc;
}
