// The tensor-core GEMM over stored weights (the prefill path): y = x · Wᵀ for one matrix, or for
// every active expert of an MoE layer in one launch (grouped).
//
// One block computes a 64-token × 64-output-row tile of y. Per K-step of 64 columns it decodes
// the weight tile (64 rows × 2 groups of 32 elements, one decode32 per thread) from the stored
// blocks to bf16 in shared memory, gathers the 64 activation rows (through x_rows) converted to
// bf16 beside it, and runs 16×16×16 bf16 wmma with f32 accumulation. Two shared-memory stages:
// the global reads of step s+1 are issued before the MMAs of step s and land in the other stage
// after them, so one __syncthreads per step suffices (see the loop). Tokens past the expert's
// count and weight rows past `rows` enter the tiles as zeros and their outputs are never stored;
// columns past `cols` (a partial last step) are zeros on both sides, so they add nothing.
//
// Weight reads: decode32 reads bytes one at a time (GGUF rows are only 2-byte aligned). Where a
// matrix's rows are 16-byte aligned, the float types and Q4_K take 16-byte loads instead
// (decode32_aligned). The other block types still read byte-wise from global memory: staging
// each K-step's raw blocks in shared memory with coalesced loads is the next step for speed.
#pragma once

#include <cuda_bf16.h>
#include <mma.h>

#include <cstdint>
#include <cstring>

#include "quant_decode.cuh"
#include "weight_type.hpp"

namespace hymoe::kernels::gemm {

constexpr int kTileM = 64;                // tokens per block
constexpr int kTileN = 64;                // output rows per block
constexpr int kTileK = 64;                // input columns per K-step: two decode32 groups
constexpr int kThreads = 128;             // 4 warps, 2 × 2 over the 64 × 64 tile
constexpr int kLd = kTileK + 8;           // bf16 row stride of the shared tiles: 144 bytes, so 16-byte stores
                                          // and ldmatrix rows spread over the banks; keeps wmma's 32-byte alignment
constexpr int kLdC = kTileN + 4;          // f32 row stride of the staged output tile
constexpr int kTileElems = kTileM * kLd;  // bf16 elements of one tile (the x and W tiles are the same size)
constexpr int kStageBytes = 2 * kTileElems * 2;     // x tile + W tile
constexpr int kSmemBytes = 2 * kStageBytes;         // two stages: 36864 bytes, static shared memory
static_assert(kTileM == kTileN, "the x and W tiles share one shape");
static_assert(kThreads == kTileN * kTileK / 32, "one decode32 group per thread per K-step");
static_assert(kTileM * kLdC * 4 <= kSmemBytes, "the staged output tile fits in the stage buffers");

// Everything a launch needs. Grouped when offsets != null: block z is active-expert slot j, and
// expert e = active[j] owns sorted positions offsets[e] .. offsets[e+1]; else one matrix w of n
// tokens. x row of sorted position p: x_rows[p] when x_rows != null, else p.
struct GemmArgs {
    const uint8_t* w = nullptr;              // single: [rows][row_bytes]
    const void* const* w_list = nullptr;     // grouped: [n_experts] of [rows][row_bytes]
    int64_t row_bytes = 0;
    int64_t rows = 0;
    int64_t cols = 0;                        // a multiple of the type's block (any for the float types)
    const float* x = nullptr;                // [*][cols]
    bool x_vec = false;                      // x 16-byte aligned and cols % 4 == 0: float4 reads
    const int32_t* x_rows = nullptr;         // [n_pairs] or null
    float* y = nullptr;                      // [n_pairs][rows]
    const int32_t* offsets = nullptr;        // [n_experts + 1] or null (single)
    const int32_t* active = nullptr;         // [n_experts]
    const int32_t* n_active = nullptr;       // [1]
    int64_t n = 0;                           // single: tokens
};

__device__ __forceinline__ uint32_t pack_bf16x2(float lo, float hi) {
    const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);  // .x (lo) at the lower address
    uint32_t bits;
    memcpy(&bits, &v, sizeof(bits));
    return bits;
}

