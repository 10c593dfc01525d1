// The tensor-core GEMM over stored weights (kernels/matmul_gemm.cu): matmul_gemm for one matrix
// and grouped_matmul_gemm for the experts of one MoE layer, against a double-precision product
// computed here.
//
// The kernel multiplies bf16 operands with f32 accumulation, so the reference takes the weights
// as quant::dequantize_row decodes them and the activations, both rounded to bf16 (round to
// nearest even) exactly as the kernel rounds them; what remains is the f32 summation order, held
// to 2e-4 of Σ|w||x| per element. Outputs (and guard rows past them) are poisoned with NaN
// before every launch, so an element the kernel forgets, or writes out of bounds, fails.
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

using test::block_elems;
using test::guard_untouched;
using test::HostMatrix;
using test::kPoison;
using test::random_floats;
using test::tensor_type;

constexpr double kRelTol = 2e-4;   // of Σ|w||x|: f32 summation order only
constexpr int64_t kGuardRows = 3;  // poisoned rows of y past the output, which must stay NaN

std::vector<float> round_bf16(std::vector<float> v) {
    for (float& x : v) x = quant::round_to_bf16(x);
    return v;
}

class CudaGemm : public ::testing::TestWithParam<WeightType> {};

// ---- one matrix ----

// matmul_gemm on one matrix; x_shift floats of offset make x not 16-byte aligned.
void check_single(WeightType type, int64_t rows, int64_t cols, int64_t n, int64_t pad, int64_t x_shift, uint32_t seed) {
    SCOPED_TRACE("rows " + std::to_string(rows) + " cols " + std::to_string(cols) + " n " + std::to_string(n) +
                 " row pad " + std::to_string(pad) + " x shift " + std::to_string(x_shift));
    const HostMatrix m = test::make_matrix(type, rows, cols, seed, pad, true);
    const cuda::DeviceBuffer<std::byte> w_dev = cuda::to_device(m.bytes);
    const WeightMatrix w{type, w_dev.get(), rows, cols, m.row_bytes};
    const std::vector<float> x = random_floats(static_cast<size_t>(n * cols), seed + 1);
    const std::vector<float> xr = round_bf16(x);
    std::vector<double> want(static_cast<size_t>(n * rows)), scale(want.size());
    for (int64_t t = 0; t < n; ++t)
        test::reference_product(m, xr.data() + t * cols, want.data() + t * rows, scale.data() + t * rows);

    cuda::DeviceBuffer<float> x_dev(static_cast<size_t>(n * cols + x_shift));
    cuda::check(cudaMemcpy(x_dev.get() + x_shift, x.data(), x.size() * sizeof(float), cudaMemcpyHostToDevice),
                "cudaMemcpy x");
    cuda::DeviceBuffer<float> y_dev(static_cast<size_t>((n + kGuardRows) * rows));
    y_dev.upload(std::vector<float>(y_dev.size(), kPoison));
    cuda::check(matmul_gemm(w, x_dev.get() + x_shift, n, y_dev.get(), nullptr), "matmul_gemm");
    cuda::check(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
    std::vector<float> y = y_dev.download();
    EXPECT_TRUE(guard_untouched(y, want.size()));
    y.resize(want.size());
    EXPECT_TRUE(test::close_to_scale(y, want, scale, kRelTol));
}

TEST_P(CudaGemm, MatchesReferenceProduct) {
    HYMOE_REQUIRE_GPU();
    const WeightType type = GetParam();
    std::vector<int64_t> col_sizes = {256, 512};
    if (block_elems(type) <= 32) col_sizes.push_back(96);  // a last K-step with one 32-column group
    uint32_t seed = 1000 * static_cast<uint32_t>(type);
    for (const int64_t cols : col_sizes)
        for (const int64_t rows : {64, 96, 200})
            for (const int64_t n : {1, 9, 64, 65, 130}) check_single(type, rows, cols, n, 0, 0, seed += 2);
}

// Rows only 2-byte aligned (the byte-wise decoders instead of the 16-byte loads) and x not
// 16-byte aligned (scalar activation reads).
TEST_P(CudaGemm, UnalignedRowsAndActivations) {
    HYMOE_REQUIRE_GPU();
    const WeightType type = GetParam();
    const uint32_t seed = 20000 + 1000 * static_cast<uint32_t>(type);
    check_single(type, 96, 256, 65, 2, 0, seed);
    check_single(type, 200, 512, 9, 0, 1, seed + 2);
    check_single(type, 70, 256, 130, 2, 3, seed + 4);
}

// Float-type rows whose length is not a multiple of 32 (a partial last group).
TEST(CudaGemmFloatTails, ColumnsNotAMultipleOf32) {
    HYMOE_REQUIRE_GPU();
    check_single(WeightType::F32, 70, 40, 20, 0, 0, 31);
    check_single(WeightType::BF16, 70, 37, 20, 0, 0, 33);
    check_single(WeightType::F16, 33, 77, 66, 2, 1, 35);
}

// ---- grouped: one MoE layer's experts ----

struct Routing {
    std::vector<int32_t> experts;     // [n_tokens][n_used]
    std::vector<int32_t> pair_order;  // [n_pairs] sorted position -> pair
    std::vector<int32_t> offsets;     // [n_experts + 1]
    std::vector<int32_t> active;      // [n_experts], entries past n_active garbage
    int32_t n_active = 0;
};

// Random distinct experts per token, never the `idle` ones; expert 0 is every token's first slot,
// so it holds n_tokens pairs (more than one 64-token tile when n_tokens > 64). Grouped as
// group_by_expert does it (stable by pair index).
Routing make_routing(int64_t n_tokens, int64_t n_experts, int64_t n_used, const std::vector<int32_t>& idle,
                     uint32_t seed) {
    std::mt19937 rng(seed);
    std::vector<int32_t> eligible;
    for (int32_t e = 1; e < n_experts; ++e)
        if (std::find(idle.begin(), idle.end(), e) == idle.end()) eligible.push_back(e);
    Routing r;
    for (int64_t t = 0; t < n_tokens; ++t) {
        r.experts.push_back(0);
        std::shuffle(eligible.begin(), eligible.end(), rng);
        for (int64_t k = 1; k < n_used; ++k) r.experts.push_back(eligible[static_cast<size_t>(k - 1)]);
    }
    const int64_t n_pairs = n_tokens * n_used;
    r.pair_order.resize(static_cast<size_t>(n_pairs));
    std::iota(r.pair_order.begin(), r.pair_order.end(), 0);
    std::stable_sort(r.pair_order.begin(), r.pair_order.end(),
                     [&](int32_t a, int32_t b) { return r.experts[a] < r.experts[b]; });
    r.offsets.assign(static_cast<size_t>(n_experts + 1), 0);
    for (const int32_t e : r.experts) ++r.offsets[static_cast<size_t>(e + 1)];
    for (int64_t e = 0; e < n_experts; ++e) r.offsets[e + 1] += r.offsets[e];
    r.active.assign(static_cast<size_t>(n_experts), 0x7fffffff);  // garbage the kernel must not read
    for (int32_t e = 0; e < n_experts; ++e)
        if (r.offsets[e + 1] > r.offsets[e]) r.active[static_cast<size_t>(r.n_active++)] = e;
    return r;
}

// gather_x: x rows are tokens, reached through x_rows; else x is indexed by sorted position.
// pad: bytes added to every weight row (2: rows only 2-byte aligned).
void check_grouped(WeightType type, int64_t n_tokens, int64_t n_experts, int64_t n_used, bool gather_x, int64_t pad,
                   uint32_t seed) {
    SCOPED_TRACE("n_tokens " + std::to_string(n_tokens) + " n_experts " + std::to_string(n_experts) + " n_used " +
                 std::to_string(n_used) + (gather_x ? " gathered x" : " sorted x") + " row pad " + std::to_string(pad));
    const int64_t rows = 96, cols = 256;
    const std::vector<int32_t> idle = {1, 3, static_cast<int32_t>(n_experts - 1)};
    const Routing r = make_routing(n_tokens, n_experts, n_used, idle, seed);
    const int64_t n_pairs = n_tokens * n_used;

    // Every expert with pairs gets its own matrix; idle experts get a null pointer, which the kernel
    // must never follow.
    std::vector<HostMatrix> m(static_cast<size_t>(n_experts));
    std::vector<std::byte> all;
    std::vector<int64_t> at(static_cast<size_t>(n_experts), -1);
    for (int64_t e = 0; e < n_experts; ++e) {
        if (r.offsets[e + 1] == r.offsets[e]) continue;
        m[e] = test::make_matrix(type, rows, cols, seed + 1 + static_cast<uint32_t>(e), pad, true);
        at[e] = static_cast<int64_t>(all.size());
        all.insert(all.end(), m[e].bytes.begin(), m[e].bytes.end());
    }
    const int64_t row_bytes = static_cast<int64_t>(hymoe::row_bytes(tensor_type(type), cols).value()) + pad;
    const cuda::DeviceBuffer<std::byte> w_dev = cuda::to_device(all);
    std::vector<const void*> w_ptrs(static_cast<size_t>(n_experts), nullptr);
    for (int64_t e = 0; e < n_experts; ++e)
        if (at[e] >= 0) w_ptrs[e] = w_dev.get() + at[e];
    const cuda::DeviceBuffer<const void*> w_ptrs_dev = cuda::to_device(w_ptrs);

    const int64_t x_count = gather_x ? n_tokens : n_pairs;
    const std::vector<float> x = random_floats(static_cast<size_t>(x_count * cols), seed + 7777);
    const std::vector<float> xr = round_bf16(x);
    std::vector<int32_t> x_rows(static_cast<size_t>(n_pairs));
    for (int64_t p = 0; p < n_pairs; ++p)
        x_rows[p] = gather_x ? r.pair_order[p] / static_cast<int32_t>(n_used) : static_cast<int32_t>(p);

    std::vector<double> want(static_cast<size_t>(n_pairs * rows)), scale(want.size());
    for (int64_t e = 0; e < n_experts; ++e)
        for (int32_t p = r.offsets[e]; p < r.offsets[e + 1]; ++p)
            test::reference_product(m[e], xr.data() + int64_t(x_rows[p]) * cols, want.data() + p * rows,
                                    scale.data() + p * rows);

    const cuda::DeviceBuffer<float> x_dev = cuda::to_device(x);
    const cuda::DeviceBuffer<int32_t> x_rows_dev = cuda::to_device(x_rows);
    const cuda::DeviceBuffer<int32_t> offsets_dev = cuda::to_device(r.offsets);
    const cuda::DeviceBuffer<int32_t> active_dev = cuda::to_device(r.active);
    const cuda::DeviceBuffer<int32_t> n_active_dev = cuda::to_device(std::vector<int32_t>{r.n_active});
    cuda::DeviceBuffer<float> y_dev(static_cast<size_t>((n_pairs + kGuardRows) * rows));
    y_dev.upload(std::vector<float>(y_dev.size(), kPoison));

    GroupedMatmul g;
    g.type = type;
    g.w = w_ptrs_dev.get();
    g.row_bytes = row_bytes;
    g.rows = rows;
    g.cols = cols;
    g.x = x_dev.get();
    g.x_rows = gather_x ? x_rows_dev.get() : nullptr;
    g.y = y_dev.get();
    g.offsets = offsets_dev.get();
    g.active = active_dev.get();
    g.n_active = n_active_dev.get();
    g.n_experts = n_experts;
    g.n_pairs = n_pairs;
    g.max_pairs_per_expert = n_tokens;  // the host-known bound, not the real count
    cuda::check(grouped_matmul_gemm(g, nullptr), "grouped_matmul_gemm");
    cuda::check(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
    std::vector<float> y = y_dev.download();
    EXPECT_TRUE(guard_untouched(y, want.size()));
    y.resize(want.size());
    EXPECT_TRUE(test::close_to_scale(y, want, scale, kRelTol));
}

TEST_P(CudaGemm, GroupedMatchesReferenceProduct) {
    HYMOE_REQUIRE_GPU();
    const WeightType type = GetParam();
    const uint32_t seed = 50000 + 1000 * static_cast<uint32_t>(type);
    check_grouped(type, 100, 8, 2, true, 0, seed);
    check_grouped(type, 150, 64, 6, true, 0, seed + 100);
    check_grouped(type, 9, 8, 2, true, 0, seed + 200);
    check_grouped(type, 70, 8, 2, false, 0, seed + 300);
    check_grouped(type, 100, 8, 2, true, 2, seed + 400);
}

INSTANTIATE_TEST_SUITE_P(AllTypes, CudaGemm, ::testing::ValuesIn(test::kAllWeightTypes),
                         [](const ::testing::TestParamInfo<WeightType>& param_info) {
                             return std::string(type_name(tensor_type(param_info.param)));
                         });

// ---- preconditions: every call here returns before anything reaches the device, so no GPU is needed ----

TEST(CudaGemmArgs, RejectsBadArguments) {
    // Fake device addresses: every call below must fail its checks before using them.
    const auto* data = reinterpret_cast<const void*>(uintptr_t{0x10000});
    const auto* x = reinterpret_cast<const float*>(uintptr_t{0x20000});
    auto* y = reinterpret_cast<float*>(uintptr_t{0x30000});
    const WeightMatrix good{WeightType::Q4_K, data, 64, 256, 144};

    EXPECT_EQ(matmul_gemm(good, x, -1, y, nullptr), cudaErrorInvalidValue);
    EXPECT_EQ(matmul_gemm(good, x, 0, y, nullptr), cudaSuccess);  // nothing to do, nothing launched
    EXPECT_EQ(matmul_gemm(good, nullptr, 9, y, nullptr), cudaErrorInvalidValue);
    EXPECT_EQ(matmul_gemm(good, x, 9, nullptr, nullptr), cudaErrorInvalidValue);
    WeightMatrix bad = good;
    bad.data = nullptr;
    EXPECT_EQ(matmul_gemm(bad, x, 9, y, nullptr), cudaErrorInvalidValue);
    bad = good;
    bad.cols = 288;  // a multiple of 32, not of Q4_K's 256
    bad.row_bytes = 1000;
    EXPECT_EQ(matmul_gemm(bad, x, 9, y, nullptr), cudaErrorInvalidValue);
    bad = good;
    bad.row_bytes = 143;  // shorter than one block
    EXPECT_EQ(matmul_gemm(bad, x, 9, y, nullptr), cudaErrorInvalidValue);
    bad = WeightMatrix{WeightType::F32, data, 64, 48, 4 * 48 - 4};  // F32 rows shorter than 48 floats
    EXPECT_EQ(matmul_gemm(bad, x, 9, y, nullptr), cudaErrorInvalidValue);
    bad = good;
    bad.type = static_cast<WeightType>(15);  // Q8_K: not a weight type
    EXPECT_EQ(matmul_gemm(bad, x, 9, y, nullptr), cudaErrorInvalidValue);
    bad = good;
    bad.rows = 0;
    EXPECT_EQ(matmul_gemm(bad, x, 9, y, nullptr), cudaSuccess);  // no output rows: nothing launched

    const auto* const* w_list = reinterpret_cast<const void* const*>(uintptr_t{0x40000});
    const auto* i32 = reinterpret_cast<const int32_t*>(uintptr_t{0x50000});
    GroupedMatmul g;
    g.type = WeightType::Q8_0;
    g.w = w_list;
    g.row_bytes = 34 * 8;
    g.rows = 64;
    g.cols = 256;
    g.x = x;
    g.x_rows = i32;
    g.y = y;
    g.offsets = i32;
    g.active = i32;
    g.n_active = i32;
    g.n_experts = 8;
    g.n_pairs = 0;
    g.max_pairs_per_expert = 0;
    EXPECT_EQ(grouped_matmul_gemm(g, nullptr), cudaSuccess);  // no pairs: nothing launched
    g.n_pairs = 20;
    EXPECT_EQ(grouped_matmul_gemm(g, nullptr), cudaErrorInvalidValue);  // pairs, but a bound of 0
    g.max_pairs_per_expert = 10;
    GroupedMatmul b = g;
    b.n_experts = 0;
    EXPECT_EQ(grouped_matmul_gemm(b, nullptr), cudaErrorInvalidValue);
    b = g;
    b.offsets = nullptr;
    EXPECT_EQ(grouped_matmul_gemm(b, nullptr), cudaErrorInvalidValue);
    b = g;
    b.n_active = nullptr;
    EXPECT_EQ(grouped_matmul_gemm(b, nullptr), cudaErrorInvalidValue);
    b = g;
    b.w = nullptr;
    EXPECT_EQ(grouped_matmul_gemm(b, nullptr), cudaErrorInvalidValue);
    b = g;
    b.cols = 100;
    EXPECT_EQ(grouped_matmul_gemm(b, nullptr), cudaErrorInvalidValue);
}

}  // namespace
}  // namespace hymoe::kernels
