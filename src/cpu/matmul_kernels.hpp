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
#include <span>

#include "format/tensor_type.hpp"
#include "quant/blocks.hpp"

namespace hymoe::cpu {
class ThreadPool;
struct MatrixRef;
struct MatmulJob;
}  // namespace hymoe::cpu

namespace hymoe::cpu::detail {

enum class Isa : int { Scalar = 0, Avx2 = 1, Avx512 = 2 };

constexpr int kQK = quant::kQK;  // elements per Q8_0 / MXFP4 block
using BlockQ8_0 = quant::BlockQ8_0;
using BlockMxfp4 = quant::BlockMxfp4;
using quant::kValuesMxfp4;

// What the activations are quantized to for Q4_0, Q5_0, Q8_0, IQ4_NL and MXFP4 weights: ggml's
// block_q8_0 with its f16 scale widened to f32 (exactly, so the products are ggml's). The kernels
// then read a float per block and row instead of converting the same f16 scale once per row.
struct ActBlockQ8 {
    float d;         // an f16 value
    int8_t qs[kQK];  // value = d * qs[j]
};
static_assert(sizeof(ActBlockQ8) == 36);

// ggml's block_q8_1 (the activations of Q4_1 / Q5_1 weights), its f16 fields widened exactly.
struct ActBlockQ8_1 {
    float d;         // an f16 value
    float s;         // an f16 value: f16(d * sum(qs)) with d before its rounding, as ggml
    int8_t qs[kQK];  // value = d * qs[j]
};
static_assert(sizeof(ActBlockQ8_1) == 40);

// ggml's block_q8_K (the activations of Q2_K..Q6_K and IQ4_XS weights), as stored.
using ActBlockQ8K = quant::BlockQ8_K;

// How one token's activations are converted for a weight type (ggml's vec_dot_type).
enum class ActKind : int { F32, F16, BF16, Q8_0, Q8_1, Q8_K };

// ---- The SIMD kernels' common form of every block-quantized type ("panels") ----
//
// A row is cut into chunks of 256 elements (one super-block; 8 blocks of 32 for the 32-element
// types, the last chunk zero-padded). A chunk holds 16 sub-blocks of 16 elements. The SIMD
// kernels keep one int32 lane per sub-block: step j (0..3) of a chunk is a 64-byte vector whose
// lane L (4 bytes) holds elements 16 * kPanelSubBlock[L] + 4 j .. + 3. This order is the one
// Q4_K's nibbles give after a 4x4 dword transpose inside 128-bit lanes (and Q8_0's blocks taken
// 0,2 | 1,3 | 4,6 | 5,7), so the hot types unpack with a few shuffles. Four vpdpbusd then leave
// every lane with a whole sub-block's integer dot product, scaled once per lane.
constexpr int kChunk = 256;      // elements per chunk
constexpr int kChunkLanes = 16;  // sub-blocks (and int32 lanes) per chunk
inline constexpr uint8_t kPanelSubBlock[kChunkLanes] = {0, 2, 8, 10, 1, 3, 9, 11, 4, 6, 12, 14, 5, 7, 13, 15};

// One weight row's chunk, unpacked. result += sum over lanes L of
//   a[L] * dx[L] * dot_L(q, x) + m[L] * bsf[L]            (ActPanel below for dx, bsf)
struct alignas(64) WeightPanel {
    // Signed element values in panel order. The AVX-512 kernels store value + 128 (an unsigned
    // byte for vpdpbusd) and subtract 128 * sum(x) through ActPanel::corr; AVX2 stores the value.
    uint8_t q[kChunk];
    float a[kChunkLanes];  // the sub-block's scale: d * sub-scale (d for 32-element types)
    float m[kChunkLanes];  // the min term: -dmin * min (Q2_K, Q4_K, Q5_K), m (Q4_1, Q5_1), else 0
};
static_assert(sizeof(WeightPanel) == 384);

// One token's chunk of converted activations in panel order.
struct alignas(64) ActPanel {
    int8_t qs[kChunk];          // the quantized activations, panel order
    float dx[kChunkLanes];      // the activation scale of the lane's block
    float bsf[kChunkLanes];     // what WeightPanel::m multiplies: dx * sum(qs) of the sub-block
                                // (Q8_K), s / 2 (Q8_1), 0 (Q8_0)
    int32_t corr[kChunkLanes];  // -128 * sum(qs) of the sub-block (for biased weights)
};
static_assert(sizeof(ActPanel) == 448);

// One piece of a product for an ISA's tile function: rows [r0, r1) of w against tokens [t0, t1).
struct Tile {
    TensorType type;
    const std::byte* w;  // [rows][w_row_bytes], the weight as stored
    size_t w_row_bytes;
    int64_t cols;
    // Converted activations, one row per token (x_row_bytes apart): [n][cols] f32 for F32, F16
    // and BF16 weights (values already rounded to f16 / bf16); for quantized weights the scalar
    // kernels get [n][cols / block] ActBlockQ8 / ActBlockQ8_1 / ActBlockQ8K (by act_kind), the
    // SIMD ones [n][chunks] ActPanel.
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

// The activation format of a weight type; throws hymoe::Error for a type matmul does not support.
ActKind act_kind(TensorType type);
// Whether `type` is one of the block-quantized types (the panel kernels' types).
bool is_block_quant(TensorType type);
// ggml's x86 quantize_row_q8_1 and quantize_row_q8_K_ref (the scalar code, exact on every ISA).
// x: [cols]; y: [cols / 32] and [cols / 256].
void quantize_q8_1(const float* x, ActBlockQ8_1* y, int64_t cols);
void quantize_q8_K(const float* x, ActBlockQ8K* y, int64_t cols);
// One token's activations, already quantized as act_kind(type) says, to panels for `type`.
//   q: [cols / block] blocks; out: [ceil(cols / 256)] panels.
void make_act_panels(TensorType type, const void* q, int64_t cols, ActPanel* out);
// The scalar reference tile for the block-quantized types (matmul_ref_quants.cpp).
void tile_scalar_quant(const Tile& t);

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
// The panel kernels of the block-quantized types (matmul_quant_avx2.cpp, matmul_quant_avx512.cpp).
void tile_quant_avx2(const Tile& t);
void tile_quant_avx512(const Tile& t);
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

// matmul_batch() with a chosen ISA; pool == nullptr runs on the calling thread.
void matmul_batch_with_isa(Isa isa, std::span<const MatmulJob> jobs, ThreadPool* pool);

// matmul() with a chosen ISA; pool == nullptr runs on the calling thread.
void matmul_with_isa(Isa isa, const MatrixRef& w, const float* x, int64_t n, float* y, ThreadPool* pool);

}  // namespace hymoe::cpu::detail
