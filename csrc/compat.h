/*
 * compat.h - the few Lua C API differences between 5.1, 5.2, 5.3, 5.4 and
 * LuaJIT that the binding meets, keyed on LUA_VERSION_NUM. Shims are
 * static and prefixed so they cannot clash with another module's.
 */
#ifndef AW_COMPAT_H
#define AW_COMPAT_H

#include <lauxlib.h>
#include <lua.h>

/* LuaJIT 2.1 reports 5.1 but has luaL_setfuncs; its lua.h names no
 * LUAJIT_* macro, so it is told apart by luaL_newlib (a 5.2 macro). */
#if LUA_VERSION_NUM >= 502 || defined(luaL_newlib)
#define aw_compat_setfuncs(L, l) luaL_setfuncs((L), (l), 0)
#else
static void aw_compat_setfuncs(lua_State *L, const luaL_Reg *l)
{
  for (; l->name; l++) {
    lua_pushcfunction(L, l->func);
    lua_setfield(L, -2, l->name);
  }
}
#endif

/* Whole numbers up to 2^32 (uid, gid) to and from Lua. Before 5.3 there
 * is no integer subtype and lua_Integer is ptrdiff_t, 32 bits on a 32-bit
 * host, so they go through lua_Number (exact below 2^53). */
#if LUA_VERSION_NUM >= 503
#define aw_compat_towhole(L, i) ((long long)lua_tointeger((L), (i)))
#define aw_compat_pushwhole(L, v) lua_pushinteger((L), (lua_Integer)(v))
#else
#define aw_compat_towhole(L, i) ((long long)lua_tonumber((L), (i)))
#define aw_compat_pushwhole(L, v) lua_pushnumber((L), (lua_Number)(v))
#endif

#endif /* AW_COMPAT_H */
