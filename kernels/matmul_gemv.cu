// Launchers of the GEMV kernel (matmul_gemv.cuh): a single matrix, a grouped product over
// experts, and the fused gate/up/GLU of an expert FFN.
#include "launch.hpp"
#include "matmul_gemv.cuh"
#include "matmul_internal.hpp"

namespace hymoe::kernels {

namespace {

// Tokens per kernel pass: n rounded up to 1, 2, 4 or 8 (four instantiations per type); more
// than 8 tokens loop inside the kernel, 8 at a time.
int tokens_per_pass(int64_t n) {
    if (n <= 1) return 1;
    if (n <= 2) return 2;
    if (n <= 4) return 4;
    return 8;
}

template <WeightType T, int NT>
void launch(const gemv::Args& a, dim3 grid, cudaStream_t stream) {
    gemv::gemv_kernel<T, NT><<<grid, gemv::kThreads, 0, stream>>>(a);
}

// The one place the weight type and the token count become template parameters.
cudaError_t dispatch(WeightType type, int64_t tokens, const gemv::Args& a, dim3 grid, cudaStream_t stream) {
    const int nt = tokens_per_pass(tokens);
    const bool known = dispatch_weight_type(type, [&](auto tag) {
        constexpr WeightType T = decltype(tag)::value;
        switch (nt) {
            case 1: launch<T, 1>(a, grid, stream); break;
            case 2: launch<T, 2>(a, grid, stream); break;
            case 4: launch<T, 4>(a, grid, stream); break;
            default: launch<T, 8>(a, grid, stream); break;
        }
    });
    if (!known) return cudaErrorInvalidValue;
    return cudaGetLastError();
}

unsigned row_blocks(int64_t rows, bool fused) {
    const int per = gemv::rows_per_block(fused);
    return static_cast<unsigned>((rows + per - 1) / per);
}

// Grid columns of a grouped launch: one per expert that can be active. Each active expert has at
// least one pair, so there are at most n_pairs of them: a decode step's 8 of 256 experts then
// launches 8 columns, not 256 mostly empty ones.
unsigned expert_slots(const GroupedMatmul& g) {
    return static_cast<unsigned>(g.n_experts < g.n_pairs ? g.n_experts : g.n_pairs);
}

// Row blocks must fit a grid's x dimension.
bool rows_fit(int64_t rows) {
    return rows <= int64_t(0x7fffffff) * gemv::kWarps;
}

}  // namespace

cudaError_t matmul_gemv(const WeightMatrix& w, const float* x, int64_t n, float* y, cudaStream_t stream) {
    if (!valid_weight_matrix(w) || n < 0 || !rows_fit(w.rows)) return cudaErrorInvalidValue;
    if (n == 0 || w.rows == 0) return cudaSuccess;
    if (x == nullptr || y == nullptr) return cudaErrorInvalidValue;
    gemv::Args a;
    a.w = static_cast<const uint8_t*>(w.data);
    a.row_bytes = w.row_bytes;
    a.rows = w.rows;
    a.cols = w.cols;
    a.x = x;
    a.y = y;
    a.n_tokens = n;
    return dispatch(w.type, n, a, dim3(row_blocks(w.rows, false), 1), stream);
}

cudaError_t grouped_matmul_gemv(const GroupedMatmul& g, cudaStream_t stream) {
    if (!valid_grouped(g) || !rows_fit(g.rows)) return cudaErrorInvalidValue;
    if (g.n_pairs == 0 || g.rows == 0) return cudaSuccess;
    gemv::Args a;
    a.w_list = g.w;
    a.row_bytes = g.row_bytes;
    a.rows = g.rows;
    a.cols = g.cols;
    a.x = g.x;
    a.x_rows = g.x_rows;
    a.y = g.y;
    a.offsets = g.offsets;
    a.active = g.active;
    a.n_active = g.n_active;
    const dim3 grid(row_blocks(g.rows, false), expert_slots(g));
    return dispatch(g.type, g.max_pairs_per_expert, a, grid, stream);
}

cudaError_t grouped_glu_gemv(const GroupedGluGemv& f, cudaStream_t stream) {
    const GroupedMatmul& g = f.g;
    if (!valid_grouped(g) || !rows_fit(g.rows) || f.x_rows_div < 1) return cudaErrorInvalidValue;
    if (f.glu.kind != Glu::SwiGlu && f.glu.kind != Glu::SwiGluOai) return cudaErrorInvalidValue;
    if (g.n_pairs == 0 || g.rows == 0) return cudaSuccess;
    if (f.up == nullptr) return cudaErrorInvalidValue;
    gemv::Args a;
    a.w_list = g.w;
    a.w2_list = f.up;
    a.row_bytes = g.row_bytes;
    a.rows = g.rows;
    a.cols = g.cols;
    a.x = g.x;
    a.x_rows = f.x_rows;
    a.x_rows_div = f.x_rows_div;
    a.y = g.y;
    a.offsets = g.offsets;
    a.active = g.active;
    a.n_active = g.n_active;
    a.bias0 = f.gate_bias;
    a.bias1 = f.up_bias;
    a.glu_kind = static_cast<int32_t>(f.glu.kind);
    a.glu_alpha = f.glu.alpha;
    a.glu_limit = f.glu.limit;
    const dim3 grid(row_blocks(g.rows, true), expert_slots(g));
    return dispatch(g.type, g.max_pairs_per_expert, a, grid, stream);
}

}  // namespace hymoe::kernels
