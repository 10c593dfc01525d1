# The CPU ops: thread pool, matmul with a scalar reference and SIMD kernels picked at run time.
# Included from src/CMakeLists.txt; paths are relative to src/.
target_sources(hymoe PRIVATE
    cpu/thread_pool.cpp
    cpu/probe.cpp
    cpu/matmul.cpp
    cpu/matmul_act.cpp
    cpu/matmul_ref_quants.cpp
    cpu/matmul_avx2.cpp
    cpu/matmul_avx512.cpp
    cpu/matmul_quant_avx2.cpp
    cpu/matmul_quant_avx512.cpp
    cpu/moe.cpp)

# The reference and the activation quantizers round exactly as written: no FMA contraction (clang
# contracts by default, GCC does for C++ even in ISO mode). The kernel files too: the plain C++
# they share (matmul_panel.inl) must compute what the scalar code computes.
set_source_files_properties(cpu/matmul.cpp cpu/matmul_act.cpp cpu/matmul_ref_quants.cpp PROPERTIES
    COMPILE_OPTIONS "-ffp-contract=off")

# Only the kernel files get ISA flags; the rest of the library stays baseline x86-64 and
# matmul.cpp calls these only when __builtin_cpu_supports says the CPU has them. On other
# architectures the files compile to nothing.
if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(x86_64|AMD64|amd64)$")
    set_source_files_properties(cpu/matmul_avx2.cpp cpu/matmul_quant_avx2.cpp PROPERTIES
        COMPILE_OPTIONS "-mavx2;-mfma;-mf16c;-ffp-contract=off")
    set_source_files_properties(cpu/matmul_avx512.cpp cpu/matmul_quant_avx512.cpp PROPERTIES
        COMPILE_OPTIONS "-mavx512f;-mavx512bw;-mavx512vl;-mavx512vnni;-mavx2;-mfma;-mf16c;-ffp-contract=off")
endif()
