/*
 * aw_lua.c - atomicwriter.core, the thin Lua binding of the C core.
 *
 * It checks argument types, hands the core a pointer and length of each
 * Lua string (no copy: the strings stay referenced by the caller's table
 * for the whole call, and the core keeps nothing after it returns), and
 * turns a core error into `nil, message, code`. No file-system logic here.
 */
#define _POSIX_C_SOURCE 200809L
#include "aw.h"
#include "compat.h"

#include <lauxlib.h>
#include <lua.h>

#include <string.h>
#include <time.h>
#include <unistd.h>

/* Fields per file in the flat list the Lua module passes:
 * path, data (or false), mode (-1: the source's), uid (or false), gid (or
 * false), source (or false). */
#define FIELDS 6

/* Pushes nil, message, code. The message is formatted into a userdata of
 * the size it needs, not a stack buffer: a whole message may take four
 * times the length of its path, and the binding runs on its host's stack
 * (a collected userdata, unlike malloc, cannot leak if a push raises). */
static int push_error(lua_State *L, const aw_error *err, const char *prefix,
                      const char *target)
{
  size_t size = aw_error_format_size(err, prefix, target);
  char *msg = (char *)lua_newuserdata(L, size);
  lua_pushnil(L);
  lua_pushstring(L, aw_error_format(err, prefix, target, msg, size));
  lua_pushstring(L, aw_error_code(err));
  lua_remove(L, -4);   /* the buffer */
  return 3;
}

static long long opt_id(lua_State *L, int list, lua_Integer at)
{
  long long id;
  lua_rawgeti(L, list, at);
  id = lua_toboolean(L, -1) ? aw_compat_towhole(L, -1) : -1;
  lua_pop(L, 1);
  return id;
}

/* The sync argument: a boolean, or one of the AW_SYNC_* values. */
static int opt_sync(lua_State *L, int arg)
{
  if (lua_isboolean(L, arg))
    return lua_toboolean(L, arg) ? AW_SYNC_ON : AW_SYNC_OFF;
  return (int)luaL_checkinteger(L, arg);
}

#define RESULT "atomicwriter.result"
#define VERSIONS "atomicwriter.versions"

/* What the core allocates lives in a userdata while it becomes Lua values,
 * so that a memory error raised meanwhile cannot leak it: __gc frees it. */
static void *new_owned(lua_State *L, size_t size, const char *meta)
{
  void *p = lua_newuserdata(L, size);
  memset(p, 0, size);
  luaL_getmetatable(L, meta);
  lua_setmetatable(L, -2);
  return p;
}

static int result_lua_gc(lua_State *L)
{
  aw_result_free((aw_result *)lua_touserdata(L, 1));
  return 0;
}

static int versions_lua_gc(lua_State *L)
{
  aw_version_list_free((aw_version_list *)lua_touserdata(L, 1));
  return 0;
}

/* A Lua progress function, called from the core's callback at most every
 * PROGRESS_NS (and for the first file), and once after the write for
 * what was left untold: fn(files, bytes, seconds). An error it raises
 * stops the calls, not the write. */
#define PROGRESS_NS 100000000LL
typedef struct progress {
  lua_State *L;
  int fn;             /* its stack index; 0 when none or stopped */
  long long start, last;
  unsigned long long files, bytes;   /* the last counts, told or not */
  int untold;
} progress;

