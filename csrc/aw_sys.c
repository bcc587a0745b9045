/*
 * aw_sys.c - the system calls that differ between Linux, macOS, the BSDs
 * and other POSIX systems (the table is in aw_sys.h): directory listing,
 * randomness, durability. Nothing here knows the write algorithm.
 */
#define _GNU_SOURCE
#if defined(__APPLE__)
#define _DARWIN_C_SOURCE 1
#endif
#include "aw.h"
#include "aw_sys.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#if AW_USE_GETDENTS64 && !defined(__GLIBC__)
#include <sys/syscall.h>
#endif
#if AW_USE_GETRANDOM
#include <sys/random.h>
#endif

/* ------------------------------------------------------------------ */
/* Listing a directory                                                 */
/* ------------------------------------------------------------------ */

#if AW_USE_GETDENTS64

#define DIR_BUF 32768

/* The kernel's record (linux/dirent.h), the same on every architecture;
 * musl has no getdents64 wrapper, so the system call is made directly. */
struct aw_dirent64 {
  uint64_t d_ino;
  int64_t d_off;
  unsigned short d_reclen;
  unsigned char d_type;
  char d_name[];
};

static ssize_t read_entries(int fd, char *buf, size_t size)
{
#ifdef __GLIBC__
  return getdents64(fd, buf, size);
#else
  return (ssize_t)syscall(SYS_getdents64, fd, buf, size);
#endif
}

int aw_dir_open_in(aw_dir *d, int fd, char *buf, size_t size)
{
  d->fd = fd;
  d->pos = d->len = 0;
  d->dirp = NULL;
  d->more = 0;
  d->owned = 0;
  d->cap = size;
  d->buf = buf;
  return 0;
}

int aw_dir_open(aw_dir *d, int fd)
{
  char *buf = malloc(DIR_BUF);

  if (!buf) {
    errno = ENOMEM;
    return -1;
  }
  aw_dir_open_in(d, fd, buf, DIR_BUF);
  d->owned = 1;   /* aw_dir_close frees it */
  return 0;
}

/* The longest record getdents64 returns: its header, a NAME_MAX name and
 * its NUL, rounded up to 8 bytes. A read that left less room than that
 * may have stopped for want of it. */
#define DIRENT_MAX ((offsetof(struct aw_dirent64, d_name) + NAME_MAX + 1 + 7) & ~(size_t)7)

int aw_dir_next(aw_dir *d, const char **name, unsigned char *type)
{
  for (;;) {
    const struct aw_dirent64 *de;
    if (d->pos >= d->len) {
      ssize_t n;
      if (d->more && !d->owned) {   /* a long listing: on to a heap buffer */
        char *big = malloc(DIR_BUF);
        if (big) {
          d->buf = big;
          d->cap = DIR_BUF;
          d->owned = 1;
        }
      }
      n = read_entries(d->fd, d->buf, d->cap);
      if (n < 0)
        return -1;
      if (n == 0)
        return 0;
      d->pos = 0;
      d->len = (size_t)n;
      d->more = d->len + DIRENT_MAX > d->cap;
    }
    de = (const struct aw_dirent64 *)(const void *)(d->buf + d->pos);
    d->pos += de->d_reclen;
    if (de->d_name[0] == '.' &&
        (!de->d_name[1] || (de->d_name[1] == '.' && !de->d_name[2])))
      continue;
    *name = de->d_name;
    *type = de->d_type;
    return 1;
  }
}

int aw_dir_rewind(aw_dir *d)
{
  d->pos = d->len = 0;
  return lseek(d->fd, 0, SEEK_SET) < 0 ? -1 : 0;
}

void aw_dir_close(aw_dir *d)
{
  if (d->owned)
    free(d->buf);
  d->buf = NULL;
}

#else /* readdir */

/* readdir on a duplicate: closedir closes the duplicate, the caller keeps
 * its descriptor. The duplicate shares the descriptor's offset. */
int aw_dir_open(aw_dir *d, int fd)
{
  int dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  DIR *dp;

  d->fd = fd;
  d->buf = NULL;
  d->pos = d->len = 0;
  d->dirp = NULL;
  if (dup_fd < 0)
    return -1;
  if (!(dp = fdopendir(dup_fd))) {
    int e = errno;
    close(dup_fd);
    errno = e;
    return -1;
  }
  d->dirp = dp;
  return 0;
}

int aw_dir_open_in(aw_dir *d, int fd, char *buf, size_t size)
{
  (void)buf;
  (void)size;
  return aw_dir_open(d, fd);
}

int aw_dir_next(aw_dir *d, const char **name, unsigned char *type)
{
  for (;;) {
    const struct dirent *de;
    errno = 0;
    if (!(de = readdir((DIR *)d->dirp)))
      return errno ? -1 : 0;
    if (de->d_name[0] == '.' &&
        (!de->d_name[1] || (de->d_name[1] == '.' && !de->d_name[2])))
      continue;
    *name = de->d_name;
    *type = de->d_type;
    return 1;
  }
}

