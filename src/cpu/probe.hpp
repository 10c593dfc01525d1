// Measurements of what this machine can do, for judging how close a benchmark comes to the
// hardware: the memory bandwidth a streaming read reaches, and the rate matmul() reaches on
// weights that stay in cache (the kernels' own ceiling when memory is not the limit; not a
// theoretical peak of the CPU).
#pragma once

#include <cstdint>

#include "format/tensor_type.hpp"

namespace hymoe::cpu {

class ThreadPool;

// Reads a buffer of `bytes` (rounded down to whole cache lines per thread; much larger than the
// caches for a DRAM figure) with all of the pool's threads, each streaming its own contiguous
// part, `runs` times after one untimed pass. Returns the best run in GB/s (1e9 bytes/s).
double probe_read_bandwidth(ThreadPool& pool, uint64_t bytes, int runs);

// The shape matmul_rate() times: `n_tokens` activations against a weight of `rows` x `cols`.
struct MatmulProbeShape {
    int64_t rows = 0;
    int64_t cols = 0;
    int64_t n_tokens = 0;
};

// A weight of `type` small enough that each thread's share of rows stays in a 512 KiB L2
// slice, with 64 tokens.
MatmulProbeShape in_cache_matmul_shape(TensorType type, int n_threads);

// matmul() over `shape` with a weight of `type` (filled with a constant byte pattern that
// decodes to normal, finite numbers in every supported type), repeated for at least
// `min_seconds` after one untimed call. Returns the best call's rate in GOP/s, counting
// 2 * rows * cols * n_tokens operations per call. Throws hymoe::Error when matmul does not
// support `type`.
double probe_matmul_rate(TensorType type, const MatmulProbeShape& shape, ThreadPool& pool, double min_seconds);

}  // namespace hymoe::cpu