static long long now_ns(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void progress_call(void *ctx, unsigned long long files, unsigned long long bytes)
{
  progress *p = ctx;
  long long t;
  if (!p->fn)
    return;
  p->files = files;
  p->bytes = bytes;
  t = now_ns();
  if (p->last && t - p->last < PROGRESS_NS) {
    p->untold = 1;
    return;
  }
  p->last = t;
  p->untold = 0;
  lua_pushvalue(p->L, p->fn);
  lua_pushnumber(p->L, (lua_Number)files);
  lua_pushnumber(p->L, (lua_Number)bytes);
  lua_pushnumber(p->L, (lua_Number)(t - p->start) / 1e9);
  if (lua_pcall(p->L, 3, 0, 0) != 0) {
    lua_pop(p->L, 1);
    p->fn = 0;
  }
}

/* The options at arguments at..at+7: sync, timeout_ms, log_context,
 * keep (nil: 0; -1 as many as are kept now), changes, checksum, progress
 * (a function or nil; `prog` is its state), modes (false: modes ignored).
 * Returns the log context (may be NULL). */
static const char *check_options(lua_State *L, int at, aw_options *opts, progress *prog)
{
  aw_options_init(opts);
  opts->sync = opt_sync(L, at);
  opts->timeout_ms = (long)luaL_checkinteger(L, at + 1);
  opts->keep = (int)luaL_optinteger(L, at + 3, 0);
  opts->changes = lua_toboolean(L, at + 4);
  aw_options_set_checksum(opts, lua_toboolean(L, at + 5));
  if (prog && lua_type(L, at + 6) == LUA_TFUNCTION) {
    prog->L = L;
    prog->fn = at + 6;
    prog->start = now_ns();
    prog->last = 0;
    prog->untold = 0;
    aw_options_set_progress(opts, progress_call, prog);
  }
  aw_options_set_modes(opts, !(lua_isboolean(L, at + 7) && !lua_toboolean(L, at + 7)));
  return luaL_optstring(L, at + 2, NULL);
}

/* Pushes { added = {...}, changed = {...}, removed = {...} }, each sorted. */
static void push_changes(lua_State *L, const aw_result *res)
{
  static const char *const names[] = { NULL, "added", "changed", "removed" };
  int kind;
  size_t i;

  lua_createtable(L, 0, 3);
  for (kind = AW_ADDED; kind <= AW_REMOVED; kind++) {
    lua_Integer n = 0;
    lua_newtable(L);
    for (i = 0; i < res->nchanges; i++)
      if ((int)res->changes[i].kind == kind) {
        lua_pushstring(L, res->changes[i].path);
        lua_rawseti(L, -2, ++n);
      }
    lua_setfield(L, -2, names[kind]);
  }
}

/* The message of a successful write's 4th value when versions were left
 * over, into `err` (the write's own, unused after a success): "<target>:
 * left over for a later write to remove "..2026_…": Directory not empty
 * (ENOTEMPTY)". */
static void leftover_error(aw_error *err, size_t n, const char *first, int errnum)
{
  size_t len = first ? strlen(first) : 0;

  memset(err, 0, sizeof *err - sizeof err->path);
  err->kind = AW_KIND_SYSTEM;
  err->errnum = errnum;
  err->step = n > 1 ? "left over (with others) for a later write to remove"
                    : "left over for a later write to remove";
  err->detail = errnum ? "" : "an earlier write could not remove it";
  err->has_path = first != NULL;
  err->path_len = len < AW_MAX_PATH ? len : AW_MAX_PATH;
  memcpy(err->path, first ? first : "", err->path_len);
  err->path[err->path_len] = '\0';
}

/* Pushes what a publish or rollback returns: true | false, version
 * [, changes | nil [, leftover message]] | nil, message, code [, true when
 * it failed after the swap: the payload is published]. Frees res: a
 * result without changes (on the caller's stack) before anything here may
 * raise, one with changes is an owned userdata. */
static int push_result(lua_State *L, int rc, aw_result *res, const aw_options *opts,
                       aw_error *err, const char *prefix, const char *target)
{
  int n = 2, errnum, published = res->changed;
  const char *first;
  size_t left = rc < 0 ? 0 : aw_result_leftovers(res, &first, &errnum);

  if (left)
    leftover_error(err, left, first, errnum);
  if (!opts->changes)
    aw_result_free(res);   /* only the leftover's name: copied above */
  if (rc < 0) {
    push_error(L, err, prefix, target);
    n = 3;
    if (published) {
      lua_pushboolean(L, 1);
      n = 4;
    }
    aw_result_free(res);
    return n;
  }
  lua_pushboolean(L, res->changed);
  lua_pushstring(L, res->version);
  if (opts->changes) {
    push_changes(L, res);
    n = 3;
  }
  if (left) {
    size_t size = aw_error_format_size(err, prefix, target);
    if (!opts->changes)
      lua_pushnil(L);
    lua_pushstring(L, aw_error_format(err, prefix, target, (char *)lua_newuserdata(L, size), size));
    lua_remove(L, -2);   /* the buffer */
    n = 4;
  }
  aw_result_free(res);
  return n;
}

/* Publishes with options read already (`prog`: their progress state). */
static int publish_files(lua_State *L, const char *target, const aw_file *files,
                         const char *const *sources, size_t n, const aw_options *opts,
                         progress *prog, const char *prefix)
{
  aw_error err;
  aw_result plain;   /* holds no memory without changes: nothing to own */
  aw_result *res = &plain;   /* aw_publish fills it */
  int rc;

  if (opts->changes)
    res = (aw_result *)new_owned(L, sizeof *res, RESULT);
  rc = aw_publish_sources(target, files, sources, n, opts, res, &err);
  if (prog->fn && prog->untold) {
    prog->last = 0;   /* the final counts, told now */
    progress_call(prog, prog->files, prog->bytes);
  }
  return push_result(L, rc, res, opts, &err, prefix, target);
}

static int finish_write(lua_State *L, const char *target, const aw_file *files,
                        const char *const *sources, size_t n, int at)
{
  aw_options opts;
  progress prog;
  const char *prefix;

  memset(&prog, 0, sizeof prog);
  prefix = check_options(L, at, &opts, &prog);
  return publish_files(L, target, files, sources, n, &opts, &prog, prefix);
}

/* core.write(target, list, n, sync, timeout_ms [, log_context, keep, changes,
 * checksum, progress])
 * -> true | false, version [, changes] | nil, message, code */
static int core_lua_write(lua_State *L)
{
  const char *target = luaL_checkstring(L, 1);
  lua_Integer n = luaL_checkinteger(L, 3);
  aw_file *files;
  const char **sources;
  lua_Integer i;
  int any_source = 0;

  luaL_checktype(L, 2, LUA_TTABLE);
  luaL_argcheck(L, n >= 0 && (size_t)n < ((size_t)-1) / sizeof *files, 3, "bad count");
  /* Userdata, not malloc: freed by the collector even if a check raises. */
  files = (aw_file *)lua_newuserdata(L, (size_t)(n ? n : 1) * sizeof *files);
  sources = (const char **)lua_newuserdata(L, (size_t)(n ? n : 1) * sizeof *sources);
  for (i = 0; i < n; i++) {
    aw_file *f = &files[i];
    lua_Integer at = i * FIELDS;
    int has_source;
    lua_rawgeti(L, 2, at + 1);
    lua_rawgeti(L, 2, at + 2);
    lua_rawgeti(L, 2, at + 3);
    lua_rawgeti(L, 2, at + 6);
    has_source = lua_type(L, -1) == LUA_TSTRING;
    /* Strings only: lua_tolstring would convert a number into a fresh
     * string that dies with the stack slot. Data or a source, not both. */
    if (lua_type(L, -4) != LUA_TSTRING || lua_type(L, -2) != LUA_TNUMBER ||
        (has_source ? lua_toboolean(L, -3) : lua_type(L, -3) != LUA_TSTRING))
      return luaL_error(L, "atomicwriter.core.write: malformed entry %d", (int)i + 1);
    memset(f, 0, sizeof *f);
    sources[i] = NULL;
    f->path = lua_tolstring(L, -4, &f->path_len);
    if (has_source) {
      size_t len;
      sources[i] = lua_tolstring(L, -1, &len);
      any_source = 1;
      if (strlen(sources[i]) != len)
        return luaL_error(L, "atomicwriter.core.write: source of entry %d holds a NUL", (int)i + 1);
    } else
      f->data = lua_tolstring(L, -3, &f->size);
    if (has_source && lua_tonumber(L, -2) == -1)
      f->mode = AW_MODE_SOURCE;
    else if (lua_tonumber(L, -2) < 0 || lua_tonumber(L, -2) > 0777)
      return luaL_error(L, "atomicwriter.core.write: mode of entry %d out of range", (int)i + 1);
    else
      f->mode = (unsigned)lua_tointeger(L, -2);
    lua_pop(L, 4);   /* the strings stay alive in the list */
    f->uid = opt_id(L, 2, at + 4);
    f->gid = opt_id(L, 2, at + 5);
  }
  return finish_write(L, target, files, any_source ? sources : NULL, (size_t)n, 4);
}

/* The files of payload table 2 when it holds strings only (and has no
 * metatable): 1 with *files (`local`, room for LOCAL_FILES, or a userdata
 * pushed on the stack) and *n, 0 for any other payload. The strings stay
 * alive in the payload, unless a progress function, called during the
 * write, may take them out of it: with `anchor`, each key and value is
 * also kept in a table of the call's own on the stack. */
#define LOCAL_FILES 4
static int read_strings(lua_State *L, int anchor, aw_file *local, aw_file **files_out,
                        size_t *n_out)
{
  aw_file *files = local;   /* a few files: no allocation at all */
  size_t n = 0, cap = LOCAL_FILES;
  int slot = 0, kept = 0;

  if (lua_getmetatable(L, 2))
    return 0;
  if (anchor) {
    lua_newtable(L);
    kept = lua_gettop(L);
  }
  lua_pushnil(L);
  while (lua_next(L, 2)) {
    aw_file *f;
    if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING)
      return 0;
    if (n == cap) {   /* more: userdata (freed by the collector even if a
                         check raises), grown fourfold, the old one garbage */
      aw_file *grown;
      luaL_argcheck(L, cap < ((size_t)-1) / 4 / sizeof *files, 2, "too many files");
      grown = (aw_file *)lua_newuserdata(L, 4 * cap * sizeof *files);
      memcpy(grown, files, n * sizeof *files);
      if (slot)
        lua_replace(L, slot);
      else {
        lua_insert(L, -3);   /* below the key and the value */
        slot = lua_gettop(L) - 2;
      }
      files = grown;
      cap *= 4;
    }
    if (kept) {
      lua_pushvalue(L, -2);
      lua_rawseti(L, kept, (int)(2 * n + 1));
      lua_pushvalue(L, -1);
      lua_rawseti(L, kept, (int)(2 * n + 2));
    }
    f = &files[n++];
    f->path = lua_tolstring(L, -2, &f->path_len);
    f->data = lua_tolstring(L, -1, &f->size);
    f->mode = 0644;
    f->uid = f->gid = -1;
    lua_pop(L, 1);
  }
  *files_out = files;
  *n_out = n;
  return 1;
}

