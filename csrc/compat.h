/*
 * compat.h - the few Lua C API differences between 5.1, 5.2, 5.3, 5.4 and
 * LuaJIT that the binding meets, keyed on LUA_VERSION_NUM. Shims are
 * static and prefixed so they cannot clash with another module's.
 */
#ifndef AW_COMPAT_H
#define AW_COMPAT_H

#include <lauxlib.h>
#include <lua.h>

#if LUA_VERSION_NUM >= 502 || defined(LUAJIT_VERSION_NUM)
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

#endif /* AW_COMPAT_H */
