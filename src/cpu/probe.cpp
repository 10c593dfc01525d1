#include "cpu/probe.hpp"

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstring>
#include <memory>
#include <vector>

#include <fmt/format.h>

#include "cpu/matmul.hpp"
#include "cpu/thread_pool.hpp"
#include "hymoe/error.hpp"

namespace hymoe::cpu {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Sums words [begin, end) with four independent accumulators, so the loop is limited by the
// loads, not by one dependency chain.
uint64_t sum_words(const uint64_t* words, int64_t begin, int64_t end) {
    uint64_t a = 0, b = 0, c = 0, d = 0;
    int64_t i = begin;
    for (; i + 4 <= end; i += 4) {
        a += words[i];
        b += words[i + 1];
        c += words[i + 2];
        d += words[i + 3];
    }
    for (; i < end; ++i) a += words[i];
    return a + b + c + d;
}

}  // namespace

double probe_read_bandwidth(ThreadPool& pool, uint64_t bytes, int runs) {
    constexpr int64_t kLineWords = 8;  // one 64-byte cache line of uint64_t
    const int64_t n_lines = static_cast<int64_t>(bytes / 64);
    if (n_lines < pool.size()) throw Error(fmt::format("bandwidth probe: a buffer of {} bytes is too small", bytes));
    const int64_t n_words = n_lines * kLineWords;
    auto words = std::make_unique_for_overwrite<uint64_t[]>(static_cast<size_t>(n_words));  // [n_words]
    // Each thread first touches the part it later reads (its pages land on its NUMA node).
    pool.parallel_for(n_lines, [&](int64_t begin, int64_t end) {
        for (int64_t i = begin * kLineWords; i < end * kLineWords; ++i) words[static_cast<size_t>(i)] = uint64_t(i);
    });
    // One sum per chunk, written through the pool's std::function, so the reads cannot be dropped.
    std::vector<uint64_t> sums(static_cast<size_t>(n_lines));
    double best = 0.0;
    for (int run = 0; run <= std::max(runs, 1); ++run) {
        const auto t0 = Clock::now();
        pool.parallel_for(n_lines, [&](int64_t begin, int64_t end) {
            sums[static_cast<size_t>(begin)] = sum_words(words.get(), begin * kLineWords, end * kLineWords);
        });
        const double s = seconds_since(t0);
        if (run > 0 && s > 0.0) best = std::max(best, static_cast<double>(n_words * 8) / s / 1e9);
    }
    return best;
}

MatmulProbeShape in_cache_matmul_shape(TensorType type, int n_threads) {
    constexpr int64_t kCols = 1024;                  // a multiple of every block size
    constexpr uint64_t kPerThreadBytes = 512 << 10;  // fits the L2 slice of current x86 cores
    const uint64_t row = row_bytes(type, kCols).value_or(kCols * 4);
    const int64_t rows_per_thread =
        std::clamp<int64_t>(static_cast<int64_t>(kPerThreadBytes / row) / 16 * 16, 16, 1024);
    return {.rows = rows_per_thread * std::max(n_threads, 1), .cols = kCols, .n_tokens = 64};
}

double probe_matmul_rate(TensorType type, const MatmulProbeShape& shape, ThreadPool& pool, double min_seconds) {
    if (!supports_matmul(type)) throw Error(fmt::format("matmul probe: matmul has no kernel for {}", type_name(type)));
    const auto row = row_bytes(type, static_cast<uint64_t>(shape.cols));
    if (!row || shape.rows <= 0 || shape.n_tokens <= 0)
        throw Error(fmt::format("matmul probe: bad shape {}x{} for {}", shape.rows, shape.cols, type_name(type)));
    // 0x3C in every byte: f32 0.0115, f16 1.06, bf16 0.0115, Q8_0 d = 1.06 with q = 60, MXFP4
    // scale 2^-67 with nibbles -2 and 1.5: normal and finite, so no slow denormal paths.
    std::vector<std::byte> weight(static_cast<size_t>(*row * static_cast<uint64_t>(shape.rows)),
                                  std::byte{0x3C});                                // [rows, cols] as `type`
    std::vector<float> x(static_cast<size_t>(shape.n_tokens * shape.cols), 0.5f);  // [n_tokens, cols]
    std::vector<float> y(static_cast<size_t>(shape.n_tokens * shape.rows));        // [n_tokens, rows]
    for (size_t i = 0; i < x.size(); ++i) x[i] = 0.25f + 0.001f * static_cast<float>(i % 97);
    const MatrixRef w{.type = type, .data = weight.data(), .rows = shape.rows, .cols = shape.cols};
    matmul(w, x.data(), shape.n_tokens, y.data(), pool);  // warm-up: caches, pool wake-up
    const double ops =
        2.0 * static_cast<double>(shape.rows) * static_cast<double>(shape.cols) * static_cast<double>(shape.n_tokens);
    double best_s = 0.0;
    const auto start = Clock::now();
    int calls = 0;
    while (calls < 3 || seconds_since(start) < min_seconds) {
        const auto t0 = Clock::now();
        matmul(w, x.data(), shape.n_tokens, y.data(), pool);
        const double s = seconds_since(t0);
        if (calls == 0 || s < best_s) best_s = s;
        ++calls;
    }
    return best_s > 0.0 ? ops / best_s / 1e9 : 0.0;
}

}  // namespace hymoe::cpu
