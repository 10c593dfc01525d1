// The GPU products over stored weights as the engine calls them: kernels::matmul (the GEMV for
// n <= 8, the GEMM past it), grouped_matmul on both paths, and expert_ffn end to end, against
// double-precision products computed here from quant::dequantize_row's weights.
//
// The GPU multiplies f32 activations (GEMV) or bf16-rounded ones (GEMM), not the Q8 blocks the
// CPU reference quantizes activations to, so cpu::matmul_reference is not the yardstick: the
// reference is Σ w·x in double with w as the file decodes and x as given, and each element is
// held to a fraction of Σ|w||x| (GEMV: f32 summation order only; GEMM: bf16 operands). Outputs
// and guard rows past them are poisoned with NaN before each launch. Routings are built here
// (one test also runs kernels::group_by_expert); experts with no pairs get null weight pointers,
// which no kernel may follow.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include <cuda_runtime.h>

#include "cuda/memory.hpp"
#include "format/tensor_type.hpp"
#include "gpu_matrix_support.hpp"
#include "gpu_test_support.hpp"
#include "launch.hpp"
#include "matmul_internal.hpp"
#include "quant/fp16.hpp"
#include "quant/quant.hpp"

namespace hymoe::kernels {
namespace {

using cuda::DeviceBuffer;
using cuda::to_device;
using test::block_elems;
using test::close_to_scale;
using test::guard_untouched;
using test::HostMatrix;
using test::kPoison;
using test::make_matrix;
using test::random_floats;
using test::tensor_type;

constexpr double kGemvTol = 2e-5;  // of Σ|w||x|: f32 products, f32 sums in another order
constexpr double kGemmTol = 1e-2;  // of Σ|w||x|: bf16 weights and activations
constexpr int64_t kGuardRows = 2;  // poisoned rows of y past the output

std::string name(WeightType t) {
    return std::string(type_name(tensor_type(t)));
}

void sync() {
    cuda::check(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
}

// ---- one matrix, through the dispatcher ----

// matmul(w, x, n) against the double product; offset_x: x starts one float past an aligned address.
void check_matmul(const HostMatrix& m, const WeightMatrix& w, int64_t n, bool offset_x, bool gemm, uint32_t seed) {
    const int64_t rows = m.rows, cols = m.cols;
    const std::vector<float> x = random_floats(static_cast<size_t>(n * cols + 1), seed);
    const float* xh = x.data() + (offset_x ? 1 : 0);
    std::vector<float> xq(xh, xh + n * cols);  // what the kernel multiplies by
    if (gemm)
        for (float& v : xq) v = quant::round_to_bf16(v);
    std::vector<double> want(static_cast<size_t>(n * rows)), scale(want.size());
    for (int64_t t = 0; t < n; ++t)
        test::reference_product(m, xq.data() + t * cols, want.data() + t * rows, scale.data() + t * rows);

    const DeviceBuffer<float> x_dev = to_device(x);
    DeviceBuffer<float> y_dev(static_cast<size_t>((n + kGuardRows) * rows));
    y_dev.upload(std::vector<float>(y_dev.size(), kPoison));
    cuda::check(matmul(w, x_dev.get() + (offset_x ? 1 : 0), n, y_dev.get(), nullptr), "matmul");
    sync();
    std::vector<float> y = y_dev.download();
    EXPECT_TRUE(guard_untouched(y, want.size()));
    y.resize(want.size());
    EXPECT_TRUE(close_to_scale(y, want, scale, gemm ? kGemmTol : kGemvTol));
}

class CudaMatmul : public ::testing::TestWithParam<WeightType> {};

TEST_P(CudaMatmul, MatchesDoubleProduct) {
    HYMOE_REQUIRE_GPU();
    const WeightType type = GetParam();
    // Columns: one partial 1024-column chunk, and more than one chunk with a partial last one.
    std::vector<int64_t> col_sizes = {256, 1280};
    if (block_elems(type) == 32) col_sizes = {96, 1056, 2880};  // 2880: GPT-OSS's d_model, rows not 16-byte aligned
    if (block_elems(type) == 1) col_sizes = {96, 100, 1280};    // 100: the scalar path
    uint32_t seed = 7000 * static_cast<uint32_t>(type) + 1;
    for (const int64_t cols : col_sizes) {
        for (const int64_t rows : {67, 200}) {
            // Padded rows once per shape (rows need not be contiguous, nor 16-byte aligned): GEMV only.
            for (const int64_t pad : {int64_t{0}, weight_alignment(type) * (type == WeightType::F32 ? 1 : 2)}) {
                const HostMatrix m = make_matrix(type, rows, cols, ++seed, pad);
                const DeviceBuffer<std::byte> w_dev = to_device(m.bytes);
                const WeightMatrix w{type, w_dev.get(), rows, cols, m.row_bytes};
                for (const int64_t n : {1, 3, 8, 9, 17, 64}) {
                    const bool gemm = n > 8;
                    if (gemm && (pad != 0 || cols % 32 != 0)) continue;
                    for (const bool offset_x : {false, true}) {
                        if (offset_x && gemm) continue;
                        SCOPED_TRACE(name(type) + " cols " + std::to_string(cols) + " rows " + std::to_string(rows) +
                                     " pad " + std::to_string(pad) + " n " + std::to_string(n) +
                                     (offset_x ? " x offset by one float" : ""));
                        check_matmul(m, w, n, offset_x, gemm, ++seed);
                    }
                }
            }
        }
    }
}

// ---- grouped products ----

struct Routing {
    int64_t n_tokens = 0, n_experts = 0, n_used = 0;
    std::vector<int32_t> experts;     // [n_tokens][n_used]
    std::vector<float> weights;       // [n_tokens][n_used]
    std::vector<int32_t> pair_order;  // [n_pairs] sorted position -> pair
    std::vector<int32_t> pair_pos;    // [n_pairs] pair -> sorted position
    std::vector<int32_t> offsets;     // [n_experts + 1]
    std::vector<int32_t> active;      // [n_experts], past n_active: garbage
    int32_t n_active = 0;
};

// Distinct random experts per token, never one of `idle`; grouped stably by expert, as
// group_by_expert does.
Routing make_routing(int64_t n_tokens, int64_t n_experts, int64_t n_used, const std::vector<int32_t>& idle,
                     uint32_t seed) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> wdist(0.05f, 1.0f);
    std::vector<int32_t> eligible;
    for (int32_t e = 0; e < n_experts; ++e)
        if (std::find(idle.begin(), idle.end(), e) == idle.end()) eligible.push_back(e);
    Routing r;
    r.n_tokens = n_tokens;
    r.n_experts = n_experts;
    r.n_used = n_used;
    for (int64_t t = 0; t < n_tokens; ++t) {
        std::shuffle(eligible.begin(), eligible.end(), rng);
        for (int64_t k = 0; k < n_used; ++k) {
            r.experts.push_back(eligible[static_cast<size_t>(k)]);
            r.weights.push_back(wdist(rng));
        }
    }
    const auto n_pairs = static_cast<size_t>(n_tokens * n_used);
    r.pair_order.resize(n_pairs);
    std::iota(r.pair_order.begin(), r.pair_order.end(), 0);
    std::stable_sort(r.pair_order.begin(), r.pair_order.end(),
                     [&](int32_t a, int32_t b) { return r.experts[a] < r.experts[b]; });
    r.pair_pos.resize(n_pairs);
    for (size_t p = 0; p < n_pairs; ++p) r.pair_pos[static_cast<size_t>(r.pair_order[p])] = static_cast<int32_t>(p);
    r.offsets.assign(static_cast<size_t>(n_experts + 1), 0);
    for (const int32_t e : r.experts) ++r.offsets[static_cast<size_t>(e + 1)];
    for (int64_t e = 0; e < n_experts; ++e) r.offsets[e + 1] += r.offsets[e];
    r.active.assign(static_cast<size_t>(n_experts), 0x7fffffff);
    for (int32_t e = 0; e < n_experts; ++e)
        if (r.offsets[e + 1] > r.offsets[e]) r.active[static_cast<size_t>(r.n_active++)] = e;
    return r;
}

// The routing on the device.
struct DeviceRouting {
    DeviceBuffer<int32_t> experts, pair_order, pair_pos, offsets, active, n_active;
    DeviceBuffer<float> weights;
    explicit DeviceRouting(const Routing& r)
        : experts(to_device(r.experts)),
          pair_order(to_device(r.pair_order)),
          pair_pos(to_device(r.pair_pos)),
          offsets(to_device(r.offsets)),
          active(to_device(r.active)),
          n_active(to_device(std::vector<int32_t>{r.n_active})),
          weights(to_device(r.weights)) {}
    ExpertRouting view(const Routing& r) const {
        return ExpertRouting{experts.get(), weights.get(),  pair_order.get(), pair_pos.get(), offsets.get(),
                             active.get(),  n_active.get(), r.n_tokens,       r.n_used};
    }
};

// One matrix per expert with pairs, on the device; null pointers for the idle ones.
struct DeviceExperts {
    std::vector<HostMatrix> m;                  // [n_experts], empty for idle experts
    std::vector<DeviceBuffer<std::byte>> data;  // [n_experts]
    DeviceBuffer<const void*> ptrs;             // [n_experts]
    int64_t row_bytes = 0;
};

DeviceExperts make_experts(WeightType type, const Routing& r, int64_t rows, int64_t cols, uint32_t seed) {
    DeviceExperts d;
    d.m.resize(static_cast<size_t>(r.n_experts));
    d.data.resize(static_cast<size_t>(r.n_experts));
    std::vector<const void*> ptrs(static_cast<size_t>(r.n_experts), nullptr);
    for (int64_t e = 0; e < r.n_experts; ++e) {
        if (r.offsets[e + 1] == r.offsets[e]) continue;
        d.m[e] = make_matrix(type, rows, cols, seed + static_cast<uint32_t>(e));
        d.data[e] = to_device(d.m[e].bytes);
        ptrs[e] = d.data[e].get();
        d.row_bytes = d.m[e].row_bytes;
    }
    d.ptrs = to_device(ptrs);
    return d;
}

void check_grouped(WeightType type, int64_t n_tokens, int64_t n_experts, int64_t n_used, bool gemm, uint32_t seed) {
    SCOPED_TRACE(name(type) + (gemm ? " gemm" : " gemv") + " n_tokens " + std::to_string(n_tokens) + " n_experts " +
                 std::to_string(n_experts) + " n_used " + std::to_string(n_used));
    const int64_t rows = 72, cols = 512;
    const Routing r = make_routing(n_tokens, n_experts, n_used, {2, static_cast<int32_t>(n_experts - 1)}, seed);
    const DeviceExperts ex = make_experts(type, r, rows, cols, seed + 10);
    const int64_t n_pairs = n_tokens * n_used;

    const std::vector<float> x = random_floats(static_cast<size_t>(n_tokens * cols), seed + 20);
    std::vector<float> xq = x;
    if (gemm)
        for (float& v : xq) v = quant::round_to_bf16(v);
    std::vector<int32_t> x_rows(static_cast<size_t>(n_pairs));
    for (int64_t p = 0; p < n_pairs; ++p) x_rows[p] = r.pair_order[p] / static_cast<int32_t>(n_used);
    std::vector<double> want(static_cast<size_t>(n_pairs * rows)), scale(want.size());
    for (int64_t e = 0; e < n_experts; ++e)
        for (int32_t p = r.offsets[e]; p < r.offsets[e + 1]; ++p)
            test::reference_product(ex.m[e], xq.data() + int64_t(x_rows[p]) * cols, want.data() + p * rows,
                                    scale.data() + p * rows);

    const DeviceRouting dr(r);
    const DeviceBuffer<float> x_dev = to_device(x);
    const DeviceBuffer<int32_t> x_rows_dev = to_device(x_rows);
    DeviceBuffer<float> y_dev(static_cast<size_t>((n_pairs + kGuardRows) * rows));
    y_dev.upload(std::vector<float>(y_dev.size(), kPoison));
    GroupedMatmul g;
    g.type = type;
    g.w = ex.ptrs.get();
    g.row_bytes = ex.row_bytes;
    g.rows = rows;
    g.cols = cols;
    g.x = x_dev.get();
    g.x_rows = x_rows_dev.get();
    g.y = y_dev.get();
    g.offsets = dr.offsets.get();
    g.active = dr.active.get();
    g.n_active = dr.n_active.get();
    g.n_experts = n_experts;
    g.n_pairs = n_pairs;
    g.max_pairs_per_expert = n_tokens;
    cuda::check(gemm ? grouped_matmul_gemm(g, nullptr) : grouped_matmul_gemv(g, nullptr), "grouped_matmul");
    sync();
    std::vector<float> y = y_dev.download();
    EXPECT_TRUE(guard_untouched(y, want.size()));
    y.resize(want.size());
    EXPECT_TRUE(close_to_scale(y, want, scale, gemm ? kGemmTol : kGemvTol));
}

TEST_P(CudaMatmul, GroupedBothPathsMatchDoubleProduct) {
    HYMOE_REQUIRE_GPU();
    const WeightType type = GetParam();
    uint32_t seed = 90000 + 1000 * static_cast<uint32_t>(type);
    for (const bool gemm : {false, true}) {
        for (const int64_t n_tokens : {1, 5, 40}) {
            check_grouped(type, n_tokens, 8, 2, gemm, seed += 100);
            check_grouped(type, n_tokens, 64, 6, gemm, seed += 100);
        }
    }
}

INSTANTIATE_TEST_SUITE_P(AllTypes, CudaMatmul, ::testing::ValuesIn(test::kAllWeightTypes),
                         [](const ::testing::TestParamInfo<WeightType>& param_info) { return name(param_info.param); });

// ---- the expert FFN ----

struct FfnCase {
    WeightType gate_up = WeightType::Q4_K, down = WeightType::Q6_K;
    WeightType up = WeightType::Q4_K;
    int64_t d_model = 512, d_ff = 256;
    int64_t n_experts = 8, n_used = 2;
    bool biases = false;
    Glu glu = Glu::SwiGlu;
};

float glu_ref(const GluParams& p, float g, float u) {
    if (p.kind == Glu::SwiGlu) return g / (1.0f + std::exp(-g)) * u;
    const float gc = std::min(g, p.limit);
    const float uc = std::clamp(u, -p.limit, p.limit);
    return gc * (1.0f / (1.0f + std::exp(-p.alpha * gc))) * (uc + 1.0f);
}

// Runs expert_ffn on a routing of n_tokens and compares with a host reference (double sums,
// the GLU in f32 as the GPU computes it). use_group: the grouping comes from group_by_expert.
// skip_every > 0: every skip_every-th pair is marked -1 (computed elsewhere, as the GPU expert
// tier does for the CPU's pairs), which implies use_group.
void check_ffn(const FfnCase& c, int64_t n_tokens, bool use_group, uint32_t seed, int skip_every = 0) {
    if (skip_every > 0) use_group = true;
    SCOPED_TRACE(name(c.gate_up) + "/" + name(c.up) + "/" + name(c.down) + " n_tokens " + std::to_string(n_tokens) +
                 " n_experts " + std::to_string(c.n_experts) + " n_used " + std::to_string(c.n_used) +
                 (c.biases ? " biases" : "") + (c.glu == Glu::SwiGluOai ? " swiglu_oai" : " swiglu") +
                 (use_group ? " group_by_expert" : ""));
    const Routing r = make_routing(n_tokens, c.n_experts, c.n_used, {1}, seed);
    const DeviceExperts gate = make_experts(c.gate_up, r, c.d_ff, c.d_model, seed + 1000);
    const DeviceExperts up = make_experts(c.up, r, c.d_ff, c.d_model, seed + 2000);
    const DeviceExperts down = make_experts(c.down, r, c.d_model, c.d_ff, seed + 3000);
    const std::vector<float> x = random_floats(static_cast<size_t>(n_tokens * c.d_model), seed + 4000);
    const std::vector<float> gb = random_floats(static_cast<size_t>(c.n_experts * c.d_ff), seed + 5000);
    const std::vector<float> ub = random_floats(static_cast<size_t>(c.n_experts * c.d_ff), seed + 6000);
    const std::vector<float> db = random_floats(static_cast<size_t>(c.n_experts * c.d_model), seed + 7000);
    GluParams glu;
    glu.kind = c.glu;
    // The GEMM path (more than 8 tokens) rounds its operands to bf16.
    const bool gemm = n_tokens > 8;
    auto q = [&](float v) { return gemm ? quant::round_to_bf16(v) : v; };

    std::vector<double> want(static_cast<size_t>(n_tokens * c.d_model), 0.0), scale(want.size(), 0.0);
    std::vector<float> act(static_cast<size_t>(c.d_ff));
    std::vector<int32_t> ids = r.experts;  // [n_tokens][n_used] as the kernels get them
    if (skip_every > 0)
        for (size_t i = 0; i < ids.size(); i += static_cast<size_t>(skip_every)) ids[i] = -1;
    for (int64_t t = 0; t < n_tokens; ++t) {
        for (int64_t k = 0; k < c.n_used; ++k) {
            const int32_t e = ids[static_cast<size_t>(t * c.n_used + k)];
            if (e < 0) continue;
            const float wt = r.weights[t * c.n_used + k];
            for (int64_t i = 0; i < c.d_ff; ++i) {
                double g = 0, u = 0;
                for (int64_t j = 0; j < c.d_model; ++j) {
                    const double xv = q(x[t * c.d_model + j]);
                    g += double(q(gate.m[e].w[i * c.d_model + j])) * xv;
                    u += double(q(up.m[e].w[i * c.d_model + j])) * xv;
                }
                if (c.biases) {
                    g += gb[e * c.d_ff + i];
                    u += ub[e * c.d_ff + i];
                }
                act[i] = glu_ref(glu, float(g), float(u));
            }
            for (int64_t j = 0; j < c.d_model; ++j) {
                double d = 0, a = 0;
                for (int64_t i = 0; i < c.d_ff; ++i) {
                    const double p = double(q(down.m[e].w[j * c.d_ff + i])) * double(q(act[i]));
                    d += p;
                    a += std::fabs(p);
                }
                if (c.biases) d += db[e * c.d_model + j];
                want[t * c.d_model + j] += wt * d;
                scale[t * c.d_model + j] += wt * (a + 1.0);
            }
        }
    }

    ExpertWeights w;
    w.gate_type = c.gate_up;
    w.up_type = c.up;
    w.down_type = c.down;
    w.gate = gate.ptrs.get();
    w.up = up.ptrs.get();
    w.down = down.ptrs.get();
    w.gate_row_bytes = gate.row_bytes;
    w.up_row_bytes = up.row_bytes;
    w.down_row_bytes = down.row_bytes;
    const DeviceBuffer<float> gb_dev = to_device(gb), ub_dev = to_device(ub), db_dev = to_device(db);
    if (c.biases) {
        w.gate_bias = gb_dev.get();
        w.up_bias = ub_dev.get();
        w.down_bias = db_dev.get();
    }
    w.n_experts = c.n_experts;
    w.d_model = c.d_model;
    w.d_ff = c.d_ff;

    DeviceRouting dr(r);
    if (skip_every > 0) dr.experts = to_device(ids);
    if (use_group) {  // replace the host grouping with the kernel's
        const int64_t n_pairs = n_tokens * c.n_used;
        for (auto* b : {&dr.pair_order, &dr.pair_pos, &dr.active})
            *b = to_device(std::vector<int32_t>(static_cast<size_t>(std::max(n_pairs, c.n_experts)), -1));
        dr.offsets = to_device(std::vector<int32_t>(static_cast<size_t>(c.n_experts + 1), -1));
        dr.n_active = to_device(std::vector<int32_t>{-1});
        DeviceBuffer<std::byte> temp(std::max<size_t>(group_by_expert_temp_bytes(n_pairs, c.n_experts), 1));
        cuda::check(
            group_by_expert(dr.experts.get(), n_pairs, c.n_experts, dr.pair_order.get(), dr.pair_pos.get(),
                            dr.offsets.get(), dr.active.get(), dr.n_active.get(), temp.get(), temp.bytes(), nullptr),
            "group_by_expert");
        sync();
    }
    const DeviceBuffer<float> x_dev = to_device(x);
    DeviceBuffer<float> out_dev(static_cast<size_t>((n_tokens + kGuardRows) * c.d_model));
    out_dev.upload(std::vector<float>(out_dev.size(), kPoison));
    const size_t scratch_bytes = expert_ffn_scratch_bytes(w, n_tokens, c.n_used);
    DeviceBuffer<std::byte> scratch(scratch_bytes);
    cuda::check(expert_ffn(w, dr.view(r), glu, x_dev.get(), out_dev.get(), scratch.get(), scratch_bytes, nullptr),
                "expert_ffn");
    sync();
    std::vector<float> out = out_dev.download();
    EXPECT_TRUE(guard_untouched(out, want.size()));
    out.resize(want.size());
    // The activation is rounded once more than the reference's (f32 GLU of f32 sums) and then
    // multiplied by down: allow a little more than one product's tolerance.
    EXPECT_TRUE(close_to_scale(out, want, scale, gemm ? kGemmTol : 1e-4));
}

TEST(CudaExpertFfn, MatchesHostReference) {
    HYMOE_REQUIRE_GPU();
    uint32_t seed = 424242;
    for (const bool biases : {false, true}) {
        for (const Glu glu : {Glu::SwiGlu, Glu::SwiGluOai}) {
            FfnCase c;
            c.biases = biases;
            c.glu = glu;
            for (const int64_t n_tokens : {1, 3, 8, 20}) check_ffn(c, n_tokens, false, seed += 10);
        }
    }
}

TEST(CudaExpertFfn, OtherTypesAndShapes) {
    HYMOE_REQUIRE_GPU();
    uint32_t seed = 515151;
    FfnCase oss;  // GPT-OSS-like: MXFP4 experts, 2880 wide, biases, clamped GLU
    oss.gate_up = oss.up = oss.down = WeightType::MXFP4;
    oss.d_model = 2880;
    oss.d_ff = 192;
    oss.n_experts = 32;
    oss.n_used = 4;
    oss.biases = true;
    oss.glu = Glu::SwiGluOai;
    for (const int64_t n_tokens : {1, 6, 12}) check_ffn(oss, n_tokens, false, seed += 10);

    FfnCase mixed;  // gate and up stored differently: no fused gate/up launch
    mixed.gate_up = WeightType::Q4_K;
    mixed.up = WeightType::Q8_0;
    mixed.down = WeightType::BF16;
    mixed.n_experts = 64;
    mixed.n_used = 6;
    for (const int64_t n_tokens : {2, 9}) check_ffn(mixed, n_tokens, false, seed += 10);

    FfnCase floats;
    floats.gate_up = floats.up = WeightType::F16;
    floats.down = WeightType::F32;
    floats.d_model = 256;
    floats.d_ff = 96;
    check_ffn(floats, 4, false, seed += 10);
}

TEST(CudaExpertFfn, WithGroupByExpert) {
    HYMOE_REQUIRE_GPU();
    FfnCase c;
    c.n_experts = 64;
    c.n_used = 6;
    check_ffn(c, 5, true, 777);
    check_ffn(c, 33, true, 778);
}

TEST(CudaExpertFfn, SkipsPairsMarkedNegative) {
    HYMOE_REQUIRE_GPU();
    FfnCase c;
    c.n_experts = 128;  // a power of two: every key bit is used by real ids
    c.n_used = 8;
    c.biases = true;
    check_ffn(c, 1, true, 881, 3);
    check_ffn(c, 7, true, 882, 2);
    check_ffn(c, 40, true, 883, 5);
    check_ffn(c, 3, true, 884, 1);  // every pair skipped: the output is zero
}

// ---- argument checks: rejected before anything reaches the device, so no GPU is needed ----

TEST(CudaMatmulArgs, SupportedTypes) {
    for (const WeightType t : test::kAllWeightTypes)
        EXPECT_TRUE(supports_weight_type(static_cast<int32_t>(t))) << name(t);
    for (const int32_t id : {4, 5, 9, 15, 16, 24, 29, 40, 1000, -1}) EXPECT_FALSE(supports_weight_type(id)) << id;
}

TEST(CudaMatmulArgs, RejectsBadArguments) {
    const auto* data = reinterpret_cast<const void*>(uintptr_t{0x10000});
    const auto* x = reinterpret_cast<const float*>(uintptr_t{0x20000});
    auto* y = reinterpret_cast<float*>(uintptr_t{0x30000});
    const WeightMatrix good{WeightType::Q4_K, data, 64, 256, 144};
    EXPECT_EQ(matmul(good, x, -1, y, nullptr), cudaErrorInvalidValue);
    EXPECT_EQ(matmul(good, x, 0, y, nullptr), cudaSuccess);
    EXPECT_EQ(matmul(good, nullptr, 1, y, nullptr), cudaErrorInvalidValue);
    EXPECT_EQ(matmul(good, x, 1, nullptr, nullptr), cudaErrorInvalidValue);
    WeightMatrix bad = good;
    bad.data = nullptr;
    EXPECT_EQ(matmul(bad, x, 1, y, nullptr), cudaErrorInvalidValue);
    bad = good;
    bad.cols = 288;
    bad.row_bytes = 1000;
    EXPECT_EQ(matmul(bad, x, 1, y, nullptr), cudaErrorInvalidValue);
    bad = good;
    bad.row_bytes = 143;
    EXPECT_EQ(matmul(bad, x, 1, y, nullptr), cudaErrorInvalidValue);
    bad = good;
    bad.type = static_cast<WeightType>(15);
    EXPECT_EQ(matmul(bad, x, 1, y, nullptr), cudaErrorInvalidValue);

    const auto* const* w_list = reinterpret_cast<const void* const*>(uintptr_t{0x40000});
    const auto* i32 = reinterpret_cast<const int32_t*>(uintptr_t{0x50000});
    GroupedMatmul g;
    g.type = WeightType::Q8_0;
    g.w = w_list;
    g.row_bytes = 34 * 8;
    g.rows = 64;
    g.cols = 256;
    g.x = x;
    g.y = y;
    g.offsets = g.active = g.n_active = i32;
    g.n_experts = 8;
    g.n_pairs = 4;
    g.max_pairs_per_expert = 2;
    GroupedMatmul b = g;
    b.max_pairs_per_expert = 0;
    EXPECT_EQ(grouped_matmul(b, nullptr), cudaErrorInvalidValue);
    b = g;
    b.offsets = nullptr;
    EXPECT_EQ(grouped_matmul_gemv(b, nullptr), cudaErrorInvalidValue);
    b = g;
    b.row_bytes = 33;
    EXPECT_EQ(grouped_matmul_gemv(b, nullptr), cudaErrorInvalidValue);
    b = g;
    b.n_pairs = 0;
    EXPECT_EQ(grouped_matmul_gemv(b, nullptr), cudaSuccess);

    ExpertWeights w;
    w.gate_type = w.up_type = w.down_type = WeightType::Q8_0;
    w.gate = w.up = w.down = w_list;
    w.gate_row_bytes = w.up_row_bytes = 34 * 8;
    w.down_row_bytes = 34 * 4;
    w.n_experts = 8;
    w.d_model = 256;
    w.d_ff = 128;
    ExpertRouting r{i32, x, i32, i32, i32, i32, i32, 3, 2};
    void* scratch = reinterpret_cast<void*>(uintptr_t{0x60000});
    const size_t bytes = expert_ffn_scratch_bytes(w, 3, 2);
    EXPECT_GT(bytes, size_t(3 * 2 * (256 + 128) * 4));
    EXPECT_EQ(expert_ffn(w, r, GluParams{}, x, y, scratch, bytes - 1, nullptr), cudaErrorInvalidValue);
    EXPECT_EQ(expert_ffn(w, r, GluParams{}, x, y, nullptr, bytes, nullptr), cudaErrorInvalidValue);
    GluParams bad_glu;
    bad_glu.kind = static_cast<Glu>(7);
    EXPECT_EQ(expert_ffn(w, r, bad_glu, x, y, scratch, bytes, nullptr), cudaErrorInvalidValue);
    ExpertWeights bw = w;
    bw.down_row_bytes = 10;
    EXPECT_EQ(expert_ffn(bw, r, GluParams{}, x, y, scratch, bytes, nullptr), cudaErrorInvalidValue);
    ExpertRouting br = r;
    br.n_used = 0;
    EXPECT_EQ(expert_ffn(w, br, GluParams{}, x, y, scratch, bytes, nullptr), cudaErrorInvalidValue);
    br = r;
    br.n_tokens = 0;
    EXPECT_EQ(expert_ffn(w, br, GluParams{}, x, y, scratch, bytes, nullptr), cudaSuccess);
}

}  // namespace
}  // namespace hymoe::kernels