/* core.write_strings(target, payload, sync, timeout_ms [, log_context, keep, changes,
 * checksum, progress]) -> as core.write, for the common payload of strings
 * only, read straight from the caller's table in one pass; returns nothing
 * for any other payload (or a table with a metatable: its __pairs decides
 * what it holds), which goes through the Lua side's checks and
 * core.write's flat list. */
static int core_lua_write_strings(lua_State *L)
{
  const char *target = luaL_checkstring(L, 1);
  aw_file local[LOCAL_FILES], *files;
  size_t n;

  luaL_checktype(L, 2, LUA_TTABLE);
  lua_settop(L, 10);   /* the options' slots (progress 9, modes 10) before read_strings pushes */
  if (!read_strings(L, lua_type(L, 9) == LUA_TFUNCTION, local, &files, &n))
    return 0;
  return finish_write(L, target, files, NULL, n, 3);
}

/* The options table at 3 (none: the defaults) into opts, as init.lua's
 * check_options, sync_of and timeout_ms make them: 1 when every key is an
 * option of aw.write with a value they accept, 0 for anything else (a
 * table with a metatable too: its __pairs and __index are init.lua's to
 * follow), which init.lua then checks, raising where it must. The log
 * context and the progress function are kept at stack slots 4 and 5
 * (the table's own values may change during the write). */
