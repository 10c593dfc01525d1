// Causal attention over the KV cache, flash-decoding style, in f32 throughout.
//
// One query (token t, head h) is owned by a thread block, or on sm_90 by a cluster of up to 8
// blocks (split-K without scratch: the partial results are combined through distributed shared
// memory). Inside, every warp owns 32-key chunks of the key range (chunk c goes to warp
// c mod total_warps) and keeps an online softmax over them:
//   scores: lane-parallel dot products over dim_k, 8 keys in flight, warp-reduced; lane i ends
//           up holding the score of the chunk's key i;
//   softmax: running max m and sum l; the accumulator is rescaled by exp(m_old - m_new);
//   values: the chunk's probabilities are broadcast lane by lane, lanes split dim_v (each lane
//           keeps kValsPerLane accumulators: dims lane, lane + 32, ...).
// At the end every warp's (m, l, acc) goes to shared memory and the block (or cluster) merges
// them, adds the sink logit, normalizes and writes dim_v floats. Shared memory is bounded by
// dim_k + n_warps * dim_v floats for any context length.
//
// Prefill runs through the same kernel (one block per (token, head), no tensor cores); heads
// of one GQA group re-read the same keys, which L2 absorbs.
#pragma once

#include <cooperative_groups.h>

#include <cstdint>

#include "launch.hpp"

namespace hymoe::kernels {

namespace attention_detail {

constexpr int kWarpSize = 32;
constexpr int kChunk = 32;        // keys per online-softmax step of one warp: one per lane
constexpr int kKeysInFlight = 8;  // keys whose dot products one warp computes together
constexpr int kMaxWarps = 16;     // per block
constexpr int kMaxThreads = kMaxWarps * kWarpSize;
constexpr int kMaxCluster = 8;  // portable cluster size limit
constexpr unsigned kFullMask = 0xffffffffu;

__device__ __forceinline__ float warp_sum(float x) {
#pragma unroll
    for (int offset = kWarpSize / 2; offset > 0; offset >>= 1) x += __shfl_xor_sync(kFullMask, x, offset);
    return x;
}

__device__ __forceinline__ float warp_max(float x) {
#pragma unroll
    for (int offset = kWarpSize / 2; offset > 0; offset >>= 1) x = fmaxf(x, __shfl_xor_sync(kFullMask, x, offset));
    return x;
}

// Shared memory of one block, in floats: q [dim_k] | m [n_warps] | l [n_warps] |
// factor [n_warps * cluster_size] | acc [n_warps][dim_v].
inline size_t shared_floats(int64_t dim_k, int64_t dim_v, int n_warps, int cluster_size) {
    return static_cast<size_t>(dim_k + 2 * n_warps + n_warps * cluster_size + n_warps * dim_v);
}

// The same shared-memory address in block `rank` of this block's cluster (this block's own
// when there is no cluster).
__device__ __forceinline__ float* cluster_smem(float* local, int rank, int cluster_size) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    if (cluster_size > 1) return cooperative_groups::this_cluster().map_shared_rank(local, rank);
#endif
    (void)rank;
    (void)cluster_size;
    return local;
}

// A barrier over the whole cluster (every block's shared-memory writes visible to the others),
// or over the block when there is no cluster.
__device__ __forceinline__ void cluster_barrier(int cluster_size) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    if (cluster_size > 1) {
        cooperative_groups::this_cluster().sync();
        return;
    }
#endif
    __syncthreads();
}

}  // namespace attention_detail

