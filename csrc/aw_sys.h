/*
 * aw_sys.h - what differs between the systems the core runs on, behind one
 * set of names, so that the write, read and watch algorithms are the same
 * code everywhere (aw_sys.c holds the functions).
 *
 *                  Linux (default)   macOS, *BSD        elsewhere, AW_PORTABLE
 *   listing        getdents64        readdir (fdopendir on a duplicate)
 *   randomness     getrandom         arc4random_buf     getentropy
 *   mtime (ns)     st_mtim           st_mtimespec (macOS), st_mtim
 *   dir to look    O_PATH            O_RDONLY
 *   sync=true      syncfs (or per-file fsync, AW_SYNC_FILES)
 *                                    fsync each file and directory written;
 *                                    F_FULLFSYNC at the barriers on macOS
 *   watching       inotify           kqueue EVFILT_VNODE  polling
 *   umask          /proc/self/status, once per process; unknown elsewhere
 *                  (every mode then set by fchmod)
 *   source copy    FICLONE, then     read/write loop (bounded buffer)
 *                  copy_file_range
 *
 * Defining AW_PORTABLE (make check-portable) turns every Linux-only path
 * off on Linux, so that the paths macOS and the BSDs take run under the
 * whole suite here. AW_NO_KQUEUE forces polling where kqueue exists.
 *
 * Include after the system headers: the macros below only choose names.
 */
#ifndef AW_SYS_H
#define AW_SYS_H

#include <stddef.h>

/* Internal: hidden from the shared library and the module whatever the
 * compiler flags (a definition takes the visibility of its first
 * declaration, this one). */
#if defined(__GNUC__) && __GNUC__ >= 4
#pragma GCC visibility push(hidden)
#endif

/* Each can also be turned off alone: -DAW_USE_GETDENTS64=0 (docs/platforms.md). */
#if defined(__linux__) && !defined(AW_PORTABLE)
#ifndef AW_USE_GETDENTS64
#define AW_USE_GETDENTS64 1
#endif
#ifndef AW_USE_GETRANDOM
#define AW_USE_GETRANDOM 1
#endif
#ifndef AW_USE_O_PATH
#define AW_USE_O_PATH 1
#endif
#ifndef AW_USE_SYNCFS
#define AW_USE_SYNCFS 1
#endif
#ifndef AW_USE_INOTIFY
#define AW_USE_INOTIFY 1
#endif
#ifndef AW_USE_MEMRCHR
#define AW_USE_MEMRCHR 1
#endif
#ifndef AW_USE_PROC_UMASK
#define AW_USE_PROC_UMASK 1
#endif
#ifndef AW_USE_FICLONE
#define AW_USE_FICLONE 1
#endif
#ifndef AW_USE_COPY_FILE_RANGE
#define AW_USE_COPY_FILE_RANGE 1
#endif
#endif

#if defined(__APPLE__) || defined(__FreeBSD__) || defined(__NetBSD__) || \
    defined(__OpenBSD__) || defined(__DragonFly__)
#define AW_BSD_LIKE 1
#define AW_USE_ARC4RANDOM 1
#if !defined(AW_NO_KQUEUE)
#define AW_USE_KQUEUE 1
#endif
#endif

/* A file's mtime as a struct timespec (POSIX 2008 st_mtim; macOS keeps
 * the older name). */
#if defined(__APPLE__)
#define AW_ST_MTIM(st) ((st)->st_mtimespec)
#else
#define AW_ST_MTIM(st) ((st)->st_mtim)
#endif

/* Flags to open a directory only to look inside it (fstat, *at calls),
 * not to list it. Without O_PATH it takes read permission, which the
 * writer has on its own version directories. */
#if AW_USE_O_PATH
#define AW_O_LOOK O_PATH
#else
#define AW_O_LOOK O_RDONLY
#endif

/* The last `c` in the first n bytes of s, or NULL. */
#if AW_USE_MEMRCHR
#define aw_memrchr(s, c, n) ((const char *)memrchr((s), (c), (n)))
#else
const char *aw_memrchr(const char *s, int c, size_t n);
#endif

