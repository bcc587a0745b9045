/*
 * aw.h - atomicwriter core: project a set of files into a directory
 * atomically, with the kubelet's ..data layout.
 *
 * A plain C library: no Lua type appears here. Every call that can fail
 * returns 0 on success and -1 on failure, and fills a caller-owned
 * struct aw_error (no hidden global state; the library is reentrant and
 * thread-safe as long as two threads do not share one aw_error).
 *
 * On-disk layout that aw_write() maintains in a target directory:
 *
 *   target/
 *     ..data  -> ..2026_11_25_10_04_05.123456789   symlink, swapped by rename
 *     ..2026_11_25_10_04_05.123456789/            the current version
 *         podName
 *         user/labels
 *     podName -> ..data/podName                   one link per top-level name
 *     user    -> ..data/user
 */
#ifndef AW_H
#define AW_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* AW_API marks the library's interface: the shared library is built with
 * -fvisibility=hidden, so these functions are all it exports. Compiled
 * into the Lua module alone, as LuaRocks does (the rockspecs define
 * AW_LUA_MODULE), they stay inside core.so, whose one export is
 * luaopen_atomicwriter_core. */
#ifndef AW_API
#if defined(__GNUC__) && __GNUC__ >= 4 && defined(AW_LUA_MODULE)
#define AW_API __attribute__((visibility("hidden")))
#elif defined(__GNUC__) && __GNUC__ >= 4
#define AW_API __attribute__((visibility("default")))
#else
#define AW_API
#endif
#endif

/*
 * ABI policy (libatomicwriter.so.1). Within 1.x the library only grows:
 * functions and enum values may be added, none is removed or changed.
 * The structs a caller allocates cannot change size without breaking
 * programs built against an older 1.x, so each that may grow ends in
 * `reserved` members:
 *   - input (aw_options): aw_options_init() zeroes them. A later 1.x
 *     turns a reserved member into an option of the same size, where zero
 *     keeps the 1.0 behaviour.
 *   - outputs (aw_result, aw_error): the library fills them, reserved
 *     members included (zero); a later 1.x may report more there, which
 *     an older caller never reads.
 * aw_file (callers fill arrays of it, often with positional initializers),
 * the arrays the library allocates and the caller indexes (aw_read_file,
 * aw_version_info, aw_change), aw_snapshot and aw_version_list keep their
 * layout for all of 1.x: more per-file input would come as a new struct
 * taken by new functions. aw_platform_info is the library's, read only:
 * it may grow at its end. aw_watch is opaque. Any other change (a member
 * moved, retyped or removed, a struct grown beyond its reserved members)
 * takes a new soname, libatomicwriter.so.2. `make abi-check` compares
 * the built library with the 1.0 baseline (abi/) to catch a break.
 */

/* The library's release, the one source of the version number: the Lua
 * module's _VERSION, `atomicwriter --version`, the rockspec and
 * CHANGELOG.md follow it (a spec checks that they agree). Semantic
 * versioning; what a release keeps compatible: CHANGELOG.md. */
#define AW_VERSION_MAJOR 1
#define AW_VERSION_MINOR 0
#define AW_VERSION_PATCH 0
#define AW_VERSION_STR_(x) #x
#define AW_VERSION_XSTR_(x) AW_VERSION_STR_(x)
#define AW_VERSION_STRING AW_VERSION_XSTR_(AW_VERSION_MAJOR) "." \
  AW_VERSION_XSTR_(AW_VERSION_MINOR) "." AW_VERSION_XSTR_(AW_VERSION_PATCH)
/* For #if: 10000 * major + 100 * minor + patch (1.0.0 is 10000). */
#define AW_VERSION_NUMBER \
  (AW_VERSION_MAJOR * 10000 + AW_VERSION_MINOR * 100 + AW_VERSION_PATCH)

/* aw_library_version - the release of the library linked in at run time,
 * "MAJOR.MINOR.PATCH" (a static string); compare with AW_VERSION_STRING,
 * the release whose header a program was compiled with. Not named
 * aw_version: that call reads the current version of a target. */
AW_API const char *aw_library_version(void);

/* Limits of the contract's validation rules. */
#define AW_MAX_PATH    4096   /* bytes in a payload path */
#define AW_MAX_ELEMENT 255    /* bytes in one element of a path */
#define AW_MAX_ID      4294967294    /* largest uid/gid (a long long); (uid_t)-1 means "unchanged" */

