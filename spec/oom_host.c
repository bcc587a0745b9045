/*
 * oom_host.c - the out-of-memory sweep (make check-oom), in the manner of
 * SQLite's malloc tests: every call is run again and again, the Nth
 * allocation failing in run N, until a run makes fewer than N allocations.
 *
 *   core  the C API; the core's malloc, calloc, realloc and strdup are
 *         wrapped at link time (-Wl,--wrap=...): only the library's own
 *         allocations fail, not the C library's inside it.
 *   lua   the Lua module (binding linked in, init.lua from ./lua) in a
 *         state whose lua_Alloc fails the Nth allocation made during the
 *         call and every one after it (Lua 5.4 retries a failed one after
 *         an emergency collection); then the same calls with the core's
 *         allocations failing instead.
 *
 * After each run: the call succeeded, or returned ENOMEM (C: -1 with
 * AW_KIND_SYSTEM/ENOMEM; Lua: nil, message, "ENOMEM"), or raised Lua's
 * memory error; no descriptor is left open (/proc/self/fd counted, after a
 * full collection in Lua), no lock is held (flock LOCK_EX|LOCK_NB on the
 * target succeeds), the target reads as one whole version of the payloads
 * written, and the next write succeeds and leaves one version directory
 * and no ..*_tmp. valgrind (make check-oom) sees every allocation freed.
 *
 * The calls swept, and the state each starts from, are the table CALLS;
 * one sweep() runs each of them, through the core (run_core) or the Lua
 * module (run_lua).
 *
 * Usage: oom-host core|lua DIR   (DIR: an empty directory to work in)
 * Prints one line per call swept and "N passed, M failed".
 */
#define _GNU_SOURCE
#include "aw.h"

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------------ */
/* Failing allocations                                                 */
/* ------------------------------------------------------------------ */

static long fail_at;      /* the allocation that fails (1-based); 0: none */
static int persistent;    /* every allocation from fail_at on fails too (Lua
                             5.4 retries a failed one after a collection) */
static long allocs;       /* allocations counted since armed */
static int hit;           /* the Nth allocation was reached and failed */

static void arm(long n)
{
  fail_at = n;
  allocs = 0;
  hit = 0;
}

static void disarm(void)
{
  fail_at = 0;   /* hit stays: it tells whether the run reached fail_at */
}

static int should_fail(void)
{
  if (!fail_at || ++allocs < fail_at || (allocs > fail_at && !persistent))
    return 0;
  hit = 1;
  return 1;
}

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);

/* Only the core's: the Lua run arms with core_fails 0. */
static int core_fails;

void *__wrap_malloc(size_t n)
{
  if (core_fails && should_fail()) {
    errno = ENOMEM;
    return NULL;
  }
  return __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t size)
{
  if (core_fails && should_fail()) {
    errno = ENOMEM;
    return NULL;
  }
  return __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t n)
{
  if (core_fails && should_fail()) {
    errno = ENOMEM;
    return NULL;
  }
  return __real_realloc(p, n);
}

char *__wrap_strdup(const char *s)
{
  if (core_fails && should_fail()) {
    errno = ENOMEM;
    return NULL;
  }
  return __real_strdup(s);
}

/* The Lua state's allocator: fails the Nth allocation or growth. */
static void *lua_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
  (void)ud;
  if (nsize == 0) {
    free(ptr);
    return NULL;
  }
  if (!core_fails && (ptr == NULL || nsize > osize) && should_fail())
    return NULL;
  return __real_realloc(ptr, nsize);   /* never the core's failing one */
}

/* ------------------------------------------------------------------ */
/* Checks                                                              */
/* ------------------------------------------------------------------ */

static int failures;   /* failed checks */
static int failed_calls;   /* calls swept with a failed check */
static char base[4096];
static int serial;

static int count_fds(void)
{
  DIR *d = opendir("/proc/self/fd");
  struct dirent *e;
  int n = 0;
  if (!d)
    return -1;
  while ((e = readdir(d)))
    n++;
  closedir(d);
  return n;
}

static void fail(const char *call, long n, const char *what)
{
  printf("FAIL %s, allocation %ld failing: %s\n", call, n, what);
  failures++;
}

/* A fresh target directory. */
static void new_target(char *out, size_t size)
{
  snprintf(out, size, "%s/t%d", base, serial++);
  if (mkdir(out, 0755) < 0) {
    perror(out);
    exit(2);
  }
}

