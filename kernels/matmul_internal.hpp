// Declarations shared by the matmul files (matmul.cu, matmul_gemv.cu, matmul_gemm.cu,
// expert_ffn.cu); not part of launch.hpp's contract. Included by .cu files only.
#pragma once

#include <cstdint>

#include <cuda_runtime.h>

#include "launch.hpp"
#include "quant_decode.cuh"

namespace hymoe::kernels {

// The two paths of matmul(): the GEMV (matmul_gemv.cu; any n, meant for n <= 8) and the
// tensor-core GEMM (matmul_gemm.cu). Same contract as matmul().
cudaError_t matmul_gemv(const WeightMatrix& w, const float* x, int64_t n, float* y, cudaStream_t stream);
cudaError_t matmul_gemm(const WeightMatrix& w, const float* x, int64_t n, float* y, cudaStream_t stream);

// The gate, up and GLU of an expert FFN in one GEMV launch (matmul_gemv.cu):
//   y[p][r] = glu(Σ_c gate_e[r][c] x[row(p)][c] + gate_bias[e][r], Σ_c up_e[r][c] x[row(p)][c] + up_bias[e][r])
// with g describing the gate product (its x_rows ignored), up the up matrices (same type,
// rows, cols and row_bytes as gate), row(p) = x_rows[p] / x_rows_div (pair_order / n_used:
// no index array to build), or p when x_rows is null.
struct GroupedGluGemv {
    GroupedMatmul g;
    const void* const* up = nullptr;    // [n_experts] device array of [rows][row_bytes]
    const int32_t* x_rows = nullptr;    // [n_pairs] or null
    int32_t x_rows_div = 1;
    const float* gate_bias = nullptr;   // [n_experts][rows] or null
    const float* up_bias = nullptr;     // [n_experts][rows] or null
    GluParams glu;
};
cudaError_t grouped_glu_gemv(const GroupedGluGemv& f, cudaStream_t stream);

// ---- argument checks shared by the launchers ----

// Whether the kernels read `t` (a value of the enum that dispatch_weight_type knows).
inline bool known_weight_type(WeightType t) {
    return weight_block_elems(t) > 0;
}

// The alignment rows of `t` need: the float types are read as whole elements; the block types
// byte by byte (or through aligned words the kernels shift into place), so any address does.
inline int64_t weight_alignment(WeightType t) {
    return t == WeightType::F32 ? 4 : (t == WeightType::F16 || t == WeightType::BF16) ? 2 : 1;
}

// A weight matrix the kernels can read: known type, whole blocks per row, rows at least as long
// as their data and aligned for their type, memory present when there is anything to read.
inline bool valid_weight_matrix(const WeightMatrix& w) {
    if (!known_weight_type(w.type) || w.rows < 0 || w.cols < 0) return false;
    if (w.cols % weight_block_elems(w.type) != 0) return false;
    if (w.row_bytes < weight_row_bytes(w.type, w.cols)) return false;
    const int64_t align = weight_alignment(w.type);
    if (w.row_bytes % align != 0 || reinterpret_cast<uintptr_t>(w.data) % align != 0) return false;
    return w.rows == 0 || w.data != nullptr;
}

// A grouped product the kernels can run (pointers present, shapes consistent, bounds sane).
inline bool valid_grouped(const GroupedMatmul& g) {
    if (!known_weight_type(g.type) || g.rows < 0 || g.cols < 0 || g.n_pairs < 0 || g.n_experts < 0) return false;
    if (g.cols % weight_block_elems(g.type) != 0 || g.row_bytes < weight_row_bytes(g.type, g.cols)) return false;
    if (g.row_bytes % weight_alignment(g.type) != 0) return false;  // expert pointers: the caller's word
    if (g.n_pairs == 0 || g.rows == 0) return true;  // nothing to compute
    if (g.n_experts == 0 || g.n_experts > 65535) return false;  // one grid column per expert slot
    if (g.max_pairs_per_expert < 1) return false;
    return g.w != nullptr && g.x != nullptr && g.y != nullptr && g.offsets != nullptr && g.active != nullptr &&
           g.n_active != nullptr;
}

}  // namespace hymoe::kernels