/* Names the writer reserves in the target. */
#define AW_DATA_NAME     "..data"
#define AW_DATA_TMP_NAME "..data_tmp"

/* Error kinds. Kept apart from errno values: a system failure carries
 * its errno in aw_error.errnum with kind AW_KIND_SYSTEM. */
enum aw_kind {
  AW_KIND_NONE = 0,
  AW_KIND_INVALID,   /* the payload fails validation ("invalid")          */
  AW_KIND_CONFLICT,  /* the target holds an entry the writer does not own ("conflict") */
  AW_KIND_BUSY,      /* the lock was not obtained within the timeout ("busy") */
  AW_KIND_SYSTEM,    /* a system call failed; errnum says why (errno name) */
  AW_KIND_NO_VERSION, /* the version asked for is neither current nor kept ("noversion") */
  AW_KIND_FORMAT,    /* a record of the target (..history) is in a format newer than
                      * this release reads; nothing was changed ("format") */
  AW_KIND_CHANGED    /* a file's source changed while the write read it ("changed") */
};

/* A failure, filled once at the failing call. Owned by the caller.
 * About 4 KiB, nearly all of it the path, which a message must name
 * whole: a host on a small stack may keep one per thread or on the heap
 * (every call of this library needs at most 16 KiB of stack besides). */
typedef struct aw_error {
  enum aw_kind kind;
  int errnum;               /* errno for AW_KIND_SYSTEM, else 0 */
  const char *step;         /* static string: the failing step, e.g. "create file" */
  const char *detail;       /* static string: what is wrong, for invalid /
                               conflict; "" otherwise */
  size_t path_len;          /* the path's length (a refused path may hold a NUL) */
  int has_path;             /* nonzero when the error concerns a path */
  char path[AW_MAX_PATH + 1]; /* the offending path, relative to the target
                               (a refused longer one is cut to AW_MAX_PATH) */
  const char *source;       /* the source file a failure concerns
                               (aw_publish_sources), else NULL; also
                               aw_error_source() */
  void *reserved[4];        /* zero (ABI policy above) */
} aw_error;

/* One file of a payload. The core never copies `data`: the caller keeps
 * path and data alive for the duration of the call that receives them. */
typedef struct aw_file {
  const char *path;   /* relative path, need not be NUL-terminated */
  size_t path_len;
  const char *data;   /* bytes, any values; may be NULL when size is 0 */
  size_t size;
  unsigned mode;      /* permission bits, 0..0777 (AW_MODE_SOURCE: see
                         aw_publish_sources) */
  long long uid;      /* owner, or -1 to leave the writer's own */
  long long gid;      /* group, or -1 to leave the writer's own */
} aw_file;

/* aw_file.mode of a file with a source: the source's permission bits. */
#define AW_MODE_SOURCE (~0u)

/* Values of aw_options.sync: how data and directories reach stable storage
 * before the swap, and the target after it. */
#define AW_SYNC_OFF   0   /* no syncing: fast, not durable across a power loss */
#define AW_SYNC_ON    1   /* durable, by this platform's method (aw_platform()->sync) */
#define AW_SYNC_FS    2   /* one syncfs of the version's file system (Linux; it
                             also waits for other writers' data there);
                             elsewhere the same as AW_SYNC_FILES */
#define AW_SYNC_FILES 3   /* fsync of every file and directory the write made
                             or linked, then the swap, then the target (with
                             F_FULLFSYNC at those two barriers on macOS) */

/* progress: called after each file placed in the new version (written,
 * copied or hard-linked) and every 16 MiB of a long copy, with its context
 * and the files and bytes done so far. It must not call the library for
 * the same target. */
typedef void (*aw_progress_fn)(void *ctx, unsigned long long files, unsigned long long bytes);

/* Options of aw_write(). Initialise with aw_options_init(), then set the
 * fields you need: every option, checksum, ignore_modes and progress
 * included, is set by assigning its field (the setters below are kept for
 * compatibility only). */
