// kernels::attention against hymoe::cpu::attention_head for every (token, head): decode and
// prefill at several context lengths, GQA group sizes, head dims (powers of two and not), the
// sliding window, attention sinks, the MLA shape (v = k) and strides with padding. Outputs are
// poisoned with NaN before each launch; the floats around them (a spare head slot per token, a
// spare token row, padding) hold a canary that must survive. Padding inside q, k and v holds NaN,
// so a kernel reading past a row shows up. Skipped, with the reason, where there is no GPU.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "cpu/ops.hpp"
#include "cuda/memory.hpp"
#include "gpu_test_support.hpp"
#include "launch.hpp"

namespace hymoe {
namespace {

using test::all_close;
using test::kPoison;
using test::random_floats;

constexpr float kCanary = 1234.5f;  // around the outputs: never written by a correct kernel
constexpr float kAtol = 1e-5f;
constexpr float kRtol = 1e-4f;

struct Shape {
    int64_t n_tokens = 1;
    int64_t n_past = 0;
    int64_t n_heads = 1;
    int64_t n_kv_heads = 1;
    int64_t dim_k = 64;
    int64_t dim_v = 64;
    int64_t window = 0;
    bool sinks = false;
    bool mla = false;    // v = k: the values are the first dim_v floats of each key row
    int64_t pad = 0;     // extra floats after every head and every row
    float scale = 0.0f;  // 0: 1 / sqrt(dim_k)
};

std::string name_of(const Shape& s) {
    // fmt, not operator+ chains: GCC 12 warns falsely (-Wrestrict) on long std::string sums.
    std::string n = fmt::format("t{}_past{}_h{}kv{}_k{}v{}", s.n_tokens, s.n_past, s.n_heads, s.n_kv_heads, s.dim_k,
                                s.dim_v);
    if (s.window > 0) n += "_win" + std::to_string(s.window);
    if (s.sinks) n += "_sinks";
    if (s.mla) n += "_mla";
    if (s.pad > 0) n += "_pad" + std::to_string(s.pad);
    if (s.scale != 0.0f) n += "_sharp";
    return n;
}

// The host side of one problem: buffers laid out with the shape's strides, padding NaN.
struct Problem {
    Shape s;
    kernels::AttentionParams p;   // strides and sizes; pointers filled in on the device side
    std::vector<float> q;         // [n_tokens][q_token_stride]
    std::vector<float> k;         // [n_ctx][k_pos_stride]
    std::vector<float> v;         // [n_ctx][v_pos_stride]; empty for MLA (v = k)
    std::vector<float> sinks;     // [n_heads] or empty
    std::vector<float> out_init;  // [n_tokens + 1][out_token_stride]: canary, NaN where outputs go
    std::vector<float> want;      // same layout: canary, the reference where outputs go
    std::vector<bool> is_output;  // same layout
};

// Fills rows x heads x dim floats of `buf` (row r, head h at r * row_stride + h * head_stride)
// with random values; the rest of `buf` stays as it was (NaN).
void fill_heads(std::vector<float>& buf, int64_t rows, int64_t heads, int64_t dim, int64_t row_stride,
                int64_t head_stride, uint32_t seed) {
    const std::vector<float> r = random_floats(static_cast<size_t>(rows * heads * dim), seed);
    size_t i = 0;
    for (int64_t row = 0; row < rows; ++row)
        for (int64_t h = 0; h < heads; ++h)
            for (int64_t d = 0; d < dim; ++d) buf[static_cast<size_t>(row * row_stride + h * head_stride + d)] = r[i++];
}

Problem make_problem(const Shape& s, uint32_t seed) {
    Problem pr;
    pr.s = s;
    kernels::AttentionParams& p = pr.p;
    const int64_t n_ctx = s.n_past + s.n_tokens;
    p.n_tokens = s.n_tokens;
    p.n_heads = s.n_heads;
    p.n_kv_heads = s.n_kv_heads;
    p.dim_k = s.dim_k;
    p.dim_v = s.dim_v;
    p.n_past = s.n_past;
    p.window = s.window;
    p.scale = s.scale != 0.0f ? s.scale : 1.0f / std::sqrt(static_cast<float>(s.dim_k));
    p.q_head_stride = s.dim_k + s.pad;
    p.q_token_stride = s.n_heads * p.q_head_stride + 2 * s.pad;
    p.k_head_stride = s.dim_k + s.pad;
    p.k_pos_stride = s.n_kv_heads * p.k_head_stride + s.pad;
    if (s.mla) {
        p.v_head_stride = p.k_head_stride;
        p.v_pos_stride = p.k_pos_stride;
    } else {
        p.v_head_stride = s.dim_v + s.pad;
        p.v_pos_stride = s.n_kv_heads * p.v_head_stride + 3 * s.pad;
    }
    p.out_head_stride = s.dim_v + s.pad;
    p.out_token_stride = (s.n_heads + 1) * p.out_head_stride + s.pad;  // a spare head slot: canary

    pr.q.assign(static_cast<size_t>(s.n_tokens * p.q_token_stride), kPoison);
    fill_heads(pr.q, s.n_tokens, s.n_heads, s.dim_k, p.q_token_stride, p.q_head_stride, seed);
    pr.k.assign(static_cast<size_t>(n_ctx * p.k_pos_stride), kPoison);
    fill_heads(pr.k, n_ctx, s.n_kv_heads, s.dim_k, p.k_pos_stride, p.k_head_stride, seed + 1);
    if (!s.mla) {
        pr.v.assign(static_cast<size_t>(n_ctx * p.v_pos_stride), kPoison);
        fill_heads(pr.v, n_ctx, s.n_kv_heads, s.dim_v, p.v_pos_stride, p.v_head_stride, seed + 2);
    }
    // Sinks up to well above the scores, so some heads are dominated by theirs.
    if (s.sinks) pr.sinks = random_floats(static_cast<size_t>(s.n_heads), seed + 3, -2.0f, 6.0f);

    const size_t out_size = static_cast<size_t>((s.n_tokens + 1) * p.out_token_stride);  // a spare token row
    pr.out_init.assign(out_size, kCanary);
    pr.want.assign(out_size, kCanary);
    pr.is_output.assign(out_size, false);
    const float* v_host = s.mla ? pr.k.data() : pr.v.data();
    std::vector<float> scores(static_cast<size_t>(n_ctx));
    const int64_t group = s.n_heads / s.n_kv_heads;
    for (int64_t t = 0; t < s.n_tokens; ++t) {
        const int64_t pos = s.n_past + t;
        for (int64_t h = 0; h < s.n_heads; ++h) {
            const int64_t g = h / group;
            cpu::AttentionHead a;
            a.q = pr.q.data() + t * p.q_token_stride + h * p.q_head_stride;
            a.k = pr.k.data() + g * p.k_head_stride;
            a.v = v_host + g * p.v_head_stride;
            a.k_stride = p.k_pos_stride;
            a.v_stride = p.v_pos_stride;
            a.dim_k = s.dim_k;
            a.dim_v = s.dim_v;
            a.k_begin = s.window > 0 ? std::max<int64_t>(0, pos - s.window + 1) : 0;
            a.k_end = pos + 1;
            a.scale = p.scale;
            a.sink = s.sinks ? &pr.sinks[static_cast<size_t>(h)] : nullptr;
            const size_t at = static_cast<size_t>(t * p.out_token_stride + h * p.out_head_stride);
            cpu::attention_head(a, scores.data(), pr.want.data() + at);
            for (int64_t d = 0; d < s.dim_v; ++d) {
                pr.out_init[at + static_cast<size_t>(d)] = kPoison;
                pr.is_output[at + static_cast<size_t>(d)] = true;
            }
        }
    }
    return pr;
}

// The device copies of a problem's inputs and output; `params` points at them.
struct DeviceProblem {
    cuda::DeviceBuffer<float> q, k, v, sinks, out;
    kernels::AttentionParams params;

