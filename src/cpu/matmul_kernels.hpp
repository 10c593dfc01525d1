// Internals of cpu/matmul shared by the dispatcher (matmul.cpp), the per-ISA kernel files
// (matmul_avx2.cpp, matmul_avx512.cpp), the tests and the benchmark.
//
// The ISA files are compiled with -mavx2 / -mavx512* and must not share inline or template code
// with the rest of the program: the linker keeps one copy of an inline function, and if it keeps
// the AVX-512 one, a baseline caller runs AVX-512 code on a CPU without it. So this header holds
// only declarations and plain structs, and the code the ISA files share (matmul_tile.inl) is
// included inside each file's anonymous namespace.
#pragma once

#include <cstddef>
#include <cstdint>

#include "format/tensor_type.hpp"

namespace hymoe::cpu {
class ThreadPool;
struct MatrixRef;
}  // namespace hymoe::cpu

namespace hymoe::cpu::detail {

enum class Isa : int { Scalar = 0, Avx2 = 1, Avx512 = 2 };

constexpr int kQK = 32;  // elements per Q8_0 / MXFP4 block

// ggml's block_q8_0, as Q8_0 weights store it.
struct BlockQ8_0 {
    uint16_t d;      // f16 bits of the scale
    int8_t qs[kQK];  // value = d * qs[j]
};
static_assert(sizeof(BlockQ8_0) == 34);

// What the activations are quantized to for Q8_0 and MXFP4 weights: ggml's block_q8_0 with its
// f16 scale widened to f32 (exactly, so the products are ggml's). The kernels then read a float
// per block and row instead of converting the same f16 scale once per row.
struct ActBlockQ8 {
    float d;         // an f16 value
    int8_t qs[kQK];  // value = d * qs[j]
};
static_assert(sizeof(ActBlockQ8) == 36);

// ggml's block_mxfp4 (documentation; weights are read byte-wise since blocks are 17 bytes).
struct BlockMxfp4 {
    uint8_t e;            // E8M0 shared exponent
    uint8_t qs[kQK / 2];  // element j: low nibble of qs[j]; element j + 16: high nibble
};
static_assert(sizeof(BlockMxfp4) == 17);

// The doubled E2M1 magnitudes (bit 3 = sign), ggml's kvalues_mxfp4.
inline constexpr int8_t kValuesMxfp4[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};

// One piece of a product for an ISA's tile function: rows [r0, r1) of w against tokens [t0, t1).
struct Tile {
    TensorType type;
    const std::byte* w;  // [rows][w_row_bytes], the weight as stored
    size_t w_row_bytes;
    int64_t cols;
    // Converted activations, one row per token (x_row_bytes apart): [n][cols] f32 for F32, F16
    // and BF16 weights (values already rounded to f16 / bf16), [n][cols / 32] ActBlockQ8 for
    // Q8_0 and MXFP4 weights.
    const std::byte* x;
    size_t x_row_bytes;
    float* y;      // [n][rows]
    int64_t rows;  // y's row stride
    int64_t r0, r1, t0, t1;
};

// What an ISA provides. Every function here computes exactly what the scalar one does, except
// that tile() may sum in another order.
struct IsaOps {
    Isa isa;
    const char* name;
    void (*tile)(const Tile& t);
    // Quantizes one row of `cols` activations (a multiple of 32) the way ggml's x86
    // quantize_row_q8_0 does. y: [cols / 32].
    void (*quantize_q8_0)(const float* x, ActBlockQ8* y, int64_t cols);
    // out[i] = x[i] rounded to f16 / bf16 and back. x, out: [cols]; may be the same buffer.
    void (*round_f16)(const float* x, float* out, int64_t cols);
    void (*round_bf16)(const float* x, float* out, int64_t cols);
};

// The scalar implementation (matmul.cpp) and, on x86-64, the SIMD ones.
extern const IsaOps kScalarOps;
#if defined(__x86_64__)
extern const IsaOps kAvx2Ops;    // AVX2 + FMA + F16C
extern const IsaOps kAvx512Ops;  // AVX-512 F/BW/VL/VNNI (+ the AVX2 conversions)

// The AVX2 conversions, named so kAvx512Ops can point at them. A table initialized from another
// table would need run-time initialization, and that code would run AVX-512 instructions at
// program start on every CPU.
void quantize_q8_0_avx2(const float* x, ActBlockQ8* y, int64_t cols);
void round_f16_avx2(const float* x, float* out, int64_t cols);
void round_bf16_avx2(const float* x, float* out, int64_t cols);
#endif

// Whether this CPU (and OS) can run `isa`.
bool isa_supported(Isa isa);
// The best supported ISA.
Isa best_isa();
// The ISA matmul() uses: best_isa(), lowered by HYMOE_CPU_ISA=scalar|avx2|avx512 (a value above
// what the CPU supports is lowered to best_isa()). Throws hymoe::Error for another value.
Isa active_isa();
const char* isa_name(Isa isa);
// The kernels of a supported ISA; throws hymoe::Error for one the CPU cannot run.
const IsaOps& isa_ops(Isa isa);

// matmul() with a chosen ISA; pool == nullptr runs on the calling thread.
void matmul_with_isa(Isa isa, const MatrixRef& w, const float* x, int64_t n, float* y, ThreadPool* pool);

}  // namespace hymoe::cpu::detail