typedef struct aw_options {
  int sync;           /* one of AW_SYNC_* (default AW_SYNC_ON); any other
                         nonzero value is AW_SYNC_ON */
  long timeout_ms;    /* how long to wait for another writer's lock:
                         -1 forever (default), 0 try once */
  int keep;           /* superseded versions kept after a publish, newest
                         first (default 0: none, the kubelet's layout);
                         AW_KEEP_AS_IS: as many as are kept now */
  int changes;        /* nonzero: aw_publish / aw_rollback list the paths
                         added, changed and removed (default 0: no cost) */
  int checksum;       /* nonzero compares every file's bytes with the
                         current version's, trusting no identity the
                         manifest recorded (an unchanged source, a file's
                         keyed digest); 0 (default) trusts them */
  int ignore_modes;   /* nonzero for a file system that does not keep modes
                         (ntfs-3g without permissions, vfat): modes are
                         neither set, checked nor compared, files are
                         created with the payload's mode as the umask
                         allows, and an identical payload is a no-op there.
                         0 (default) checks the mode (fstat of the version
                         directory once per write, and of a file given an
                         owner): a file system that does not keep it fails
                         the write (AW_KIND_SYSTEM, ENOTSUP, "this file
                         system does not keep modes"); nothing is published */
  aw_progress_fn progress; /* NULL (default): none */
  void *progress_ctx;      /* passed to progress */
  void *reserved[8];  /* zero: aw_options_init (ABI policy above) */
} aw_options;

#define AW_KEEP_AS_IS (-1)

AW_API void aw_options_init(aw_options *opts);

/* Kept for compatibility: 1.0.0 exported these setters, so they stay for
 * all of 1.x, but new code assigns the fields above instead. Each sets
 * those fields and nothing else: checksum = (checksum != 0); progress =
 * fn and progress_ctx = ctx (NULL when fn is NULL); ignore_modes =
 * !modes. */
AW_API void aw_options_set_checksum(aw_options *opts, int checksum);
AW_API void aw_options_set_progress(aw_options *opts, aw_progress_fn fn, void *ctx);
AW_API void aw_options_set_modes(aw_options *opts, int modes);

/* Room for a version directory's name (NUL included). */
#define AW_NAME_SIZE 256

/* One path of what a publish changed. */
enum aw_change_kind { AW_ADDED = 1, AW_CHANGED, AW_REMOVED };
typedef struct aw_change {
  char *path;         /* NUL-terminated, relative to the version */
  enum aw_change_kind kind;
} aw_change;

/* What aw_publish() or aw_rollback() did. Free with aw_result_free(). */
typedef struct aw_result {
  int changed;                 /* 1: a new version was published */
  char version[AW_NAME_SIZE];  /* the version published, or after a no-op
                                  the current one ("" when none) */
  aw_change *changes;          /* with opts->changes: every path added,
                                  changed or removed, sorted; else NULL */
  size_t nchanges;
  size_t nleftovers;           /* version directories left over: see
                                  aw_result_leftovers */
  char *leftover;              /* the first one's name, or NULL */
  int leftover_errnum;         /* why this write could not remove it (0
                                  when it did not try) */
  void *reserved[4];           /* zero (ABI policy above) */
} aw_result;

AW_API void aw_result_free(aw_result *res);

/*
 * aw_result_leftovers - how many version directories the file system
 * refused to remove yet (ENOTEMPTY from a reader's .fuse_hidden* or .nfs*
 * file, EBUSY, EPERM, EACCES). They are left in the target, listed in
 * target/..leftovers and by aw_leftovers, retried by every later write,
 * and never fail a write. `first` (may be NULL) gets the first one's name
 * (valid until aw_result_free; NULL when there is none or memory ran out
 * naming it), `errnum` (may be NULL) why this write could not remove it
 * (0 when it did not try).
 */
AW_API size_t aw_result_leftovers(const aw_result *res, const char **first, int *errnum);

/*
 * aw_write - publish `files` as the new version of `target`.
 *
 * Validates and cleans every path (nothing on disk changes when one is
 * invalid), takes the target's writer lock, repairs what an earlier
 * crashed writer left, compares with the current version, and when they
 * differ builds a new version directory, swaps ..data to it with one
 * rename, creates new visible links, removes the names that are gone and
 * the old version.
 *
 * `files` is read, never modified or kept. `*changed` (may be NULL) is set
 * to 1 when a new version was published, 0 when the target already held
 * exactly this payload.
 *
 * Returns 0, or -1 with `err` filled:
 *   AW_KIND_INVALID   a path or mode fails validation; err->path names it
 *   AW_KIND_CONFLICT  ..data, ..data_tmp or a visible name is an entry the
 *                     writer did not create (file, directory, foreign link)
 *   AW_KIND_BUSY      opts->timeout_ms passed while another writer held the lock
 *   AW_KIND_FORMAT    ..history is in a newer release's format: nothing changed
 *   AW_KIND_SYSTEM    any failing system call: ENOENT / ENOTDIR (target),
 *                     EACCES, EPERM, ENOSPC, EDQUOT, EFBIG, EIO, EMFILE, ...
 * On failure the previously published version is intact and readable.
 */