#define IS(s, len, lit) ((len) == sizeof lit - 1 && memcmp((s), lit, sizeof lit - 1) == 0)
static int plain_options(lua_State *L, aw_options *opts, progress *prog, const char **prefix)
{
  aw_options_init(opts);
  *prefix = NULL;
  lua_settop(L, 3);
  if (lua_isnil(L, 3))
    return 1;
  if (lua_type(L, 3) != LUA_TTABLE || lua_getmetatable(L, 3))
    return 0;
  lua_pushnil(L);   /* 4: the log context */
  lua_pushnil(L);   /* 5: the progress function */
  lua_pushnil(L);
  while (lua_next(L, 3)) {
    const char *k;
    size_t len;
    int t = lua_type(L, -1);
    if (lua_type(L, -2) != LUA_TSTRING)
      return 0;
    k = lua_tolstring(L, -2, &len);   /* lengths compared too: "sync\0x" is no option */
    if (IS(k, len, "sync") && t == LUA_TBOOLEAN)
      opts->sync = lua_toboolean(L, -1) ? AW_SYNC_ON : AW_SYNC_OFF;
    else if (IS(k, len, "sync") && t == LUA_TSTRING) {
      size_t mlen;
      const char *m = lua_tolstring(L, -1, &mlen);
      if (IS(m, mlen, "syncfs"))
        opts->sync = AW_SYNC_FS;
      else if (IS(m, mlen, "fsync"))
        opts->sync = AW_SYNC_FILES;
      else
        return 0;
    } else if (IS(k, len, "timeout") && t == LUA_TNUMBER) {
      lua_Number sec = lua_tonumber(L, -1), ms;
      if (!(sec >= 0))   /* NaN too */
        return 0;
      ms = sec * 1000 + 0.5;   /* rounded below: (long) truncates, ms > 0 */
      opts->timeout_ms = ms >= 2147483648.0 ? -1 : (long)ms;   /* forever past 2^31 - 1 ms */
    } else if (IS(k, len, "keep") && t == LUA_TNUMBER) {
      lua_Number keep = lua_tonumber(L, -1);
      if (!(keep >= 0 && keep <= 1e6 && keep == (lua_Number)(int)keep))
        return 0;
      opts->keep = (int)keep;
    } else if (IS(k, len, "log_context") && t == LUA_TSTRING) {
      lua_pushvalue(L, -1);
      lua_replace(L, 4);
    } else if (IS(k, len, "progress") && t == LUA_TFUNCTION) {
      lua_pushvalue(L, -1);
      lua_replace(L, 5);
    } else if (IS(k, len, "changes") && t == LUA_TBOOLEAN)
      opts->changes = lua_toboolean(L, -1);
    else if (IS(k, len, "checksum") && t == LUA_TBOOLEAN)
      aw_options_set_checksum(opts, lua_toboolean(L, -1));
    else if (IS(k, len, "modes") && t == LUA_TBOOLEAN)
      aw_options_set_modes(opts, lua_toboolean(L, -1));
    else
      return 0;
    lua_pop(L, 1);
  }
  *prefix = lua_tostring(L, 4);
  if (lua_type(L, 5) == LUA_TFUNCTION) {
    prog->L = L;
    prog->fn = 5;
    prog->start = now_ns();
    prog->last = 0;
    prog->untold = 0;
    aw_options_set_progress(opts, progress_call, prog);
  }
  return 1;
}

