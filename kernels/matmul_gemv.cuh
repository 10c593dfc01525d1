// The decode-path product: a few tokens (NT <= 8 at a time) against a weight matrix stored as
// in the file, weights read once and dequantized in registers (quant_decode.cuh), activations in
// f32, f32 accumulation.
//
// Work split. A block of kWarps warps owns a tile of rows; each warp owns kRowsPerWarp rows and
// the whole column range, so a row's sum never leaves the warp (deterministic: a fixed order of
// per-lane sums, then a fixed shuffle tree). Two rows per warp let one read of x serve two rows,
// which halves what x costs the shared-memory / L1 bandwidth (x is NT * 128 bytes per 32-element
// group, against 18 bytes of Q4_K weights).
//
// Block types: a warp walks its rows in chunks of 64 (NT <= 2) or 32 groups of 32 elements,
// lane l decoding groups l and l + 32 of the chunk. The chunk's bytes are first copied to shared
// memory with coalesced 16-byte loads (4-byte funnel-shifted loads where the row is not 16-byte
// aligned, as in GPT-OSS's MXFP4 rows of 1530 bytes), so global memory sees whole lines while
// each lane reads its own block at its own stride (decode32's word loads, from shared memory).
// x for the chunk is staged once per block in shared memory, [NT][groups][36 floats]: the pad
// of 4 floats makes lane l's float4 reads of group l conflict-free.
//
// Float types (F32, F16, BF16): lane l reads 4 consecutive elements of weights and x at a time,
// coalesced, straight from global memory (x stays in L1); nothing to decode, so no staging.
//
// The same kernel serves a single matrix (tokens 0..n) and a grouped product over experts
// (block column j = j-th active expert, its sorted positions offsets[e]..offsets[e+1]), and, with
// a second weight list, the fused gate/up/GLU of an expert FFN: a warp's two rows are then row r
// of gate and row r of up, and what it writes is glu(gate + gate_bias, up + up_bias).
#pragma once

#include <cstdint>

#include "quant_decode.cuh"