static const aw_file PAY_A[] = {
  { "top", 3, "A", 1, 0644, -1, -1 },
  { "d/e/f", 5, "AAA", 3, 0600, -1, -1 },
  { "d/g", 3, "A-g", 3, 0644, -1, -1 },
};
static const aw_file PAY_B[] = {
  { "top", 3, "B", 1, 0644, -1, -1 },
  { "d/e/f", 5, "BBB", 3, 0640, -1, -1 },
  { "h", 1, "B-h", 3, 0644, -1, -1 },
};
static const aw_file PAY_C[] = {
  { "top", 3, "C", 1, 0644, -1, -1 },
};
#define NFILES(p) (sizeof p / sizeof p[0])

/* The content of file `path` in a snapshot, or NULL. */
static const aw_read_file *find(const aw_snapshot *s, const char *path)
{
  size_t i;
  for (i = 0; i < s->n; i++)
    if (strcmp(s->files[i].path, path) == 0)
      return &s->files[i];
  return NULL;
}

/* The target holds A or B whole (or nothing, when `may_be_empty`). */
static int whole_version(const char *target, int may_be_empty)
{
  aw_snapshot s;
  aw_error err;
  const aw_read_file *top, *f;
  int ok;

  if (aw_read(target, &s, &err) < 0)
    return 0;
  top = find(&s, "top");
  if (!top) {
    ok = may_be_empty && s.n == 0;
  } else {
    const aw_file *p = top->data[0] == 'A' ? PAY_A : PAY_B;
    size_t i;
    ok = s.n == 3;
    for (i = 0; ok && i < 3; i++)
      ok = (f = find(&s, p[i].path)) && f->size == p[i].size &&
           memcmp(f->data, p[i].data, f->size) == 0 && f->mode == p[i].mode;
  }
  aw_snapshot_free(&s);
  return ok;
}

/* No lock held; the target whole; the next write succeeds and leaves one
 * version directory and nothing temporary. */
static void check_after(const char *call, long n, const char *target, int fds_before,
                        int may_be_empty)
{
  int fd, ndirs = 0, tmp = 0;
  aw_error err;
  aw_options opts;
  DIR *d;
  struct dirent *e;

  if (count_fds() != fds_before)
    fail(call, n, "a descriptor leaked");
  fd = open(target, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) < 0)
    fail(call, n, "the target's lock is held");
  if (fd >= 0)
    close(fd);
  if (!whole_version(target, may_be_empty))
    fail(call, n, "the target does not hold a whole version");
  aw_options_init(&opts);
  opts.sync = AW_SYNC_OFF;
  if (aw_write(target, PAY_C, NFILES(PAY_C), &opts, NULL, &err) < 0) {
    char msg[8192];
    fail(call, n, aw_error_format(&err, "the next write failed", target, msg, sizeof msg));
  }
  if (!(d = opendir(target)))
    return;
  while ((e = readdir(d))) {
    if (strncmp(e->d_name, "..20", 4) == 0)
      ndirs++;
    if (strstr(e->d_name, "_tmp"))
      tmp++;
  }
  closedir(d);
  if (ndirs != 1 || tmp)
    fail(call, n, "the next write left more than one version directory, or a ..*_tmp");
}

/* ------------------------------------------------------------------ */
/* The calls swept                                                     */
/* ------------------------------------------------------------------ */

/* aw_publish of `files`, or with files NULL aw_rollback to the version
 * before the current one; sync off. */
static int publish(const char *target, const aw_file *files, size_t n, int keep, int changes,
                   aw_error *err)
{
  aw_options opts;
  aw_result res;
  int rc;

  aw_options_init(&opts);
  opts.sync = AW_SYNC_OFF;
  opts.keep = keep;
  opts.changes = changes;
  rc = files ? aw_publish(target, files, n, &opts, &res, err)
             : aw_rollback(target, NULL, &opts, &res, err);
  aw_result_free(&res);
  return rc;
}

/* The core's calls: 0 when it succeeded, else -1 with err filled. */
static int core_write_b(const char *target, aw_error *err)
{
  return publish(target, PAY_B, NFILES(PAY_B), 1, 1, err);
}

static int core_write_a(const char *target, aw_error *err)
{
  return publish(target, PAY_A, NFILES(PAY_A), 1, 1, err);
}

static int snapshot_of(int (*read)(const char *, aw_snapshot *, aw_error *), const char *target,
                       aw_error *err)
{
  aw_snapshot s;
  int rc = read(target, &s, err);
  if (rc == 0)
    aw_snapshot_free(&s);
  return rc;
}

static int core_read(const char *target, aw_error *err)
{
  return snapshot_of(aw_read, target, err);
}

static int core_read_tree(const char *target, aw_error *err)
{
  return snapshot_of(aw_read_tree, target, err);
}

static int core_rollback(const char *target, aw_error *err)
{
  return publish(target, NULL, 0, AW_KEEP_AS_IS, 1, err);
}