/* core.write_plain(target, payload [, opts]) -> as core.write, for the
 * common call read whole in C: a string target without a NUL, a payload
 * of strings only (as core.write_strings), options init.lua would accept
 * (plain_options); returns nothing for anything else (and raises
 * nothing), which init.lua's aw.write then checks and sends on. Saves the
 * Lua side's checks, a third of a one-file write's instructions. */
static int core_lua_write_plain(lua_State *L)
{
  aw_file local[LOCAL_FILES], *files;
  aw_options opts;
  progress prog;
  const char *prefix, *target;
  size_t len, n;

  memset(&prog, 0, sizeof prog);
  if (lua_type(L, 1) != LUA_TSTRING || lua_type(L, 2) != LUA_TTABLE ||
      !plain_options(L, &opts, &prog, &prefix))
    return 0;
  target = lua_tolstring(L, 1, &len);
  if (strlen(target) != len || !read_strings(L, prog.fn != 0, local, &files, &n))
    return 0;
  return publish_files(L, target, files, NULL, n, &opts, &prog, prefix);
}

/* core.rollback(target, version|nil, sync, timeout_ms [, log_context, keep,
 * changes]) -> as core.write */
static int core_lua_rollback(lua_State *L)
{
  const char *target = luaL_checkstring(L, 1);
  const char *version = luaL_optstring(L, 2, NULL);
  aw_options opts;
  aw_error err;
  const char *prefix = check_options(L, 3, &opts, NULL);
  aw_result *res = (aw_result *)new_owned(L, sizeof *res, RESULT);
  int rc = aw_rollback(target, version, &opts, res, &err);
  return push_result(L, rc, res, &opts, &err, prefix, target);
}

/* core.versions(target [, log_context]) -> { { name =, published =,
 * current = }, ... } | nil, message, code */
/* Appends the versions of `list` to the table on top, from index at + 1;
 * `leftover`: marked so. Frees the list. */
static void push_version_list(lua_State *L, aw_version_list *list, size_t at, int leftover)
{
  size_t i;

  for (i = 0; i < list->n; i++) {
    const aw_version_info *v = &list->v[i];
    lua_createtable(L, 0, 4);
    lua_pushstring(L, v->name);
    lua_setfield(L, -2, "name");
    lua_pushnumber(L, (lua_Number)v->published_sec + (lua_Number)v->published_nsec / 1e9);
    lua_setfield(L, -2, "published");
    lua_pushboolean(L, v->current);
    lua_setfield(L, -2, "current");
    if (leftover) {
      lua_pushboolean(L, 1);
      lua_setfield(L, -2, "leftover");
    }
    lua_rawseti(L, -2, (lua_Integer)(at + i) + 1);
  }
  aw_version_list_free(list);
}

/* core.versions(target [, log_context]) -> { { name =, published =,
 * current = [, leftover = true] }, ... }: the current and kept versions,
 * then the leftovers (aw_leftovers) | nil, message, code */
static int core_lua_versions(lua_State *L)
{
  const char *target = luaL_checkstring(L, 1);
  aw_version_list *list = (aw_version_list *)new_owned(L, sizeof *list, VERSIONS);
  aw_version_list *left = (aw_version_list *)new_owned(L, sizeof *left, VERSIONS);
  aw_error err;
  size_t n;

  if (aw_versions(target, list, &err) < 0 || aw_leftovers(target, left, &err) < 0)
    return push_error(L, &err, luaL_optstring(L, 2, NULL), target);
  lua_createtable(L, (int)(list->n + left->n), 0);
  n = list->n;
  push_version_list(L, list, 0, 0);
  push_version_list(L, left, n, 1);
  return 1;
}