AW_API int aw_write(const char *target, const aw_file *files, size_t nfiles,
             const aw_options *opts, int *changed, aw_error *err);

/*
 * aw_publish - aw_write() that says which version it published (or found
 * current, for a no-op) and, with opts->changes, what changed. `res` is
 * filled on success, and also on a failure after the swap (res->changed
 * 1: the payload is what readers see). Free it with aw_result_free() in
 * every case.
 *
 * With opts->keep > 0 the version superseded stays in the target, listed
 * in target/..history (newest first, at most opts->keep; older ones are
 * removed); recovery removes only version directories that neither
 * ..data nor ..history names.
 */
AW_API int aw_publish(const char *target, const aw_file *files, size_t nfiles,
               const aw_options *opts, aw_result *res, aw_error *err);

/*
 * aw_publish_sources - aw_publish() where a file's bytes may come from a
 * source file instead of memory: when `sources` (NULL: none) has
 * sources[i] not NULL, files[i] gets the bytes of that file, a
 * NUL-terminated path (absolute, or relative to the working directory; a
 * symlink is followed); files[i].data must then be NULL and size 0, and
 * mode AW_MODE_SOURCE takes the source's permission bits. The bytes are
 * copied inside the kernel: a reflink (FICLONE) where the file system
 * shares extents, else copy_file_range, else a bounded read/write loop;
 * memory never grows with a file's size. A source must be a regular file
 * (else AW_KIND_INVALID; missing: ENOENT; both naming the payload path
 * and, through aw_error_source(), the source). Its identity (device,
 * inode, size, mtime) is taken once under the writer's lock and must hold
 * until its bytes are copied or compared, else AW_KIND_CHANGED and nothing
 * is published. The published file gets the source's mtime, and the
 * manifest records the source's identity: a later write whose source is
 * untouched neither reads nor copies it (opts->checksum compares bytes
 * instead; docs/trees.md). `sources` must stay alive as `files` do.
 */
AW_API int aw_publish_sources(const char *target, const aw_file *files,
                              const char *const *sources, size_t nfiles,
                              const aw_options *opts, aw_result *res, aw_error *err);

/*
 * aw_rollback - publish again the content of kept version `version` (NULL
 * or "": the newest kept one) as a new version: its files are hard-linked
 * (never copied), and every step of a write follows (lock, swap, links
 * after the swap, sync, history). With opts->keep > 0 (or AW_KEEP_AS_IS)
 * the version rolled back from and the one rolled back to both stay kept,
 * even beyond opts->keep.
 * opts->keep as for aw_publish(); AW_KEEP_AS_IS (the Lua module's and the
 * CLI's default for a rollback) keeps as many versions as are kept now.
 * Rolling back to the current version is a no-op (res->changed 0). The
 * new version has no manifest: the next write reads its files once.
 * Errors as aw_write(), and AW_KIND_NO_VERSION when `version` is not kept
 * (or nothing is); AW_KIND_CONFLICT when the kept version holds an entry
 * that is neither a file nor a directory.
 */
AW_API int aw_rollback(const char *target, const char *version, const aw_options *opts,
                aw_result *res, aw_error *err);

/* A published version: the current one, or one kept. */
typedef struct aw_version_info {
  char name[AW_NAME_SIZE];
  long long published_sec;     /* when ..data was swapped to it (UTC) */
  long published_nsec;
  int current;                 /* 1 for the version ..data names */
} aw_version_info;

typedef struct aw_version_list {
  aw_version_info *v;          /* the current version first, then the kept
                                  ones, newest first */
  size_t n, cap;
} aw_version_list;

/*
 * aw_versions - the current version and the kept ones, read as one state
 * of the target even while a writer publishes. Nothing published: 0 with
 * an empty list. Free with aw_version_list_free(). Errors: AW_KIND_SYSTEM,
 * AW_KIND_CONFLICT when ..data or ..history is not the writer's,
 * AW_KIND_FORMAT when ..history is in a newer release's format.
 */
AW_API int aw_versions(const char *target, aw_version_list *list, aw_error *err);
AW_API void aw_version_list_free(aw_version_list *list);

/*
 * aw_leftovers - the version directories writes left over (see
 * aw_result_leftovers) that are still there, oldest first; `published`
 * is when they were left, `current` 0. Neither readable nor a rollback's.
 * None: 0 with an empty list. Free with aw_version_list_free().
 */