static int core_watch(const char *target, aw_error *err)
{
  aw_watch *w;
  char v[AW_NAME_SIZE];
  int rc = aw_watch_open(&w, target, 0, err);

  if (rc == 0) {
    rc = aw_watch_next(w, 0, v, sizeof v, err) < 0 ? -1 : 0;
    aw_watch_close(w);
  }
  return rc;
}

static int core_versions(const char *target, aw_error *err)
{
  aw_version_list l;
  int rc = aw_versions(target, &l, err);
  if (rc == 0)
    aw_version_list_free(&l);
  return rc;
}

/* The Lua module's calls, by the names of the table below; each returns
 * what the module's call returned. */
static const char LUA_OPS[] =
  "local aw = require('atomicwriter')\n"
  "local A = { top = 'A', ['d/e/f'] = { data = 'AAA', mode = '0600' }, ['d/g'] = 'A-g' }\n"
  "local B = { top = 'B', ['d/e/f'] = { data = 'BBB', mode = '0640' }, h = 'B-h' }\n"
  "local o = { sync = false, keep = 1, changes = true }\n"
  "local ops = {\n"
  "  write = function(t) return aw.write(t, B, o) end,\n"
  "  update = function(t) return aw.write(t, B, o) end,\n"
  "  ['no-op'] = function(t) return aw.write(t, A, o) end,\n"
  "  writer = function(t) local w, e, c = aw.new(t, o) if not w then return w, e, c end\n"
  "    return w:write(B) end,\n"
  "  read = function(t) return aw.read(t) end,\n"
  "  rollback = function(t) return aw.rollback(t, nil, o) end,\n"
  "  watch = function(t) local w, e, c = aw.watch(t) if not w then return w, e, c end\n"
  "    local v, e2, c2 = w:wait(0) w:close() if e2 then return nil, e2, c2 end return true end,\n"
  "  versions = function(t) return aw.versions(t) end,\n"
  "}\n"
  "return function(name, t) return ops[name](t) end\n";

/* Every call swept, and the state its target starts from: how many
 * versions are published before it (PAY_A, then PAY_B; both with keep 1,
 * so that two make one kept version), or -1 where it is not swept: the
 * core has no writer object, the Lua module's read_tree is init.lua's
 * over the core's aw_read_tree. */
typedef struct call {
  const char *name;
  int core_from, lua_from;
  int (*core)(const char *target, aw_error *err);
} call;

static const call CALLS[] = {
  { "write",     0,  0, core_write_b },
  { "update",    1,  1, core_write_b },
  { "no-op",     1,  1, core_write_a },
  { "writer",   -1,  1, NULL },
  { "read",      2,  1, core_read },
  { "rollback",  2,  2, core_rollback },
  { "watch",     1,  1, core_watch },
  { "versions",  2,  1, core_versions },
  { "read_tree", 1, -1, core_read_tree },
};
#define NCALLS (sizeof CALLS / sizeof CALLS[0])

/* Brings `target` to the state a call starts from (nothing fails). */
static void setup(const char *target, int published)
{
  aw_error err;
  if ((published > 0 && publish(target, PAY_A, NFILES(PAY_A), 1, 0, &err) < 0) ||
      (published > 1 && publish(target, PAY_B, NFILES(PAY_B), 1, 0, &err) < 0)) {
    fprintf(stderr, "setup failed\n");
    exit(2);
  }
}

/* ------------------------------------------------------------------ */
/* Running a call with the Nth allocation failing                      */
/* ------------------------------------------------------------------ */

/* How a run ended: success, ENOMEM returned, Lua's memory error raised,
 * or anything else (`why` says what: a failed check). */
enum { RAN_OK, RAN_ENOMEM, RAN_RAISED, RAN_WRONG };
typedef int run_fn(const call *c, const char *target, long n, char *why, size_t size);

/* The core's call, its own allocations failing. */
static int run_core(const call *c, const char *target, long n, char *why, size_t size)
{
  aw_error err;
  int rc;

  core_fails = 1;
  arm(n);
  rc = c->core(target, &err);
  disarm();
  core_fails = 0;
  if (rc == 0)
    return RAN_OK;   /* a success past a failed allocation is fine: the
                        manifest is saved best effort */
  if (err.kind == AW_KIND_SYSTEM && err.errnum == ENOMEM)
    return RAN_ENOMEM;
  aw_error_format(&err, "not ENOMEM", target, why, size);
  return RAN_WRONG;
}

int luaopen_atomicwriter_core(lua_State *L);

static lua_State *state;   /* the Lua run's, the ops' function at stack index 1 */

static int open_core(lua_State *L)
{
  return luaopen_atomicwriter_core(L);
}

