# The tokenizers (BPE with PCRE2 pre-tokenization, SPM). Included from src/CMakeLists.txt;
# paths are relative to src/.
find_package(PkgConfig REQUIRED)
pkg_check_modules(PCRE2 REQUIRED IMPORTED_TARGET libpcre2-8)
pkg_check_modules(UTF8PROC REQUIRED IMPORTED_TARGET libutf8proc)
target_sources(hymoe PRIVATE
    tokenizer/tokenizer.cpp
    tokenizer/bpe.cpp
    tokenizer/spm.cpp
    tokenizer/pretokenize.cpp
    tokenizer/hf_pipeline.cpp
    tokenizer/hf_tokenizer.cpp)
target_link_libraries(hymoe PRIVATE PkgConfig::PCRE2 PkgConfig::UTF8PROC)