AW_API int aw_leftovers(const char *target, aw_version_list *list, aw_error *err);

/*
 * aw_validate - check and clean the paths of a payload without touching
 * the disk. Returns 0, or -1 with err->kind AW_KIND_INVALID.
 */
AW_API int aw_validate(const aw_file *files, size_t nfiles, aw_error *err);

/*
 * aw_clean_path - clean one payload path the way aw_write() does
 * ("foo//bar" -> "foo/bar", "./bar" -> "bar", a trailing '/' dropped) and
 * check it against the same rules, without touching the disk: for looking
 * up a path that a user gave in what aw_read() returns. `path` need not be
 * NUL-terminated; `out` has room for `size` bytes, and cleaning never
 * lengthens a path, so len + 1 always suffices.
 * Returns 0 with `out` the clean path (NUL-terminated), or -1 with
 * err->kind AW_KIND_INVALID (err->path the path as given, err->detail why;
 * a `size` under len + 1 is refused so too).
 */
AW_API int aw_clean_path(const char *path, size_t len, char *out, size_t size,
                  aw_error *err);

/*
 * aw_check_target - 0 when `target` is an existing directory, else -1
 * (AW_KIND_SYSTEM, ENOENT or ENOTDIR or the errno of the failing call).
 */
AW_API int aw_check_target(const char *target, aw_error *err);

/* ------------------------------------------------------------------ */
/* The reader's side                                                   */
/* ------------------------------------------------------------------ */

/* One file of a snapshot; memory owned by the snapshot. */
typedef struct aw_read_file {
  char *path;         /* relative, NUL-terminated */
  char *data;         /* size bytes (not NUL-terminated) */
  size_t size;
  unsigned mode;      /* permission bits */
  long long uid, gid;
} aw_read_file;

/* A whole version (or directory tree) read into memory. */
typedef struct aw_snapshot {
  char version[AW_NAME_SIZE];  /* the version's name, "" when none is published */
  aw_read_file *files;
  size_t n, cap;
  size_t skipped;     /* entries that are neither files nor directories */
} aw_snapshot;

/*
 * aw_read - read the current version of `target` whole: every regular file
 * below ..data, resolved once, as one version even while writers swap
 * (it retries when a swap raced the walk, then waits for the writers'
 * lock, shared). Nothing published yet: 0 with version "" and no files.
 * Free with aw_snapshot_free() after success. Errors: AW_KIND_SYSTEM
 * (ENOENT, ENOTDIR, EACCES, ENOMEM, ...), AW_KIND_CONFLICT when ..data is
 * not the writer's symlink.
 */
AW_API int aw_read(const char *target, aw_snapshot *snap, aw_error *err);

/* aw_read_version - aw_read() of a named version, current or kept (NULL
 * or "": the current one). AW_KIND_NO_VERSION when it is neither, or
 * stops being either before the read ends; AW_KIND_FORMAT when a kept one
 * is asked for and ..history is in a newer release's format. */
AW_API int aw_read_version(const char *target, const char *version, aw_snapshot *snap,
                    aw_error *err);

/* aw_read_tree - every regular file below directory `dir`, with its mode
 * and owner (symlinks and special files are not followed, not opened, and
 * counted together in skipped). For projecting a plain tree; the Lua
 * binding leaves the owners out unless asked (read_tree's `owners`).
 * Free with aw_snapshot_free() after success. Errors: AW_KIND_SYSTEM
 * (ENOENT, ENOTDIR, EACCES of `dir` or of an entry below it, EIO, ENOMEM,
 * ...). */
AW_API int aw_read_tree(const char *dir, aw_snapshot *snap, aw_error *err);

/* aw_list_tree - aw_read_tree without reading: each file's path, mode,
 * owner and size (data NULL), one fstatat each; for a payload whose files
 * name their sources (dir + "/" + path). */
AW_API int aw_list_tree(const char *dir, aw_snapshot *snap, aw_error *err);

/* aw_list_tree_names - aw_list_tree without a call per file: each regular
 * file's path only (mode AW_MODE_SOURCE, size 0, uid and gid -1), by the
 * types the directory listing gives (an entry of unknown type is
 * stat'ed). As sources, the files then take their modes and sizes from
 * the write's own look at them, under its lock. */
AW_API int aw_list_tree_names(const char *dir, aw_snapshot *snap, aw_error *err);

AW_API void aw_snapshot_free(aw_snapshot *snap);

