#include <type_traits>

#include "attention.cuh"
#include "launch.hpp"

namespace hymoe::kernels {

namespace {

using attention_detail::kMaxCluster;
using attention_detail::kMaxWarps;
using attention_detail::kWarpSize;

constexpr int64_t kMaxDimV = 576;              // MLA's latent + rope (DeepSeek): 18 floats per lane
constexpr size_t kMaxSharedBytes = 48 * 1024;  // the default dynamic limit: no opt-in attribute needed
constexpr int64_t kKeysPerWarp = 64;           // at least two chunks per warp before adding warps

// The one place where a runtime value becomes a template parameter: dim_v picks how many
// accumulators each lane keeps (dims lane, lane + 32, ...). f(std::integral_constant<int, N>).
template <typename F>
cudaError_t with_vals_per_lane(int64_t dim_v, F&& f) {
    if (dim_v <= 64) return f(std::integral_constant<int, 2>{});
    if (dim_v <= 128) return f(std::integral_constant<int, 4>{});
    if (dim_v <= 256) return f(std::integral_constant<int, 8>{});
    if (dim_v <= 512) return f(std::integral_constant<int, 16>{});
    if (dim_v <= kMaxDimV) return f(std::integral_constant<int, 18>{});
    return cudaErrorInvalidValue;
}

bool valid(const AttentionParams& p) {
    if (p.q == nullptr || p.k == nullptr || p.v == nullptr || p.out == nullptr) return false;
    if (p.n_heads < 1 || p.n_kv_heads < 1 || p.n_heads % p.n_kv_heads != 0) return false;
    if (p.dim_k < 1 || p.dim_v < 1 || p.dim_v > kMaxDimV) return false;
    if (p.n_past < 0 || p.window < 0) return false;
    // Strides are non-negative (rows never run backwards).
    if (p.q_token_stride < 0 || p.q_head_stride < 0 || p.k_pos_stride < 0 || p.k_head_stride < 0 ||
        p.v_pos_stride < 0 || p.v_head_stride < 0 || p.out_token_stride < 0 || p.out_head_stride < 0)
        return false;
    return true;
}

struct LaunchShape {
    int n_warps = 1;
    int cluster_size = 1;
    size_t shared_bytes = 0;
};

// Whether `kernel` runs sm_90 code here (clusters and distributed shared memory). An sm_80 binary
// JIT-run on a Hopper GPU does not: its cluster code is compiled out.
template <typename Kernel>
bool clusters_available(Kernel kernel, int device) {
    int major = 0;
    if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess) return false;
    if (major < 9) return false;
    cudaFuncAttributes attr{};
    if (cudaFuncGetAttributes(&attr, kernel) != cudaSuccess) return false;
    return attr.ptxVersion >= 90 && attr.binaryVersion >= 90;
}

// Warps per block and blocks per query. A query's keys are spread over warps (each owning at least
// kKeysPerWarp of the longest query's keys); when the grid would leave most SMs idle (decode over
// a long context), a query is also split over a cluster of blocks.
template <typename Kernel>
cudaError_t choose_shape(const AttentionParams& p, Kernel kernel, LaunchShape* shape) {
    const int64_t context = p.n_past + p.n_tokens;
    const int64_t max_keys = p.window > 0 && p.window < context ? p.window : context;
    const int64_t queries = p.n_tokens * p.n_heads;

    int device = 0, n_sms = 0;
    cudaError_t err = cudaGetDevice(&device);
    if (err != cudaSuccess) return err;
    err = cudaDeviceGetAttribute(&n_sms, cudaDevAttrMultiProcessorCount, device);
    if (err != cudaSuccess) return err;

    int64_t n_warps = (max_keys + kKeysPerWarp - 1) / kKeysPerWarp;
    n_warps = n_warps < 1 ? 1 : (n_warps > kMaxWarps ? kMaxWarps : n_warps);
    // Many queries (prefill): smaller blocks waste less at the causal edge, and there are enough.
    if (queries >= 4 * int64_t(n_sms) && n_warps > 4) n_warps = 4;
    while (n_warps > 1 &&
           attention_detail::shared_floats(p.dim_k, p.dim_v, int(n_warps), 1) * sizeof(float) > kMaxSharedBytes)
        --n_warps;

    int64_t cluster = 1;
    if (n_warps == kMaxWarps && 2 * queries <= n_sms && clusters_available(kernel, device)) {
        const int64_t by_sms = n_sms / queries;
        const int64_t by_keys = (max_keys + kMaxWarps * kKeysPerWarp - 1) / (kMaxWarps * kKeysPerWarp);
        cluster = by_sms < by_keys ? by_sms : by_keys;
        cluster = cluster < 1 ? 1 : (cluster > kMaxCluster ? kMaxCluster : cluster);
        // The merge factors grow with the cluster; near the limit, stay with one block.
        if (attention_detail::shared_floats(p.dim_k, p.dim_v, int(n_warps), int(cluster)) * sizeof(float) >
            kMaxSharedBytes)
            cluster = 1;
    }

    shape->n_warps = int(n_warps);
    shape->cluster_size = int(cluster);
    shape->shared_bytes = attention_detail::shared_floats(p.dim_k, p.dim_v, int(n_warps), int(cluster)) * sizeof(float);
    if (shape->shared_bytes > kMaxSharedBytes) return cudaErrorInvalidValue;  // dim_k too large
    return cudaSuccess;
}

}  // namespace

cudaError_t attention(const AttentionParams& p, cudaStream_t stream) {
    if (p.n_tokens < 0) return cudaErrorInvalidValue;
    if (p.n_tokens == 0) return cudaSuccess;
    if (!valid(p)) return cudaErrorInvalidValue;
    return with_vals_per_lane(p.dim_v, [&](auto vals) -> cudaError_t {
        const auto kernel = attention_kernel<decltype(vals)::value>;
        LaunchShape shape;
        const cudaError_t err = choose_shape(p, kernel, &shape);
        if (err != cudaSuccess) return err;
        const int64_t blocks = p.n_tokens * p.n_heads * shape.cluster_size;
        if (blocks > 0x7fffffff) return cudaErrorInvalidValue;

        cudaLaunchConfig_t config{};
        config.gridDim = dim3(static_cast<unsigned>(blocks));
        config.blockDim = dim3(static_cast<unsigned>(shape.n_warps * kWarpSize));
        config.dynamicSmemBytes = shape.shared_bytes;
        config.stream = stream;
        cudaLaunchAttribute attr[1];
        if (shape.cluster_size > 1) {
            attr[0].id = cudaLaunchAttributeClusterDimension;
            attr[0].val.clusterDim.x = static_cast<unsigned>(shape.cluster_size);
            attr[0].val.clusterDim.y = 1;
            attr[0].val.clusterDim.z = 1;
            config.attrs = attr;
            config.numAttrs = 1;
        }
        const cudaError_t launch_err = cudaLaunchKernelEx(&config, kernel, p, shape.cluster_size);
        if (launch_err != cudaSuccess) return launch_err;
        return cudaGetLastError();
    });
}

}  // namespace hymoe::kernels