int aw_dir_rewind(aw_dir *d)
{
  rewinddir((DIR *)d->dirp);
  return 0;
}

void aw_dir_close(aw_dir *d)
{
  if (d->dirp)
    closedir((DIR *)d->dirp);
  d->dirp = NULL;
}

#endif

#if !AW_USE_MEMRCHR
const char *aw_memrchr(const char *s, int c, size_t n)
{
  while (n > 0)
    if (s[--n] == (char)c)
      return s + n;
  return NULL;
}
#endif

/* ------------------------------------------------------------------ */
/* Randomness                                                          */
/* ------------------------------------------------------------------ */

int aw_random(void *buf, size_t n)
{
  unsigned char *p = buf;
#if AW_USE_GETRANDOM
  while (n > 0) {
    ssize_t got = getrandom(p, n, 0);
    if (got < 0) {
      if (errno == EINTR)
        continue;
      return -1;
    }
    p += got;
    n -= (size_t)got;
  }
#elif AW_USE_ARC4RANDOM
  arc4random_buf(p, n);   /* cannot fail */
#else
  while (n > 0) {   /* getentropy gives at most 256 bytes a call */
    size_t chunk = n < 256 ? n : 256;
    if (getentropy(p, chunk) < 0)
      return -1;
    p += chunk;
    n -= chunk;
  }
#endif
  return 0;
}

/* ------------------------------------------------------------------ */
/* Durability                                                          */
/* ------------------------------------------------------------------ */

int aw_sync_method(int requested)
{
  if (requested == AW_SYNC_OFF)
    return AW_SYNC_OFF;
  if (requested != AW_SYNC_FS && requested != AW_SYNC_FILES)
    requested = AW_DEFAULT_SYNC;
#if AW_USE_SYNCFS
  return requested;
#else
  return AW_SYNC_FILES;
#endif
}

int aw_sync_fs(int fd)
{
#if AW_USE_SYNCFS
  return syncfs(fd);
#else
  (void)fd;
  errno = ENOSYS;
  return -1;
#endif
}

int aw_sync_file(int fd)
{
  return fsync(fd);
}

int aw_sync_barrier(int fd)
{
#ifdef F_FULLFSYNC
  /* Not every file system takes it (network ones, FAT): fsync then. */
  if (fcntl(fd, F_FULLFSYNC) == 0)
    return 0;
#endif
  return fsync(fd);
}

/* ------------------------------------------------------------------ */
/* The umask                                                           */
/* ------------------------------------------------------------------ */

#if AW_USE_PROC_UMASK && defined(__GNUC__)
/* The umask from "Umask:\t0022" in /proc/self/status, or -1. */
static int read_umask(void)
{
  char buf[1024], *p;
  ssize_t n;
  int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC), mask = 0;

  if (fd < 0)
    return -1;
  n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0)
    return -1;
  buf[n] = '\0';
  if (!(p = strstr(buf, "\nUmask:\t")))
    return -1;
  for (p += 8; *p >= '0' && *p <= '7'; p++)
    mask = mask * 8 + (*p - '0');
  return *p == '\n' && mask <= 0777 ? mask : -1;
}

int aw_umask(void)
{
  static int cached = -2;   /* -2 not read yet, -1 unknown */
  int mask = __atomic_load_n(&cached, __ATOMIC_RELAXED);

  if (mask == -2) {   /* threads racing here all read the same value */
    mask = read_umask();
    __atomic_store_n(&cached, mask, __ATOMIC_RELAXED);
  }
  return mask;
}
#else
int aw_umask(void)
{
  return -1;
}
#endif

int aw_umask_clears(unsigned mode)
{
  int mask = aw_umask();
  return mask < 0 || (mode & (unsigned)mask) != 0;
}

/* ------------------------------------------------------------------ */
/* What this build uses                                                */
/* ------------------------------------------------------------------ */

const char *aw_library_version(void)
{
  return AW_VERSION_STRING;
}

const aw_platform_info *aw_platform(void)
{
  static const aw_platform_info info = {
#if AW_USE_GETDENTS64
    "getdents64",
#else
    "readdir",
#endif
#if AW_USE_GETRANDOM
    "getrandom",
#elif AW_USE_ARC4RANDOM
    "arc4random_buf",
#else
    "getentropy",
#endif
#if AW_DEFAULT_SYNC == AW_SYNC_FS && AW_USE_SYNCFS
    "syncfs",
#else
    "fsync",
#endif
#if AW_USE_INOTIFY
    "inotify",
#elif AW_USE_KQUEUE
    "kqueue",
#else
    "poll",
#endif
#if AW_USE_SYNCFS
    1,
#else
    0,
#endif
#if AW_USE_FICLONE && AW_USE_COPY_FILE_RANGE
    "ficlone copy_file_range read",
#elif AW_USE_FICLONE
    "ficlone read",
#elif AW_USE_COPY_FILE_RANGE
    "copy_file_range read",
#else
    "read",
#endif
  };
  return &info;
}
