// MoE expert selection, as hymoe::cpu::route (src/cpu/ops.cpp), one warp per token.
//
// The choice must be the CPU's exactly (a different expert is a different model output), so
// the gate values are computed as the reference computes them: exp in double rounded once to
// float (what glibc's expf returns), sums in double, IEEE division; and the top-k uses the
// reference's order, value descending then index ascending, which is a strict total order: the
// r-th choice is the best element strictly worse than the (r-1)-th, found by one warp-wide
// argmax per choice with nothing marked or removed. Only used by route(), so the kernel lives
// here rather than in a header.
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "launch.hpp"

namespace hymoe::kernels {
namespace {

constexpr int kWarps = 4;  // tokens per block
// Shared memory per warp: probs [n_experts], select [n_experts], group scores [n_groups].
constexpr int kMaxExperts = 1024;

// a comes before b in the reference's top_k order.
__device__ __forceinline__ bool before(float va, int ia, float vb, int ib) {
    return va > vb || (va == vb && ia < ib);
}

// The first element of values[0, n) in top_k order that comes strictly after (pv, pi); every lane
// gets the same answer. Index -1 when there is none.
__device__ int next_best(const float* values, int n, float pv, int pi, int lane, float& best_v) {
    float bv = 0.0f;
    int bi = -1;
    for (int e = lane; e < n; e += 32) {
        const float v = values[e];
        if (before(pv, pi, v, e) && (bi < 0 || before(v, e, bv, bi))) {
            bv = v;
            bi = e;
        }
    }
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) {
        const float ov = __shfl_xor_sync(0xffffffffu, bv, off);
        const int oi = __shfl_xor_sync(0xffffffffu, bi, off);
        if (oi >= 0 && (bi < 0 || before(ov, oi, bv, bi))) {
            bv = ov;
            bi = oi;
        }
    }
    best_v = bv;
    return bi;
}

__device__ __forceinline__ float exp_f(float x) {
    return static_cast<float>(exp(static_cast<double>(x)));
}

__device__ float warp_max(float v) {
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, off));
    return v;
}

__device__ double warp_sum(double v) {
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
    return v;
}

// cpu::softmax of k floats, serially (one lane): max, exp, sum in double, multiply by 1/sum.
__device__ void softmax_serial(float* x, int n) {
    float m = x[0];
    for (int i = 1; i < n; ++i) m = x[i] > m ? x[i] : m;
    double sum = 0.0;
    for (int i = 0; i < n; ++i) {
        x[i] = exp_f(x[i] - m);
        sum += x[i];
    }
    const auto inv = static_cast<float>(1.0 / sum);
    for (int i = 0; i < n; ++i) x[i] = __fmul_rn(x[i], inv);
}

