// cpu::matmul per weight type at the shapes of MoE experts, with every ISA this CPU runs, plus
// the machine limits they are measured against:
//   BM_MemRead   the memory read bandwidth (GB/s) of 1 or all threads;
//   BM_Int8Peak  one core's vpdpbusd rate (GOP/s, a multiply-add = 2 ops);
//   BM_Overhead  one call on a tiny matrix: pool wake-up, activation conversion, barrier.
// Each matmul benchmark reports bytes_per_second (weight bytes read per call: compare with
// BM_MemRead) and GOPs (2 * rows * cols * tokens per second: compare with BM_Int8Peak x threads).
// Decode (n:1) reads a fresh copy of the weight each call (256 MiB of copies), as an expert's
// weights come from memory; prefill (n:16, n:128) and decode from cache (n:1/hot) reuse one copy.
//
//   ./bench_matmul --benchmark_filter='q4_K/avx512/1024x2048'
//   HYMOE_BENCH_THREADS=1 ./bench_matmul   (one thread; default: all hardware threads)
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "cpu/matmul.hpp"
#include "cpu/matmul_kernels.hpp"
#include "cpu/thread_pool.hpp"
#include "quant/fp16.hpp"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace {

using namespace hymoe;
using namespace hymoe::cpu;

cpu::ThreadPool& pool() {
    static cpu::ThreadPool p([] {
        const char* env = std::getenv("HYMOE_BENCH_THREADS");
        return env != nullptr ? std::atoi(env) : 0;
    }());
    return p;
}

// Random bytes of a plausible weight: finite scales (random bytes elsewhere are valid values).
std::vector<std::byte> make_weight(TensorType type, int64_t rows, int64_t cols) {
    std::mt19937 rng(42);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    const size_t row = static_cast<size_t>(*row_bytes(type, static_cast<uint64_t>(cols)));
    std::vector<std::byte> w(row * static_cast<size_t>(rows));  // [rows][row bytes]
    auto* p = reinterpret_cast<uint8_t*>(w.data());
    const size_t n = w.size();
    const auto put16 = [&](size_t at, uint16_t h) { std::memcpy(p + at, &h, 2); };
    switch (type) {
        case TensorType::F32:
            for (size_t i = 0; i < n; i += 4) {
                const float v = normal(rng);
                std::memcpy(p + i, &v, 4);
            }
            return w;
        case TensorType::F16:
        case TensorType::BF16:
            for (size_t i = 0; i < n; i += 2) {
                const float v = normal(rng);
                put16(i, type == TensorType::F16 ? quant::f32_to_fp16(v) : quant::f32_to_bf16(v));
            }
            return w;
        default: break;
    }
    for (size_t i = 0; i < n; ++i) p[i] = static_cast<uint8_t>(rng());
    const size_t bs = type_traits(type).type_size;
    const uint16_t d = quant::f32_to_fp16(0.01f);
    for (size_t b = 0; b < n; b += bs) {
        switch (type) {
            case TensorType::MXFP4: p[b] = 120; break;
            case TensorType::Q2_K: put16(b + 80, d), put16(b + 82, d); break;
            case TensorType::Q3_K: put16(b + 108, d); break;
            case TensorType::Q6_K: put16(b + 208, d); break;
            case TensorType::Q4_1:
            case TensorType::Q5_1:
            case TensorType::Q4_K:
            case TensorType::Q5_K: put16(b, d), put16(b + 2, d); break;
            default: put16(b, d); break;
        }
    }
    return w;
}

constexpr size_t kColdBytes = size_t{256} << 20;

struct WeightCopies {
    TensorType type = TensorType::U8;
    int64_t rows = 0, cols = 0;
    bool cold = false;
    size_t bytes = 0;             // one copy
    std::vector<std::byte> data;  // [copies][rows][row bytes]
};

const WeightCopies& weights(TensorType type, int64_t rows, int64_t cols, bool cold) {
    static WeightCopies w;  // one alive at a time
    if (w.type != type || w.rows != rows || w.cols != cols || w.cold != cold) {
        const std::vector<std::byte> one = make_weight(type, rows, cols);
        const size_t copies = cold ? std::max<size_t>(2, (kColdBytes + one.size() - 1) / one.size()) : 1;
        w.data.resize(one.size() * copies);
        for (size_t c = 0; c < copies; ++c) std::memcpy(w.data.data() + c * one.size(), one.data(), one.size());
        w.type = type;
        w.rows = rows;
        w.cols = cols;
        w.cold = cold;
        w.bytes = one.size();
    }
    return w;
}

