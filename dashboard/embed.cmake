# Embed the dashboard's static files into the binary:
#   cmake -DOUT=dashboard_assets.c -DFILES="a.html|b.js" -P embed.cmake
# writes a C file defining bg_dashboard_assets[] (proxy/dashboard.h).
set(out "/* Generated from dashboard/ by dashboard/embed.cmake: do not edit. */\n")
string(APPEND out "#include \"proxy/dashboard.h\"\n\n")
string(REPLACE "|" ";" FILES "${FILES}")
set(entries "")
set(i 0)
foreach(f ${FILES})
  get_filename_component(name ${f} NAME)
  file(READ ${f} hex HEX)
  string(LENGTH "${hex}" hexlen)
  math(EXPR len "${hexlen} / 2")
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," hex "${hex}")
  # one line of C per line of the file: break after each newline byte
  string(REPLACE "0x0a," "0x0a,\n" hex "${hex}")
  string(APPEND out "static const unsigned char asset_${i}[] = {\n${hex}0};\n\n")
  string(APPEND entries "    {\"${name}\", asset_${i}, ${len}},\n")
  math(EXPR i "${i} + 1")
endforeach()
string(APPEND out "const bg_dashboard_asset_t bg_dashboard_assets[] = {\n${entries}    {0, 0, 0},\n};\n")
string(APPEND out "const size_t bg_dashboard_nassets = ${i};\n")
file(WRITE ${OUT}.tmp "${out}")
file(RENAME ${OUT}.tmp ${OUT})