/* core.check_target(target [, log_context]) -> true | nil, message, code */
static int core_lua_check_target(lua_State *L)
{
  const char *target = luaL_checkstring(L, 1);
  const char *prefix = luaL_optstring(L, 2, NULL);
  aw_error err;
  if (aw_check_target(target, &err) < 0)
    return push_error(L, &err, prefix, target);
  lua_pushboolean(L, 1);
  return 1;
}

/* ------------------------------------------------------------------ */
/* Reading                                                             */
/* ------------------------------------------------------------------ */

/* Pushes path -> { data, mode, uid, gid } for every file of a snapshot;
 * without `owners`, path -> { data, mode }; with `dir` (a listing), source
 * = dir/path in place of data. */
static void push_files(lua_State *L, const aw_snapshot *snap, int owners, const char *dir)
{
  size_t i, dlen = dir ? strlen(dir) : 0;
  while (dlen > 1 && dir[dlen - 1] == '/')
    dlen--;   /* "src/" + "a" is "src/a"; "/" stays */
  lua_createtable(L, 0, (int)snap->n);
  for (i = 0; i < snap->n; i++) {
    const aw_read_file *f = &snap->files[i];
    lua_createtable(L, 0, owners ? 4 : 2);
    if (dir) {
      lua_pushlstring(L, dir, dlen);
      lua_pushstring(L, dlen && dir[dlen - 1] == '/' ? "" : "/");
      lua_pushstring(L, f->path);
      lua_concat(L, 3);
      lua_setfield(L, -2, "source");
    } else {
      lua_pushlstring(L, f->data, f->size);
      lua_setfield(L, -2, "data");
    }
    if (f->mode != AW_MODE_SOURCE) {   /* a listing of names: the source's, at the write */
      lua_pushinteger(L, (lua_Integer)f->mode);
      lua_setfield(L, -2, "mode");
    }
    if (owners) {
      aw_compat_pushwhole(L, f->uid);
      lua_setfield(L, -2, "uid");
      aw_compat_pushwhole(L, f->gid);
      lua_setfield(L, -2, "gid");
    }
    lua_setfield(L, -2, f->path);
  }
}

#define SNAPSHOT "atomicwriter.snapshot"

static aw_snapshot *new_snapshot(lua_State *L)
{
  return (aw_snapshot *)new_owned(L, sizeof(aw_snapshot), SNAPSHOT);
}

static int snapshot_lua_gc(lua_State *L)
{
  aw_snapshot_free((aw_snapshot *)lua_touserdata(L, 1));
  return 0;
}

/* Runs aw_read_tree (`tree` 1; aw_list_tree when argument 4 is true, and
 * aw_list_tree_names when argument 5, modes, is false too) or
 * aw_read_version (0) on argument 1 (argument 2: the log context; 3: a
 * version, or for a tree whether to give the owners: a version's files
 * always have them) and pushes the files table; returns
 * the snapshot for the caller's second value, or NULL after pushing nil,
 * message, code. A flag, not a function pointer: make stack-usage bounds
 * direct calls only. */
static aw_snapshot *push_snapshot(lua_State *L, int tree)
{
  const char *path = luaL_checkstring(L, 1);
  const char *prefix = luaL_optstring(L, 2, NULL);
  const char *version = tree ? NULL : luaL_optstring(L, 3, NULL);
  aw_snapshot *snap = new_snapshot(L);
  aw_error err;
  if (tree && lua_toboolean(L, 4))
    tree = lua_isboolean(L, 5) && !lua_toboolean(L, 5) && !lua_toboolean(L, 3) ? 3 : 2;
  if ((tree == 3   ? aw_list_tree_names(path, snap, &err)
       : tree == 2 ? aw_list_tree(path, snap, &err)
       : tree      ? aw_read_tree(path, snap, &err)
                   : aw_read_version(path, version, snap, &err)) < 0) {
    push_error(L, &err, prefix, path);
    return NULL;
  }
  push_files(L, snap, !tree || lua_toboolean(L, 3), tree >= 2 ? path : NULL);
  return snap;
}

/* core.read(target [, log_context, version]) -> files, version | nil,
 * message, code (version is "" when nothing is published yet) */
static int core_lua_read(lua_State *L)
{
  aw_snapshot *snap = push_snapshot(L, 0);
  if (!snap)
    return 3;
  lua_pushstring(L, snap->version);
  aw_snapshot_free(snap);
  return 2;
}

