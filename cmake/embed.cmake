# Turns config/config.json into a C string so the binary carries its default config.
file(READ ${IN} content HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${content}")
file(WRITE ${OUT} "/* generated from config/config.json by cmake/embed.cmake */\nconst char hd_config_embedded_json[] = {${bytes} 0x00};\n")
