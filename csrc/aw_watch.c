/*
 * aw_watch.c - being told of each published version, exactly once.
 *
 * Over inotify on the target directory. A publish shows as, in order:
 *   IN_CREATE  ..<version> (a directory)   the version being built
 *   IN_CREATE / IN_MOVED_FROM ..data_tmp
 *   IN_MOVED_TO ..data                      the swap: this is the event
 *   IN_DELETE  ..<old version>
 * The swap does not carry the link's content, and by the time a slow
 * consumer reads ..data a later write may have swapped again. So the
 * watcher remembers the last version directory created (writers are
 * serialized) and reports that one at the swap; a version removed before
 * any swap (a failed write) is forgotten. Only when it saw no creation
 * (it started mid-write, or the queue overflowed) does it read ..data.
 *
 * On macOS and the BSDs, kqueue (EVFILT_VNODE, NOTE_WRITE on the target
 * directory) wakes the watcher on any change of the target's entries; it
 * carries no names, so the watcher reads ..data at each wake and reports
 * what it names when it is new (a consumer slower than the writer sees the
 * latest version, as when polling). Both descriptors work in poll(2), so
 * aw_watch_fd serves event loops on either.
 *
 * When the target directory itself goes away, the watch is re-added as
 * soon as the path is a directory again. Where neither is available the
 * watcher polls ..data every AW_WATCH_POLL_MS milliseconds instead.
 *
 * The descriptor a host gets (aw_watch_fd) is a duplicate of the one the
 * watcher reads: some hosts close a descriptor they were handed (lsyncd
 * does on a reload), and its number may then name anyone's file. The
 * watcher never reads from it, and closes it only when it still names the
 * watcher's own instance (host_fd_is_ours).
 */
#define _GNU_SOURCE
#if defined(__APPLE__)
#define _DARWIN_C_SOURCE 1
#endif
#include "aw_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#if AW_USE_INOTIFY
#include <sys/inotify.h>
#include <sys/syscall.h>
#elif AW_USE_KQUEUE
#include <sys/types.h>
#include <sys/event.h>
#include <sys/time.h>
#endif

#define QUEUE 64   /* versions reported but not yet taken */
/* Bytes read from inotify at once: room for 60 events with the longest
 * names (an event is at most sizeof(struct inotify_event) + NAME_MAX + 1).
 * Kept in the watcher, not on the caller's stack: hosts call on small
 * thread stacks (docs/stack.md). */
#define EVENT_BUF 16384

struct aw_watch {
  char *target;
  int fd;                   /* inotify or kqueue descriptor, or -1 when polling */
  int host_fd;              /* its duplicate for the host (aw_watch_fd), or -1 */
  int wd;                   /* watch on the target, or -1 while it is gone */
  int dfd;                  /* kqueue: the target directory watched, or -1 */
  char created[NAME_MAX + 1];   /* last version directory created */
  char last[NAME_MAX + 1];      /* last version reported (or current at start) */
  char queue[QUEUE][NAME_MAX + 1];
  unsigned head, count;
  aw_error ignored;         /* current_version's: 4 KiB kept off the stack */
#if AW_USE_INOTIFY
  char events[EVENT_BUF] __attribute__((aligned(__alignof__(struct inotify_event))));
#endif
};

static long long now_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The version ..data names now, or "" when there is none or it is not ours. */
static void current_version(aw_watch *w, char *buf, size_t size)
{
  if (aw_version(w->target, buf, size, &w->ignored) < 0)
    buf[0] = '\0';
}

/* Queues `version` unless it is the one reported last. */
static void report(aw_watch *w, const char *version)
{
  if (!version[0] || strcmp(version, w->last) == 0)
    return;
  snprintf(w->last, sizeof w->last, "%s", version);
  if (w->count == QUEUE) {   /* full: the oldest gives way */
    w->head = (w->head + 1) % QUEUE;
    w->count--;
  }
  snprintf(w->queue[(w->head + w->count) % QUEUE], NAME_MAX + 1, "%s", version);
  w->count++;
}

