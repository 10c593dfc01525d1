# The Jinja interpreter for chat templates. Included from src/CMakeLists.txt; paths are
# relative to src/. utf8proc gives Python's case mapping and character classes.
if(NOT TARGET PkgConfig::UTF8PROC)
    find_package(PkgConfig REQUIRED)
    pkg_check_modules(UTF8PROC REQUIRED IMPORTED_TARGET libutf8proc)
endif()
target_sources(hymoe PRIVATE
    chat/chat_template.cpp
    chat/jinja_lexer.cpp
    chat/jinja_parser.cpp
    chat/jinja_parse_expr.cpp
    chat/jinja_value.cpp
    chat/jinja_json.cpp
    chat/jinja_pystr.cpp
    chat/jinja_casing.cpp
    chat/jinja_format.cpp
    chat/jinja_ops.cpp
    chat/jinja_eval.cpp
    chat/jinja_callables.cpp
    chat/jinja_builtins.cpp
    chat/jinja_filters_text.cpp
    chat/jinja_globals.cpp
    chat/jinja_methods.cpp)
target_link_libraries(hymoe PRIVATE PkgConfig::UTF8PROC)
