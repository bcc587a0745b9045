/*
 * floor.c - the floor of the atomicwriter benchmark.
 *
 * Performs only the system calls a first projection of a payload into an
 * empty target cannot avoid, in the kubelet ..data layout, and times them:
 *
 *   open(target)                                  a directory fd for the *at calls
 *   mkdirat(target, "..<version>", 0755)          the version directory
 *   openat(target, "..<version>")                 its fd
 *   mkdirat(version, "dNN", 0755)                 each subdirectory, just
 *                                                 before its files
 *   per file: openat(version, "dNN/fNNNN", O_CREAT|O_EXCL|O_WRONLY)
 *             + write + fchmod + close (created 0644 and no fchmod
 *             when the umask keeps 0644, as the module does)
 *   [sync]  syncfs(version)                       as the module with sync=true
 *   [-f]    instead of syncfs: fsync of each file before its close, then of
 *           each subdirectory (open, fsync, close) and of the version:
 *           the module's sync = "fsync"
 *   symlinkat(version, target, "..data_tmp")
 *   renameat("..data_tmp" -> "..data")
 *   [sync]  fsync(target)
 *   symlinkat("..data/<top>", target, "<top>")    each visible name
 *   [sync]  fsync(target)
 *   close(version), close(target)
 *
 * No reading, no checking, no lock, no recovery. Every iteration (but
 * -t's) goes into a fresh empty target, created before and removed after
 * the timed region;
 * after the removal (untimed) a syncfs, so that each timed iteration starts
 * on a quiescent file system instead of paying for the previous removal.
 *
 * Usage:
 *   floor -d BASE -n NFILES -b SIZE [-D NSUBDIRS] [-s [-f]] [-u | -t] [-w WARMUP] [-i ITERS] [-k]
 *
 *   -d BASE    directory in which the targets BASE/f<k> are made and removed
 *   -n NFILES  number of files; -b SIZE bytes per file
 *   -D NSUB    files spread over NSUB subdirectories "dNN" (0: all top level)
 *              names: "dNN/fNNNN" (file i in subdirectory i / (NFILES/NSUB))
 *              or "fNNNN"; the same names the Lua driver uses
 *   -s         sync variant (the module's sync=true syscalls, by syncfs)
 *   -f         with -s: per-file fsync instead of syncfs (sync = "fsync")
 *   -u         time an update by hard links instead (W2's own floor): the
 *              target holds a first projection (made untimed); the timed
 *              part makes a new version with every file hard-linked from
 *              the current one except file NFILES/2, which is written,
 *              swaps ..data, and removes the old version (unlinkat of each
 *              known name, no listing). No reading, no checking.
 *   -t         time a sweep of stats instead (W3's scaling rows): the target
 *              holds a first projection (made untimed), then is swept once
 *              more than -w and -i ask, one sweep after the other, as W3's
 *              steady target is: each sweep opens the version and each
 *              subdirectory and fstatat()s each file through it
 *              (AT_SYMLINK_NOFOLLOW), the least a no-op that notices a
 *              file changed behind its back must do. No reading, no lock,
 *              no digest.
 *              The timed region is one sweep, from open(target) on; one
 *              untimed sweep always comes first (even with -w 0), and one
 *              target serves every sweep.
 *   -w, -i     warm-up and measured iterations (default 1 and 10)
 *   -k         profile mode: use the existing empty targets BASE/t<k>
 *              (k = 0 .. WARMUP+ITERS-1), make and remove nothing, so that
 *              `strace -c` counts only the projection's own calls
 *
 * Output (one key per line, space separated values):
 *   floor files=N size=S subdirs=D sync=0|1 update=0|1 stats=0|1 warmup=W iters=I
 *   ns <t1> <t2> ...            wall time of each measured iteration
 *   median_ns <m>
 *   maxrss_kib <k>
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void die(const char *what, const char *path)
{
  fprintf(stderr, "floor: %s %s: %s\n", what, path ? path : "", strerror(errno));
  exit(1);
}

static long long now_ns(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Untimed: rm -rf without following symlinks. */
static void rmtree_at(int dfd, const char *name)
{
  int fd;
  DIR *dir;
  struct dirent *de;

  if (unlinkat(dfd, name, 0) == 0 || errno == ENOENT)
    return;
  if (errno != EISDIR && errno != EPERM)
    die("unlink", name);
  fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0 || !(dir = fdopendir(fd)))
    die("open directory", name);
  while ((de = readdir(dir)) != NULL) {
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
      continue;
    rmtree_at(dirfd(dir), de->d_name);
  }
  closedir(dir);
  if (unlinkat(dfd, name, AT_REMOVEDIR) < 0)
    die("rmdir", name);
}

