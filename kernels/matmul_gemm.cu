// Launchers of the tensor-core GEMM (matmul_gemm.cuh): one matrix (matmul_gemm, which matmul()
// runs for n > 8) and one MoE layer's active experts in one launch (grouped_matmul_gemm). They
// accept what the GEMV launchers accept (matmul_internal.hpp's checks), so matmul() may pick
// either path by n alone.
#include <cstdint>

#include "launch.hpp"
#include "matmul_gemm.cuh"
#include "matmul_internal.hpp"
#include "quant_decode.cuh"

namespace hymoe::kernels {
namespace {

// Grid dimensions y and z hold at most 65535 blocks.
constexpr int64_t kMaxGridYZ = 65535;

bool x_vectorizable(const float* x, int64_t cols) {
    return reinterpret_cast<uintptr_t>(x) % 16 == 0 && cols % 4 == 0;
}

// The one place the weight type becomes a template parameter. Grid: x = token tiles (fastest, so
// the blocks that share a weight tile run together and it is read from DRAM about once), y =
// output-row tiles, z = expert slots.
cudaError_t launch(WeightType type, const gemm::GemmArgs& a, int64_t token_tiles, int64_t slots, cudaStream_t stream) {
    const int64_t row_tiles = (a.rows + gemm::kTileN - 1) / gemm::kTileN;
    if (token_tiles > 0x7fffffff || row_tiles > kMaxGridYZ || slots > kMaxGridYZ) return cudaErrorInvalidValue;
    const dim3 grid(static_cast<unsigned>(token_tiles), static_cast<unsigned>(row_tiles), static_cast<unsigned>(slots));
    const bool known = dispatch_weight_type(type, [&](auto tag) {
        gemm::gemm_kernel<decltype(tag)::value><<<grid, gemm::kThreads, 0, stream>>>(a);
    });
    if (!known) return cudaErrorInvalidValue;
    return cudaGetLastError();
}

}  // namespace

cudaError_t matmul_gemm(const WeightMatrix& w, const float* x, int64_t n, float* y, cudaStream_t stream) {
    if (!valid_weight_matrix(w) || n < 0) return cudaErrorInvalidValue;
    if (n == 0 || w.rows == 0) return cudaSuccess;
    if (x == nullptr || y == nullptr) return cudaErrorInvalidValue;
    gemm::GemmArgs a;
    a.w = static_cast<const uint8_t*>(w.data);
    a.row_bytes = w.row_bytes;
    a.rows = w.rows;
    a.cols = w.cols;
    a.x = x;
    a.x_vec = x_vectorizable(x, w.cols);
    a.y = y;
    a.n = n;
    return launch(w.type, a, (n + gemm::kTileM - 1) / gemm::kTileM, 1, stream);
}

cudaError_t grouped_matmul_gemm(const GroupedMatmul& g, cudaStream_t stream) {
    if (!valid_grouped(g)) return cudaErrorInvalidValue;
    if (g.n_pairs == 0 || g.rows == 0) return cudaSuccess;
    // No expert holds more than all the pairs: a looser bound would only add empty blocks.
    const int64_t bound = g.max_pairs_per_expert < g.n_pairs ? g.max_pairs_per_expert : g.n_pairs;
    gemm::GemmArgs a;
    a.w_list = g.w;
    a.row_bytes = g.row_bytes;
    a.rows = g.rows;
    a.cols = g.cols;
    a.x = g.x;
    a.x_vec = x_vectorizable(g.x, g.cols);
    a.x_rows = g.x_rows;
    a.y = g.y;
    a.offsets = g.offsets;
    a.active = g.active;
    a.n_active = g.n_active;
    // One z slot per expert: how many are active is known only on the device; idle slots exit at once.
    return launch(g.type, a, (bound + gemm::kTileM - 1) / gemm::kTileM, g.n_experts, stream);
}

}  // namespace hymoe::kernels
