/*
 * aw_lua.c - atomicwriter.core, the thin Lua binding of the C core.
 *
 * It checks argument types, hands the core a pointer and length of each
 * Lua string (no copy: the strings stay referenced by the caller's table
 * for the whole call, and the core keeps nothing after it returns), and
 * turns a core error into `nil, message, code`. No file-system logic here.
 */
#include "aw.h"
#include "compat.h"

#include <lauxlib.h>
#include <lua.h>

/* Fields per file in the flat list the Lua module passes:
 * path, data, mode, uid (or false), gid (or false). */
#define FIELDS 5

static int push_error(lua_State *L, const aw_error *err, const char *prefix,
                      const char *target)
{
  char msg[AW_MAX_PATH + 512];
  lua_pushnil(L);
  lua_pushstring(L, aw_error_format(err, prefix, target, msg, sizeof msg));
  lua_pushstring(L, aw_error_code(err));
  return 3;
}

static long long opt_id(lua_State *L, int list, lua_Integer at)
{
  long long id;
  lua_rawgeti(L, list, at);
  id = lua_toboolean(L, -1) ? (long long)lua_tointeger(L, -1) : -1;
  lua_pop(L, 1);
  return id;
}

/* core.write(target, list, n, sync, timeout_ms [, log_context])
 * -> true | false | nil, message, code */
static int core_lua_write(lua_State *L)
{
  const char *target = luaL_checkstring(L, 1);
  lua_Integer n = luaL_checkinteger(L, 3);
  int sync = lua_toboolean(L, 4);
  lua_Integer timeout_ms = luaL_checkinteger(L, 5);
  const char *prefix = luaL_optstring(L, 6, NULL);
  aw_file *files;
  aw_options opts;
  aw_error err;
  int changed;
  lua_Integer i;

  luaL_checktype(L, 2, LUA_TTABLE);
  luaL_argcheck(L, n >= 0 && (size_t)n < ((size_t)-1) / sizeof *files, 3, "bad count");
  /* A userdata, not malloc: freed by the collector even if a check raises. */
  files = (aw_file *)lua_newuserdata(L, (size_t)(n ? n : 1) * sizeof *files);
  for (i = 0; i < n; i++) {
    aw_file *f = &files[i];
    lua_Integer at = i * FIELDS;
    lua_rawgeti(L, 2, at + 1);
    lua_rawgeti(L, 2, at + 2);
    lua_rawgeti(L, 2, at + 3);
    /* Strings only: lua_tolstring would convert a number into a fresh
     * string that dies with the stack slot. */
    if (lua_type(L, -3) != LUA_TSTRING || lua_type(L, -2) != LUA_TSTRING ||
        lua_type(L, -1) != LUA_TNUMBER)
      return luaL_error(L, "atomicwriter.core.write: malformed entry %d", (int)i + 1);
    f->path = lua_tolstring(L, -3, &f->path_len);
    f->data = lua_tolstring(L, -2, &f->size);
    f->mode = (unsigned)lua_tointeger(L, -1);
    lua_pop(L, 3);   /* the strings stay alive in the list */
    f->uid = opt_id(L, 2, at + 4);
    f->gid = opt_id(L, 2, at + 5);
  }
  aw_options_init(&opts);
  opts.sync = sync;
  opts.timeout_ms = (long)timeout_ms;
  if (aw_write(target, files, (size_t)n, &opts, &changed, &err) < 0)
    return push_error(L, &err, prefix, target);
  lua_pushboolean(L, changed);
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

static const luaL_Reg core_functions[] = {
  { "write", core_lua_write },
  { "check_target", core_lua_check_target },
  { NULL, NULL }
};

int luaopen_atomicwriter_core(lua_State *L)
{
  lua_newtable(L);
  aw_compat_setfuncs(L, core_functions);
  lua_pushstring(L, AW_VERSION);
  lua_setfield(L, -2, "version");
  return 1;
}