typedef struct plan {
  int nfiles, nsub, sync;   /* sync: 0 none, 1 syncfs, 2 fsync each */
  size_t size;
  char *buf;            /* the bytes of all files, one distinct copy each
                           (as the module's payload: one string per file) */
  char (*paths)[32];    /* "dNN/fNNNN" or "fNNNN" */
  char (*subs)[16];     /* "dNN" */
  char (*tops)[32];     /* visible names */
  char (*links)[48];    /* "..data/<top>" */
  int ntops;
} plan;

static void write_all(int fd, const char *p, size_t n, const char *path)
{
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR)
        continue;
      die("write", path);
    }
    p += w;
    n -= (size_t)w;
  }
}

/* A version name of the module's shape (same length, same cost). */
static void version_name(char *version, size_t size)
{
  struct timespec ts;
  struct tm tm;
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  snprintf(version, size, "..%04d_%02d_%02d_%02d_%02d_%02d.%09ld",
           tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
           tm.tm_sec, (long)ts.tv_nsec);
}

/* mkdir and open a new version directory named by the clock. */
static int new_version(int tfd, char version[64])
{
  int vfd;
  version_name(version, 64);
  if (mkdirat(tfd, version, 0755) < 0)
    die("mkdir", version);
  vfd = openat(tfd, version, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (vfd < 0)
    die("open", version);
  return vfd;
}

/* File i's subdirectory, made just before its first file, as the module
 * goes: on ext4 that is ~20% faster than making all of them first. */
static void subdir_before(const plan *pl, int vfd, int i)
{
  if (pl->nsub && i % (pl->nfiles / pl->nsub) == 0 &&
      mkdirat(vfd, pl->subs[i / (pl->nfiles / pl->nsub)], 0755) < 0)
    die("mkdir", pl->subs[i / (pl->nfiles / pl->nsub)]);
}

/* Whether the umask clears bits of 0644 (read in main): then a file is
 * created 0600 and given 0644 by fchmod, as the module does; otherwise it
 * is created 0644, as the module does too (issue 18). */
static int chmod_files;

/* File i: create, write, [fchmod], close. */
static void create_file(const plan *pl, int vfd, int i)
{
  int fd = openat(vfd, pl->paths[i], O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
                  chmod_files ? 0600 : 0644);
  if (fd < 0)
    die("create", pl->paths[i]);
  write_all(fd, pl->buf + (size_t)i * pl->size, pl->size, pl->paths[i]);
  if (chmod_files && fchmod(fd, 0644) < 0)
    die("fchmod", pl->paths[i]);
  if (pl->sync == 2 && fsync(fd) < 0)
    die("fsync", pl->paths[i]);
  if (close(fd) < 0)
    die("close", pl->paths[i]);
}

/* -f: what the files' fsyncs leave: each subdirectory, then the version. */
static void sync_dirs(const plan *pl, int vfd, const char *version)
{
  int i, fd;
  for (i = 0; i < pl->nsub; i++) {
    fd = openat(vfd, pl->subs[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) < 0)
      die("fsync", pl->subs[i]);
    close(fd);
  }
  if (fsync(vfd) < 0)
    die("fsync", version);
}

/* [syncfs | fsyncs], ..data_tmp -> version renamed over ..data, [fsync target]. */
static void swap(const plan *pl, int tfd, int vfd, const char *version, const char *target)
{
  if (pl->sync == 1 && syncfs(vfd) < 0)
    die("syncfs", version);
  if (pl->sync == 2)
    sync_dirs(pl, vfd, version);
  if (symlinkat(version, tfd, "..data_tmp") < 0)
    die("symlink", "..data_tmp");
  if (renameat(tfd, "..data_tmp", tfd, "..data") < 0)
    die("rename", "..data");
  if (pl->sync && fsync(tfd) < 0)
    die("fsync", target);
}

/* The timed projection; `version` receives the version's name. */
static long long project(const plan *pl, const char *target, char version[64])
{
  long long t0 = now_ns();
  int tfd, vfd, i;

  tfd = open(target, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (tfd < 0)
    die("open", target);
  vfd = new_version(tfd, version);
  for (i = 0; i < pl->nfiles; i++) {
    subdir_before(pl, vfd, i);
    create_file(pl, vfd, i);
  }
  swap(pl, tfd, vfd, version, target);
  for (i = 0; i < pl->ntops; i++)
    if (symlinkat(pl->links[i], tfd, pl->tops[i]) < 0)
      die("symlink", pl->tops[i]);
  if (pl->sync && fsync(tfd) < 0)
    die("fsync", target);
  close(vfd);
  close(tfd);
  return now_ns() - t0;
}

/* Opens target and its version `old` (both die on failure): the target's
 * descriptor, the version's in *ofd. */
static int open_version(const char *target, const char *old, int *ofd)
{
  int tfd = open(target, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (tfd < 0)
    die("open", target);
  *ofd = openat(tfd, old, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (*ofd < 0)
    die("open", old);
  return tfd;
}

/* The timed update by hard links: the least an update that keeps its
 * unchanged files must do in this layout. `old` is the current version. */
static long long update(const plan *pl, const char *target, const char *old)
{
  char version[64];
  long long t0 = now_ns();
  int tfd, vfd, ofd, i, changed = pl->nfiles / 2;

  tfd = open_version(target, old, &ofd);
  vfd = new_version(tfd, version);
  for (i = 0; i < pl->nfiles; i++) {
    subdir_before(pl, vfd, i);
    if (i == changed)
      create_file(pl, vfd, i);
    else if (linkat(ofd, pl->paths[i], vfd, pl->paths[i], 0) < 0)
      die("link", pl->paths[i]);
  }
  swap(pl, tfd, vfd, version, target);
  for (i = 0; i < pl->nfiles; i++)
    if (unlinkat(ofd, pl->paths[i], 0) < 0)
      die("unlink", pl->paths[i]);
  for (i = 0; i < pl->nsub; i++)
    if (unlinkat(ofd, pl->subs[i], AT_REMOVEDIR) < 0)
      die("rmdir", pl->subs[i]);
  if (unlinkat(tfd, old, AT_REMOVEDIR) < 0)
    die("rmdir", old);
  if (pl->sync && fsync(tfd) < 0)
    die("fsync", target);
  close(ofd);
  close(vfd);
  close(tfd);
  return now_ns() - t0;
}

/* The timed sweep of stats (-t): every file of version `old` inspected
 * through its directory's descriptor. */
static long long stat_sweep(const plan *pl, const char *target, const char *old)
{
  long long t0 = now_ns();
  int tfd, ofd, dfd = -1, cur = -1, i;
  struct stat st;

  tfd = open_version(target, old, &ofd);
  for (i = 0; i < pl->nfiles; i++) {
    const char *name = pl->paths[i];
    if (pl->nsub) {
      int sub = i / (pl->nfiles / pl->nsub);
      if (sub != cur) {
        if (dfd >= 0)
          close(dfd);
        cur = sub;
        dfd = openat(ofd, pl->subs[sub], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dfd < 0)
          die("open", pl->subs[sub]);
      }
      name = strchr(name, '/') + 1;
    }
    if (fstatat(pl->nsub ? dfd : ofd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
      die("stat", pl->paths[i]);
  }
  if (dfd >= 0)
    close(dfd);
  close(ofd);
  close(tfd);
  return now_ns() - t0;
}

static int cmp_ll(const void *a, const void *b)
{
  long long x = *(const long long *)a, y = *(const long long *)b;
  return x < y ? -1 : x > y;
}

static long parse(const char *s, const char *what)
{
  char *end;
  long v;
  errno = 0;
  v = strtol(s, &end, 10);
  if (errno || *end || v < 0) {
    fprintf(stderr, "floor: bad %s: %s\n", what, s);
    exit(2);
  }
  return v;
}

int main(int argc, char **argv)
{
  const char *base = NULL;
  long nfiles = -1, size = -1, nsub = 0, warm = 1, iters = 10;
  int sync = 0, keep = 0, upd = 0, sweep = 0, opt, i, k;
  plan pl;
  long long *times, *sorted, *sweeps;
  struct rusage ru;
  int bfd;

  while ((opt = getopt(argc, argv, "d:n:b:D:sfutw:i:kh")) != -1) {
    switch (opt) {
    case 'd': base = optarg; break;
    case 'n': nfiles = parse(optarg, "-n"); break;
    case 'b': size = parse(optarg, "-b"); break;
    case 'D': nsub = parse(optarg, "-D"); break;
    case 's': sync = sync ? sync : 1; break;
    case 'f': sync = 2; break;
    case 'u': upd = 1; break;
    case 't': sweep = 1; break;
    case 'w': warm = parse(optarg, "-w"); break;
    case 'i': iters = parse(optarg, "-i"); break;
    case 'k': keep = 1; break;
    case 'h':
    default:
      fprintf(opt == 'h' ? stdout : stderr,
              "usage: floor -d BASE -n NFILES -b SIZE [-D NSUB] [-s [-f]] [-u | -t] "
              "[-w WARMUP] [-i ITERS] [-k]\n"
              "  a first projection of NFILES files of SIZE bytes (in NSUB\n"
              "  subdirectories) into fresh targets BASE/f<k>, timed; -s with the\n"
              "  module's sync=true syncs (-f: fsync each, not syncfs); -u times an update by hard links of\n"
              "  all files but one instead, -t a stat of every file; -k uses existing BASE/t<k>,\n"
              "  no cleanup\n");
      return opt == 'h' ? 0 : 2;
    }
  }
  if (!base || nfiles < 1 || nfiles > 999999 || size < 0 || nsub > 9999 ||
      (nsub && nfiles % nsub) || iters < 1) {
    fprintf(stderr, "floor: need -d BASE, 1 <= -n <= 999999, -b >= 0, -D <= 9999 "
                    "dividing -n, -i >= 1\n");
    return 2;
  }
  if ((upd || sweep) && keep) {
    fprintf(stderr, "floor: -u and -t make and remove their targets: not with -k\n");
    return 2;
  }
  if (upd && sweep) {
    fprintf(stderr, "floor: -u or -t, not both\n");
    return 2;
  }

  memset(&pl, 0, sizeof pl);
  pl.nfiles = (int)nfiles;
  pl.nsub = (int)nsub;
  pl.size = (size_t)size;
  pl.sync = sync;
  pl.buf = malloc(pl.size * (size_t)nfiles + 1);
  pl.paths = calloc((size_t)nfiles, sizeof *pl.paths);
  pl.subs = calloc((size_t)(nsub ? nsub : 1), sizeof *pl.subs);
  pl.tops = calloc((size_t)nfiles, sizeof *pl.tops);
  pl.links = calloc((size_t)nfiles, sizeof *pl.links);
  times = calloc((size_t)iters, sizeof *times);
  sweeps = calloc((size_t)(warm + iters + 1), sizeof *sweeps);
  sorted = calloc((size_t)iters, sizeof *sorted);
  if (!pl.buf || !pl.paths || !pl.subs || !pl.tops || !pl.links || !times || !sorted || !sweeps)
    die("malloc", NULL);
  /* Resident, non-zero bytes, like a Lua string's. */
  for (size_t b = 0; b < pl.size * (size_t)nfiles; b++)
    pl.buf[b] = (char)('a' + b % 26);
  for (i = 0; i < pl.nsub; i++)
    snprintf(pl.subs[i], sizeof pl.subs[i], "d%02d", i);
  for (i = 0; i < pl.nfiles; i++) {
    if (pl.nsub)
      snprintf(pl.paths[i], sizeof pl.paths[i], "d%02d/f%04d",
               i / (pl.nfiles / pl.nsub), i);
    else
      snprintf(pl.paths[i], sizeof pl.paths[i], "f%04d", i);
  }
  pl.ntops = pl.nsub ? pl.nsub : pl.nfiles;
  for (i = 0; i < pl.ntops; i++) {
    snprintf(pl.tops[i], sizeof pl.tops[i], "%s", pl.nsub ? pl.subs[i] : pl.paths[i]);
    snprintf(pl.links[i], sizeof pl.links[i], "..data/%s", pl.tops[i]);
  }

  {
    mode_t mask = umask(0);   /* one thread: read and restore is safe here */
    umask(mask);
    chmod_files = (mask & 0644) != 0;
  }
  bfd = open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (bfd < 0)
    die("open", base);
  for (k = 0; k < warm + iters; k++) {
    char name[32], target[4096];
    long long t;
    snprintf(name, sizeof name, "%c%d", keep ? 't' : 'f', k);
    snprintf(target, sizeof target, "%s/%s", base, name);
    if (!keep && mkdirat(bfd, name, 0755) < 0)
      die("mkdir", target);
    {
      char version[64];
      t = project(&pl, target, version);
      if (upd || sweep) {   /* the projection was the untimed set-up */
        if (syncfs(bfd) < 0)
          die("syncfs", base);
        if (upd)
          t = update(&pl, target, version);
        else {   /* W3's target is a steady one: swept again and again */
          for (i = 0; i <= warm + iters; i++)
            sweeps[i] = stat_sweep(&pl, target, version);
          memcpy(times, sweeps + warm + 1, (size_t)iters * sizeof *times);
        }
      }
    }
    if (!keep) {
      /* Untimed: remove, and let the removal reach the disk now rather
       * than in the next timed iteration. */
      rmtree_at(bfd, name);
      if (syncfs(bfd) < 0)
        die("syncfs", base);
    }
    if (sweep)
      break;   /* one target, all its sweeps timed above */
    if (k >= warm)
      times[k - warm] = t;
  }
  close(bfd);

  memcpy(sorted, times, (size_t)iters * sizeof *times);
  qsort(sorted, (size_t)iters, sizeof *sorted, cmp_ll);
  getrusage(RUSAGE_SELF, &ru);
  printf("floor files=%ld size=%ld subdirs=%ld sync=%d update=%d stats=%d warmup=%ld iters=%ld\n",
         nfiles, size, nsub, sync, upd, sweep, warm, iters);
  printf("ns");
  for (i = 0; i < iters; i++)
    printf(" %lld", times[i]);
  printf("\nmedian_ns %lld\n",
         iters % 2 ? sorted[iters / 2] : (sorted[iters / 2 - 1] + sorted[iters / 2]) / 2);
  printf("maxrss_kib %ld\n", ru.ru_maxrss);
  return 0;
}