// grid: n_tokens * n_heads * cluster_size blocks (block b: query (t, h) with b / cluster_size =
// t * n_heads + h, rank b % cluster_size), launched in clusters of cluster_size along x.
// block: n_warps * 32 threads, n_warps <= kMaxWarps. dynamic shared memory: shared_floats(...) floats.
// kValsPerLane * 32 >= dim_v. Launch bounds (512, 1): up to 128 registers, spent on loads in flight
// (without the 1, ptxas held some instantiations to 64 registers and spilled).
template <int kValsPerLane>
__global__ void __launch_bounds__(attention_detail::kMaxThreads, 1)
    attention_kernel(const AttentionParams p, const int cluster_size) {
    using namespace attention_detail;
#if !(defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900)
    if (cluster_size > 1) __trap();  // the launcher only asks for clusters from sm_90 code
#endif
    constexpr int kValueKeys = kValsPerLane >= 16 ? 2 : 4;
    extern __shared__ float smem[];
    const int n_warps = static_cast<int>(blockDim.x) / kWarpSize;
    const int warp = static_cast<int>(threadIdx.x) / kWarpSize;
    const int lane = static_cast<int>(threadIdx.x) % kWarpSize;
    const int rank = static_cast<int>(blockIdx.x) % cluster_size;
    const int64_t query = blockIdx.x / cluster_size;
    const int64_t h = query % p.n_heads;
    const int64_t t = query / p.n_heads;
    const int64_t g = h / (p.n_heads / p.n_kv_heads);
    const int dim_k = static_cast<int>(p.dim_k);
    const int dim_v = static_cast<int>(p.dim_v);

    // Keys [first_key, pos] are visible to this query.
    const int64_t pos = p.n_past + t;
    const int64_t first_key = p.window > 0 ? (pos - p.window + 1 > 0 ? pos - p.window + 1 : 0) : 0;
    const int64_t n_keys = pos + 1 - first_key;  // >= 1

    float* q_s = smem;                            // [dim_k]
    float* m_s = q_s + dim_k;                     // [n_warps] each warp's running max
    float* l_s = m_s + n_warps;                   // [n_warps] each warp's sum of exp(s - m)
    float* f_s = l_s + n_warps;                   // [n_warps * cluster_size] merge factors
    float* acc_s = f_s + n_warps * cluster_size;  // [n_warps][dim_v] each warp's Σ exp(s - m) v

    const float* q = p.q + t * p.q_token_stride + h * p.q_head_stride;  // [dim_k]
    for (int d = threadIdx.x; d < dim_k; d += blockDim.x) q_s[d] = __ldg(q + d);
    __syncthreads();

    const float* k_rows = p.k + g * p.k_head_stride + first_key * p.k_pos_stride;  // [n_keys] rows of [dim_k]
    const float* v_rows = p.v + g * p.v_head_stride + first_key * p.v_pos_stride;  // [n_keys] rows of [dim_v]

    float m = -INFINITY;      // running max of this warp's scores
    float l = 0.0f;           // this lane's share of Σ exp(s - m)
    float acc[kValsPerLane];  // Σ exp(s - m) v over dims lane + 32 i
#pragma unroll
    for (int i = 0; i < kValsPerLane; ++i) acc[i] = 0.0f;

    const int64_t n_chunks = (n_keys + kChunk - 1) / kChunk;
    const int total_warps = n_warps * cluster_size;
    for (int64_t c = int64_t(rank) * n_warps + warp; c < n_chunks; c += total_warps) {
        const int64_t chunk_first = c * kChunk;
        const int count = static_cast<int>(n_keys - chunk_first < kChunk ? n_keys - chunk_first : kChunk);  // 1..32
        const float* k_chunk = k_rows + chunk_first * p.k_pos_stride;

        // Scores: lane `lane` keeps the score of key `lane` of the chunk (-inf past its end).
        float s = -INFINITY;
        for (int j0 = 0; j0 < count; j0 += kKeysInFlight) {
            const float* rows[kKeysInFlight];
            float dot[kKeysInFlight];
#pragma unroll
            for (int kk = 0; kk < kKeysInFlight; ++kk) {
                // Past the chunk's end, re-read its last key (valid memory); the dot is dropped.
                const int j = j0 + kk < count ? j0 + kk : count - 1;
                rows[kk] = k_chunk + j * p.k_pos_stride;
                dot[kk] = 0.0f;
            }
#pragma unroll 2
            for (int d = lane; d < dim_k; d += kWarpSize) {
                const float qd = q_s[d];
#pragma unroll
                for (int kk = 0; kk < kKeysInFlight; ++kk) dot[kk] = fmaf(qd, __ldg(rows[kk] + d), dot[kk]);
            }
#pragma unroll
            for (int kk = 0; kk < kKeysInFlight; ++kk) {
                const float total = warp_sum(dot[kk]);
                if (lane == j0 + kk && j0 + kk < count) s = total * p.scale;
            }
        }

        // Online softmax: fold the chunk into (m, l, acc).
        const float new_m = fmaxf(m, warp_max(s));  // finite: key 0 of the chunk is valid
        const float rescale = expf(m - new_m);      // 0 on the first chunk (m = -inf)
        const float prob = expf(s - new_m);         // 0 for lanes past the chunk's end
        l = l * rescale + prob;
#pragma unroll
        for (int i = 0; i < kValsPerLane; ++i) acc[i] *= rescale;
        m = new_m;

        // Values: kValueKeys keys per step (loads in flight: kValueKeys * kValsPerLane); keys past
        // the end have prob 0 and re-read the last row.
        const float* v_chunk = v_rows + chunk_first * p.v_pos_stride;
        for (int j0 = 0; j0 < count; j0 += kValueKeys) {  // j0 <= 32 - kValueKeys, so j0 + kk < 32
#pragma unroll
            for (int kk = 0; kk < kValueKeys; ++kk) {
                const int j = j0 + kk;
                const float pj = __shfl_sync(kFullMask, prob, j);
                const float* row = v_chunk + (j < count ? j : count - 1) * p.v_pos_stride;
#pragma unroll
                for (int i = 0; i < kValsPerLane; ++i) {
                    const int d = lane + i * kWarpSize;
                    if (d < dim_v) acc[i] = fmaf(pj, __ldg(row + d), acc[i]);
                }
            }
        }
    }

    // Publish this warp's partial result. A warp without chunks publishes (-inf, 0, 0).
    l = warp_sum(l);
    if (lane == 0) {
        m_s[warp] = m;
        l_s[warp] = l;
    }
#pragma unroll
    for (int i = 0; i < kValsPerLane; ++i) {
        const int d = lane + i * kWarpSize;
        if (d < dim_v) acc_s[warp * dim_v + d] = acc[i];
    }
    cluster_barrier(cluster_size);

    // Merge: M = max over warps (and the sink), L = Σ_w l_w exp(m_w - M) (+ exp(sink - M)),
    // factor_w = exp(m_w - M) / L. Every thread below total_warps computes M and L itself.
    if (static_cast<int>(threadIdx.x) < total_warps) {
        const float sink = p.sinks != nullptr ? __ldg(p.sinks + h) : -INFINITY;
        float big = sink;
        for (int r = 0; r < cluster_size; ++r) {
            const float* m_r = cluster_smem(m_s, r, cluster_size);
            for (int w = 0; w < n_warps; ++w) big = fmaxf(big, m_r[w]);
        }
        float sum = p.sinks != nullptr ? expf(sink - big) : 0.0f;
        for (int r = 0; r < cluster_size; ++r) {
            const float* m_r = cluster_smem(m_s, r, cluster_size);
            const float* l_r = cluster_smem(l_s, r, cluster_size);
            for (int w = 0; w < n_warps; ++w) sum += l_r[w] * expf(m_r[w] - big);
        }
        const int r = static_cast<int>(threadIdx.x) / n_warps, w = static_cast<int>(threadIdx.x) % n_warps;
        f_s[threadIdx.x] = expf(cluster_smem(m_s, r, cluster_size)[w] - big) / sum;
    }
    __syncthreads();

    // Output dims are split over the blocks of the cluster.
    float* out = p.out + t * p.out_token_stride + h * p.out_head_stride;  // [dim_v]
    for (int d = rank * static_cast<int>(blockDim.x) + static_cast<int>(threadIdx.x); d < dim_v;
         d += cluster_size * static_cast<int>(blockDim.x)) {
        float o = 0.0f;
        for (int r = 0; r < cluster_size; ++r) {
            const float* acc_r = cluster_smem(acc_s, r, cluster_size);
            for (int w = 0; w < n_warps; ++w) o = fmaf(f_s[r * n_warps + w], acc_r[w * dim_v + d], o);
        }
        out[d] = o;
    }
    // No block may leave (and free its shared memory) while another still reads it.
    if (cluster_size > 1) cluster_barrier(cluster_size);
}

}  // namespace hymoe::kernels