__global__ void __launch_bounds__(kWarps * 32)
    route_kernel(RouterParams p, const float* __restrict__ logits, const float* __restrict__ selection_bias,
                 int64_t n_tokens, int32_t* __restrict__ experts, float* __restrict__ weights) {
    extern __shared__ float smem[];  // [kWarps][2 * n_experts + n_groups]
    const int warp = static_cast<int>(threadIdx.x) / 32;
    const int lane = static_cast<int>(threadIdx.x) % 32;
    const int n = p.n_experts, k = p.n_used;
    float* probs = smem + warp * (2 * n + p.n_groups);  // [n] what the weights are taken from
    float* select = probs + n;                          // [n] what the choice is made on
    float* group_scores = select + n;                   // [n_groups]

    for (int64_t t = int64_t(blockIdx.x) * kWarps + warp; t < n_tokens; t += int64_t(gridDim.x) * kWarps) {
        const float* lg = logits + t * n;  // [n_experts]
        switch (p.gating) {
            case Gating::Softmax: {
                float m = -INFINITY;
                for (int e = lane; e < n; e += 32) m = fmaxf(m, lg[e]);
                m = warp_max(m);
                double sum = 0.0;
                for (int e = lane; e < n; e += 32) {
                    probs[e] = exp_f(lg[e] - m);
                    sum += probs[e];
                }
                // The reference sums in index order; in double the order changes nothing that
                // survives the rounding of 1/sum to float (but for a freak tie on a halfway point).
                const auto inv = static_cast<float>(1.0 / warp_sum(sum));
                for (int e = lane; e < n; e += 32) probs[e] = __fmul_rn(probs[e], inv);
                break;
            }
            case Gating::Sigmoid:
                for (int e = lane; e < n; e += 32) probs[e] = 1.0f / (1.0f + exp_f(-lg[e]));
                break;
            case Gating::SoftmaxOverTopK:
                for (int e = lane; e < n; e += 32) probs[e] = lg[e];
                break;
        }
        for (int e = lane; e < n; e += 32)
            select[e] = selection_bias != nullptr ? probs[e] + selection_bias[e] : probs[e];
        __syncwarp();

        if (p.n_groups > 1) {
            // Keep only the experts of the n_groups_used best groups. A group's score is the
            // reference's serial scan (best, and second best for TopTwoSum), one lane per group.
            const int per_group = n / p.n_groups;
            for (int g = lane; g < p.n_groups; g += 32) {
                float best = -INFINITY, second = -INFINITY;
                for (int e = g * per_group; e < (g + 1) * per_group; ++e) {
                    const float v = select[e];
                    if (v > best) {
                        second = best;
                        best = v;
                    } else if (v > second) {
                        second = v;
                    }
                }
                group_scores[g] = p.group_score == GroupScore::Max ? best : best + (per_group > 1 ? second : 0.0f);
            }
            __syncwarp();
            // The last kept group in top_k order: a group is kept when it does not come after it.
            float last_v = INFINITY;
            int last_g = -1;
            for (int r = 0; r < p.n_groups_used; ++r)
                last_g = next_best(group_scores, p.n_groups, last_v, last_g, lane, last_v);
            for (int e = lane; e < per_group * p.n_groups; e += 32) {
                const int g = e / per_group;
                if (before(last_v, last_g, group_scores[g], g)) select[e] = -INFINITY;
            }
            __syncwarp();
        }

        int32_t* ex = experts + t * k;  // [n_used]
        float* wt = weights + t * k;    // [n_used]
        float pv = INFINITY;
        int pi = -1;  // (+inf, -1) comes before every element
        for (int r = 0; r < k; ++r) {
            float v;
            const int e = next_best(select, n, pv, pi, lane, v);
            // Only NaN scores (which no order ranks) can run the candidates out before k; such a
            // slot gets expert 0 with weight 0 rather than an index out of range.
            if (lane == 0) {
                ex[r] = e >= 0 ? e : 0;
                wt[r] = e >= 0 ? probs[e] : 0.0f;
            }
            if (e >= 0) {
                pv = v;
                pi = e;
            }
        }
        if (lane == 0) {
            // The k weights are few: one lane finishes them in the reference's order.
            if (p.gating == Gating::SoftmaxOverTopK) softmax_serial(wt, k);
            if (p.norm_topk) {
                double sum = 0.0;
                for (int i = 0; i < k; ++i) sum += wt[i];
                for (int i = 0; i < k; ++i) wt[i] = static_cast<float>(wt[i] / sum);
            }
            for (int i = 0; i < k; ++i) wt[i] = __fmul_rn(wt[i], p.routed_scale);
        }
        __syncwarp();  // probs and select are rewritten for the next token
    }
}

}  // namespace

cudaError_t route(const RouterParams& p, const float* logits, const float* selection_bias, int64_t n_tokens,
                  int32_t* experts, float* weights, cudaStream_t stream) {
    if (n_tokens < 0) return cudaErrorInvalidValue;
    if (p.n_experts < 1 || p.n_experts > kMaxExperts || p.n_used < 1 || p.n_used > p.n_experts)
        return cudaErrorInvalidValue;
    if (p.n_groups < 1 || p.n_experts % p.n_groups != 0 || p.n_groups_used < 1 || p.n_groups_used > p.n_groups)
        return cudaErrorInvalidValue;
    if (p.gating != Gating::Softmax && p.gating != Gating::Sigmoid && p.gating != Gating::SoftmaxOverTopK)
        return cudaErrorInvalidValue;
    if (p.group_score != GroupScore::Max && p.group_score != GroupScore::TopTwoSum) return cudaErrorInvalidValue;
    if (n_tokens == 0) return cudaSuccess;
    if (logits == nullptr || experts == nullptr || weights == nullptr) return cudaErrorInvalidValue;
    const size_t smem = sizeof(float) * kWarps * (2 * static_cast<size_t>(p.n_experts) + p.n_groups);
    const auto blocks = static_cast<unsigned>(std::min<int64_t>((n_tokens + kWarps - 1) / kWarps, int64_t(1) << 20));
    route_kernel<<<blocks, kWarps * 32, smem, stream>>>(p, logits, selection_bias, n_tokens, experts, weights);
    return cudaGetLastError();
}

}  // namespace hymoe::kernels