/* A state with the module loaded and the ops' function at stack index 1. */
static lua_State *new_state(void)
{
  lua_State *L = lua_newstate(lua_alloc, NULL);
  if (!L)
    exit(2);
  luaL_openlibs(L);
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "preload");
  lua_pushcfunction(L, open_core);
  lua_setfield(L, -2, "atomicwriter.core");
  lua_pop(L, 1);
  lua_pushstring(L, "./lua/?.lua;./lua/?/init.lua");
  lua_setfield(L, -2, "path");
  lua_pop(L, 1);
  if (luaL_loadbuffer(L, LUA_OPS, sizeof LUA_OPS - 1, "=oom_ops") != 0 ||
      lua_pcall(L, 0, 1, 0) != 0) {
    fprintf(stderr, "loading the ops: %s\n", lua_tostring(L, -1));
    exit(2);
  }
  return L;
}

/* The Lua module's call, the Nth allocation (Lua's or the core's, as
 * core_fails says) and those after it failing from the protected call on. */
static int run_lua(const call *c, const char *target, long n, char *why, size_t size)
{
  int status, r = RAN_OK;

  lua_settop(state, 1);
  lua_pushvalue(state, 1);
  lua_pushstring(state, c->name);
  lua_pushstring(state, target);
  arm(n);
  status = lua_pcall(state, 2, LUA_MULTRET, 0);
  disarm();
  if (status == LUA_ERRMEM) {
    r = RAN_RAISED;
  } else if (status != 0) {
    const char *msg = lua_tostring(state, -1);
    r = msg && strstr(msg, "not enough memory") ? RAN_RAISED : RAN_WRONG;
    snprintf(why, size, "%s", msg ? msg : "an error that is not Lua's memory error");
  } else if (lua_gettop(state) >= 2 && lua_isnil(state, 2)) {
    const char *code = lua_tostring(state, 4);
    r = code && strcmp(code, "ENOMEM") == 0 ? RAN_ENOMEM : RAN_WRONG;
    snprintf(why, size, "%s", lua_tostring(state, 3) ? lua_tostring(state, 3) : "nil without a message");
  }
  lua_settop(state, 1);
  lua_gc(state, LUA_GCCOLLECT, 0);   /* a watcher left open by an error closes here */
  return r;
}

/* ------------------------------------------------------------------ */
/* The sweep                                                           */
/* ------------------------------------------------------------------ */

static int swept;   /* calls swept */

/* Runs call c in a fresh target from `from` published versions, the Nth
 * allocation failing in run N, until a run does not reach the Nth; checks
 * each run's outcome and the target after it. */
static void sweep(const char *label, run_fn *run, const call *c, int from)
{
  long n;
  int ended[RAN_WRONG + 1] = { 0 }, before = failures;

  for (n = 1;; n++) {
    char target[4200], why[8192];
    int fds, r;

    new_target(target, sizeof target);
    setup(target, from);
    fds = count_fds();
    r = run(c, target, n, why, sizeof why);
    if (r == RAN_WRONG)
      fail(c->name, n, why);
    ended[r]++;
    check_after(c->name, n, target, fds, from == 0);
    if (!hit) {
      printf("%s %-9s %3ld allocations, each failed in turn%s: %d ENOMEM, %d raised\n", label,
             c->name, n - 1, persistent ? " and all after it" : "", ended[RAN_ENOMEM],
             ended[RAN_RAISED]);
      swept++;
      failed_calls += failures > before;
      return;
    }
  }
}

int main(int argc, char **argv)
{
  size_t i;

  if (argc != 3 || (strcmp(argv[1], "core") != 0 && strcmp(argv[1], "lua") != 0)) {
    fprintf(stderr, "usage: oom-host core|lua DIR\n");
    return 2;
  }
  snprintf(base, sizeof base, "%s", argv[2]);
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (strcmp(argv[1], "core") == 0) {
    for (persistent = 0; persistent < 2; persistent++)
      for (i = 0; i < NCALLS; i++)
        if (CALLS[i].core_from >= 0)
          sweep("core", run_core, &CALLS[i], CALLS[i].core_from);
  } else {
    state = new_state();
    persistent = 1;
    for (core_fails = 0; core_fails < 2; core_fails++)
      for (i = 0; i < NCALLS; i++)
        if (CALLS[i].lua_from >= 0)
          sweep(core_fails ? "lua, the core's" : "lua, Lua's     ", run_lua, &CALLS[i],
                CALLS[i].lua_from);
    core_fails = 0;
    lua_close(state);
  }
  printf("%d passed, %d failed\n", swept - failed_calls, failed_calls);
  return failures ? 1 : 0;
}