/* core.read_tree(dir [, log_context, owners, sources, modes]) -> files, skipped | nil,
 * message, code */
static int core_lua_read_tree(lua_State *L)
{
  aw_snapshot *snap = push_snapshot(L, 1);
  if (!snap)
    return 3;
  lua_pushinteger(L, (lua_Integer)snap->skipped);
  aw_snapshot_free(snap);
  return 2;
}

/* core.is_terminal(fd) -> boolean: for the command-line tool's progress. */
static int core_lua_is_terminal(lua_State *L)
{
  lua_pushboolean(L, isatty((int)luaL_checkinteger(L, 1)));
  return 1;
}

/* core.clean_path(path) -> clean path | nil, message, "invalid" */
static int core_lua_clean_path(lua_State *L)
{
  size_t len;
  const char *path = luaL_checklstring(L, 1, &len);
  /* A userdata, not malloc: the collector frees it if pushing raises. */
  char *out = (char *)lua_newuserdata(L, len + 1);
  aw_error err;
  if (aw_clean_path(path, len, out, len + 1, &err) < 0)
    return push_error(L, &err, NULL, NULL);
  lua_pushstring(L, out);
  return 1;
}

/* core.version(target [, log_context]) -> name ("" when none) | nil, message, code */
static int core_lua_version(lua_State *L)
{
  const char *target = luaL_checkstring(L, 1);
  char name[AW_NAME_SIZE];
  aw_error err;
  if (aw_version(target, name, sizeof name, &err) < 0)
    return push_error(L, &err, luaL_optstring(L, 2, NULL), target);
  lua_pushstring(L, name);
  return 1;
}

/* ------------------------------------------------------------------ */
/* The watcher object                                                  */
/* ------------------------------------------------------------------ */

#define WATCHER "atomicwriter.watcher"

/* The target and log context are kept with the watcher for the messages
 * of wait(): names[] holds "target\0context\0". */
typedef struct watcher {
  aw_watch *w;        /* NULL once closed */
  int has_prefix;     /* a log context was given */
  char names[];
} watcher;

static const char *watcher_prefix(const watcher *self)
{
  return self->has_prefix ? self->names + strlen(self->names) + 1 : NULL;
}

static watcher *check_watcher(lua_State *L)
{
  return (watcher *)luaL_checkudata(L, 1, WATCHER);
}

static watcher *check_open_watcher(lua_State *L)
{
  watcher *self = check_watcher(L);
  if (!self->w)
    luaL_error(L, "attempt to use a closed watcher");
  return self;
}

/* core.watch(target, poll [, log_context]) -> watcher | nil, message, code */
static int core_lua_watch(lua_State *L)
{
  const char *target = luaL_checkstring(L, 1);
  int flags = lua_toboolean(L, 2) ? AW_WATCH_POLL : 0;
  const char *prefix = luaL_optstring(L, 3, NULL);
  size_t tlen = strlen(target), plen = prefix ? strlen(prefix) : 0;
  watcher *self = (watcher *)lua_newuserdata(L, sizeof *self + tlen + plen + 2);
  aw_error err;
  self->w = NULL;
  self->has_prefix = prefix != NULL;
  memcpy(self->names, target, tlen + 1);
  memcpy(self->names + tlen + 1, prefix ? prefix : "", plen + 1);
  luaL_getmetatable(L, WATCHER);
  lua_setmetatable(L, -2);
  if (aw_watch_open(&self->w, target, flags, &err) < 0)
    return push_error(L, &err, prefix, target);
  return 1;
}

/* watcher:wait([timeout seconds]) -> version | nil (timeout) | nil, message, code */
static int watcher_lua_wait(lua_State *L)
{
  watcher *self = check_open_watcher(L);
  long timeout_ms = -1;
  char version[AW_NAME_SIZE];
  aw_error err;
  int r;
  if (!lua_isnoneornil(L, 2)) {
    lua_Number t = luaL_checknumber(L, 2);
    luaL_argcheck(L, t >= 0, 2, "timeout must be >= 0");
    /* math.huge, or more than a 32-bit long holds (~24.8 days): forever,
     * as for a writer's timeout (a cast of infinity is undefined). */
    if (t * 1000.0 + 0.5 < 2147483647.0)
      timeout_ms = (long)(t * 1000.0 + 0.5);
  }
  r = aw_watch_next(self->w, timeout_ms, version, sizeof version, &err);
  if (r < 0)
    return push_error(L, &err, watcher_prefix(self), self->names);
  if (r == 0)
    lua_pushnil(L);
  else
    lua_pushstring(L, version);
  return 1;
}

