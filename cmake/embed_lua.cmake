cmake_minimum_required(VERSION 3.18)
# Embeds the Redis adapter's Lua scripts: for each DIR/<name>.lua except
# prelude.lua, writes to OUT a C array hd_redis_lua_<name>[] holding
# prelude.lua followed by the script, NUL-terminated (src/adapter/redis/scripts.c).
file(GLOB scripts ${DIR}/*.lua)
list(SORT scripts)
file(READ ${DIR}/prelude.lua prelude_hex HEX)
set(text "/* generated from src/adapter/redis/lua by cmake/embed_lua.cmake */\n")
foreach(path ${scripts})
  get_filename_component(name ${path} NAME_WE)
  if(name STREQUAL "prelude")
    continue()
  endif()
  file(READ ${path} body HEX)
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${prelude_hex}0a${body}")
  string(APPEND text "const char hd_redis_lua_${name}[] = {${bytes} 0x00};\n")
endforeach()
file(WRITE ${OUT} "${text}")
