// Device code of the row and elementwise ops of the forward pass (launchers: elementwise.cu):
// RMSNorm, adds, GLU activations, row copies, embedding lookups, f32 -> 16-bit conversions.
// Templates and inline helpers only, so any kernel file may include it (the GLU and the bf16
// rounding are wanted by the expert FFN too); the plain kernels live in elementwise.cu.
//
// The CPU ops (src/cpu/ops.cpp) are the reference and are compiled with -ffp-contract=off, so
// wherever a product is followed by an add the device code spells the rounding out with
// __fmul_rn / __fadd_rn: nvcc would otherwise fuse them into an FMA and round differently.
#pragma once

#include <cuda_fp16.h>

#include <cstdint>

#include "launch.hpp"
#include "quant_decode.cuh"

namespace hymoe::kernels {

// ---- reductions ----------------------------------------------------------------------------------

__device__ __forceinline__ double warp_sum_f64(double v) {
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
    return v;
}

// ---- RMSNorm -------------------------------------------------------------------------------------

// One row per kWarpsPerRow warps; a block of 256 threads holds 8 / kWarpsPerRow rows. Squares are
// rounded to f32 and summed in double as the reference does (only the order of the sum differs,
// which double absorbs); sqrt and division are IEEE-rounded in nvcc's default mode.
template <int kWarpsPerRow>
__global__ void __launch_bounds__(256) rms_norm_kernel(const float* x, int64_t x_stride, const float* w, int64_t rows,
                                                       int64_t width, float eps, float* out, int64_t out_stride) {
    constexpr int kRowsPerBlock = 8 / kWarpsPerRow;
    constexpr int kRowThreads = 32 * kWarpsPerRow;
    __shared__ double partial[8];  // [warps of the block]
    const int warp = static_cast<int>(threadIdx.x) / 32;
    const int lane = static_cast<int>(threadIdx.x) % 32;
    const int row_in_block = warp / kWarpsPerRow;
    const int tid = static_cast<int>(threadIdx.x) % kRowThreads;  // thread index within the row's warps
    // Every thread walks the same number of iterations: the block-wide barriers below need it.
    for (int64_t base = int64_t(blockIdx.x) * kRowsPerBlock; base < rows; base += int64_t(gridDim.x) * kRowsPerBlock) {
        const int64_t r = base + row_in_block;
        const bool live = r < rows;
        const float* xr = x + (live ? r : 0) * x_stride;
        double sum = 0.0;
        if (live)
            for (int64_t i = tid; i < width; i += kRowThreads) sum += static_cast<double>(__fmul_rn(xr[i], xr[i]));
        sum = warp_sum_f64(sum);
        if constexpr (kWarpsPerRow > 1) {
            if (lane == 0) partial[warp] = sum;
            __syncthreads();
            sum = 0.0;
            for (int k = 0; k < kWarpsPerRow; ++k) sum += partial[row_in_block * kWarpsPerRow + k];
            __syncthreads();  // partial is rewritten by the next row
        }
        if (!live) continue;
        const float scale = 1.0f / sqrtf(static_cast<float>(sum / static_cast<double>(width)) + eps);
        float* yr = out + r * out_stride;
        // out may alias x: each element is read and written by the same thread, after the sum.
        if (w != nullptr) {
            for (int64_t i = tid; i < width; i += kRowThreads) yr[i] = __fmul_rn(__fmul_rn(xr[i], scale), w[i]);
        } else {
            for (int64_t i = tid; i < width; i += kRowThreads) yr[i] = __fmul_rn(xr[i], scale);
        }
    }
}

// ---- elementwise ---------------------------------------------------------------------------------

// The GLU activations, as cpu::swiglu / cpu::swiglu_oai. expf (within 2 ulp) rather than a
// double exp: this runs over every expert activation, and cheap FP64 is not on every GPU.
template <Glu K>
__device__ __forceinline__ float glu_one(float g, float u, float alpha, float limit) {
    if constexpr (K == Glu::SwiGlu) {
        return __fmul_rn(g / (1.0f + expf(-g)), u);
    } else {
        g = fminf(g, limit);
        u = fminf(fmaxf(u, -limit), limit);
        const float sig = 1.0f / (1.0f + expf(-__fmul_rn(alpha, g)));
        return __fmul_rn(__fmul_rn(g, sig), u + 1.0f);
    }
}

// out may alias gate: each element is read before it is written, by the same thread.
template <Glu K>
__global__ void glu_kernel(const float* gate, const float* __restrict__ up, int64_t n, float alpha, float limit,
                           float* out) {
    for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
        out[i] = glu_one<K>(gate[i], up[i], alpha, limit);
}

// ggml_compute_fp32_to_bf16 (quant::f32_to_bf16): round to nearest even, NaN made quiet.
__device__ __forceinline__ uint16_t f32_to_bf16_bits(float f) {
    const uint32_t bits = __float_as_uint(f);
    if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 64u);
    return static_cast<uint16_t>((bits + (0x7fffu + ((bits >> 16) & 1u))) >> 16);
}

// ---- embedding lookup ----------------------------------------------------------------------------

// Float tables (any width): one element per thread. F32 rows are read as floats (the launcher
// checks 4-byte alignment), F16 / BF16 as 16-bit words (2-byte alignment).
template <WeightType T>
__global__ void embed_float_kernel(const uint8_t* __restrict__ table, int64_t row_bytes, int64_t width,
                                   const int32_t* __restrict__ ids, int64_t n, float* __restrict__ out) {
    for (int64_t t = blockIdx.y; t < n; t += gridDim.y) {
        const uint8_t* row = table + static_cast<int64_t>(ids[t]) * row_bytes;
        for (int64_t j = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; j < width;
             j += int64_t(gridDim.x) * blockDim.x) {
            float v;
            if constexpr (T == WeightType::F32) {
                v = reinterpret_cast<const float*>(row)[j];
            } else {
                const uint32_t h = reinterpret_cast<const uint16_t*>(row)[j];
                v = T == WeightType::F16 ? qd::f16_to_f32(h) : qd::bf16_to_f32(h);
            }
            out[t * width + j] = v;
        }
    }
}

// Block tables (width a multiple of 32): one 32-element group per thread, decoded by decode32.
template <WeightType T>
__global__ void embed_block_kernel(const uint8_t* __restrict__ table, int64_t row_bytes, int64_t width,
                                   const int32_t* __restrict__ ids, int64_t n, float* __restrict__ out) {
    const int64_t groups = width / 32;
    for (int64_t t = blockIdx.y; t < n; t += gridDim.y) {
        const uint8_t* row = table + static_cast<int64_t>(ids[t]) * row_bytes;
        for (int64_t g = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; g < groups;
             g += int64_t(gridDim.x) * blockDim.x) {
            float v[32];
            decode32<T>(row, g, v);
            float* o = out + t * width + g * 32;
#pragma unroll
            for (int j = 0; j < 32; ++j) o[j] = v[j];
        }
    }
}

}  // namespace hymoe::kernels