    explicit DeviceProblem(const Problem& pr)
        : q(cuda::to_device(pr.q)),
          k(cuda::to_device(pr.k)),
          v(cuda::to_device(pr.v)),
          sinks(cuda::to_device(pr.sinks)),
          out(cuda::to_device(pr.out_init)),
          params(pr.p) {
        params.q = q.get();
        params.k = k.get();
        params.v = pr.s.mla ? k.get() : v.get();
        params.sinks = pr.s.sinks ? sinks.get() : nullptr;
        params.out = out.get();
    }
};

// Outputs within tolerance of the reference; every other float of the output buffer untouched.
void expect_matches(const Problem& pr, const std::vector<float>& got_all) {
    ASSERT_EQ(got_all.size(), pr.want.size());
    std::vector<float> got, want;
    size_t clobbered = 0;
    std::string first_clobbered;
    for (size_t i = 0; i < got_all.size(); ++i) {
        if (pr.is_output[i]) {
            got.push_back(got_all[i]);
            want.push_back(pr.want[i]);
        } else if (std::memcmp(&got_all[i], &kCanary, sizeof(float)) != 0) {
            if (clobbered++ == 0) first_clobbered = std::to_string(i) + " = " + std::to_string(got_all[i]);
        }
    }
    EXPECT_TRUE(all_close(got, want, kAtol, kRtol));
    EXPECT_EQ(clobbered, 0u) << "floats outside the outputs were written, first at " << first_clobbered;
}

void run_and_check(const Shape& s, uint32_t seed) {
    const Problem pr = make_problem(s, seed);
    DeviceProblem dev(pr);
    cuda::Stream stream;
    cuda::check(kernels::attention(dev.params, stream.get()), "kernels::attention");
    stream.synchronize();
    expect_matches(pr, dev.out.download());
}

class CudaAttention : public ::testing::TestWithParam<Shape> {};

TEST_P(CudaAttention, MatchesCpuReference) {
    HYMOE_REQUIRE_GPU();
    // A seed per shape (FNV-1a of its name), so each case draws its own inputs.
    uint32_t seed = 2166136261u;
    for (const char c : name_of(GetParam())) seed = (seed ^ static_cast<uint8_t>(c)) * 16777619u;
    run_and_check(GetParam(), seed);
}

std::vector<Shape> shapes() {
    std::vector<Shape> v;
    const int64_t gqa[][2] = {{32, 4}, {16, 16}, {8, 1}};
    // Decode and prefill at every context length, each group size, head dim 128.
    for (const auto& g : gqa)
        for (int64_t tokens : {1, 7, 33})
            for (int64_t past : {0, 5, 300, 2000}) v.push_back({tokens, past, g[0], g[1], 128, 128});
    // Head dims 64 and 80 (not a power of two).
    for (const auto& g : gqa)
        for (int64_t dim : {64, 80}) {
            v.push_back({1, 5, g[0], g[1], dim, dim});
            v.push_back({1, 2000, g[0], g[1], dim, dim});
            v.push_back({7, 2000, g[0], g[1], dim, dim});
            v.push_back({33, 300, g[0], g[1], dim, dim});
        }
    // Other dims: the smallest, odd multiples of 16, q/k wider than v (DeepSeek without absorption).
    v.push_back({3, 0, 1, 1, 16, 16});
    v.push_back({7, 300, 8, 2, 48, 48});
    v.push_back({7, 300, 16, 16, 192, 128});
    v.push_back({1, 2000, 16, 16, 192, 128});
    v.push_back({5, 40, 4, 4, 96, 256});
    // Sliding window 128 (GPT-OSS: 64 heads over 8, dim 64, with sinks): below, at and past the
    // window, and a prefill batch that crosses it.
    for (int64_t past : {100, 127, 128, 129, 2000}) v.push_back({1, past, 64, 8, 64, 64, 128, true});
    v.push_back({33, 300, 64, 8, 64, 64, 128, true});
    v.push_back({200, 0, 64, 8, 64, 64, 128, true});
    v.push_back({7, 300, 32, 4, 128, 128, 128, false});
    // Sinks without a window.
    v.push_back({7, 300, 32, 4, 64, 64, 0, true});
    v.push_back({1, 2000, 32, 4, 64, 64, 0, true});
    // MLA: 16 heads over one latent head, keys 512 + 64, values the first 512.
    for (int64_t tokens : {1, 7})
        for (int64_t past : {0, 5, 300, 2000}) v.push_back({tokens, past, 16, 1, 576, 512, 0, false, true});
    v.push_back({33, 300, 16, 1, 576, 512, 0, false, true});
    {
        Shape s{1, 2000, 16, 1, 576, 512, 0, false, true};
        s.scale = 1.0f / std::sqrt(192.0f);  // DeepSeek scales by the un-absorbed q/k dim
        v.push_back(s);
    }
    // dim_v = 576 (the largest), no MLA.
    v.push_back({7, 300, 4, 1, 576, 576});
    // Odd strides: padding after every head and row, unaligned rows.
    for (Shape s : {Shape{7, 300, 32, 4, 128, 128}, Shape{1, 2000, 32, 4, 80, 80},
                    Shape{7, 300, 16, 1, 576, 512, 0, false, true}, Shape{33, 300, 64, 8, 64, 64, 128, true}}) {
        s.pad = 3;
        v.push_back(s);
    }
    // A sharp softmax (scores up to ~10): the running max moves a lot between chunks.
    {
        Shape s{7, 300, 8, 1, 64, 64};
        s.scale = 1.0f;
        v.push_back(s);
        s = Shape{1, 2000, 8, 1, 64, 64, 0, true};
        s.scale = 1.0f;
        v.push_back(s);
    }
    // Long decode (split over a cluster of blocks on sm_90) and a long prefill batch.
    v.push_back({1, 32767, 32, 4, 128, 128});
    v.push_back({1, 8000, 8, 1, 64, 64, 4096, true});
    v.push_back({512, 0, 8, 1, 64, 64});
    return v;
}

INSTANTIATE_TEST_SUITE_P(Shapes, CudaAttention, ::testing::ValuesIn(shapes()),
                         [](const ::testing::TestParamInfo<Shape>& p) { return name_of(p.param); });

// The launch records into a CUDA graph (no allocation, sync or host copy inside), and the graph
// replays it with the same result.
TEST(CudaAttentionGraph, CapturesAndReplays) {
    HYMOE_REQUIRE_GPU();
    for (const Shape& s : {Shape{1, 2000, 32, 4, 128, 128}, Shape{33, 300, 16, 1, 576, 512, 0, false, true}}) {
        SCOPED_TRACE(name_of(s));
        const Problem pr = make_problem(s, 77);
        DeviceProblem dev(pr);
        cuda::Stream stream;
        cuda::check(cudaStreamBeginCapture(stream.get(), cudaStreamCaptureModeGlobal), "cudaStreamBeginCapture");
        const cudaError_t launched = kernels::attention(dev.params, stream.get());
        cudaGraph_t graph = nullptr;
        cuda::check(cudaStreamEndCapture(stream.get(), &graph), "cudaStreamEndCapture");
        ASSERT_EQ(launched, cudaSuccess) << cudaGetErrorString(launched);
        cudaGraphExec_t exec = nullptr;
        const cudaError_t inst = cudaGraphInstantiate(&exec, graph, 0);
        cudaGraphDestroy(graph);
        ASSERT_EQ(inst, cudaSuccess) << cudaGetErrorString(inst);
        for (int replay = 0; replay < 2; ++replay) {
            dev.out.upload(pr.out_init);
            cuda::check(cudaGraphLaunch(exec, stream.get()), "cudaGraphLaunch");
            stream.synchronize();
            expect_matches(pr, dev.out.download());
        }
        cudaGraphExecDestroy(exec);
    }
}

// Bad arguments are refused before anything reaches the GPU (no GPU needed).
TEST(CudaAttentionArgs, RejectsBadArguments) {
    float dummy = 0.0f;
    kernels::AttentionParams p;
    p.q = p.k = p.v = &dummy;
    p.out = &dummy;
    p.n_tokens = 1;
    p.n_heads = 8;
    p.n_kv_heads = 2;
    p.dim_k = p.dim_v = 64;
    const auto with = [&](auto change) {
        kernels::AttentionParams c = p;
        change(c);
        return kernels::attention(c, nullptr);
    };
    EXPECT_EQ(with([](auto& c) { c.n_tokens = 0; }), cudaSuccess);  // nothing to do
    EXPECT_EQ(with([](auto& c) { c.n_tokens = -1; }), cudaErrorInvalidValue);
    EXPECT_EQ(with([](auto& c) { c.q = nullptr; }), cudaErrorInvalidValue);
    EXPECT_EQ(with([](auto& c) { c.out = nullptr; }), cudaErrorInvalidValue);
    EXPECT_EQ(with([](auto& c) { c.n_kv_heads = 3; }), cudaErrorInvalidValue);  // 8 heads over 3
    EXPECT_EQ(with([](auto& c) { c.n_kv_heads = 0; }), cudaErrorInvalidValue);
    EXPECT_EQ(with([](auto& c) { c.dim_v = 577; }), cudaErrorInvalidValue);
    EXPECT_EQ(with([](auto& c) { c.dim_k = 0; }), cudaErrorInvalidValue);
    EXPECT_EQ(with([](auto& c) { c.n_past = -1; }), cudaErrorInvalidValue);
    EXPECT_EQ(with([](auto& c) { c.window = -1; }), cudaErrorInvalidValue);
    EXPECT_EQ(with([](auto& c) { c.k_pos_stride = -64; }), cudaErrorInvalidValue);
}

// A query row too wide for shared memory is refused, not launched.
TEST(CudaAttentionArgs, RejectsHugeKeyDim) {
    HYMOE_REQUIRE_GPU();
    cuda::DeviceBuffer<float> buf(16);
    kernels::AttentionParams p;
    p.q = p.k = p.v = buf.get();
    p.out = buf.get();
    p.n_tokens = 1;
    p.n_heads = p.n_kv_heads = 1;
    p.dim_k = 20000;
    p.dim_v = 64;
    EXPECT_EQ(kernels::attention(p, nullptr), cudaErrorInvalidValue);
}

}  // namespace
}  // namespace hymoe