#if AW_USE_INOTIFY
#define WATCH_MASK (IN_CREATE | IN_DELETE | IN_MOVED_TO | IN_DELETE_SELF | \
                    IN_MOVE_SELF | IN_ONLYDIR)

static void add_watch(aw_watch *w)
{
  w->wd = inotify_add_watch(w->fd, w->target, WATCH_MASK);
  if (w->wd >= 0) {   /* it may have been filled while unwatched */
    char now[NAME_MAX + 1];
    current_version(w, now, sizeof now);
    report(w, now);
  }
}

static void handle(aw_watch *w, const struct inotify_event *ev)
{
  const char *name = ev->len ? ev->name : "";

  if (!(ev->mask & IN_Q_OVERFLOW) && ev->wd != w->wd)
    return;   /* left over from a watch that was removed */
  if (ev->mask & IN_Q_OVERFLOW) {
    char now[NAME_MAX + 1];
    w->created[0] = '\0';
    current_version(w, now, sizeof now);
    report(w, now);
    return;
  }
  if (ev->mask & (IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF)) {
    if (w->wd >= 0 && !(ev->mask & IN_IGNORED))
      inotify_rm_watch(w->fd, w->wd);
    w->wd = -1;
    return;
  }
  if ((ev->mask & IN_CREATE) && (ev->mask & IN_ISDIR) && aw_is_version_name(name)) {
    snprintf(w->created, sizeof w->created, "%s", name);
  } else if ((ev->mask & IN_DELETE) && strcmp(name, w->created) == 0) {
    w->created[0] = '\0';   /* built and removed without a swap */
  } else if ((ev->mask & (IN_MOVED_TO | IN_CREATE)) && strcmp(name, AW_DATA_NAME) == 0) {
    if (w->created[0]) {
      report(w, w->created);
      w->created[0] = '\0';
    } else {
      char now[NAME_MAX + 1];
      current_version(w, now, sizeof now);
      report(w, now);
    }
  }
}

/* Reads and handles the events that are ready. */
static int drain(aw_watch *w, aw_error *err)
{
  char *buf = w->events;
  for (;;) {
    ssize_t n = read(w->fd, buf, sizeof w->events);
    char *p;
    if (n < 0) {
      if (errno == EINTR)
        continue;
      if (errno == EAGAIN)
        return 0;
      return aw_fail_sys(err, "read events", NULL, errno);
    }
    for (p = buf; p < buf + n;) {
      const struct inotify_event *ev = (const struct inotify_event *)p;
      handle(w, ev);
      p += sizeof *ev + ev->len;
    }
  }
}

/* Starts watching: 0 (w->fd stays -1 where inotify is missing), or -1
 * with errno when the target cannot be watched. */
static int start(aw_watch *w)
{
  w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (w->fd < 0)
    return 0;
  w->wd = inotify_add_watch(w->fd, w->target, WATCH_MASK);
  return w->wd < 0 ? -1 : 0;
}

#elif AW_USE_KQUEUE

#ifdef O_EVTONLY   /* macOS: an event-only descriptor keeps no volume busy */
#define WATCH_OPEN (O_EVTONLY | O_DIRECTORY | O_CLOEXEC)
#else
#define WATCH_OPEN (O_RDONLY | O_DIRECTORY | O_CLOEXEC)
#endif
#define WATCH_NOTES (NOTE_WRITE | NOTE_DELETE | NOTE_RENAME | NOTE_REVOKE)

/* Registers the target directory with the kqueue: 0, or -1 with errno. */
static int register_target(aw_watch *w)
{
  struct kevent ev;
  int dfd = open(w->target, WATCH_OPEN);

  if (dfd < 0)
    return -1;
  EV_SET(&ev, (uintptr_t)dfd, EVFILT_VNODE, EV_ADD | EV_CLEAR, WATCH_NOTES, 0, NULL);
  if (kevent(w->fd, &ev, 1, NULL, 0, NULL) < 0) {
    int e = errno;
    close(dfd);
    errno = e;
    return -1;
  }
  w->dfd = dfd;
  w->wd = 0;
  return 0;
}

