/*
 * watch_fd.c - a host that closes the descriptor aw_watch_fd gave it, for
 * spec/12-watch_spec.lua. Usage: watch-fd TARGET [no-twin] (TARGET an
 * empty directory; no-twin leaves out the twin inotify instance, which
 * only kcmp(2) tells apart).
 * Prints one line per check, "ok <what>" or "FAIL <what>", and exits 1 on
 * any failure:
 *   - the host's descriptor is not the one the watcher reads, so a watcher
 *     whose host closed it still reports each version;
 *   - aw_watch_close leaves alone the file that took the closed number
 *     (/dev/null; on Linux also another inotify instance);
 *   - a watcher whose host did not close its descriptor closes both.
 */
#define _GNU_SOURCE
#include "aw.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/inotify.h>
#endif

static int failed;

static void check(int ok, const char *what)
{
  printf("%s %s\n", ok ? "ok" : "FAIL", what);
  failed |= !ok;
}

static int is_open(int fd)
{
  return fcntl(fd, F_GETFD) != -1 || errno != EBADF;
}

static int publish(const char *target, const char *data)
{
  aw_file f;
  aw_error err;
  memset(&f, 0, sizeof f);
  f.path = "a";
  f.path_len = 1;
  f.data = data;
  f.size = strlen(data);
  f.mode = 0644;
  f.uid = f.gid = -1;
  return aw_write(target, &f, 1, NULL, NULL, &err);
}

/* Descriptors open among the first 1024. */
static int count_open(void)
{
  int fd, n = 0;
  for (fd = 0; fd < 1024; fd++)
    n += is_open(fd);
  return n;
}

/* Opens a watcher, lets the host close its descriptor and `reuse` take the
 * number, checks the watcher still reports, closes it; the reused number
 * must still be open. */
static void host_closes(const char *target, int (*reuse)(void), const char *what)
{
  char version[256], line[200];
  aw_watch *w;
  aw_error err;
  int fd, other;

  if (aw_watch_open(&w, target, 0, &err) < 0) {
    check(0, "aw_watch_open");
    return;
  }
  fd = aw_watch_fd(w);
  close(fd);   /* the host closes what it was handed */
  other = reuse();
  snprintf(line, sizeof line, "the number %d went to %s (got %d)", fd, what, other);
  check(other == fd, line);
  check(publish(target, what) == 0 && aw_watch_next(w, 5000, version, sizeof version, &err) == 1,
        "the watcher still reports a version");
  aw_watch_close(w);
  snprintf(line, sizeof line, "aw_watch_close left %s open", what);
  check(is_open(other), line);
  close(other);
}

static int open_null(void)
{
  return open("/dev/null", O_RDONLY | O_CLOEXEC);
}

#ifdef __linux__
static const char *inotify_target;
/* A twin of the watcher's instance: same flags, same watch. */
static int open_inotify(void)
{
  int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd >= 0)
    inotify_add_watch(fd, inotify_target, IN_CREATE | IN_DELETE | IN_MOVED_TO |
                      IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR);
  return fd;
}
#endif

int main(int argc, char **argv)
{
  aw_watch *w;
  aw_error err;
  int fd, before;

  if (argc < 2)
    return 2;
  host_closes(argv[1], open_null, "/dev/null");
#ifdef __linux__
  inotify_target = argv[1];
  if (argc < 3 || strcmp(argv[2], "no-twin") != 0)
    host_closes(argv[1], open_inotify, "a twin inotify instance (same flags and watch)");
#endif

  /* A host that leaves the descriptor alone: close takes both. */
  before = count_open();
  if (aw_watch_open(&w, argv[1], 0, &err) < 0)
    return 1;
  fd = aw_watch_fd(w);
  check(fd >= 0 && is_open(fd), "aw_watch_fd gives an open descriptor");
  aw_watch_close(w);
  check(!is_open(fd), "aw_watch_close closed the host's descriptor");
  check(count_open() == before, "and its own: as many descriptors open as before");
  return failed;
}
