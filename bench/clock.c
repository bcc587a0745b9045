/*
 * clock.c - benchclock, the small helper module of the benchmark driver.
 *
 * Lua has no wall clock finer than a second (os.clock is CPU time), no
 * mkdir, no rm -rf and no view of peak memory. This module supplies them;
 * none of it is timed except now_ns itself.
 *
 *   now_ns()        CLOCK_MONOTONIC in nanoseconds (integer)
 *   mkdir(path)     mkdir 0755; true or nil, message
 *   rmtree(path)    rm -rf without following symlinks; true or nil, message
 *   syncfs(path)    syncfs of the file system holding path; true or nil, message
 *   age(path, sec)  sets path's mtime (a symlink's own) to `sec`; true or nil, message
 *   fstype(path)    "tmpfs", "ext4", "xfs", "btrfs", ... or "0x<magic>"
 *   peak_kib()      peak resident set size (VmHWM) in KiB
 *   rss_kib()       current resident set size (VmRSS) in KiB
 *   reset_peak()    resets VmHWM to the current RSS (/proc/self/clear_refs,
 *                   Linux >= 4.0); true, or false when not possible
 *   maxrss_kib()    getrusage(RUSAGE_SELF).ru_maxrss
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
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>

static int fail(lua_State *L, const char *what, const char *path)
{
  lua_pushnil(L);
  lua_pushfstring(L, "%s %s: %s", what, path, strerror(errno));
  return 2;
}

static int l_now_ns(lua_State *L)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  lua_pushinteger(L, (lua_Integer)ts.tv_sec * 1000000000 + (lua_Integer)ts.tv_nsec);
  return 1;
}

static int l_mkdir(lua_State *L)
{
  const char *path = luaL_checkstring(L, 1);
  if (mkdir(path, 0755) < 0)
    return fail(L, "mkdir", path);
  lua_pushboolean(L, 1);
  return 1;
}

/* 0, or -1 with errno. */
static int rmtree_at(int dfd, const char *name)
{
  int fd, rc = 0;
  DIR *dir;
  struct dirent *de;

  if (unlinkat(dfd, name, 0) == 0 || errno == ENOENT)
    return 0;
  if (errno != EISDIR && errno != EPERM)
    return -1;
  fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return -1;
  if (!(dir = fdopendir(fd))) {
    close(fd);
    return -1;
  }
  while ((de = readdir(dir)) != NULL) {
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
      continue;
    if ((rc = rmtree_at(dirfd(dir), de->d_name)) < 0)
      break;
  }
  closedir(dir);
  if (rc == 0 && unlinkat(dfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
    rc = -1;
  return rc;
}

static int l_rmtree(lua_State *L)
{
  const char *path = luaL_checkstring(L, 1);
  if (rmtree_at(AT_FDCWD, path) < 0)
    return fail(L, "rmtree", path);
  lua_pushboolean(L, 1);
  return 1;
}

static int l_age(lua_State *L)
{
  const char *path = luaL_checkstring(L, 1);
  struct timespec ts[2];
  ts[0].tv_sec = ts[1].tv_sec = (time_t)luaL_checkinteger(L, 2);
  ts[0].tv_nsec = ts[1].tv_nsec = 0;
  if (utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW) < 0)
    return fail(L, "utimensat", path);
  lua_pushboolean(L, 1);
  return 1;
}

static int l_syncfs(lua_State *L)
{
  const char *path = luaL_checkstring(L, 1);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  int rc;
  if (fd < 0)
    return fail(L, "open", path);
  rc = syncfs(fd);
  close(fd);
  if (rc < 0)
    return fail(L, "syncfs", path);
  lua_pushboolean(L, 1);
  return 1;
}

static int l_fstype(lua_State *L)
{
  const char *path = luaL_checkstring(L, 1);
  struct statfs sf;
  unsigned long m;
  if (statfs(path, &sf) < 0)
    return fail(L, "statfs", path);
  m = (unsigned long)sf.f_type;
  switch (m) {
  case 0x01021994UL: lua_pushliteral(L, "tmpfs"); break;
  case 0xEF53UL:     lua_pushliteral(L, "ext4"); break;
  case 0x58465342UL: lua_pushliteral(L, "xfs"); break;
  case 0x9123683EUL: lua_pushliteral(L, "btrfs"); break;
  case 0x794C7630UL: lua_pushliteral(L, "overlayfs"); break;
  case 0x2FC12FC1UL: lua_pushliteral(L, "zfs"); break;
  case 0x6969UL:     lua_pushliteral(L, "nfs"); break;
  default:           lua_pushfstring(L, "%p", (void *)m); break;
  }
  return 1;
}

/* A "Key:   value kB" line of /proc/self/status, or -1. */
static long status_kib(const char *key)
{
  FILE *f = fopen("/proc/self/status", "re");
  char line[256];
  size_t klen = strlen(key);
  long v = -1;
  if (!f)
    return -1;
  while (fgets(line, sizeof line, f))
    if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
      v = strtol(line + klen + 1, NULL, 10);
      break;
    }
  fclose(f);
  return v;
}

static long maxrss(void)
{
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

static int l_peak_kib(lua_State *L)
{
  long v = status_kib("VmHWM");
  lua_pushinteger(L, v >= 0 ? v : maxrss());
  return 1;
}

static int l_rss_kib(lua_State *L)
{
  lua_pushinteger(L, status_kib("VmRSS"));
  return 1;
}

static int l_reset_peak(lua_State *L)
{
  int fd = open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC);
  int ok = fd >= 0 && write(fd, "5", 1) == 1;
  if (fd >= 0)
    close(fd);
  lua_pushboolean(L, ok);
  return 1;
}

static int l_maxrss_kib(lua_State *L)
{
  lua_pushinteger(L, maxrss());
  return 1;
}

static const luaL_Reg functions[] = {
  { "now_ns", l_now_ns },
  { "mkdir", l_mkdir },
  { "rmtree", l_rmtree },
  { "syncfs", l_syncfs },
  { "age", l_age },
  { "fstype", l_fstype },
  { "peak_kib", l_peak_kib },
  { "rss_kib", l_rss_kib },
  { "reset_peak", l_reset_peak },
  { "maxrss_kib", l_maxrss_kib },
  { NULL, NULL }
};

int luaopen_benchclock(lua_State *L);

int luaopen_benchclock(lua_State *L)
{
  lua_newtable(L);
#if LUA_VERSION_NUM >= 502
  luaL_setfuncs(L, functions, 0);
#else
  {
    const luaL_Reg *f;
    for (f = functions; f->name; f++) {
      lua_pushcfunction(L, f->func);
      lua_setfield(L, -2, f->name);
    }
  }
#endif
  return 1;
}