/* aw_version - the current version's name into buf ("" when none).
 * Errors: AW_KIND_SYSTEM (ENOENT, ENOTDIR, EACCES of the target; EINVAL
 * when `size` < 2), AW_KIND_CONFLICT when ..data is not the writer's
 * symlink to a version (or the name does not fit in `size`: AW_NAME_SIZE
 * always suffices). */
AW_API int aw_version(const char *target, char *buf, size_t size, aw_error *err);

/* A watcher: reports each version published in a target, once. */
typedef struct aw_watch aw_watch;

/* Polling interval where neither inotify nor kqueue is there, or the
 * target is gone. */
#define AW_WATCH_POLL_MS 100

/* Flags of aw_watch_open(). */
#define AW_WATCH_POLL 1   /* poll ..data even where events work (NFS, FUSE) */

/* aw_watch_open - watch `target` (an existing directory); the version
 * current at the start is not reported. Free with aw_watch_close().
 * Errors: AW_KIND_SYSTEM (ENOENT, ENOTDIR, EACCES of the target; EMFILE,
 * ENFILE, ENOSPC: no inotify instance or watch left; ENOMEM). */
AW_API int aw_watch_open(aw_watch **w, const char *target, int flags, aw_error *err);

/* aw_watch_next - wait up to timeout_ms (-1: forever) for the next
 * published version; returns 1 with its name in `version`, 0 on timeout,
 * -1 on error: AW_KIND_SYSTEM when reading the events or waiting for them
 * fails (EIO, ENOMEM, ...). A target that is removed is not an error: the
 * watcher polls until it is back. */
AW_API int aw_watch_next(aw_watch *w, long timeout_ms, char *version, size_t size,
                  aw_error *err);

/* aw_watch_fd - a descriptor that becomes readable when aw_watch_next may
 * have news (for poll/select/event loops), or -1 when polling. It stays
 * the watcher's: poll it, never read it; aw_watch_close closes it. It is
 * a duplicate of the one the watcher reads, so a host that closes it
 * anyway does not disturb the watcher, and aw_watch_close then closes the
 * number only if it still names the watcher's own file (how it tells:
 * docs/design.md). After a host closed it, aw_watch_fd's number means
 * nothing. */
AW_API int aw_watch_fd(const aw_watch *w);

AW_API void aw_watch_close(aw_watch *w);

/* What this build uses where systems differ; static strings.
 *   listing  "getdents64" | "readdir"
 *   random   "getrandom" | "arc4random_buf" | "getentropy"
 *   sync     the method of AW_SYNC_ON: "syncfs" | "fsync"
 *   watch    "inotify" | "kqueue" | "poll"
 *   syncfs   nonzero where AW_SYNC_FS is syncfs (else it is AW_SYNC_FILES)
 *   copy     how a source's bytes are copied, first choice first:
 *            "ficlone copy_file_range read" | "copy_file_range read" | "read" */
typedef struct aw_platform_info {
  const char *listing, *random, *sync, *watch;
  int syncfs;
  const char *copy;
} aw_platform_info;

AW_API const aw_platform_info *aw_platform(void);

/* The contract's stable code of an error: "invalid", "conflict", "busy",
 * "noversion", "format", "changed", or for AW_KIND_SYSTEM the symbolic errno
 * name ("ENOENT", ...; "E<number>" for one without a name here); "ok" for
 * AW_KIND_NONE. */
AW_API const char *aw_error_code(const aw_error *err);

/* aw_error_source - the source file a failure concerns (aw_publish_sources'
 * sources[i], the caller's string: valid while it is), or NULL. Kept in
 * the error's first reserved member (ABI policy above). */
AW_API const char *aw_error_source(const aw_error *err);

/* Formats a one-line message: "<prefix>: <target>: <step> <path>: <why>".
 * `prefix` and `target` may be NULL (left out with their ": "). Always NUL-terminates (truncating) when size > 0.
 * Returns `buf`. */
AW_API char *aw_error_format(const aw_error *err, const char *prefix,
                      const char *target, char *buf, size_t size);

/* aw_error_format_size - a buffer size that holds aw_error_format's whole
 * message for these arguments (an upper bound, NUL included): escaping
 * makes the message up to four times the length of its parts, so no fixed
 * size fits every target and path. */
AW_API size_t aw_error_format_size(const aw_error *err, const char *prefix,
                            const char *target);

#ifdef __cplusplus
}
#endif

#endif /* AW_H */
