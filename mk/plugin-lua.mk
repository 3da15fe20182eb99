# plugin-lua links Lua 5.4 (Debian liblua5.4-dev); lua.c includes
# <lua5.4/lua.h>, so no include flags are needed.
plugin-lua_LIBS = $(or $(shell pkg-config --libs lua5.4 2>/dev/null),-llua5.4)