static void add_watch(aw_watch *w)
{
  if (register_target(w) == 0) {   /* it may have been filled while unwatched */
    char now[NAME_MAX + 1];
    current_version(w, now, sizeof now);
    report(w, now);
  }
}

/* Takes the events that are ready; any change of the target's entries
 * means ..data may name a new version. Closing the directory's descriptor
 * removes its event. */
static int drain(aw_watch *w, aw_error *err)
{
  static const struct timespec zero = { 0, 0 };
  struct kevent ev[4];
  int i, n, changed = 0, gone = 0;

  for (;;) {
    n = kevent(w->fd, NULL, 0, ev, 4, &zero);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return aw_fail_sys(err, "read events", NULL, errno);
    }
    if (n == 0)
      break;
    for (i = 0; i < n; i++) {
      if ((int)ev[i].ident != w->dfd)
        continue;
      changed = 1;
      if (ev[i].fflags & (NOTE_DELETE | NOTE_RENAME | NOTE_REVOKE))
        gone = 1;
    }
  }
  if (changed) {
    char now[NAME_MAX + 1];
    current_version(w, now, sizeof now);
    report(w, now);
  }
  if (gone && w->dfd >= 0) {
    close(w->dfd);
    w->dfd = w->wd = -1;
  }
  return 0;
}

static int start(aw_watch *w)
{
  w->fd = kqueue();
  if (w->fd < 0)
    return 0;
  if (fcntl(w->fd, F_SETFD, FD_CLOEXEC) < 0)
    return -1;
  return register_target(w);
}

#endif

/* Waits for a write in flight to end (the writers' lock, shared), so that
 * the version read next as "current" is not one whose creation the watch
 * missed. Best effort: where locks are not supported it does not wait. */
