// The GPU row ops, RoPE, routing and grouping (kernels/elementwise.cu, rope.cu, router.cu,
// group.cu) against the CPU reference (src/cpu/ops.cpp, src/quant) on seeded random inputs, at
// sizes that are not multiples of a warp or a block, with every output poisoned (NaN, or an
// impossible index) before the launch. Routing must pick exactly the CPU's experts.
// Skipped, with the reason, where no GPU is present (but for the argument checks, which never
// reach the device).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "cpu/ops.hpp"
#include "cuda/memory.hpp"
#include "format/tensor_type.hpp"
#include "gpu_test_support.hpp"
#include "launch.hpp"
#include "model/config.hpp"
#include "quant/fp16.hpp"
#include "quant/quant.hpp"

namespace hymoe {
namespace {

using cuda::DeviceBuffer;
using cuda::to_device;
using test::all_close;
using test::kPoison;
using test::random_floats;

// Launches on a non-blocking stream and waits for it. The buffers' copies run on the legacy
// default stream, which such a stream does not wait for (an upload from pageable memory may
// return before its DMA lands), so they are settled first.
template <typename Launch>
void run(const cuda::Stream& s, const char* what, Launch&& launch) {
    cuda::check(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
    cuda::check(launch(), what);
    s.synchronize();
}

DeviceBuffer<float> poisoned(size_t n) {
    return to_device(std::vector<float>(n, kPoison));
}

// Bits equal, so that NaN == NaN: for elements a kernel must not touch.
bool same_bits(float a, float b) {
    uint32_t x = 0, y = 0;
    std::memcpy(&x, &a, 4);
    std::memcpy(&y, &b, 4);
    return x == y;
}

// ---- RMSNorm -------------------------------------------------------------------------------------

TEST(CudaOps, RmsNormWithStridesAndWeight) {
    HYMOE_REQUIRE_GPU();
    cuda::Stream s;
    uint32_t seed = 1;
    for (int64_t rows : {1, 3, 17}) {
        for (int64_t width : {64, 100, 4097}) {
            for (bool with_weight : {true, false}) {
                SCOPED_TRACE("rows " + std::to_string(rows) + " width " + std::to_string(width) +
                             (with_weight ? " weight" : " no weight"));
                const int64_t xs = width + 5, os = width + 3;  // row strides with a gap
                const auto x = random_floats(size_t(rows * xs), ++seed, -3.0f, 3.0f);
                const auto w = random_floats(size_t(width), ++seed, 0.5f, 1.5f);
                auto dx = to_device(x);
                auto dw = to_device(w);
                auto dout = poisoned(size_t(rows * os));
                run(s, "rms_norm", [&] {
                    return kernels::rms_norm(dx.get(), xs, with_weight ? dw.get() : nullptr, rows, width, 1e-6f,
                                             dout.get(), os, s.get());
                });
                const auto got = dout.download();
                std::vector<float> want_row(static_cast<size_t>(width)), got_rows, want_rows;
                for (int64_t r = 0; r < rows; ++r) {
                    cpu::rms_norm(x.data() + r * xs, with_weight ? w.data() : nullptr, width, 1e-6f, want_row.data());
                    want_rows.insert(want_rows.end(), want_row.begin(), want_row.end());
                    got_rows.insert(got_rows.end(), got.begin() + r * os, got.begin() + r * os + width);
                    for (int64_t j = width; j < os; ++j)
                        EXPECT_TRUE(std::isnan(got[size_t(r * os + j)])) << "the gap after row " << r << " was written";
                }
                EXPECT_TRUE(all_close(got_rows, want_rows, 1e-6f, 1e-6f));
            }
        }
    }
}

TEST(CudaOps, RmsNormInPlace) {
    HYMOE_REQUIRE_GPU();
    cuda::Stream s;
    for (int64_t width : {128, 7168}) {
        const int64_t rows = 5;
        const auto x = random_floats(size_t(rows * width), 77 + uint32_t(width));
        const auto w = random_floats(size_t(width), 78);
        auto dx = to_device(x);
        auto dw = to_device(w);
        run(s, "rms_norm",
            [&] { return kernels::rms_norm(dx.get(), width, dw.get(), rows, width, 1e-5f, dx.get(), width, s.get()); });
        std::vector<float> want(x.size());
        for (int64_t r = 0; r < rows; ++r) cpu::rms_norm(&x[r * width], w.data(), width, 1e-5f, &want[r * width]);
        EXPECT_TRUE(all_close(dx.download(), want, 1e-6f, 1e-6f)) << "width " << width;
    }
}

// ---- elementwise ---------------------------------------------------------------------------------

TEST(CudaOps, AddAndBiasAndGatedAdd) {
    HYMOE_REQUIRE_GPU();
    cuda::Stream s;
    uint32_t seed = 100;
    for (int64_t rows : {1, 3, 17}) {
        for (int64_t width : {64, 100, 4097}) {
            SCOPED_TRACE("rows " + std::to_string(rows) + " width " + std::to_string(width));
            const size_t n = size_t(rows * width);
            const auto y = random_floats(n, ++seed), a = random_floats(n, ++seed);
            const auto bias = random_floats(size_t(width), ++seed);
            const auto gate = random_floats(size_t(rows), ++seed, -4.0f, 4.0f);

            auto dy = to_device(y);
            auto da = to_device(a);
            run(s, "add", [&] { return kernels::add(dy.get(), da.get(), int64_t(n), s.get()); });
            std::vector<float> want = y;
            for (size_t i = 0; i < n; ++i) want[i] += a[i];
            EXPECT_TRUE(all_close(dy.download(), want, 0.0f, 0.0f)) << "add";

            dy.upload(y);
            auto db = to_device(bias);
            run(s, "add_bias", [&] { return kernels::add_bias(dy.get(), db.get(), rows, width, s.get()); });
            want = y;
            for (int64_t t = 0; t < rows; ++t)
                for (int64_t j = 0; j < width; ++j) want[size_t(t * width + j)] += bias[size_t(j)];
            EXPECT_TRUE(all_close(dy.download(), want, 0.0f, 0.0f)) << "add_bias";

            auto dg = to_device(gate);
            for (bool gated : {true, false}) {
                dy.upload(y);
                run(s, "add_gated", [&] {
                    return kernels::add_gated(dy.get(), da.get(), gated ? dg.get() : nullptr, rows, width, s.get());
                });
                want = y;
                for (int64_t t = 0; t < rows; ++t) {
                    const float g = gated ? cpu::sigmoid(gate[size_t(t)]) : 1.0f;
                    for (int64_t j = 0; j < width; ++j) want[size_t(t * width + j)] += g * a[size_t(t * width + j)];
                }
                EXPECT_TRUE(all_close(dy.download(), want, 1e-7f, 1e-6f)) << (gated ? "gated" : "ungated");
            }
        }
    }
}

TEST(CudaOps, CopyRowsWithStrides) {
    HYMOE_REQUIRE_GPU();
    cuda::Stream s;
    for (int64_t rows : {1, 3, 17}) {
        for (int64_t width : {64, 100, 4097}) {
            const int64_t ss = width + 9, ds = width + 2;
            const auto src = random_floats(size_t(rows * ss), 300 + uint32_t(rows * width));
            auto dsrc = to_device(src);
            auto ddst = poisoned(size_t(rows * ds));
            run(s, "copy_rows",
                [&] { return kernels::copy_rows(ddst.get(), ds, dsrc.get(), ss, rows, width, s.get()); });
            const auto got = ddst.download();
            int64_t bad = 0;
            for (int64_t r = 0; r < rows; ++r)
                for (int64_t j = 0; j < ds; ++j) {
                    const float g = got[size_t(r * ds + j)];
                    const bool ok = j < width ? same_bits(g, src[size_t(r * ss + j)]) : std::isnan(g);
                    bad += ok ? 0 : 1;
                }
            EXPECT_EQ(bad, 0) << "rows " << rows << " width " << width;
        }
    }
}

TEST(CudaOps, GluBothKinds) {
    HYMOE_REQUIRE_GPU();
    cuda::Stream s;
    for (int64_t n : {1, 100, 4097}) {
        // Wide enough to reach GPT-OSS's clamps at +-7.
        const auto gate = random_floats(size_t(n), 400 + uint32_t(n), -10.0f, 10.0f);
        const auto up = random_floats(size_t(n), 401 + uint32_t(n), -10.0f, 10.0f);
        for (kernels::Glu kind : {kernels::Glu::SwiGlu, kernels::Glu::SwiGluOai}) {
            kernels::GluParams p;
            p.kind = kind;
            std::vector<float> want(static_cast<size_t>(n));
            if (kind == kernels::Glu::SwiGlu)
                cpu::swiglu(gate.data(), up.data(), n, want.data());
            else
                cpu::swiglu_oai(gate.data(), up.data(), n, p.alpha, p.limit, want.data());
            auto dg = to_device(gate);
            auto du = to_device(up);
            auto dout = poisoned(size_t(n));
            run(s, "glu", [&] { return kernels::glu(p, dg.get(), du.get(), n, dout.get(), s.get()); });
            EXPECT_TRUE(all_close(dout.download(), want, 1e-6f, 1e-5f)) << "n " << n << " kind " << int(kind);
            // out aliasing gate
            run(s, "glu in place", [&] { return kernels::glu(p, dg.get(), du.get(), n, dg.get(), s.get()); });
            EXPECT_TRUE(all_close(dg.download(), want, 1e-6f, 1e-5f)) << "in place, n " << n << " kind " << int(kind);
        }
    }
}

TEST(CudaOps, ConvertsToBf16AndF16RoundingToNearestEven) {
    HYMOE_REQUIRE_GPU();
    cuda::Stream s;
    // Magnitudes from f16's subnormals to past its largest value, halfway cases and infinities.
    std::vector<float> x = random_floats(4097, 500, -2.0f, 2.0f);
    std::mt19937 rng(501);
    std::uniform_real_distribution<float> expo(-30.0f, 20.0f);
    for (size_t i = 0; i < x.size(); i += 3) x[i] *= std::exp2(expo(rng));
    for (float v : {0.0f, -0.0f, 65504.0f, 65519.0f, 65520.0f, 1e-8f, 5.9604645e-8f, 2.9802322e-8f, 1.0009766f,
                    1.00048828125f, INFINITY, -INFINITY})
        x.push_back(v);
    const auto n = int64_t(x.size());
    auto dx = to_device(x);
    DeviceBuffer<uint16_t> d16(x.size());
    for (bool bf16 : {true, false}) {
        d16.upload(std::vector<uint16_t>(x.size(), 0xffff));  // a NaN in both formats, never a result here
        run(s, "convert", [&] {
            return bf16 ? kernels::f32_to_bf16(dx.get(), n, d16.get(), s.get())
                        : kernels::f32_to_f16(dx.get(), n, d16.get(), s.get());
        });
        const auto got = d16.download();
        int bad = 0;
        for (size_t i = 0; i < x.size(); ++i) {
            const uint16_t want = bf16 ? quant::f32_to_bf16(x[i]) : quant::f32_to_fp16(x[i]);
            if (got[i] != want && ++bad <= 10)
                ADD_FAILURE() << (bf16 ? "bf16" : "f16") << "(" << x[i] << ") = " << got[i] << ", want " << want;
        }
        EXPECT_EQ(bad, 0);
    }
}

// ---- embedding -----------------------------------------------------------------------------------

TEST(CudaOps, EmbedRowsOfEveryType) {
    HYMOE_REQUIRE_GPU();
    cuda::Stream s;
    using W = kernels::WeightType;
    const int64_t n_rows = 23;
    uint32_t seed = 600;
    for (W type : {W::F32, W::F16, W::BF16, W::Q4_0, W::Q4_1, W::Q5_0, W::Q5_1, W::Q8_0, W::Q2_K, W::Q3_K, W::Q4_K,
                   W::Q5_K, W::Q6_K, W::IQ4_NL, W::IQ4_XS, W::MXFP4}) {
        const auto tt = static_cast<TensorType>(static_cast<uint32_t>(type));
        const int64_t block = type_traits(tt).block_size;
        std::vector<int64_t> widths;
        if (block == 1) widths = {64, 100, 4097};
        if (block == 32) widths = {96, 4096};
        if (block == 256) widths = {256, 4096};
        for (int64_t width : widths) {
            for (int64_t pad : {0, 6}) {  // rows packed, and rows further apart than they are long
                SCOPED_TRACE(std::string(type_name(tt)) + " width " + std::to_string(width) + " pad " +
                             std::to_string(pad));
                const int64_t packed = static_cast<int64_t>(*row_bytes(tt, uint64_t(width)));
                const int64_t rb = packed + (block == 1 ? pad * type_traits(tt).type_size : pad);
                std::vector<std::byte> table(static_cast<size_t>(n_rows * rb), std::byte{0x5a});
                std::vector<float> decoded(static_cast<size_t>(n_rows * width));
                for (int64_t r = 0; r < n_rows; ++r) {
                    const auto v = random_floats(size_t(width), ++seed, -2.0f, 2.0f);
                    quant::quantize_row(tt, v.data(), width, &table[size_t(r * rb)]);
                    quant::dequantize_row(tt, &table[size_t(r * rb)], width, &decoded[size_t(r * width)]);
                }
                for (int64_t n : {1, 3, 17}) {
                    std::vector<int32_t> ids(static_cast<size_t>(n));
                    std::mt19937 rng(++seed);
                    for (auto& id : ids) id = int32_t(rng() % uint32_t(n_rows));
                    std::vector<float> want;
                    for (int32_t id : ids)
                        want.insert(want.end(), decoded.begin() + id * width, decoded.begin() + (id + 1) * width);
                    auto dt = to_device(table);
                    auto di = to_device(ids);
                    auto dout = poisoned(size_t(n * width));
                    run(s, "embed_rows", [&] {
                        return kernels::embed_rows(type, dt.get(), rb, width, di.get(), n, dout.get(), s.get());
                    });
                    // The decoders promise dequantize_row's floats bit for bit.
                    EXPECT_TRUE(all_close(dout.download(), want, 0.0f, 0.0f)) << "n " << n;
                }
            }
        }
    }
}

// ---- RoPE ----------------------------------------------------------------------------------------

// Rotates n_tokens tokens of n_heads heads of 128 dims, laid out with gaps between heads and
// between tokens, and compares with cpu::rope_angles + rope_rotate.
void check_rope(const RopeConfig& rc, int64_t n_tokens, int64_t n_heads, int64_t pos0, uint32_t seed,
                const cuda::Stream& s) {
    kernels::RopeParams p;
    p.neox = rc.style == RopeStyle::Neox;
    p.n_dims = int32_t(rc.n_dims);
    p.base = rc.base;
    p.freq_scale = rc.freq_scale;
    p.ext_factor = rc.ext_factor;
    p.corr_low = rc.corr_low;
    p.corr_high = rc.corr_high;
    p.mscale = rc.mscale;
    const int64_t head_dim = 128, head_stride = head_dim + 3, token_stride = n_heads * head_stride + 7;
    const auto x = random_floats(size_t(n_tokens * token_stride), seed);
    auto dx = to_device(x);
    run(s, "rope",
        [&] { return kernels::rope(p, dx.get(), n_tokens, n_heads, token_stride, head_stride, pos0, s.get()); });
    const auto got = dx.download();

    std::vector<float> want = x;
    std::vector<float> cs(static_cast<size_t>(rc.n_dims / 2)), sn(static_cast<size_t>(rc.n_dims / 2));
    for (int64_t t = 0; t < n_tokens; ++t) {
        cpu::rope_angles(rc, pos0 + t, cs.data(), sn.data());
        for (int64_t h = 0; h < n_heads; ++h)
            cpu::rope_rotate(rc, cs.data(), sn.data(), &want[size_t(t * token_stride + h * head_stride)]);
    }
    // Rotated dims within rounding (cos / sin are glibc's on one side, double's rounded on the
    // other); everything else, the gaps included, bit for bit untouched.
    std::vector<float> got_rot, want_rot;
    int64_t touched = 0;
    for (size_t i = 0; i < x.size(); ++i) {
        const int64_t in_token = int64_t(i) % token_stride;
        const int64_t h = in_token / head_stride, d = in_token % head_stride;
        if (h < n_heads && d < rc.n_dims) {
            got_rot.push_back(got[i]);
            want_rot.push_back(want[i]);
        } else if (!same_bits(got[i], x[i])) {
            ++touched;
        }
    }
    EXPECT_EQ(touched, 0) << "elements outside the rotated dims changed";
    EXPECT_TRUE(all_close(got_rot, want_rot, 2e-6f, 2e-6f));
}

TEST(CudaOps, RopeBothStylesWithYarnAndPartialRotation) {
    HYMOE_REQUIRE_GPU();
    cuda::Stream s;
    uint32_t seed = 700;
    for (RopeStyle style : {RopeStyle::Neox, RopeStyle::Interleaved}) {
        for (bool yarn : {false, true}) {
            for (int64_t n_dims : {128, 64, 2}) {  // of head_dim 128: all, part, one pair
                RopeConfig rc;
                rc.style = style;
                rc.n_dims = n_dims;
                rc.base = yarn ? 1000000.0f : 10000.0f;
                if (yarn) {
                    rc.freq_scale = 0.25f;
                    rc.ext_factor = 1.0f;
                    rc.corr_low = 9.3f;
                    rc.corr_high = 37.6f;
                    rc.mscale = 1.1386294f;
                }
                for (int64_t n_tokens : {1, 3, 17}) {
                    for (int64_t n_heads : {1, 5, 40}) {
                        for (int64_t pos0 : {0, 7, 131000}) {  // far positions: theta in the 1e5s
                            SCOPED_TRACE(std::string(style == RopeStyle::Neox ? "neox" : "interleaved") +
                                         (yarn ? " yarn" : "") + " n_dims " + std::to_string(n_dims) + " tokens " +
                                         std::to_string(n_tokens) + " heads " + std::to_string(n_heads) + " pos0 " +
                                         std::to_string(pos0));
                            check_rope(rc, n_tokens, n_heads, pos0, ++seed, s);
                        }
                    }
                }
            }
        }
    }
}

// ---- routing -------------------------------------------------------------------------------------

struct RouteCase {
    std::string name;
    Gating gating = Gating::Softmax;
    int64_t n_experts = 0, k = 0, n_groups = 1, n_groups_used = 1;
    GroupScore group_score = GroupScore::TopTwoSum;
    bool bias = false, norm_topk = false;
    float routed_scale = 1.0f;
};

ModelConfig route_config(const RouteCase& c) {
    ModelConfig m;
    m.n_experts = c.n_experts;
    m.n_experts_used = c.k;
    m.gating = c.gating;
    m.expert_selection_bias = c.bias;
    m.norm_topk = c.norm_topk;
    m.routed_scale = c.routed_scale;
    m.n_groups = c.n_groups;
    m.n_groups_used = c.n_groups_used;
    m.group_score = c.group_score;
    return m;
}

kernels::RouterParams router_params(const RouteCase& c) {
    kernels::RouterParams p;
    switch (c.gating) {
        case Gating::Softmax: p.gating = kernels::Gating::Softmax; break;
        case Gating::Sigmoid: p.gating = kernels::Gating::Sigmoid; break;
        case Gating::SoftmaxOverTopK: p.gating = kernels::Gating::SoftmaxOverTopK; break;
    }
    p.n_experts = int32_t(c.n_experts);
    p.n_used = int32_t(c.k);
    p.n_groups = int32_t(c.n_groups);
    p.n_groups_used = int32_t(c.n_groups_used);
    p.group_score = c.group_score == GroupScore::Max ? kernels::GroupScore::Max : kernels::GroupScore::TopTwoSum;
    p.norm_topk = c.norm_topk;
    p.routed_scale = c.routed_scale;
    return p;
}

std::vector<RouteCase> route_cases() {
    std::vector<RouteCase> v;
    v.push_back({"qwen3", Gating::Softmax, 128, 8, 1, 1, GroupScore::TopTwoSum, false, true, 1.0f});
    v.push_back({"gpt-oss", Gating::SoftmaxOverTopK, 32, 4, 1, 1, GroupScore::TopTwoSum, false, false, 1.0f});
    v.push_back({"deepseek-v3", Gating::Sigmoid, 256, 8, 8, 4, GroupScore::TopTwoSum, true, true, 2.5f});
    v.push_back({"deepseek-v2", Gating::Softmax, 160, 6, 8, 3, GroupScore::Max, false, false, 16.0f});
    v.push_back({"mixtral", Gating::Softmax, 8, 2, 1, 1, GroupScore::TopTwoSum, false, true, 1.0f});
    v.push_back({"odd", Gating::Sigmoid, 100, 7, 5, 2, GroupScore::TopTwoSum, true, false, 1.0f});
    return v;
}

void check_route(const RouteCase& c, const std::vector<float>& logits, const std::vector<float>& bias, int64_t n_tokens,
                 const cuda::Stream& s) {
    const ModelConfig m = route_config(c);
    std::vector<int32_t> want_e(static_cast<size_t>(n_tokens * c.k));
    std::vector<float> want_w(static_cast<size_t>(n_tokens * c.k));
    for (int64_t t = 0; t < n_tokens; ++t)
        cpu::route(m, &logits[size_t(t * c.n_experts)], c.bias ? bias.data() : nullptr, &want_e[size_t(t * c.k)],
                   &want_w[size_t(t * c.k)]);
    auto dl = to_device(logits);
    auto db = to_device(bias);
    auto de = to_device(std::vector<int32_t>(want_e.size(), -7));
    auto dw = poisoned(want_w.size());
    run(s, "route", [&] {
        return kernels::route(router_params(c), dl.get(), c.bias ? db.get() : nullptr, n_tokens, de.get(), dw.get(),
                              s.get());
    });
    const auto got_e = de.download();
    int bad = 0;
    for (size_t i = 0; i < got_e.size(); ++i)
        if (got_e[i] != want_e[i] && ++bad <= 10)
            ADD_FAILURE() << "token " << i / size_t(c.k) << " slot " << i % size_t(c.k) << ": expert " << got_e[i]
                          << ", want " << want_e[i];
    EXPECT_EQ(bad, 0);
    EXPECT_TRUE(all_close(dw.download(), want_w, 0.0f, 1e-6f));
}

TEST(CudaOps, RoutePicksTheCpuExperts) {
    HYMOE_REQUIRE_GPU();
    cuda::Stream s;
    uint32_t seed = 800;
    for (const RouteCase& c : route_cases()) {
        for (int64_t n_tokens : {1, 3, 17, 300}) {
            SCOPED_TRACE(c.name + " tokens " + std::to_string(n_tokens));
            const auto logits = random_floats(size_t(n_tokens * c.n_experts), ++seed, -4.0f, 4.0f);
            const auto bias = random_floats(size_t(c.n_experts), ++seed, -0.2f, 0.2f);
            check_route(c, logits, bias, n_tokens, s);
        }
    }
}

// Logits from a handful of values: many exact ties, in experts and in group scores. The
// reference breaks them towards the lower index; so must the GPU.
TEST(CudaOps, RouteBreaksTiesAsTheCpu) {
    HYMOE_REQUIRE_GPU();
    cuda::Stream s;
    uint32_t seed = 900;
    for (const RouteCase& c : route_cases()) {
        const int64_t n_tokens = 64;
        SCOPED_TRACE(c.name);
        std::mt19937 rng(++seed);
        std::vector<float> logits(static_cast<size_t>(n_tokens * c.n_experts)), bias(static_cast<size_t>(c.n_experts));
        for (float& v : logits) v = 0.5f * float(int(rng() % 4)) - 1.0f;
        for (float& v : bias) v = 0.125f * float(int(rng() % 2));
        check_route(c, logits, bias, n_tokens, s);
    }
}

// ---- grouping by expert --------------------------------------------------------------------------

struct Grouping {
    std::vector<int32_t> pair_order, pair_pos, offsets, active;
    int32_t n_active = 0;
};

Grouping group_on_gpu(const std::vector<int32_t>& experts, int64_t n_experts, const cuda::Stream& s,
                      size_t temp_misalign = 0) {
    const auto n = int64_t(experts.size());
    auto de = to_device(experts);
    const auto poison = [](size_t k) { return to_device(std::vector<int32_t>(std::max<size_t>(k, 1), -7)); };
    auto order = poison(size_t(n)), pos = poison(size_t(n)), offsets = poison(size_t(n_experts + 1)),
         active = poison(size_t(n_experts)), n_active = poison(1);
    const size_t temp_bytes = kernels::group_by_expert_temp_bytes(n, n_experts);
    EXPECT_GT(temp_bytes, 0u);
    DeviceBuffer<uint8_t> temp(temp_bytes + temp_misalign);
    run(s, "group_by_expert", [&] {
        return kernels::group_by_expert(de.get(), n, n_experts, order.get(), pos.get(), offsets.get(), active.get(),
                                        n_active.get(), temp.get() + temp_misalign, temp_bytes, s.get());
    });
    Grouping g;
    g.pair_order = order.download();
    g.pair_pos = pos.download();
    g.offsets = offsets.download();
    g.active = active.download();
    g.n_active = n_active.download()[0];
    g.pair_order.resize(size_t(n));
    g.pair_pos.resize(size_t(n));
    return g;
}

void check_grouping(const std::vector<int32_t>& experts, int64_t n_experts, const Grouping& g) {
    const auto n = int64_t(experts.size());
    // The stable sort: pair indices ordered by expert, ties in index order; a negative expert
    // (a skipped pair) sorts after every expert.
    const auto key = [&](int32_t pair) { return experts[size_t(pair)] < 0 ? n_experts : experts[size_t(pair)]; };
    std::vector<int32_t> order(static_cast<size_t>(n));
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return key(a) < key(b); });
    EXPECT_EQ(g.pair_order, order);
    std::vector<int32_t> pos(static_cast<size_t>(n));
    for (int64_t p = 0; p < n; ++p) pos[size_t(order[size_t(p)])] = int32_t(p);
    EXPECT_EQ(g.pair_pos, pos);
    std::vector<int32_t> offsets(static_cast<size_t>(n_experts + 1), 0), active;
    for (int32_t e : experts)
        if (e >= 0) ++offsets[size_t(e + 1)];
    for (int64_t e = 0; e < n_experts; ++e) {
        if (offsets[size_t(e + 1)] > 0) active.push_back(int32_t(e));
        offsets[size_t(e + 1)] += offsets[size_t(e)];
    }
    EXPECT_EQ(g.offsets, offsets);
    ASSERT_EQ(g.n_active, int32_t(active.size()));
    EXPECT_EQ(std::vector<int32_t>(g.active.begin(), g.active.begin() + g.n_active), active);
}

TEST(CudaOps, GroupByExpertIsAStableSort) {
    HYMOE_REQUIRE_GPU();
    cuda::Stream s;
    uint32_t seed = 1000;
    for (int64_t n_pairs : {1, 8, 4096}) {
        for (int64_t n_experts : {8, 128, 256}) {
            for (bool skewed : {false, true}) {
                SCOPED_TRACE("pairs " + std::to_string(n_pairs) + " experts " + std::to_string(n_experts) +
                             (skewed ? " skewed" : " uniform"));
                std::mt19937 rng(++seed);
                std::vector<int32_t> experts(static_cast<size_t>(n_pairs));
                // Skewed: a few hot experts and most never chosen (empty ranges between them).
                for (auto& e : experts)
                    e = skewed ? int32_t((rng() % 5) * (n_experts / 5) + 1) % int32_t(n_experts)
                               : int32_t(rng() % uint32_t(n_experts));
                check_grouping(experts, n_experts, group_on_gpu(experts, n_experts, s, skewed ? 4 : 0));
            }
        }
    }
}

// The GPU expert tier marks the pairs the CPU computes with -1: they sort last and belong to
// no expert, also when the expert count is a power of two (all key bits used by real ids).
TEST(CudaOps, GroupByExpertSkipsNegativeExperts) {
    HYMOE_REQUIRE_GPU();
    cuda::Stream s;
    uint32_t seed = 2000;
    for (int64_t n_pairs : {1, 8, 1024}) {
        for (int64_t n_experts : {8, 60, 128}) {
            std::mt19937 rng(++seed);
            std::vector<int32_t> experts(static_cast<size_t>(n_pairs));
            for (auto& e : experts) e = rng() % 3 == 0 ? -1 : int32_t(rng() % uint32_t(n_experts));
            SCOPED_TRACE("pairs " + std::to_string(n_pairs) + " experts " + std::to_string(n_experts));
            check_grouping(experts, n_experts, group_on_gpu(experts, n_experts, s));
            std::fill(experts.begin(), experts.end(), -1);
            check_grouping(experts, n_experts, group_on_gpu(experts, n_experts, s));
        }
    }
}

TEST(CudaOps, GroupByExpertOfNothing) {
    HYMOE_REQUIRE_GPU();
    cuda::Stream s;
    const std::vector<int32_t> none;
    const Grouping g = group_on_gpu(none, 16, s);
    EXPECT_EQ(g.offsets, std::vector<int32_t>(17, 0));
    EXPECT_EQ(g.n_active, 0);
}

// Routing and grouping are captured into a CUDA graph and replayed: no launcher may synchronize,
// allocate or copy to the host.
TEST(CudaOps, RouteAndGroupCaptureInAGraph) {
    HYMOE_REQUIRE_GPU();
    cuda::Stream s;
    const RouteCase c = route_cases()[2];  // DeepSeek-V3: groups and bias
    const int64_t n_tokens = 37, n_pairs = n_tokens * c.k;
    const auto logits = random_floats(size_t(n_tokens * c.n_experts), 1100, -4.0f, 4.0f);
    const auto bias = random_floats(size_t(c.n_experts), 1101, -0.2f, 0.2f);
    auto dl = to_device(logits);
    auto db = to_device(bias);
    DeviceBuffer<int32_t> de(static_cast<size_t>(n_pairs)), order(static_cast<size_t>(n_pairs)),
        pos(static_cast<size_t>(n_pairs)), offsets(size_t(c.n_experts + 1)), active(static_cast<size_t>(c.n_experts)),
        n_active(1);
    DeviceBuffer<float> dw(static_cast<size_t>(n_pairs));
    const size_t temp_bytes = kernels::group_by_expert_temp_bytes(n_pairs, c.n_experts);
    DeviceBuffer<uint8_t> temp(temp_bytes);

    cuda::check(cudaDeviceSynchronize(), "cudaDeviceSynchronize");  // the uploads, on the legacy stream
    cudaGraph_t graph = nullptr;
    cuda::check(cudaStreamBeginCapture(s.get(), cudaStreamCaptureModeGlobal), "cudaStreamBeginCapture");
    const cudaError_t e1 = kernels::route(router_params(c), dl.get(), db.get(), n_tokens, de.get(), dw.get(), s.get());
    const cudaError_t e2 =
        kernels::group_by_expert(de.get(), n_pairs, c.n_experts, order.get(), pos.get(), offsets.get(), active.get(),
                                 n_active.get(), temp.get(), temp_bytes, s.get());
    const cudaError_t e3 = cudaStreamEndCapture(s.get(), &graph);
    cuda::check(e1, "route (captured)");
    cuda::check(e2, "group_by_expert (captured)");
    cuda::check(e3, "cudaStreamEndCapture");
    cudaGraphExec_t exec = nullptr;
    cuda::check(cudaGraphInstantiate(&exec, graph, 0), "cudaGraphInstantiate");
    cuda::check(cudaGraphLaunch(exec, s.get()), "cudaGraphLaunch");
    s.synchronize();
    cudaGraphExecDestroy(exec);
    cudaGraphDestroy(graph);

    const ModelConfig m = route_config(c);
    std::vector<int32_t> want_e(static_cast<size_t>(n_pairs));
    std::vector<float> want_w(static_cast<size_t>(n_pairs));
    for (int64_t t = 0; t < n_tokens; ++t)
        cpu::route(m, &logits[size_t(t * c.n_experts)], bias.data(), &want_e[size_t(t * c.k)],
                   &want_w[size_t(t * c.k)]);
    EXPECT_EQ(de.download(), want_e);
    EXPECT_TRUE(all_close(dw.download(), want_w, 0.0f, 1e-6f));
    Grouping g;
    g.pair_order = order.download();
    g.pair_pos = pos.download();
    g.offsets = offsets.download();
    g.active = active.download();
    g.n_active = n_active.download()[0];
    check_grouping(want_e, c.n_experts, g);
}

// ---- argument checks (no device needed: the launchers refuse before any CUDA call) ----------

TEST(CudaOps, LaunchersRefuseBadArguments) {
    float* fake = reinterpret_cast<float*>(uintptr_t(256));  // never dereferenced
    const auto* ids = reinterpret_cast<const int32_t*>(uintptr_t(256));
    kernels::RopeParams rp;
    rp.n_dims = 63;  // odd
    EXPECT_EQ(kernels::rope(rp, fake, 1, 1, 64, 64, 0, nullptr), cudaErrorInvalidValue);
    rp.n_dims = 0;
    EXPECT_EQ(kernels::rope(rp, fake, 1, 1, 64, 64, 0, nullptr), cudaErrorInvalidValue);

    kernels::RouterParams p;
    p.n_experts = 8;
    p.n_used = 9;  // more than there are
    EXPECT_EQ(kernels::route(p, fake, nullptr, 1, nullptr, fake, nullptr), cudaErrorInvalidValue);
    p.n_used = 2;
    p.n_groups = 3;  // 8 experts do not split into 3 groups
    EXPECT_EQ(kernels::route(p, fake, nullptr, 1, nullptr, fake, nullptr), cudaErrorInvalidValue);
    p.n_experts = 4096;  // more than the kernel's shared memory holds
    p.n_groups = 1;
    EXPECT_EQ(kernels::route(p, fake, nullptr, 1, nullptr, fake, nullptr), cudaErrorInvalidValue);

    // Q4_K rows are whole 256-element super-blocks; the row must hold its bytes.
    EXPECT_EQ(kernels::embed_rows(kernels::WeightType::Q4_K, fake, 144, 128, ids, 1, fake, nullptr),
              cudaErrorInvalidValue);
    EXPECT_EQ(kernels::embed_rows(kernels::WeightType::Q4_K, fake, 143, 256, ids, 1, fake, nullptr),
              cudaErrorInvalidValue);
    EXPECT_EQ(kernels::embed_rows(static_cast<kernels::WeightType>(16), fake, 1024, 256, ids, 1, fake, nullptr),
              cudaErrorInvalidValue);

    EXPECT_EQ(kernels::rms_norm(fake, 10, nullptr, 2, 20, 1e-6f, fake, 20, nullptr), cudaErrorInvalidValue);
    EXPECT_EQ(kernels::copy_rows(fake, 5, fake, 20, 2, 10, nullptr), cudaErrorInvalidValue);
    kernels::GluParams gp;
    gp.kind = static_cast<kernels::Glu>(7);
    EXPECT_EQ(kernels::glu(gp, fake, fake, 10, fake, nullptr), cudaErrorInvalidValue);
    EXPECT_EQ(
        kernels::group_by_expert(nullptr, -1, 8, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, 0, nullptr),
        cudaErrorInvalidValue);
}

}  // namespace
}  // namespace hymoe