void BM_Matmul(benchmark::State& state, TensorType type, detail::Isa isa, int64_t rows, int64_t cols, int64_t n,
               bool hot) {
    const WeightCopies& w = weights(type, rows, cols, n == 1 && !hot);
    const size_t copies = w.data.size() / w.bytes;
    std::mt19937 rng(1);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<float> x(static_cast<size_t>(n * cols));  // [n][cols]
    for (auto& v : x) v = normal(rng);
    std::vector<float> y(static_cast<size_t>(n * rows));  // [n][rows]
    size_t copy = 0;
    for (auto _ : state) {
        const MatrixRef m{type, w.data.data() + copy * w.bytes, rows, cols};
        detail::matmul_with_isa(isa, m, x.data(), n, y.data(), &pool());
        benchmark::DoNotOptimize(y.data());
        benchmark::ClobberMemory();
        copy = (copy + 1) % copies;
    }
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(w.bytes));
    state.counters["GOPs"] =
        benchmark::Counter(static_cast<double>(2 * rows * cols * n) * 1e-9 * static_cast<double>(state.iterations()),
                           benchmark::Counter::kIsRate);
    state.counters["threads"] = pool().size();
}

// Reads a 512 MiB buffer, split over the pool's threads, 32 bytes per load (AVX2 where the CPU
// has it: the scalar loop cannot keep up with the memory on one core).
#if defined(__x86_64__)
__attribute__((target("avx2"))) uint64_t sum_range(const uint64_t* p, int64_t n) {
    __m256i s0 = _mm256_setzero_si256(), s1 = s0, s2 = s0, s3 = s0;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = _mm256_add_epi64(s0, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i)));
        s1 = _mm256_add_epi64(s1, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + 4)));
        s2 = _mm256_add_epi64(s2, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + 8)));
        s3 = _mm256_add_epi64(s3, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + 12)));
    }
    uint64_t out[4];
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out),
                        _mm256_add_epi64(_mm256_add_epi64(s0, s1), _mm256_add_epi64(s2, s3)));
    return out[0] + out[1] + out[2] + out[3];
}
#else
uint64_t sum_range(const uint64_t* p, int64_t n) {
    uint64_t s = 0;
    for (int64_t i = 0; i < n; ++i) s += p[i];
    return s;
}
#endif

void BM_MemRead(benchmark::State& state) {
    static std::vector<uint64_t> buf(size_t{512} << 17, 1);
    uint64_t total = 0;
    for (auto _ : state) {
        std::vector<uint64_t> sums(static_cast<size_t>(pool().size()) * 8, 0);
        const auto n = static_cast<int64_t>(buf.size());
        pool().parallel_for(pool().size(), [&](int64_t b, int64_t e) {
            for (int64_t part = b; part < e; ++part) {
                const int64_t i0 = n * part / pool().size(), i1 = n * (part + 1) / pool().size();
                sums[static_cast<size_t>(part) * 8] = sum_range(buf.data() + i0, i1 - i0);
            }
        });
        for (uint64_t s : sums) total += s;
    }
    benchmark::DoNotOptimize(total);
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(buf.size() * 8));
    state.counters["threads"] = pool().size();
}