static void wait_for_writer(const char *target)
{
  int fd = open(target, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return;
  while (flock(fd, LOCK_SH) < 0 && errno == EINTR)
    ;
  close(fd);
}

int aw_watch_open(aw_watch **out, const char *target, int flags, aw_error *err)
{
  aw_watch *w = calloc(1, sizeof *w);

  *out = NULL;
  if (!w || !(w->target = strdup(target))) {
    free(w);
    return aw_fail_sys(err, "allocate", NULL, ENOMEM);
  }
  w->fd = w->host_fd = w->wd = w->dfd = -1;
  if (aw_check_target(target, err) < 0) {
    aw_watch_close(w);
    return -1;
  }
#if AW_USE_INOTIFY || AW_USE_KQUEUE
  if (!(flags & AW_WATCH_POLL) && start(w) < 0) {
    aw_fail_sys(err, "watch", NULL, errno);
    aw_watch_close(w);
    return -1;
  }
  if (w->fd >= 0 && (w->host_fd = fcntl(w->fd, F_DUPFD_CLOEXEC, 0)) < 0) {
    aw_fail_sys(err, "duplicate descriptor", NULL, errno);
    aw_watch_close(w);
    return -1;
  }
#else
  (void)flags;
#endif
  wait_for_writer(target);
  current_version(w, w->last, sizeof w->last);   /* not reported: not new */
  *out = w;
  return 0;
}

int aw_watch_fd(const aw_watch *w)
{
  return w->host_fd;
}

/* Takes in what happened since the last look, without waiting. */
static int look(aw_watch *w, aw_error *err)
{
  char now[NAME_MAX + 1];
#if AW_USE_INOTIFY || AW_USE_KQUEUE
  if (w->fd >= 0) {
    if (drain(w, err) < 0)
      return -1;
    if (w->wd < 0)
      add_watch(w);   /* the target was gone: is it back? */
    return 0;
  }
#else
  (void)err;
#endif
  current_version(w, now, sizeof now);
  report(w, now);
  return 0;
}

static int pop(aw_watch *w, char *version, size_t size)
{
  if (!w->count)
    return 0;
  snprintf(version, size, "%s", w->queue[w->head]);
  w->head = (w->head + 1) % QUEUE;
  w->count--;
  return 1;
}

int aw_watch_next(aw_watch *w, long timeout_ms, char *version, size_t size,
                  aw_error *err)
{
  long long deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;

  for (;;) {
    long long left, wait_ms;
    if (pop(w, version, size))
      return 1;
    if (look(w, err) < 0)   /* even with no time to wait: wait(0) polls */
      return -1;
    if (pop(w, version, size))
      return 1;
    left = deadline < 0 ? -1 : deadline - now_ms();
    if (deadline >= 0 && left <= 0)
      return 0;
    /* Poll ..data without events, and while the target is gone. */
    wait_ms = (w->fd < 0 || w->wd < 0) ? AW_WATCH_POLL_MS : left;
    if (left >= 0 && wait_ms > left)
      wait_ms = left;
    if (wait_ms < 0 || wait_ms > INT_MAX)
      wait_ms = INT_MAX;
#if AW_USE_INOTIFY || AW_USE_KQUEUE
    if (w->fd >= 0) {
      struct pollfd pfd = { w->fd, POLLIN, 0 };
      if (poll(&pfd, 1, (int)wait_ms) < 0 && errno != EINTR)
        return aw_fail_sys(err, "wait for events", NULL, errno);
      continue;
    }
#endif
    {
      struct timespec nap = { (time_t)(wait_ms / 1000), (long)(wait_ms % 1000) * 1000000L };
      nanosleep(&nap, NULL);
    }
  }
}

#if AW_USE_INOTIFY
/* The text of /proc/self/fdinfo/<fd> (position, flags, and for inotify
 * every watch: its number, inode, device and mask) into buf, or "". */
static void fd_info(int fd, char *buf, size_t size)
{
  char path[64];
  ssize_t n = -1;
  int info;
  snprintf(path, sizeof path, "/proc/self/fdinfo/%d", fd);
  if ((info = open(path, O_RDONLY | O_CLOEXEC)) >= 0) {
    n = read(info, buf, size - 1);
    close(info);
  }
  buf[n > 0 ? n : 0] = '\0';
}
#endif

/* Does the host's number still name the watcher's own instance, or did
 * the host close it (and perhaps the number went to another file)? With
 * Linux's kcmp(2) the answer is exact: the same open file description.
 * Without it (a kernel without CONFIG_KCMP, a seccomp filter), the file's
 * identity (fstat) and, on Linux, its fdinfo (the same watches) must
 * match: another inotify instance with exactly the same watches would
 * pass. Elsewhere only the identity is compared. */
static int host_fd_is_ours(aw_watch *w)
{
  struct stat a, b;
#if AW_USE_INOTIFY
  char ours[512], theirs[512];
#ifdef SYS_kcmp
  long r = syscall(SYS_kcmp, (long)getpid(), (long)getpid(), 0 /* KCMP_FILE */,
                   (long)w->fd, (long)w->host_fd);
  if (r == 0)
    return 1;
  if (r > 0 || errno == EBADF)
    return 0;
#endif
#endif
  if (fstat(w->host_fd, &b) < 0 || fstat(w->fd, &a) < 0 ||
      a.st_dev != b.st_dev || a.st_ino != b.st_ino)
    return 0;
#if AW_USE_INOTIFY
  fd_info(w->fd, ours, sizeof ours);
  fd_info(w->host_fd, theirs, sizeof theirs);
  return ours[0] && strcmp(ours, theirs) == 0;
#else
  return 1;
#endif
}

void aw_watch_close(aw_watch *w)
{
  if (!w)
    return;
  if (w->dfd >= 0)
    close(w->dfd);
  if (w->host_fd >= 0 && host_fd_is_ours(w))
    close(w->host_fd);
  if (w->fd >= 0)
    close(w->fd);
  free(w->target);
  free(w);
}