namespace hymoe::kernels::gemv {

constexpr int kWarps = 4;
constexpr int kThreads = 32 * kWarps;
constexpr int kRowsPerWarp = 2;
constexpr int kXStride = 36;  // floats per staged group of x (32 + a pad of 4)

// 32-element groups per chunk: 64 (two per lane) for up to 2 tokens, so a block has twice the
// weight bytes in flight per barrier; 32 past that, where x's staging would outgrow 48 KB.
template <int NT>
constexpr int chunk_groups() {
    return NT <= 2 ? 64 : 32;
}

// What a launch computes. Single matrix: offsets == nullptr, tokens 0..n_tokens of x and y.
// Grouped: block column j reads e = active[j] (if j < *n_active) and the sorted positions
// offsets[e]..offsets[e+1]; x row of position p is x_rows[p] / x_rows_div (x_rows null: p).
struct Args {
    const uint8_t* w = nullptr;                // single: [rows][row_bytes]
    const void* const* w_list = nullptr;       // grouped: [n_experts] device pointers
    const void* const* w2_list = nullptr;      // fused GLU: the up matrices ([n_experts], same type and shape)
    int64_t row_bytes = 0, rows = 0, cols = 0;
    const float* x = nullptr;                  // [*][cols]
    const int32_t* x_rows = nullptr;           // [n_pairs] or null
    int32_t x_rows_div = 1;                    // x row = x_rows[p] / x_rows_div (pair_order / n_used)
    float* y = nullptr;                        // [n_pairs][rows]
    const int32_t* offsets = nullptr;          // [n_experts + 1]
    const int32_t* active = nullptr;           // [n_experts]
    const int32_t* n_active = nullptr;         // [1]
    int64_t n_tokens = 0;                      // single matrix: rows of x and y
    // Fused GLU (w2_list != null): y[p][r] = glu(acc_gate + bias0[e][r], acc_up + bias1[e][r]).
    const float* bias0 = nullptr;              // [n_experts][rows] or null
    const float* bias1 = nullptr;              // [n_experts][rows] or null
    int32_t glu_kind = 0;                      // Glu::SwiGlu = 0, Glu::SwiGluOai = 1
    float glu_alpha = 1.702f, glu_limit = 7.0f;
};

// Rows of the output one block computes.
inline int rows_per_block(bool fused) {
    return fused ? kWarps : kWarps * kRowsPerWarp;
}

// ---- helpers ----

__device__ __forceinline__ int64_t min64(int64_t a, int64_t b) {
    return a < b ? a : b;
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

// As hymoe::cpu::swiglu / swiglu_oai for one element.
__device__ __forceinline__ float glu_value(int kind, float alpha, float limit, float gate, float up) {
    if (kind == 0) return gate / (1.0f + expf(-gate)) * up;
    const float g = fminf(gate, limit);
    const float u = fminf(fmaxf(up, -limit), limit);
    return g * (1.0f / (1.0f + expf(-(alpha * g)))) * (u + 1.0f);
}

// Copies the bytes [src, src + len) to dst[0, len) (dst 16-byte aligned shared memory), with all
// 32 lanes of a warp. Every global word it reads holds at least one byte of the range, so it never
// reads past the end of an allocation by more than the rest of an aligned word.
__device__ __forceinline__ void stage_bytes(const uint8_t* src, int len, uint8_t* dst, int lane) {
    const uintptr_t addr = reinterpret_cast<uintptr_t>(src);
    int done = 0;
    if ((addr & 15) == 0) {
        const int n16 = len >> 4;
        const uint4* s = reinterpret_cast<const uint4*>(src);
        uint4* d = reinterpret_cast<uint4*>(dst);
        for (int i = lane; i < n16; i += 32) d[i] = __ldg(s + i);
        done = n16 << 4;
    }
    // The rest (all of it when unaligned): aligned 4-byte words, shifted into place.
    const uint8_t* p = src + done;
    const int rest = len - done;
    if (rest <= 0) return;
    const uintptr_t pa = reinterpret_cast<uintptr_t>(p);
    const int a = static_cast<int>(pa & 3);
    const uint32_t* base = reinterpret_cast<const uint32_t*>(pa - a);
    uint32_t* d = reinterpret_cast<uint32_t*>(dst + done);
    const int n_out = (rest + 3) >> 2;
    const int n_in = (a + rest + 3) >> 2;
    for (int i = lane; i < n_out; i += 32) {
        const uint32_t lo = __ldg(base + i);
        const uint32_t hi = (a != 0 && i + 1 < n_in) ? __ldg(base + i + 1) : 0u;
        d[i] = a != 0 ? __funnelshift_r(lo, hi, 8 * a) : lo;
    }
}

// Bytes of one chunk of T (a whole number of super-blocks), and of its staging buffer (room
// for the rounding up to whole words).
template <WeightType T, int NT>
constexpr int chunk_bytes() {
    return chunk_groups<NT>() * 32 / WeightTraits<T>::block_elems * WeightTraits<T>::block_bytes;
}
template <WeightType T, int NT>
constexpr int stage_buffer_bytes() {
    return (chunk_bytes<T, NT>() + 15) / 16 * 16 + 16;
}

// Shared state of one block.
template <WeightType T, int NT, bool kBlockType>
struct Smem;
template <WeightType T, int NT>
struct Smem<T, NT, true> {
    alignas(16) float x[NT][chunk_groups<NT>()][kXStride];                      // x chunk, per token and group
    alignas(16) uint8_t w[kWarps][kRowsPerWarp][stage_buffer_bytes<T, NT>()];   // weight chunk, per warp and row
    const float* xr[NT];                                                        // x row of each token
    float* yr[NT];                                                              // y row of each token
};
template <WeightType T, int NT>
struct Smem<T, NT, false> {
    const float* xr[NT];
    float* yr[NT];
};

// Loads 4 consecutive weights starting at element c of a float-type row (c % 4 == 0, aligned).
template <WeightType T>
__device__ __forceinline__ float4 load4(const uint8_t* row, int64_t c) {
    if constexpr (T == WeightType::F32) {
        return __ldg(reinterpret_cast<const float4*>(row) + (c >> 2));
    } else {
        const uint2 v = __ldg(reinterpret_cast<const uint2*>(row) + (c >> 2));
        if constexpr (T == WeightType::F16) {
            return make_float4(qd::f16_to_f32(v.x & 0xffffu), qd::f16_to_f32(v.x >> 16), qd::f16_to_f32(v.y & 0xffffu),
                               qd::f16_to_f32(v.y >> 16));
        } else {
            return make_float4(__uint_as_float(v.x << 16), __uint_as_float(v.x & 0xffff0000u),
                               __uint_as_float(v.y << 16), __uint_as_float(v.y & 0xffff0000u));
        }
    }
}

template <WeightType T>
__device__ __forceinline__ float load1(const uint8_t* row, int64_t c) {
    if constexpr (T == WeightType::F32) {
        return __ldg(reinterpret_cast<const float*>(row) + c);
    } else {
        const uint32_t h = __ldg(reinterpret_cast<const unsigned short*>(row) + c);
        return T == WeightType::F16 ? qd::f16_to_f32(h) : qd::bf16_to_f32(h);
    }
}

// acc[r][t] += Σ over this lane's columns of W_r[c] · x_t[c], float-type weights.
template <WeightType T, int NT>
__device__ __forceinline__ void dot_rows_float(const uint8_t* const (&wr)[kRowsPerWarp], const float* const* xr,
                                               int64_t cols, int lane, float (&acc)[kRowsPerWarp][NT]) {
    constexpr int kVecBytes = T == WeightType::F32 ? 16 : 8;
    bool vec = (cols & 3) == 0;
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; ++r) vec = vec && (reinterpret_cast<uintptr_t>(wr[r]) % kVecBytes) == 0;
#pragma unroll
    for (int t = 0; t < NT; ++t) vec = vec && (reinterpret_cast<uintptr_t>(xr[t]) % 16) == 0;
    if (vec) {
        for (int64_t c = 4 * lane; c < cols; c += 128) {
            float4 w[kRowsPerWarp];
#pragma unroll
            for (int r = 0; r < kRowsPerWarp; ++r) w[r] = load4<T>(wr[r], c);
#pragma unroll
            for (int t = 0; t < NT; ++t) {
                const float4 xv = __ldg(reinterpret_cast<const float4*>(xr[t] + c));
#pragma unroll
                for (int r = 0; r < kRowsPerWarp; ++r) {
                    float s = acc[r][t];
                    s = fmaf(w[r].x, xv.x, s);
                    s = fmaf(w[r].y, xv.y, s);
                    s = fmaf(w[r].z, xv.z, s);
                    s = fmaf(w[r].w, xv.w, s);
                    acc[r][t] = s;
                }
            }
        }
    } else {
        for (int64_t c = lane; c < cols; c += 32) {
            float w[kRowsPerWarp];
#pragma unroll
            for (int r = 0; r < kRowsPerWarp; ++r) w[r] = load1<T>(wr[r], c);
#pragma unroll
            for (int t = 0; t < NT; ++t) {
                const float xv = __ldg(xr[t] + c);
#pragma unroll
                for (int r = 0; r < kRowsPerWarp; ++r) acc[r][t] = fmaf(w[r], xv, acc[r][t]);
            }
        }
    }
}

// acc[r][t] += Σ over this lane's groups of W_r · x_t, block-type weights (see the top).
// Called by every thread of the block (it synchronizes the block per chunk).
template <WeightType T, int NT>
__device__ __forceinline__ void dot_rows_blocks(Smem<T, NT, true>& s, const uint8_t* const (&wr)[kRowsPerWarp],
                                                int64_t cols, int count, float (&acc)[kRowsPerWarp][NT]) {
    using Tr = WeightTraits<T>;
    constexpr int kGroups = chunk_groups<NT>();
    constexpr int kBytes = chunk_bytes<T, NT>();
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int64_t n_groups = cols >> 5;
    const int64_t data_bytes = cols / Tr::block_elems * Tr::block_bytes;
    bool x_vec = true;
#pragma unroll
    for (int t = 0; t < NT; ++t) x_vec = x_vec && (reinterpret_cast<uintptr_t>(s.xr[t]) % 16) == 0;
    for (int64_t g0 = 0; g0 < n_groups; g0 += kGroups) {
        __syncthreads();  // the previous chunk is consumed by every warp
        // x chunk, tokens < count: [t][group][32 of 36]
        const int chunk_cols = static_cast<int>(min64(32 * kGroups, cols - 32 * g0));
        const int quads = chunk_cols >> 2;
        for (int i = threadIdx.x; i < count * quads; i += kThreads) {
            const int t = i / quads, q = i - t * quads;
            const float* src = s.xr[t] + 32 * g0 + 4 * q;
            float4 v;
            if (x_vec) {
                v = __ldg(reinterpret_cast<const float4*>(src));
            } else {
                v = make_float4(__ldg(src), __ldg(src + 1), __ldg(src + 2), __ldg(src + 3));
            }
            *reinterpret_cast<float4*>(&s.x[t][q >> 3][4 * (q & 7)]) = v;
        }
        // This warp's rows of the chunk.
        const int64_t off = g0 / kGroups * kBytes;
        const int len = static_cast<int>(min64(kBytes, data_bytes - off));
#pragma unroll
        for (int r = 0; r < kRowsPerWarp; ++r) stage_bytes(wr[r] + off, len, s.w[warp][r], lane);
        __syncthreads();

        // Lane l decodes groups l, l + 32, ... of the chunk (one at a time: registers).
#pragma unroll 1
        for (int lg = lane; lg < kGroups; lg += 32) {
            if (g0 + lg >= n_groups) break;
            float w[kRowsPerWarp][32];
#pragma unroll
            for (int r = 0; r < kRowsPerWarp; ++r) decode32<T>(s.w[warp][r], lg, w[r]);
#pragma unroll
            for (int t = 0; t < NT; ++t) {
                const float4* xs = reinterpret_cast<const float4*>(&s.x[t][lg][0]);
#pragma unroll
                for (int j = 0; j < 8; ++j) {
                    const float4 xv = xs[j];
#pragma unroll
                    for (int r = 0; r < kRowsPerWarp; ++r) {
                        float a = acc[r][t];
                        a = fmaf(w[r][4 * j + 0], xv.x, a);
                        a = fmaf(w[r][4 * j + 1], xv.y, a);
                        a = fmaf(w[r][4 * j + 2], xv.z, a);
                        a = fmaf(w[r][4 * j + 3], xv.w, a);
                        acc[r][t] = a;
                    }
                }
            }
        }
    }
}

template <WeightType T, int NT>
__global__ void __launch_bounds__(kThreads) gemv_kernel(const Args a) {
    constexpr bool kBlockType = WeightTraits<T>::block_elems >= 32;
    __shared__ Smem<T, NT, kBlockType> s;

    // Which matrix and which positions this block column computes.
    const uint8_t* w = a.w;
    const uint8_t* w2 = nullptr;
    int64_t p_begin = 0, p_end = a.n_tokens;
    int e = 0;
    if (a.offsets != nullptr) {
        const int j = static_cast<int>(blockIdx.y);
        if (j >= *a.n_active) return;  // uniform over the block, before any barrier
        e = a.active[j];
        p_begin = a.offsets[e];
        p_end = a.offsets[e + 1];
        w = static_cast<const uint8_t*>(a.w_list[e]);
        if (a.w2_list != nullptr) w2 = static_cast<const uint8_t*>(a.w2_list[e]);
    }
    const bool fused = a.w2_list != nullptr;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    // Output rows of this warp: fused, row r of gate and of up; else rows r and r + 1.
    const int64_t r0 = fused ? int64_t(blockIdx.x) * kWarps + warp
                             : (int64_t(blockIdx.x) * kWarps + warp) * kRowsPerWarp;
    const uint8_t* wr[kRowsPerWarp];
    // Rows past the end read the last row (valid memory); their sums are never written.
    if (fused) {
        const int64_t r = min64(r0, a.rows - 1);
        wr[0] = w + r * a.row_bytes;
        wr[1] = w2 + r * a.row_bytes;
    } else {
#pragma unroll
        for (int r = 0; r < kRowsPerWarp; ++r) wr[r] = w + min64(r0 + r, a.rows - 1) * a.row_bytes;
    }

    for (int64_t p0 = p_begin; p0 < p_end; p0 += NT) {
        const int count = static_cast<int>(min64(NT, p_end - p0));
        if (threadIdx.x < NT) {
            // Tokens past count point at the last valid one: loads stay in bounds, sums are dropped.
            const int64_t p = p0 + min64(threadIdx.x, count - 1);
            const int64_t xrow = a.x_rows != nullptr ? a.x_rows[p] / a.x_rows_div : p;
            s.xr[threadIdx.x] = a.x + xrow * a.cols;
            s.yr[threadIdx.x] = a.y + p * a.rows;
        }
        __syncthreads();

        float acc[kRowsPerWarp][NT];
#pragma unroll
        for (int r = 0; r < kRowsPerWarp; ++r)
#pragma unroll
            for (int t = 0; t < NT; ++t) acc[r][t] = 0.0f;
        if constexpr (kBlockType) {
            dot_rows_blocks<T, NT>(s, wr, a.cols, count, acc);
        } else {
            dot_rows_float<T, NT>(wr, s.xr, a.cols, lane, acc);
        }

#pragma unroll
        for (int t = 0; t < NT; ++t) {
#pragma unroll
            for (int r = 0; r < kRowsPerWarp; ++r) acc[r][t] = warp_sum(acc[r][t]);
        }
        if (lane == 0) {
#pragma unroll
            for (int t = 0; t < NT; ++t) {
                if (t >= count) break;
                if (fused) {
                    if (r0 < a.rows) {
                        const float g = acc[0][t] + (a.bias0 != nullptr ? a.bias0[e * a.rows + r0] : 0.0f);
                        const float u = acc[1][t] + (a.bias1 != nullptr ? a.bias1[e * a.rows + r0] : 0.0f);
                        s.yr[t][r0] = glu_value(a.glu_kind, a.glu_alpha, a.glu_limit, g, u);
                    }
                } else {
#pragma unroll
                    for (int r = 0; r < kRowsPerWarp; ++r) {
                        if (r0 + r < a.rows) s.yr[t][r0 + r] = acc[r][t];
                    }
                }
            }
        }
        __syncthreads();  // s.xr / s.yr are rewritten by the next round
    }
}

}  // namespace hymoe::kernels::gemv