// One element c of a float-type row (the tail of a row whose length is not a multiple of 32).
template <WeightType T>
__device__ __forceinline__ float decode_one(const uint8_t* row, int64_t c) {
    if constexpr (T == WeightType::F32) return qd::bits_to_f32(qd::load_u32(row + 4 * c));
    if constexpr (T == WeightType::F16) return qd::f16_to_f32(qd::load_u16(row + 2 * c));
    if constexpr (T == WeightType::BF16) return qd::bf16_to_f32(qd::load_u16(row + 2 * c));
    return 0.0f;
}

// Whether decode32_aligned has a path for T: the float types and Q4_K, whose blocks (144 bytes)
// stay 16-byte aligned when the rows are.
template <WeightType T>
constexpr bool kHasAlignedDecode =
    T == WeightType::F32 || T == WeightType::F16 || T == WeightType::BF16 || T == WeightType::Q4_K;

// decode32 for a row that starts 16-byte aligned, with 16-byte loads instead of decode32's byte
// loads (3 instead of 38 for Q4_K). Same arithmetic as decode32, so the same floats.
template <WeightType T>
__device__ __forceinline__ void decode32_aligned(const uint8_t* row, int64_t g, float* out) {
    if constexpr (T == WeightType::F32) {
        const float4* p = reinterpret_cast<const float4*>(row + g * 128);
#pragma unroll
        for (int q = 0; q < 8; ++q) {
            const float4 v = __ldg(p + q);
            out[4 * q] = v.x;
            out[4 * q + 1] = v.y;
            out[4 * q + 2] = v.z;
            out[4 * q + 3] = v.w;
        }
    } else if constexpr (T == WeightType::F16 || T == WeightType::BF16) {
        const uint4* p = reinterpret_cast<const uint4*>(row + g * 64);
#pragma unroll
        for (int q = 0; q < 4; ++q) {
            const uint4 v = __ldg(p + q);
            const uint32_t u[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
            for (int i = 0; i < 4; ++i) {
                if constexpr (T == WeightType::F16) {
                    out[8 * q + 2 * i] = qd::f16_to_f32(u[i] & 0xffffu);
                    out[8 * q + 2 * i + 1] = qd::f16_to_f32(u[i] >> 16);
                } else {
                    out[8 * q + 2 * i] = qd::bf16_to_f32(u[i] & 0xffffu);
                    out[8 * q + 2 * i + 1] = qd::bf16_to_f32(u[i] >> 16);
                }
            }
        }
    } else {
        static_assert(T == WeightType::Q4_K, "no aligned decoder for this type");
        // Block: d, dmin (f16), scales[12], qs[128]. Group k = sub-block k: nibbles (low for even k)
        // of qs[32 * (k / 2) ..]; its 6-bit scale and min as quant_decode's scale_min_k4.
        const uint8_t* b = row + (g >> 3) * 144;
        const int k = static_cast<int>(g & 7);
        const uint4 head = __ldg(reinterpret_cast<const uint4*>(b));
        const uint32_t hw[4] = {head.x, head.y, head.z, head.w};
        // Byte i of the block's first 16, picked from registers (a runtime index would spill the array).
        auto byte_at = [&](int i) -> int {
            const int wi = i >> 2;
            const uint32_t word = wi == 0 ? hw[0] : wi == 1 ? hw[1] : wi == 2 ? hw[2] : hw[3];
            return static_cast<int>((word >> (8 * (i & 3))) & 0xffu);
        };
        const int j = k;  // scales start at byte 4: scales[i] = byte_at(4 + i)
        int sc, mn;
        if (j < 4) {
            sc = byte_at(4 + j) & 63;
            mn = byte_at(4 + j + 4) & 63;
        } else {
            sc = (byte_at(4 + j + 4) & 0x0f) | ((byte_at(4 + j - 4) >> 6) << 4);
            mn = (byte_at(4 + j + 4) >> 4) | ((byte_at(4 + j) >> 6) << 4);
        }
        const float d1 = qd::fmul(qd::f16_to_f32(hw[0] & 0xffffu), static_cast<float>(sc));
        const float m1 = qd::fmul(qd::f16_to_f32(hw[0] >> 16), static_cast<float>(mn));
        const uint4* qs = reinterpret_cast<const uint4*>(b + 16 + 32 * (k >> 1));
        const int shift = 4 * (k & 1);
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            const uint4 v = __ldg(qs + h);
            const uint32_t u[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
            for (int l = 0; l < 16; ++l) {
                const int q = static_cast<int>((u[l >> 2] >> (8 * (l & 3) + shift)) & 0x0fu);
                out[16 * h + l] = qd::fmul(d1, static_cast<float>(q)) - m1;
            }
        }
    }
}

template <WeightType T>
__global__ void __launch_bounds__(kThreads) gemm_kernel(const GemmArgs a) {
    namespace wmma = nvcuda::wmma;

    // Which expert, which of its positions, which weight matrix. A block whose slot is idle or whose
    // token tile lies past the expert's count leaves at once, before any barrier.
    int64_t begin = 0, count = a.n;
    const uint8_t* w = a.w;
    if (a.offsets != nullptr) {
        const int j = static_cast<int>(blockIdx.z);
        if (j >= *a.n_active) return;
        const int e = a.active[j];
        begin = a.offsets[e];
        count = a.offsets[e + 1] - begin;
        w = static_cast<const uint8_t*>(a.w_list[e]);
    }
    const int64_t m0 = int64_t(blockIdx.x) * kTileM;  // first token of the tile, relative to begin
    if (m0 >= count) return;
    const int64_t n0 = int64_t(blockIdx.y) * kTileN;  // first output row of the tile

    __shared__ __align__(128) uint8_t smem[kSmemBytes];
    __shared__ int64_t x_off[kTileM];  // [kTileM] element offset of each tile token's x row, -1 past count

    // This thread's share of each K-step's loads:
    //   W: tile row w_r, 32-element group w_g of the step (one decode32);
    //   x: 8 × 4 floats, tile rows x_r0 + 8i, columns x_c .. x_c + 3 (a warp reads 2 rows × 256 bytes).
    const int tid = static_cast<int>(threadIdx.x);
    const int w_r = tid >> 1, w_g = tid & 1;
    const int64_t w_row = n0 + w_r;
    const uint8_t* w_ptr = w_row < a.rows ? w + w_row * a.row_bytes : nullptr;
    // Every row 16-byte aligned (an expert's matrix may sit anywhere, so this is decided per block).
    const bool w_aligned = ((reinterpret_cast<uintptr_t>(w) | static_cast<uintptr_t>(a.row_bytes)) & 15) == 0;
    const int x_r0 = tid >> 4, x_c = (tid & 15) * 4;
    const int n_steps = static_cast<int>((a.cols + kTileK - 1) / kTileK);

    float wv[32];  // the decoded weights of one group, held across the MMAs
    float4 xv[8];  // [8] activations, held across the MMAs

    auto load_global = [&](int step) {
        const int64_t g = int64_t(step) * (kTileK / 32) + w_g;
        const int64_t c0 = 32 * g;
        if (w_ptr != nullptr && c0 + 32 <= a.cols) {
            if constexpr (kHasAlignedDecode<T>) {
                if (w_aligned) {
                    decode32_aligned<T>(w_ptr, g, wv);
                } else {
                    decode32<T>(w_ptr, g, wv);
                }
            } else {
                decode32<T>(w_ptr, g, wv);
            }
        } else if (w_ptr != nullptr && c0 < a.cols) {
#pragma unroll
            for (int i = 0; i < 32; ++i) wv[i] = c0 + i < a.cols ? decode_one<T>(w_ptr, c0 + i) : 0.0f;
        } else {
#pragma unroll
            for (int i = 0; i < 32; ++i) wv[i] = 0.0f;
        }
        const int64_t c = int64_t(step) * kTileK + x_c;
#pragma unroll
        for (int i = 0; i < 8; ++i) {
            const int64_t off = x_off[x_r0 + 8 * i];
            if (off < 0 || c >= a.cols) {
                xv[i] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
            } else if (a.x_vec) {  // cols % 4 == 0 too: the 4 columns are all in
                xv[i] = __ldg(reinterpret_cast<const float4*>(a.x + off + c));
            } else {
                const float* src = a.x + off + c;
                xv[i] = make_float4(__ldg(src), c + 1 < a.cols ? __ldg(src + 1) : 0.0f,
                                    c + 2 < a.cols ? __ldg(src + 2) : 0.0f, c + 3 < a.cols ? __ldg(src + 3) : 0.0f);
            }
        }
    };
    auto store_shared = [&](int stage) {
        __nv_bfloat16* xs = reinterpret_cast<__nv_bfloat16*>(smem + stage * kStageBytes);  // [kTileM][kLd]
        __nv_bfloat16* ws = xs + kTileElems;                                                // [kTileN][kLd]
        uint4* wdst = reinterpret_cast<uint4*>(ws + w_r * kLd + w_g * 32);
#pragma unroll
        for (int q = 0; q < 4; ++q) {
            const float* v = wv + 8 * q;
            wdst[q] = make_uint4(pack_bf16x2(v[0], v[1]), pack_bf16x2(v[2], v[3]), pack_bf16x2(v[4], v[5]),
                                 pack_bf16x2(v[6], v[7]));
        }
#pragma unroll
        for (int i = 0; i < 8; ++i) {
            *reinterpret_cast<uint2*>(xs + (x_r0 + 8 * i) * kLd + x_c) =
                make_uint2(pack_bf16x2(xv[i].x, xv[i].y), pack_bf16x2(xv[i].z, xv[i].w));
        }
    };

    // Warp (wm, wn) owns tokens wm*32 .. +32 and output rows wn*32 .. +32: 2 × 2 fragments.
    const int warp = tid >> 5;
    const int wm = warp >> 1, wn = warp & 1;
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[2][2];

    auto mma_stage = [&](int stage) {
        const __nv_bfloat16* xs = reinterpret_cast<const __nv_bfloat16*>(smem + stage * kStageBytes);
        const __nv_bfloat16* ws = xs + kTileElems;
#pragma unroll
        for (int kk = 0; kk < kTileK; kk += 16) {
            // A = x tile (tokens × k, row-major); B = Wᵀ (k × rows), i.e. the W tile read column-major.
            wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> fa[2];
            wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::col_major> fb[2];
#pragma unroll
            for (int i = 0; i < 2; ++i) wmma::load_matrix_sync(fa[i], xs + (wm * 32 + i * 16) * kLd + kk, kLd);
#pragma unroll
            for (int j = 0; j < 2; ++j) wmma::load_matrix_sync(fb[j], ws + (wn * 32 + j * 16) * kLd + kk, kLd);
#pragma unroll
            for (int i = 0; i < 2; ++i)
#pragma unroll
                for (int j = 0; j < 2; ++j) wmma::mma_sync(acc[i][j], fa[i], fb[j], acc[i][j]);
        }
    };

    if (tid < kTileM) {
        const int64_t m = m0 + tid;
        int64_t off = -1;
        if (m < count) {
            const int64_t p = begin + m;
            off = (a.x_rows != nullptr ? int64_t(a.x_rows[p]) : p) * a.cols;
        }
        x_off[tid] = off;
    }
#pragma unroll
    for (int i = 0; i < 2; ++i)
#pragma unroll
        for (int j = 0; j < 2; ++j) wmma::fill_fragment(acc[i][j], 0.0f);
    __syncthreads();  // x_off ready

    load_global(0);
    store_shared(0);
    __syncthreads();
    for (int s = 0; s < n_steps; ++s) {
        // Stage (s+1)&1 was last read by the MMAs of step s-1, which every warp finished before
        // the barrier that ended step s-1; stage s&1 was filled before that same barrier.
        const bool next = s + 1 < n_steps;
        if (next) load_global(s + 1);
        mma_stage(s & 1);
        if (next) store_shared((s + 1) & 1);
        __syncthreads();
    }

    // Stage the accumulators through shared memory (their register layout is opaque), then write
    // the valid part of the tile with coalesced stores. The loop's last barrier ended every read
    // of the stages.
    float* cs = reinterpret_cast<float*>(smem);  // [kTileM][kLdC]
#pragma unroll
    for (int i = 0; i < 2; ++i)
#pragma unroll
        for (int j = 0; j < 2; ++j)
            wmma::store_matrix_sync(cs + (wm * 32 + i * 16) * kLdC + wn * 32 + j * 16, acc[i][j], kLdC,
                                    wmma::mem_row_major);
    __syncthreads();
    for (int idx = tid; idx < kTileM * kTileN; idx += kThreads) {
        const int m = idx / kTileN, c = idx % kTileN;
        if (m0 + m < count && n0 + c < a.rows) a.y[(begin + m0 + m) * a.rows + n0 + c] = cs[m * kLdC + c];
    }
}

}  // namespace hymoe::kernels::gemm
