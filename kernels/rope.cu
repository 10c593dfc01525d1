// RoPE, as cpu::rope_angles + cpu::rope_rotate (src/cpu/ops.cpp), YaRN included. The kernel
// serves this launcher alone, so it lives here.
//
// The reference is compiled with -ffp-contract=off: every product followed by an add is spelled
// __fmul_rn / __fadd_rn so nvcc does not fuse it into an FMA. cos and sin of the float angle are
// taken in double and rounded once, which gives glibc's cosf / sinf (nearly always correctly
// rounded); the angles are computed once per (token, block) and shared by the block's heads.
#include <algorithm>
#include <cstdint>

#include "launch.hpp"

namespace hymoe::kernels {
namespace {

constexpr int kThreads = 256;
// Shared memory holds one (cos, sin) per pair: 8 bytes * 4096 pairs = 32 KiB, under the 48 KiB
// a launch gets without opting in. Real models rotate at most a few hundred dims.
constexpr int kMaxPairs = 4096;

// cpu::rope_angles for pair i at position pos: (cos, sin) * mscale. Every step is rounded as the
// reference rounds it; theta at a large position is a big number whose last bit moves cos a lot,
// so it must come out bit for bit.
__device__ __forceinline__ float2 rope_cos_sin(const RopeParams& p, int64_t pos, int i) {
    const double inv_freq =
        pow(static_cast<double>(p.base), -2.0 * static_cast<double>(i) / static_cast<double>(p.n_dims));
    const float theta_extrap = static_cast<float>(static_cast<double>(pos) * inv_freq);
    const float theta_interp = __fmul_rn(p.freq_scale, theta_extrap);
    float theta = theta_interp;
    if (p.ext_factor != 0.0f) {
        // ggml's rope_yarn_ramp: 1 below corr_low (extrapolate), 0 above corr_high (interpolate).
        const float y =
            __fdiv_rn(__fsub_rn(static_cast<float>(i), p.corr_low), fmaxf(0.001f, __fsub_rn(p.corr_high, p.corr_low)));
        const float ramp_mix = __fmul_rn(1.0f - fminf(fmaxf(y, 0.0f), 1.0f), p.ext_factor);
        theta = __fadd_rn(__fmul_rn(theta_interp, 1.0f - ramp_mix), __fmul_rn(theta_extrap, ramp_mix));
    }
    double s, c;
    sincos(static_cast<double>(theta), &s, &c);
    return make_float2(__fmul_rn(static_cast<float>(c), p.mscale), __fmul_rn(static_cast<float>(s), p.mscale));
}

// Block (x: token, y: a run of heads). The block's angles are computed once into shared memory
// and reused by its heads; threads then walk (head, pair) so that consecutive threads touch
// consecutive pairs of a head.
template <bool kNeox>
__global__ void __launch_bounds__(256)
    rope_kernel(RopeParams p, float* x, int64_t n_tokens, int64_t n_heads, int64_t token_stride, int64_t head_stride,
                int64_t pos0, int heads_per_block) {
    extern __shared__ float2 cs[];  // [n_dims / 2] (cos, sin)
    const int n_pairs = p.n_dims / 2;
    const int64_t h0 = int64_t(blockIdx.y) * heads_per_block;
    const int64_t h_count = min(static_cast<int64_t>(heads_per_block), n_heads - h0);
    for (int64_t t = blockIdx.x; t < n_tokens; t += gridDim.x) {
        for (int i = threadIdx.x; i < n_pairs; i += blockDim.x) cs[i] = rope_cos_sin(p, pos0 + t, i);
        __syncthreads();
        const int count = static_cast<int>(h_count) * n_pairs;  // the launcher keeps it within int
        for (int j = threadIdx.x; j < count; j += blockDim.x) {
            const int64_t h = h0 + j / n_pairs;
            const int i = j % n_pairs;
            float* head = x + t * token_stride + h * head_stride;
            const int i0 = kNeox ? i : 2 * i;
            const int i1 = kNeox ? i + n_pairs : 2 * i + 1;
            const float x0 = head[i0], x1 = head[i1];
            const float2 a = cs[i];
            head[i0] = __fsub_rn(__fmul_rn(x0, a.x), __fmul_rn(x1, a.y));
            head[i1] = __fadd_rn(__fmul_rn(x0, a.y), __fmul_rn(x1, a.x));
        }
        __syncthreads();  // cs is rewritten for the next token
    }
}

}  // namespace

cudaError_t rope(const RopeParams& p, float* x, int64_t n_tokens, int64_t n_heads, int64_t token_stride,
                 int64_t head_stride, int64_t pos0, cudaStream_t stream) {
    if (n_tokens < 0 || n_heads < 0 || pos0 < 0) return cudaErrorInvalidValue;
    if (n_tokens == 0 || n_heads == 0) return cudaSuccess;
    if (x == nullptr || p.n_dims <= 0 || p.n_dims % 2 != 0 || p.n_dims / 2 > kMaxPairs) return cudaErrorInvalidValue;
    const int n_pairs = p.n_dims / 2;
    // A block rotates about 512 pairs: several heads at a time for small heads, so a one-token
    // decode still spreads over n_heads * n_pairs / 512 blocks.
    const int heads_per_block = std::max(1, 512 / n_pairs);
    const int64_t head_blocks = (n_heads + heads_per_block - 1) / heads_per_block;
    if (head_blocks > 65535) return cudaErrorInvalidValue;
    const dim3 grid(static_cast<unsigned>(std::min<int64_t>(n_tokens, int64_t(1) << 20)),
                    static_cast<unsigned>(head_blocks), 1);
    const size_t smem = sizeof(float2) * static_cast<size_t>(n_pairs);
    // The one place the rotation style becomes a template parameter.
    if (p.neox) {
        rope_kernel<true><<<grid, kThreads, smem, stream>>>(p, x, n_tokens, n_heads, token_stride, head_stride, pos0,
                                                            heads_per_block);
    } else {
        rope_kernel<false><<<grid, kThreads, smem, stream>>>(p, x, n_tokens, n_heads, token_stride, head_stride, pos0,
                                                             heads_per_block);
    }
    return cudaGetLastError();
}

}  // namespace hymoe::kernels
