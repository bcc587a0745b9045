/*
 * stack_host.c - runs atomicwriter's API on a thread with a small stack,
 * as hosts do that run Lua on their worker threads (spec/19-stack_spec.lua).
 *
 * Usage:
 *   stack-host [-s BYTES] [-l LIMIT] [-n] c TARGET
 *       every call of csrc/aw.h, from C, with its results checked
 *   stack-host [-s BYTES] [-l LIMIT] [-n] lua SCRIPT [ARG...]
 *       a Lua state created on the thread runs SCRIPT with the ARGs as
 *       `...` (spec/stack_calls.lua: every call of the Lua API); it finds
 *       the module through the package.path and cpath the script sets.
 *       host_lock(dir) takes the writers' lock of dir (flock, as a
 *       writer in another process would hold it), host_unlock() drops it;
 *       host_depth is the deepest payload path's depth in levels. SCRIPT
 *       returns the function that makes the calls; -p runs SCRIPT itself
 *       (the require) on the main thread, and only that function on the
 *       small one.
 *
 * The thread's stack is BYTES (default 32768) of memory the host maps
 * itself, above a PROT_NONE guard page, so that an overflow is a clean
 * SIGSEGV. The stack is filled with a pattern before the thread starts;
 * afterwards the host prints "stack used: N bytes" - the depth below the
 * thread's first frame that the pattern no longer fills - and fails when
 * N is over LIMIT (default: no limit). -n leaves the measurement out
 * (under valgrind, which marks memory below the stack pointer undefined).
 * Exits 0 when every check passed, 1 when one failed, 2 on a usage or
 * set-up error.
 */
#define _GNU_SOURCE
#include "aw.h"

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#define PATTERN 0xa5

static int failures;
static int lock_fd = -1;

#define CHECK(cond) check((cond), #cond, __LINE__)
static int check(int ok, const char *what, int line)
{
  if (!ok) {
    fprintf(stderr, "stack-host:%d: check failed: %s\n", line, what);
    failures++;
  }
  return ok;
}

/* ------------------------------------------------------------------ */
/* From C                                                              */
/* ------------------------------------------------------------------ */

/* Formats err's message into a buffer of the size it needs (on the heap,
 * as aw.h advises), checks it names the target, and returns the code. */
static const char *message(const aw_error *err, const char *target)
{
  size_t size = aw_error_format_size(err, "stack-host", target);
  char *msg = malloc(size);
  if (!CHECK(msg != NULL))
    return "";
  aw_error_format(err, "stack-host", target, msg, size);
  CHECK(strstr(msg, target) != NULL);
  printf("  %s (%s)\n", msg, aw_error_code(err));
  free(msg);
  return aw_error_code(err);
}

/* The depth of the deepest payload path the descriptors allow (the
 * writer and the reader hold one per level), after raising the soft limit
 * to the hard one; 2047 levels ("d/" * 2047 + "f") where they allow it. */
static size_t max_depth(void)
{
  struct rlimit rl;
  size_t depth = 2047;

  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur != RLIM_INFINITY && (rl.rlim_cur - 64) / 3 < depth)
      depth = (rl.rlim_cur - 64) / 3;
  }
  return depth;
}

static char *deep_path(size_t depth)
{
  size_t i;
  char *p = malloc(2 * depth + 2);
  if (!p)
    return NULL;
  for (i = 0; i < depth; i++)
    memcpy(p + 2 * i, "d/", 2);
  memcpy(p + 2 * depth, "f", 2);
  printf("  deepest path: %zu levels, %zu bytes\n", depth, strlen(p));
  return p;
}

#define NFILES 12
static void fill(aw_file *files, const char *deep, const char *big, size_t big_size)
{
  static const char *names[NFILES - 2] = { "a", "b", "c", "conf/d", "conf/e", "conf/f",
                                           "g", "h", "i", "j" };
  int i;
  for (i = 0; i < NFILES - 2; i++)
    files[i] = (aw_file){ names[i], strlen(names[i]), names[i], strlen(names[i]), 0644, -1, -1 };
  /* big: compared by reading it (aw_same_content), not by its digest */
  files[i++] = (aw_file){ "big.bin", 7, big, big_size, 0600, -1, -1 };
  files[i] = (aw_file){ deep, strlen(deep), "deep", 4, 0444, -1, -1 };
}

static int write_payload(const char *target, const aw_file *files, size_t n,
                         int sync, long timeout_ms, aw_error *err)
{
  aw_options opts;
  int changed = -1;
  aw_options_init(&opts);
  opts.timeout_ms = timeout_ms;
  opts.sync = sync;
  if (aw_write(target, files, n, &opts, &changed, err) < 0)
    return -1;
  return changed;
}