/* Reading a directory from a descriptor the caller keeps: getdents64
 * straight into a buffer on Linux, readdir on an fdopendir'd duplicate
 * elsewhere. Both read from the descriptor's offset, so pass a freshly
 * opened one. */
typedef struct aw_dir {
  int fd;
  char *buf;          /* getdents64's buffer */
  size_t pos, len;
  size_t cap;         /* buf's size */
  int owned;          /* buf is ours (malloc'd): freed by aw_dir_close */
  int more;           /* the last read may have stopped for want of room */
  void *dirp;         /* readdir's DIR * */
} aw_dir;

int aw_dir_open(aw_dir *d, int fd);
/* aw_dir_open reading into the caller's `buf` of `size` bytes (at least
 * AW_DIR_SMALL; its stack) first: a listing that fits in it allocates
 * nothing, a longer one moves on to a heap buffer (or, out of memory,
 * reads on in small pieces). readdir's version ignores buf. */
#define AW_DIR_SMALL 1024
int aw_dir_open_in(aw_dir *d, int fd, char *buf, size_t size);
/* 1 with the next entry (never "." or ".."; type is a DT_* value, maybe
 * DT_UNKNOWN), 0 at the end, -1 on error with errno set. */
int aw_dir_next(aw_dir *d, const char **name, unsigned char *type);
/* Back to the first entry (0, or -1 with errno set). */
int aw_dir_rewind(aw_dir *d);
void aw_dir_close(aw_dir *d);   /* frees the buffer, not the caller's descriptor */

/* Nonzero when entries unlinked during a listing can make it skip others
 * (readdir on macOS's and some BSDs' file systems): a directory being
 * emptied is listed again until a pass removes nothing. */
#if AW_USE_GETDENTS64
#define AW_DIR_RELIST_AFTER_UNLINK 0
#else
#define AW_DIR_RELIST_AFTER_UNLINK 1
#endif

/* The method AW_SYNC_ON means (aw.h): AW_SYNC_FS or AW_SYNC_FILES. A
 * build may choose it with -DAW_DEFAULT_SYNC=3 (or 2). */
#ifndef AW_DEFAULT_SYNC
#if AW_USE_SYNCFS
#define AW_DEFAULT_SYNC AW_SYNC_FS
#else
#define AW_DEFAULT_SYNC AW_SYNC_FILES
#endif
#endif

/* The method a write with aw_options.sync == `requested` uses:
 * AW_SYNC_OFF, AW_SYNC_FS (only where syncfs exists) or AW_SYNC_FILES. */
int aw_sync_method(int requested);

/* `n` bytes from the system's random source: 0, or -1 with errno set. */
int aw_random(void *buf, size_t n);

/* Durability. aw_sync_fs flushes the whole file system holding fd (Linux's
 * syncfs; -1 with ENOSYS where there is none). aw_sync_file is fsync.
 * aw_sync_barrier is fsync that also empties the drive's cache where plain
 * fsync does not (F_FULLFSYNC on macOS): what was fsync'd before it is
 * on stable storage once it returns. Each 0, or -1 with errno set. */
int aw_sync_fs(int fd);
int aw_sync_file(int fd);
int aw_sync_barrier(int fd);

/* Nonzero when the process's umask may clear bits of `mode` (a mkdir or
 * open with O_CREAT then needs an fchmod for the exact mode): always where
 * the umask cannot be read without changing it. The umask is read once
 * per process, at the first call (umask(2) cannot read it without setting
 * it, which would race with other threads; Linux's /proc/self/status has
 * it since 4.7). A process that makes its umask stricter after its first
 * write gets modes with those bits cleared, never more than asked
 * (docs/performance.md). */
int aw_umask_clears(unsigned mode);
/* The umask as read once (see aw_umask_clears), or -1 where unknown. */
int aw_umask(void);

#if defined(__GNUC__) && __GNUC__ >= 4
#pragma GCC visibility pop
#endif

#endif /* AW_SYS_H */