#if defined(__x86_64__)
// 12 independent vpdpbusd chains on zmm registers: one core's int8 multiply-add rate.
__attribute__((target("avx512f,avx512bw,avx512vnni"))) void BM_Int8Peak(benchmark::State& state) {
    if (!detail::isa_supported(detail::Isa::Avx512)) {
        state.SkipWithError("no AVX-512 VNNI");
        return;
    }
    constexpr int kChains = 12, kIters = 4096;
    const __m512i a = _mm512_set1_epi8(3), b = _mm512_set1_epi8(-2);
    for (auto _ : state) {
        __m512i acc[kChains];
        for (auto& v : acc) v = _mm512_setzero_si512();
        for (int i = 0; i < kIters; ++i) {
            for (auto& v : acc) {
                v = _mm512_dpbusd_epi32(v, a, b);
                asm volatile("" : "+v"(v));
            }
        }
        for (auto& v : acc) benchmark::DoNotOptimize(v);
    }
    state.counters["GOPs"] = benchmark::Counter(
        2.0 * 64 * kChains * kIters * 1e-9 * static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
#endif

// One tiny product: what a call costs besides its arithmetic.
void BM_Overhead(benchmark::State& state, TensorType type, int64_t rows, int64_t cols) {
    const std::vector<std::byte> w = make_weight(type, rows, cols);
    std::vector<float> x(static_cast<size_t>(cols), 0.5f), y(static_cast<size_t>(rows));
    for (auto _ : state) {
        matmul({type, w.data(), rows, cols}, x.data(), 1, y.data(), pool());
        benchmark::DoNotOptimize(y.data());
    }
    state.counters["threads"] = pool().size();
}

struct Shape {
    int64_t rows, cols;
};

const int kRegistered = [] {
    benchmark::RegisterBenchmark("BM_MemRead", BM_MemRead)->Unit(benchmark::kMillisecond)->UseRealTime();
#if defined(__x86_64__)
    benchmark::RegisterBenchmark("BM_Int8Peak", BM_Int8Peak)->Unit(benchmark::kMicrosecond);
#endif
    for (TensorType type : {TensorType::Q4_K, TensorType::Q8_0}) {
        for (Shape s : {Shape{64, 2048}, Shape{1024, 2048}}) {
            const std::string name = fmt::format("BM_Overhead/{}/{}x{}", type_name(type), s.rows, s.cols);
            benchmark::RegisterBenchmark(name.c_str(), BM_Overhead, type, s.rows, s.cols)
                ->Unit(benchmark::kMicrosecond)
                ->UseRealTime();
        }
    }
    const TensorType types[] = {TensorType::Q4_K,  TensorType::Q6_K, TensorType::Q8_0,   TensorType::Q5_K,
                                TensorType::Q4_0,  TensorType::Q4_1, TensorType::Q5_0,   TensorType::Q5_1,
                                TensorType::Q2_K,  TensorType::Q3_K, TensorType::IQ4_NL, TensorType::IQ4_XS,
                                TensorType::MXFP4, TensorType::F32,  TensorType::F16,    TensorType::BF16};
    // OLMoE-1B-7B and Qwen3-30B-A3B experts (gate/up, down), gpt-oss's (2880 x 2880: 11.25
    // chunks of 256, a partial last one), and a dense 4096 x 4096.
    const Shape shapes[] = {{1024, 2048}, {2048, 1024}, {768, 2048}, {2048, 768}, {2880, 2880}, {4096, 4096}};
    for (TensorType type : types) {
        for (Shape s : shapes) {
            if (!row_bytes(type, static_cast<uint64_t>(s.cols))) continue;  // 2880: not for the 256-element types
            for (int64_t n : {1, 16, 128}) {
                for (detail::Isa isa : {detail::Isa::Avx512, detail::Isa::Avx2, detail::Isa::Scalar}) {
                    if (!detail::isa_supported(isa)) continue;
                    if (isa == detail::Isa::Scalar && n == 128) continue;  // minutes per run
                    const std::string name = fmt::format("BM_Matmul/{}/{}/{}x{}/n:{}", type_name(type),
                                                         detail::isa_name(isa), s.rows, s.cols, n);
                    benchmark::RegisterBenchmark(name.c_str(), BM_Matmul, type, isa, s.rows, s.cols, n, false)
                        ->Unit(benchmark::kMicrosecond)
                        ->UseRealTime();
                }
            }
        }
        // Decode from cache (one copy of the weight): the kernel's own rate, without the memory.
        for (Shape s : {Shape{1024, 2048}, Shape{4096, 4096}}) {
            for (detail::Isa isa : {detail::Isa::Avx512, detail::Isa::Avx2}) {
                if (!detail::isa_supported(isa)) continue;
                const std::string name = fmt::format("BM_Matmul/{}/{}/{}x{}/n:1/hot", type_name(type),
                                                     detail::isa_name(isa), s.rows, s.cols);
                benchmark::RegisterBenchmark(name.c_str(), BM_Matmul, type, isa, s.rows, s.cols, 1, true)
                    ->Unit(benchmark::kMicrosecond)
                    ->UseRealTime();
            }
        }
    }
    return 0;
}();

}  // namespace

BENCHMARK_MAIN();