/* watcher:fd() -> integer | nil (polling) */
static int watcher_lua_fd(lua_State *L)
{
  watcher *self = check_open_watcher(L);
  int fd = aw_watch_fd(self->w);
  if (fd < 0)
    lua_pushnil(L);
  else
    lua_pushinteger(L, fd);
  return 1;
}

/* One close for :close(), __gc and __close; safe to call twice. */
static int watcher_lua_close(lua_State *L)
{
  watcher *self = check_watcher(L);
  aw_watch_close(self->w);
  self->w = NULL;
  return 0;
}

static int watcher_lua_tostring(lua_State *L)
{
  watcher *self = check_watcher(L);
  if (self->w)
    lua_pushfstring(L, WATCHER " (%s)", self->names);
  else
    lua_pushfstring(L, WATCHER " (%s, closed)", self->names);
  return 1;
}

static const luaL_Reg watcher_methods[] = {
  { "wait", watcher_lua_wait },
  { "fd", watcher_lua_fd },
  { "close", watcher_lua_close },
  { NULL, NULL }
};

/* The metatable of a new_owned userdata: only a __gc. */
static void owned_meta(lua_State *L, const char *name, lua_CFunction gc)
{
  luaL_newmetatable(L, name);
  lua_pushcfunction(L, gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
}

/* The watcher's metatable: methods, __gc, __close, __tostring, __name. */
static void create_watcher_meta(lua_State *L)
{
  luaL_newmetatable(L, WATCHER);
  lua_newtable(L);
  aw_compat_setfuncs(L, watcher_methods);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, watcher_lua_close);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, watcher_lua_close);
  lua_setfield(L, -2, "__close");
  lua_pushcfunction(L, watcher_lua_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pushliteral(L, WATCHER);
  lua_setfield(L, -2, "__name");
  lua_pop(L, 1);
}

/* Every metatable of the module, made once per state. */
static void create_metatables(lua_State *L)
{
  create_watcher_meta(L);
  owned_meta(L, SNAPSHOT, snapshot_lua_gc);
  owned_meta(L, RESULT, result_lua_gc);
  owned_meta(L, VERSIONS, versions_lua_gc);
}

static const luaL_Reg core_functions[] = {
  { "write", core_lua_write },
  { "write_strings", core_lua_write_strings },
  { "write_plain", core_lua_write_plain },
  { "check_target", core_lua_check_target },
  { "rollback", core_lua_rollback },
  { "versions", core_lua_versions },
  { "read", core_lua_read },
  { "read_tree", core_lua_read_tree },
  { "version", core_lua_version },
  { "clean_path", core_lua_clean_path },
  { "is_terminal", core_lua_is_terminal },
  { "watch", core_lua_watch },
  { NULL, NULL }
};

/* core.platform: what this build uses where systems differ (aw_platform). */
static void push_platform(lua_State *L)
{
  const aw_platform_info *p = aw_platform();
  lua_createtable(L, 0, 6);
  lua_pushstring(L, p->listing);
  lua_setfield(L, -2, "listing");
  lua_pushstring(L, p->random);
  lua_setfield(L, -2, "random");
  lua_pushstring(L, p->sync);
  lua_setfield(L, -2, "sync");
  lua_pushstring(L, p->watch);
  lua_setfield(L, -2, "watch");
  lua_pushboolean(L, p->syncfs);
  lua_setfield(L, -2, "syncfs");
  lua_pushstring(L, p->copy);
  lua_setfield(L, -2, "copy");
}

/* The module's one export, whatever hides the rest (-fvisibility=hidden in
 * the Makefile, AW_LUA_MODULE in the rockspecs: aw.h). */
#if defined(__GNUC__) && __GNUC__ >= 4
__attribute__((visibility("default")))
#endif
int luaopen_atomicwriter_core(lua_State *L)
{
  create_metatables(L);
  lua_newtable(L);
  aw_compat_setfuncs(L, core_functions);
  lua_pushstring(L, aw_library_version());   /* "1.0.0": aw.h's AW_VERSION_STRING */
  lua_setfield(L, -2, "_VERSION");
  push_platform(L);
  lua_setfield(L, -2, "platform");
  lua_pushinteger(L, AW_SYNC_FS);
  lua_setfield(L, -2, "SYNC_FS");
  aw_compat_pushwhole(L, AW_MAX_ID);
  lua_setfield(L, -2, "MAX_ID");
  lua_pushinteger(L, AW_SYNC_FILES);
  lua_setfield(L, -2, "SYNC_FILES");
  return 1;
}
