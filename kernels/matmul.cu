// The dispatcher of the matrix products: a few tokens take the GEMV (weights read once,
// dequantized in registers), more take the tensor-core GEMM (weight tiles dequantized to bf16
// in shared memory), where reading the weights once per 8 tokens would cost more than the MMA.
#include "launch.hpp"
#include "matmul_internal.hpp"

namespace hymoe::kernels {

namespace {
// Up to this many tokens (or pairs per expert) the GEMV wins: its kernel handles 8 per pass.
constexpr int64_t kGemvMaxTokens = 8;
}  // namespace

bool supports_weight_type(int32_t gguf_type) {
    return known_weight_type(static_cast<WeightType>(gguf_type));
}

cudaError_t matmul(const WeightMatrix& w, const float* x, int64_t n, float* y, cudaStream_t stream) {
    if (n < 0) return cudaErrorInvalidValue;
    return n <= kGemvMaxTokens ? matmul_gemv(w, x, n, y, stream) : matmul_gemm(w, x, n, y, stream);
}

cudaError_t grouped_matmul(const GroupedMatmul& g, cudaStream_t stream) {
    return g.max_pairs_per_expert <= kGemvMaxTokens ? grouped_matmul_gemv(g, stream) : grouped_matmul_gemm(g, stream);
}

}  // namespace hymoe::kernels
