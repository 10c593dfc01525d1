// Weight bandwidth of cpu::matmul: a 4096 x 4096 weight in each supported type, times one token
// (decode, a matvec) and 16 tokens (prefill), with every ISA this CPU runs. bytes_per_second
// counts the weight bytes read per call, so GB/s compares directly with memory bandwidth.
//
//   ./bench_matmul --benchmark_filter='n:1/'      (decode only)
//   HYMOE_BENCH_THREADS=1 ./bench_matmul          (one thread; default: all hardware threads)
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "cpu/fp16.hpp"
#include "cpu/matmul.hpp"
#include "cpu/matmul_kernels.hpp"
#include "cpu/thread_pool.hpp"

namespace {

using namespace hymoe;
using namespace hymoe::cpu;

constexpr int64_t kDim = 4096;

cpu::ThreadPool& pool() {
    static cpu::ThreadPool p([] {
        const char* env = std::getenv("HYMOE_BENCH_THREADS");
        return env != nullptr ? std::atoi(env) : 0;
    }());
    return p;
}

// Random bytes of a plausible weight: finite scales, every value in range.
std::vector<std::byte> make_weight(TensorType type) {
    std::mt19937 rng(42);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    const size_t row = static_cast<size_t>(*row_bytes(type, kDim));
    std::vector<std::byte> w(row * kDim);  // [kDim][row bytes]
    auto* p = reinterpret_cast<uint8_t*>(w.data());
    const size_t n = w.size();
    switch (type) {
        case TensorType::F32:
            for (size_t i = 0; i < n; i += 4) {
                const float v = normal(rng);
                std::memcpy(p + i, &v, 4);
            }
            break;
        case TensorType::F16:
        case TensorType::BF16:
            for (size_t i = 0; i < n; i += 2) {
                const float v = normal(rng);
                const uint16_t h = type == TensorType::F16 ? f32_to_fp16(v) : f32_to_bf16(v);
                std::memcpy(p + i, &h, 2);
            }
            break;
        case TensorType::Q8_0:
            for (size_t i = 0; i < n; ++i) p[i] = static_cast<uint8_t>(rng() % 255 + 129);  // int8 -127..127
            for (size_t b = 0; b < n; b += 34) {
                const uint16_t d = f32_to_fp16(0.01f);
                std::memcpy(p + b, &d, 2);
            }
            break;
        case TensorType::MXFP4:
            for (size_t i = 0; i < n; ++i) p[i] = static_cast<uint8_t>(rng());
            for (size_t b = 0; b < n; b += 17) p[b] = 120;
            break;
        default: break;
    }
    return w;
}

// Enough copies of the weight to overflow the last-level cache (at least 256 MiB in all): each
// iteration reads the next copy, so the bytes come from memory as an expert's weights do in
// decode. `hot` keeps one copy, which a 32 MiB L3 holds for the smaller types.
constexpr size_t kColdBytes = size_t{256} << 20;

struct WeightCopies {
    TensorType type = TensorType::U8;
    bool hot = false;
    size_t bytes = 0;             // one copy
    std::vector<std::byte> data;  // [copies][kDim][row bytes]
};

const WeightCopies& weights(TensorType type, bool hot) {
    static WeightCopies w;  // one type alive at a time: the F32 copies take 256 MiB
    if (w.type != type || w.hot != hot) {
        const std::vector<std::byte> one = make_weight(type);
        const size_t copies = hot ? 1 : std::max<size_t>(2, (kColdBytes + one.size() - 1) / one.size());
        w.data.resize(one.size() * copies);
        for (size_t c = 0; c < copies; ++c) std::memcpy(w.data.data() + c * one.size(), one.data(), one.size());
        w.type = type;
        w.hot = hot;
        w.bytes = one.size();
    }
    return w;
}

void BM_Matmul(benchmark::State& state, TensorType type, detail::Isa isa, int64_t n, bool hot) {
    const WeightCopies& w = weights(type, hot);
    const size_t copies = w.data.size() / w.bytes;
    std::mt19937 rng(1);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<float> x(static_cast<size_t>(n * kDim));  // [n][kDim]
    for (auto& v : x) v = normal(rng);
    std::vector<float> y(static_cast<size_t>(n * kDim));  // [n][kDim]
    size_t copy = 0;
    for (auto _ : state) {
        const MatrixRef m{type, w.data.data() + copy * w.bytes, kDim, kDim};
        detail::matmul_with_isa(isa, m, x.data(), n, y.data(), &pool());
        benchmark::DoNotOptimize(y.data());
        benchmark::ClobberMemory();
        copy = (copy + 1) % copies;
    }
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(w.bytes));
    state.counters["threads"] = pool().size();
}

const int kRegistered = [] {
    for (TensorType type : {TensorType::F32, TensorType::F16, TensorType::BF16, TensorType::Q8_0, TensorType::MXFP4}) {
        for (int64_t n : {1, 16}) {
            for (detail::Isa isa : {detail::Isa::Scalar, detail::Isa::Avx2, detail::Isa::Avx512}) {
                if (!detail::isa_supported(isa)) continue;
                const std::string name = fmt::format("BM_Matmul/{}/{}/n:{}", type_name(type), detail::isa_name(isa), n);
                benchmark::RegisterBenchmark(name.c_str(), BM_Matmul, type, isa, n, false)
                    ->Unit(benchmark::kMicrosecond);
            }
        }
        // The best kernels with the weight in cache: what they do when memory is not the limit.
        const detail::Isa best = detail::best_isa();
        const std::string name = fmt::format("BM_Matmul/{}/{}/n:1/hot", type_name(type), detail::isa_name(best));
        benchmark::RegisterBenchmark(name.c_str(), BM_Matmul, type, best, int64_t{1}, true)
            ->Unit(benchmark::kMicrosecond);
    }
    return 0;
}();

}  // namespace

BENCHMARK_MAIN();
