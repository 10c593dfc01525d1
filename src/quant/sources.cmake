# The block formats: scalar dequantize (the reference) and quantize. Included from
# src/CMakeLists.txt; paths are relative to src/.
target_sources(hymoe PRIVATE
    quant/dequantize.cpp
    quant/quantize.cpp
    quant/quantize_k.cpp
    quant/quantize_iq4.cpp)

# Bit-exact with ggml: every product and sum rounds on its own, as ggml's reference C code does
# (GCC contracts a * b + c into an FMA for C++ when the target has one, clang by default).
set_source_files_properties(quant/dequantize.cpp quant/quantize.cpp quant/quantize_k.cpp quant/quantize_iq4.cpp
    PROPERTIES COMPILE_OPTIONS "-ffp-contract=off")