static void c_calls(const char *target, size_t depth)
{
  aw_error err;
  aw_file files[NFILES], bad[2];
  aw_snapshot snap;
  aw_watch *w = NULL, *p = NULL, *none = NULL;
  char version[256], seen[256], clean[11];
  size_t big_size = 100000, tlen = strlen(target) + 16;
  /* The host's own buffers on the heap: the stack measured is the API's
   * (and one aw_error, as any caller keeps). */
  char *big = malloc(big_size), *deep = deep_path(depth);
  char *missing = malloc(tlen), *clash = malloc(tlen), *data = malloc(tlen);
  int fd;

  if (!CHECK(big && deep && missing && clash && data))
    goto out;
  memset(big, 'x', big_size);
  snprintf(missing, tlen, "%s/missing", target);
  snprintf(clash, tlen, "%s/clash", target);
  snprintf(data, tlen, "%s/..data", target);
  fill(files, deep, big, big_size);

  puts("check_target, validate, clean_path");
  CHECK(aw_check_target(target, &err) == 0);
  CHECK(aw_check_target(missing, &err) < 0 && strcmp(message(&err, missing), "ENOENT") == 0);
  CHECK(aw_validate(files, NFILES, &err) == 0);
  bad[0] = files[0];
  bad[1] = (aw_file){ "../x", 4, "x", 1, 0644, -1, -1 };
  CHECK(aw_validate(bad, 2, &err) < 0 && strcmp(message(&err, target), "invalid") == 0);
  CHECK(aw_clean_path("./conf//d/", 10, clean, 11, &err) == 0 && strcmp(clean, "conf/d") == 0);
  CHECK(aw_clean_path("../x", 4, clean, 11, &err) < 0 && strcmp(message(&err, target), "invalid") == 0);

  puts("watch_open (inotify and polling), write first, update, no-op");
  CHECK(aw_watch_open(&w, target, 0, &err) == 0);
  CHECK(aw_watch_open(&p, target, AW_WATCH_POLL, &err) == 0);
  if (!w || !p)
    goto out;
  CHECK(aw_watch_fd(w) >= 0 && aw_watch_fd(p) < 0);
  /* Without the deep path first: a no-op compare of it costs O(depth^2)
   * opens (seconds), not stack. */
  CHECK(write_payload(target, files, NFILES - 1, 1, -1, &err) == 1);
  CHECK(write_payload(target, files, NFILES - 1, 0, -1, &err) == 0);
  big[big_size - 1] = 'y';   /* the last byte: read to the end to see it */
  CHECK(write_payload(target, files, NFILES - 1, 0, -1, &err) == 1);
  CHECK(write_payload(target, files, NFILES - 1, 0, -1, &err) == 0);
  puts("write the deepest path");
  CHECK(write_payload(target, files, NFILES, 0, -1, &err) == 1);
  CHECK(aw_version(target, version, sizeof version, &err) == 0 && version[0]);

  puts("watch_next");
  CHECK(aw_watch_next(w, 5000, seen, sizeof seen, &err) == 1);   /* the first */
  CHECK(aw_watch_next(w, 5000, seen, sizeof seen, &err) == 1);   /* the update */
  CHECK(aw_watch_next(w, 5000, seen, sizeof seen, &err) == 1 && strcmp(seen, version) == 0);
  CHECK(aw_watch_next(w, 0, seen, sizeof seen, &err) == 0);
  CHECK(aw_watch_next(p, 5000, seen, sizeof seen, &err) == 1 && strcmp(seen, version) == 0);

  puts("read, read_tree");
  CHECK(aw_read(target, &snap, &err) == 0);
  CHECK(snap.n == NFILES && strcmp(snap.version, version) == 0);
  aw_snapshot_free(&snap);
  CHECK(aw_read_tree(data, &snap, &err) == 0);
  CHECK(snap.n == NFILES);
  aw_snapshot_free(&snap);
  CHECK(aw_read(missing, &snap, &err) < 0 && strcmp(message(&err, missing), "ENOENT") == 0);
  CHECK(aw_read_tree(missing, &snap, &err) < 0 && strcmp(message(&err, missing), "ENOENT") == 0);
  CHECK(aw_version(missing, version, sizeof version, &err) < 0 &&
        strcmp(message(&err, missing), "ENOENT") == 0);

  puts("publish (keep, changes), versions, read_version, rollback");
  {
    aw_options opts;
    aw_result res;
    aw_version_list list;
    char kept[AW_NAME_SIZE];
    aw_options_init(&opts);
    opts.sync = 0;
    opts.keep = 1;
    opts.changes = 1;
    big[0] = 'z';
    CHECK(aw_publish(target, files, NFILES, &opts, &res, &err) == 0 && res.changed &&
          res.nchanges == 1 && strcmp(res.changes[0].path, "big.bin") == 0);
    aw_result_free(&res);
    memset(&list, 0, sizeof list);
    CHECK(aw_versions(target, &list, &err) == 0 && list.n == 2 &&
          strcmp(list.v[1].name, version) == 0);
    aw_version_list_free(&list);
    CHECK(aw_read_version(target, version, &snap, &err) == 0 && snap.n == NFILES);
    aw_snapshot_free(&snap);
    snprintf(kept, sizeof kept, "%s", version);
    CHECK(aw_rollback(target, NULL, &opts, &res, &err) == 0 && res.changed &&
          strcmp(res.version, kept) != 0);
    aw_result_free(&res);
    CHECK(aw_rollback(target, "..no_such", &opts, &res, &err) < 0 &&
          strcmp(message(&err, target), "noversion") == 0);
    aw_result_free(&res);
    CHECK(aw_versions(missing, &list, &err) < 0 && strcmp(message(&err, missing), "ENOENT") == 0);
    CHECK(aw_version(target, version, sizeof version, &err) == 0);
    CHECK(aw_watch_next(w, 5000, seen, sizeof seen, &err) == 1);   /* the publish */
    CHECK(aw_watch_next(w, 5000, seen, sizeof seen, &err) == 1 && strcmp(seen, version) == 0);
  }

  puts("write failures: invalid, missing target, conflict, busy");
  CHECK(write_payload(target, bad, 2, 0, -1, &err) < 0 && strcmp(message(&err, target), "invalid") == 0);
  CHECK(write_payload(missing, files, NFILES, 0, -1, &err) < 0 &&
        strcmp(message(&err, missing), "ENOENT") == 0);
  fd = open(clash, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (CHECK(fd >= 0))
    close(fd);
  bad[1] = (aw_file){ "clash", 5, "x", 1, 0644, -1, -1 };
  CHECK(write_payload(target, bad, 2, 0, -1, &err) < 0 && strcmp(message(&err, target), "conflict") == 0);
  unlink(clash);
  fd = open(target, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (CHECK(fd >= 0 && flock(fd, LOCK_EX) == 0)) {
    CHECK(write_payload(target, bad, 1, 0, 0, &err) < 0 && strcmp(message(&err, target), "busy") == 0);
    close(fd);
  }
  CHECK(aw_watch_next(w, 0, seen, sizeof seen, &err) == 0);   /* no failure published */

  puts("watch_open of a missing target, watch_close");
  CHECK(aw_watch_open(&none, missing, 0, &err) < 0 && none == NULL &&
        strcmp(message(&err, missing), "ENOENT") == 0);
out:
  aw_watch_close(w);
  aw_watch_close(p);
  free(big);
  free(deep);
  free(missing);
  free(clash);
  free(data);
}

/* ------------------------------------------------------------------ */
/* From Lua                                                            */
/* ------------------------------------------------------------------ */

static int host_lock(lua_State *L)
{
  const char *dir = luaL_checkstring(L, 1);
  luaL_argcheck(L, lock_fd < 0, 1, "already locked");
  lock_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (lock_fd < 0 || flock(lock_fd, LOCK_EX) < 0)
    return luaL_error(L, "host_lock(%s): %s", dir, strerror(errno));
  lua_pushboolean(L, 1);
  return 1;
}

static int host_unlock(lua_State *L)
{
  if (lock_fd >= 0)
    close(lock_fd);
  lock_fd = -1;
  lua_pushboolean(L, 1);
  return 1;
}

/* A Lua state with the host's globals, SCRIPT run with the ARGs: it sets
 * the module's paths, requires it and returns the function that makes the
 * calls, left on the stack. NULL after a failure, reported. */
static lua_State *lua_setup(int argc, char **argv, size_t depth)
{
  lua_State *L = luaL_newstate();
  int i;

  if (!CHECK(L != NULL))
    return NULL;
  luaL_openlibs(L);
  lua_pushcfunction(L, host_lock);
  lua_setglobal(L, "host_lock");
  lua_pushcfunction(L, host_unlock);
  lua_setglobal(L, "host_unlock");
  lua_pushnumber(L, (lua_Number)depth);
  lua_setglobal(L, "host_depth");
  if (luaL_loadfile(L, argv[0]) == 0) {
    for (i = 1; i < argc; i++)
      lua_pushstring(L, argv[i]);
    if (lua_pcall(L, argc - 1, 1, 0) == 0 && lua_isfunction(L, -1))
      return L;
  }
  fprintf(stderr, "stack-host: %s\n", lua_isstring(L, -1) ? lua_tostring(L, -1)
          : "the script did not return the function that makes the calls");
  failures++;
  lua_close(L);
  return NULL;
}

/* Calls the function lua_setup left, then closes the state. */
static void lua_calls(lua_State *L)
{
  if (!L)
    return;
  if (lua_pcall(L, 0, 0, 0) != 0) {
    fprintf(stderr, "stack-host: %s\n", lua_tostring(L, -1));
    failures++;
  }
  lua_close(L);
}

/* ------------------------------------------------------------------ */
/* The thread                                                          */
/* ------------------------------------------------------------------ */

struct run {
  int lua;              /* lua mode, else c */
  int argc;
  char **argv;
  size_t depth;         /* of the deepest payload path */
  lua_State *L;         /* set up before the thread (-p), or NULL */
  uintptr_t first_frame;  /* an address in the thread's first frame */
};

static void *thread_main(void *arg)
{
  struct run *run = (struct run *)arg;
  char here;
  run->first_frame = (uintptr_t)&here;   /* only compared, never used */
  if (run->lua)
    lua_calls(run->L ? run->L : lua_setup(run->argc, run->argv, run->depth));
  else
    c_calls(run->argv[0], run->depth);
  return NULL;
}

static int usage(void)
{
  fprintf(stderr, "usage: stack-host [-s BYTES] [-l LIMIT] [-n] c TARGET\n"
                  "       stack-host [-s BYTES] [-l LIMIT] [-n] [-p] lua SCRIPT [ARG...]\n");
  return 2;
}

int main(int argc, char **argv)
{
  size_t size = 32768, limit = 0, page = (size_t)sysconf(_SC_PAGESIZE), used, i;
  int measure = 1, preload = 0, opt, rc;
  unsigned char *map, *stack;
  pthread_attr_t attr;
  pthread_t thread;
  struct run run;

  while ((opt = getopt(argc, argv, "+s:l:np")) != -1) {
    if (opt == 's')
      size = strtoul(optarg, NULL, 0);
    else if (opt == 'l')
      limit = strtoul(optarg, NULL, 0);
    else if (opt == 'n')
      measure = 0;
    else if (opt == 'p')
      preload = 1;
    else
      return usage();
  }
  if (argc - optind < 2 || size % page != 0)
    return usage();
  run.lua = strcmp(argv[optind], "lua") == 0;
  if (!run.lua && strcmp(argv[optind], "c") != 0)
    return usage();
  run.argc = argc - optind - 1;
  run.argv = argv + optind + 1;
  run.depth = max_depth();
  run.L = NULL;
  if (run.lua && preload && !(run.L = lua_setup(run.argc, run.argv, run.depth)))
    return 1;

  /* The stack, above a guard page, filled with the pattern. */
  map = mmap(NULL, size + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (map == MAP_FAILED || mprotect(map, page, PROT_NONE) < 0) {
    perror("stack-host: mmap");
    return 2;
  }
  stack = map + page;
  memset(stack, PATTERN, size);
  if ((rc = pthread_attr_init(&attr)) != 0 ||
      (rc = pthread_attr_setstack(&attr, stack, size)) != 0 ||
      (rc = pthread_create(&thread, &attr, thread_main, &run)) != 0 ||
      (rc = pthread_join(thread, NULL)) != 0) {
    fprintf(stderr, "stack-host: thread with a %zu-byte stack: %s\n", size, strerror(rc));
    return 2;
  }
  pthread_attr_destroy(&attr);

  if (measure) {
    for (i = 0; i < size && stack[i] == PATTERN; i++)
      ;
    used = (size_t)(run.first_frame - (uintptr_t)(stack + i));
    printf("stack used: %zu bytes below the thread's first frame, of a %zu-byte stack\n",
           used, size);
    if (i == 0) {
      fprintf(stderr, "stack-host: the whole stack was used\n");
      failures++;
    }
    if (limit && used > limit) {
      fprintf(stderr, "stack-host: %zu bytes used, over the limit of %zu\n", used, limit);
      failures++;
    }
  }
  munmap(map, size + page);
  printf("%s: %d failed check(s)\n", run.lua ? "lua" : "c", failures);
  return failures ? 1 : 0;
}
