// Host-callable launchers of the kernels in this folder: the only header src/ includes from here.
//
// Each launcher takes a stream, checks its preconditions (returning cudaErrorInvalidValue for a
// bad argument), launches, and returns cudaGetLastError(). None of them synchronizes, allocates
// or copies to or from the host, so every one can be captured in a CUDA graph. Callers in src/
// turn errors into hymoe::Error. All pointers are device memory unless a comment says otherwise;
// all matrices are row-major. This header includes only the CUDA runtime.
#pragma once

#include <cstddef>
#include <cstdint>

#include <cuda_runtime.h>

#include "weight_type.hpp"

namespace hymoe::kernels {

// ---- weight types ------------------------------------------------------------------------------

// Whether the matmul kernels below read weights of GGUF type id `gguf_type`.
bool supports_weight_type(int32_t gguf_type);

// A weight matrix in device memory as stored in the file: `rows` output features, each a row of
// `cols` input features (a multiple of the type's block size), rows `row_bytes` apart.
struct WeightMatrix {
    WeightType type = WeightType::F32;
    const void* data = nullptr;  // [rows][row_bytes]
    int64_t rows = 0;
    int64_t cols = 0;
    int64_t row_bytes = 0;
};

// ---- dense and grouped products (matmul.cu, matmul_gemv.cu, matmul_gemm.cu) ----------------------

// y[t][r] = Σ_c W[r][c] · x[t][c]. x: [n][w.cols] f32, y: [n][w.rows] f32, no aliasing.
// n <= 8 runs the GEMV kernel (weights read once, dequantized in registers); larger n runs the
// tensor-core GEMM (weight tiles dequantized to bf16 in shared memory).
cudaError_t matmul(const WeightMatrix& w, const float* x, int64_t n, float* y, cudaStream_t stream);

// A grouped product over the experts of one MoE layer. The (token, slot) pairs are sorted by
// expert (group_by_expert below); sorted position p belongs to the expert e with
// offsets[e] <= p < offsets[e + 1], and
//     y[p][r] = Σ_c W_e[r][c] · x[row(p)][c]    for r < rows,
// where row(p) = x_rows[p] when x_rows is given, else p. Experts with no pairs cost nothing;
// the grid is sized from host-known bounds, the real counts are read on the device.
struct GroupedMatmul {
    WeightType type = WeightType::F32;
    const void* const* w = nullptr;  // [n_experts] device array of expert matrices, each [rows][row_bytes]
    int64_t row_bytes = 0;
    int64_t rows = 0;  // output features
    int64_t cols = 0;  // input features
    const float* x = nullptr;           // [*][cols]
    const int32_t* x_rows = nullptr;    // [n_pairs] sorted position -> row of x, or null for identity
    float* y = nullptr;                 // [n_pairs][rows], indexed by sorted position
    const int32_t* offsets = nullptr;   // [n_experts + 1]
    const int32_t* active = nullptr;    // [n_experts] experts with >= 1 pair, ascending; *n_active valid
    const int32_t* n_active = nullptr;  // [1]
    int64_t n_experts = 0;
    int64_t n_pairs = 0;              // total sorted positions
    int64_t max_pairs_per_expert = 0;  // host-known bound (a token routes to an expert at most once: n_tokens)
};

// Dispatches to the GEMV kernel (max_pairs_per_expert <= 8) or the grouped tensor-core GEMM.
cudaError_t grouped_matmul(const GroupedMatmul& g, cudaStream_t stream);
// The two paths, callable directly for tests and benchmarks (any max_pairs_per_expert).
cudaError_t grouped_matmul_gemv(const GroupedMatmul& g, cudaStream_t stream);
cudaError_t grouped_matmul_gemm(const GroupedMatmul& g, cudaStream_t stream);

// ---- MoE routing and grouping (router.cu, group.cu) --------------------------------------------

enum class Gating : int32_t { Softmax = 0, Sigmoid = 1, SoftmaxOverTopK = 2 };
enum class GroupScore : int32_t { Max = 0, TopTwoSum = 1 };

struct RouterParams {
    Gating gating = Gating::Softmax;
    int32_t n_experts = 0;
    int32_t n_used = 0;
    int32_t n_groups = 1;  // group-limited routing: only the best n_groups_used groups are eligible
    int32_t n_groups_used = 1;
    GroupScore group_score = GroupScore::TopTwoSum;
    bool norm_topk = false;     // divide the k weights by their sum
    float routed_scale = 1.0f;  // multiplies the k weights
};

// Per token, exactly as hymoe::cpu::route: logits [n_tokens][n_experts] (router output, bias
// included), selection_bias [n_experts] or null -> experts [n_tokens][n_used] (best first),
// weights [n_tokens][n_used].
cudaError_t route(const RouterParams& p, const float* logits, const float* selection_bias, int64_t n_tokens,
                  int32_t* experts, float* weights, cudaStream_t stream);

// Sorts the n_pairs = n_tokens * n_used pairs by expert, stably (pair i = t * n_used + k):
//   pair_order [n_pairs]      sorted position -> pair
//   pair_pos   [n_pairs]      pair -> sorted position
//   offsets    [n_experts+1]  expert e's positions are offsets[e] .. offsets[e+1]
//   active     [n_experts]    experts with at least one pair, ascending; the rest of the array unspecified
//   n_active   [1]
// A pair whose expert is negative is skipped: it sorts after all others, outside every
// expert's range (the GPU expert tier marks so the pairs the CPU computes).
// temp: group_by_expert_temp_bytes(n_pairs, n_experts) bytes of device scratch.
size_t group_by_expert_temp_bytes(int64_t n_pairs, int64_t n_experts);
cudaError_t group_by_expert(const int32_t* experts, int64_t n_pairs, int64_t n_experts, int32_t* pair_order,
                            int32_t* pair_pos, int32_t* offsets, int32_t* active, int32_t* n_active, void* temp,
                            size_t temp_bytes, cudaStream_t stream);

// ---- the expert FFN of one MoE layer (expert_ffn.cu) ---------------------------------------------

enum class Glu : int32_t {
    SwiGlu = 0,     // silu(gate) * up
    SwiGluOai = 1,  // GPT-OSS: g = min(gate, limit), u = clamp(up, -limit, limit), g * sigmoid(alpha g) * (u + 1)
};

struct GluParams {
    Glu kind = Glu::SwiGlu;
    float alpha = 1.702f;
    float limit = 7.0f;
};

// One layer's routed experts as the GPU holds them (a full set, or the slots of an expert cache).
struct ExpertWeights {
    WeightType gate_type = WeightType::F32, up_type = WeightType::F32, down_type = WeightType::F32;
    const void* const* gate = nullptr;  // [n_experts] device array: expert e's [d_ff][d_model] matrix
    const void* const* up = nullptr;    // [n_experts] of [d_ff][d_model]
    const void* const* down = nullptr;  // [n_experts] of [d_model][d_ff]
    int64_t gate_row_bytes = 0, up_row_bytes = 0, down_row_bytes = 0;
    const float* gate_bias = nullptr;  // [n_experts][d_ff] or null
    const float* up_bias = nullptr;    // [n_experts][d_ff] or null
    const float* down_bias = nullptr;  // [n_experts][d_model] or null
    int64_t n_experts = 0;
    int64_t d_model = 0;
    int64_t d_ff = 0;
};

// The routing of a batch, on the device (route and group_by_expert's outputs).
struct ExpertRouting {
    const int32_t* experts = nullptr;  // [n_tokens][n_used]
    const float* weights = nullptr;    // [n_tokens][n_used]
    const int32_t* pair_order = nullptr;
    const int32_t* pair_pos = nullptr;
    const int32_t* offsets = nullptr;
    const int32_t* active = nullptr;
    const int32_t* n_active = nullptr;
    int64_t n_tokens = 0;
    int64_t n_used = 0;
};

// out[t] = Σ_k weights[t][k] · (down_e(glu(gate_e(x[t]) + gate_bias_e, up_e(x[t]) + up_bias_e)) + down_bias_e),
// e = experts[t][k], summed in slot order k over the pairs with e >= 0 (a negative expert is a
// pair computed elsewhere). x, out: [n_tokens][d_model]; out is overwritten.
// scratch: expert_ffn_scratch_bytes(...) bytes of device memory.
size_t expert_ffn_scratch_bytes(const ExpertWeights& w, int64_t n_tokens, int64_t n_used);
cudaError_t expert_ffn(const ExpertWeights& w, const ExpertRouting& r, const GluParams& glu, const float* x,
                       float* out, void* scratch, size_t scratch_bytes, cudaStream_t stream);

// ---- elementwise and row ops (elementwise.cu, rope.cu) -------------------------------------------

// out row i = x row i / sqrt(mean(x_row^2) + eps) * (w ? w : 1), rows `width` wide, row starts
// x_stride / out_stride floats apart. out may alias x.
cudaError_t rms_norm(const float* x, int64_t x_stride, const float* w, int64_t rows, int64_t width, float eps,
                     float* out, int64_t out_stride, cudaStream_t stream);

// x[i] += a[i] for i < n.
cudaError_t add(float* x, const float* a, int64_t n, cudaStream_t stream);

// y[t][j] += bias[j] for t < rows, j < width.
cudaError_t add_bias(float* y, const float* bias, int64_t rows, int64_t width, cudaStream_t stream);

// out[t][j] += s_t * src[t][j], s_t = gate_logit ? sigmoid(gate_logit[t]) : 1 (a shared expert,
// with Qwen2-MoE's sigmoid gate when given).
cudaError_t add_gated(float* out, const float* src, const float* gate_logit, int64_t rows, int64_t width,
                      cudaStream_t stream);

// out[i] = glu(gate[i], up[i]) for i < n; out may alias gate.
cudaError_t glu(const GluParams& p, const float* gate, const float* up, int64_t n, float* out, cudaStream_t stream);

// dst row i [0, width) = src row i [0, width); rows dst_stride / src_stride floats apart.
cudaError_t copy_rows(float* dst, int64_t dst_stride, const float* src, int64_t src_stride, int64_t rows,
                      int64_t width, cudaStream_t stream);

// out[t] = row ids[t] of an embedding table stored as `type` (F32, F16, BF16 or a block type),
// decoded to f32: table [n_rows][row_bytes], ids [n] (checked on the host by the caller), out [n][width].
cudaError_t embed_rows(WeightType type, const void* table, int64_t row_bytes, int64_t width, const int32_t* ids,
                       int64_t n, float* out, cudaStream_t stream);

// dst[i] = bf16(src[i]) (round to nearest even), for cuBLAS operands.
cudaError_t f32_to_bf16(const float* src, int64_t n, uint16_t* dst, cudaStream_t stream);
// dst[i] = f16(src[i]) (round to nearest even).
cudaError_t f32_to_f16(const float* src, int64_t n, uint16_t* dst, cudaStream_t stream);

// RoPE with ggml's YaRN, as hymoe::cpu::rope_angles + rope_rotate (src/cpu/ops.cpp).
struct RopeParams {
    bool neox = true;  // pairs (i, i + n_dims/2); false: (2i, 2i+1)
    int32_t n_dims = 0;
    float base = 10000.0f;
    float freq_scale = 1.0f;
    float ext_factor = 0.0f;
    float corr_low = 0.0f;
    float corr_high = 0.0f;
    float mscale = 1.0f;
};
// Rotates, in place, the first n_dims dims of head h of token t at x + t*token_stride +
// h*head_stride, at position pos0 + t, for t < n_tokens, h < n_heads.
cudaError_t rope(const RopeParams& p, float* x, int64_t n_tokens, int64_t n_heads, int64_t token_stride,
                 int64_t head_stride, int64_t pos0, cudaStream_t stream);

// ---- attention (attention.cu) --------------------------------------------------------------------

// Causal attention of n_tokens new queries over a KV cache that already holds their keys and
// values, as hymoe::cpu::attention_head for every (token, head):
//   query (t, h) at q + t*q_token_stride + h*q_head_stride, position n_past + t;
//   kv head g = h / (n_heads / n_kv_heads); key j at k + j*k_pos_stride + g*k_head_stride [dim_k],
//   value j at v + j*v_pos_stride + g*v_head_stride [dim_v];
//   keys j in [max(0, pos - window + 1) if window > 0 else 0, pos];
//   s_j = scale * q·k_j; p = softmax over j plus sinks[h] (a logit with no value) when sinks given;
//   out (t, h) at out + t*out_token_stride + h*out_head_stride = Σ_j p_j v_j.
// MLA runs through it with n_kv_heads = 1 and v = k (the latents are the values).
struct AttentionParams {
    const float* q = nullptr;
    int64_t q_token_stride = 0, q_head_stride = 0;
    const float* k = nullptr;
    const float* v = nullptr;
    int64_t k_pos_stride = 0, k_head_stride = 0;
    int64_t v_pos_stride = 0, v_head_stride = 0;
    int64_t n_tokens = 0, n_heads = 0, n_kv_heads = 0;
    int64_t dim_k = 0, dim_v = 0;
    int64_t n_past = 0;
    int64_t window = 0;  // 0 = no sliding window
    float scale = 1.0f;
    const float* sinks = nullptr;  // [n_heads] or null
    float* out = nullptr;
    int64_t out_token_stride = 0, out_head_stride = 0;
};
cudaError_t attention(const AttentionParams& p, cudaStream_t stream);

// ---- self-test -----------------------------------------------------------------------------------

// dst[0..n) = value.
cudaError_t launch_fill_f32(float* dst, size_t n, float value, cudaStream_t stream);

}  // namespace hymoe::kernels
