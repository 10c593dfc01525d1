// The scalar reference kernels, the run-time ISA choice and the threaded driver of matmul.
//
// Semantics follow ggml's CPU backend (mul_mat with the weight as src0): the activations are
// converted once to the weight's vec_dot_type, then every output is one dot product summed in
// f32. The scalar kernels sum in column order; the SIMD ones (matmul_avx2.cpp,
// matmul_avx512.cpp) compute the same products and differ only in the order of the f32 sums.
// This file is compiled with -ffp-contract=off (sources.cmake) so no FMA changes the reference's
// roundings.
#include "cpu/matmul.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "cpu/matmul_kernels.hpp"
#include "cpu/thread_pool.hpp"
#include "hymoe/error.hpp"
#include "quant/fp16.hpp"
#include "quant/quant.hpp"

#if defined(__x86_64__)
#include <cpuid.h>
#endif

namespace hymoe::cpu {

using quant::bf16_to_f32;
using quant::e8m0_to_f32_half;
using quant::fp16_to_f32;
using quant::round_to_bf16;
using quant::round_to_fp16;

namespace detail {
namespace {

#include "cpu/matmul_tile.inl"

float load_f32(const std::byte* p) {
    float v;
    std::memcpy(&v, p, sizeof v);
    return v;
}
uint16_t load_u16(const std::byte* p) {
    uint16_t v;
    std::memcpy(&v, p, sizeof v);
    return v;
}

// ---- reference dot products: ggml's generic vec_dot, summed in f32 in column order ----

// F32, F16, BF16 weights: x holds the activations already rounded to the weight's format.
template <TensorType T>
float dot_float(const std::byte* w, const float* x, int64_t cols) {
    float sum = 0.0f;
    for (int64_t c = 0; c < cols; ++c) {
        float wv = 0.0f;
        if constexpr (T == TensorType::F32) {
            wv = load_f32(w + 4 * c);
        } else if constexpr (T == TensorType::F16) {
            wv = fp16_to_f32(load_u16(w + 2 * c));
        } else {
            wv = bf16_to_f32(load_u16(w + 2 * c));
        }
        sum += wv * x[c];
    }
    return sum;
}

template <TensorType T>
struct FloatKernel {
    static constexpr int kRows = 1;
    int64_t cols;
    template <int NT>
    void dot(const std::byte* w, const std::byte* const* xs, float* out) const {
        for (int i = 0; i < NT; ++i) out[i] = dot_float<T>(w, reinterpret_cast<const float*>(xs[i]), cols);
    }
};

void tile_scalar(const Tile& t) {
    switch (t.type) {
        case TensorType::F32: run_tile(t, FloatKernel<TensorType::F32>{t.cols}); return;
        case TensorType::F16: run_tile(t, FloatKernel<TensorType::F16>{t.cols}); return;
        case TensorType::BF16: run_tile(t, FloatKernel<TensorType::BF16>{t.cols}); return;
        default: tile_scalar_quant(t); return;
    }
}

// ggml's x86 quantize_row_q8_0 (arch/x86/quants.c, AVX2 branch, what llama.cpp's CPU backend runs
// on AVX2/AVX-512): d = amax / 127 stored as f16, q = x * (127 / amax) rounded to nearest even.
// Not quantize_row_q8_0_ref's x * (1 / d), ties away: 127 / amax and 1 / d differ by an ulp, which
// flips exact and near ties (x * id = 63.5 for every +-4 of a Q4_0 row, +-8 of a Q5_0 row).
void quantize_q8_0_scalar(const float* x, ActBlockQ8* y, int64_t cols) {
    for (int64_t b = 0; b < cols / kQK; ++b) {
        const float* v = x + b * kQK;
        float amax = 0.0f;
        for (int j = 0; j < kQK; ++j) amax = std::max(amax, std::fabs(v[j]));
        const float d = amax / 127.0f;
        const float id = amax != 0.0f ? 127.0f / amax : 0.0f;  // not 1 / d: differs by an ulp
        y[b].d = round_to_fp16(d);                             // ggml stores d as f16
        // ties to even, as _mm256_round_ps(_MM_ROUND_NEAREST) (default FP environment)
        for (int j = 0; j < kQK; ++j) y[b].qs[j] = static_cast<int8_t>(std::nearbyint(v[j] * id));
    }
}

void round_f16_scalar(const float* x, float* out, int64_t cols) {
    for (int64_t i = 0; i < cols; ++i) out[i] = round_to_fp16(x[i]);
}
void round_bf16_scalar(const float* x, float* out, int64_t cols) {
    for (int64_t i = 0; i < cols; ++i) out[i] = round_to_bf16(x[i]);
}

#if defined(__x86_64__)
bool cpu_has_f16c() {
    // clang's __builtin_cpu_supports does not know "f16c"; ask CPUID leaf 1 directly.
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    return __get_cpuid(1, &eax, &ebx, &ecx, &edx) != 0 && (ecx & bit_F16C) != 0;
}
#endif

Isa compute_best_isa() {
#if defined(__x86_64__)
    __builtin_cpu_init();
    // __builtin_cpu_supports also checks that the OS saves the AVX / AVX-512 registers (XCR0).
    const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && cpu_has_f16c();
    const bool avx512 = avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
    if (avx512) return Isa::Avx512;
    if (avx2) return Isa::Avx2;
#endif
    return Isa::Scalar;
}

Isa isa_from_env(Isa best) {
    const char* env = std::getenv("HYMOE_CPU_ISA");
    if (env == nullptr || *env == '\0') return best;
    const std::string_view v = env;
    Isa want = Isa::Scalar;
    if (v == "scalar") {
        want = Isa::Scalar;
    } else if (v == "avx2") {
        want = Isa::Avx2;
    } else if (v == "avx512") {
        want = Isa::Avx512;
    } else {
        throw Error(fmt::format("HYMOE_CPU_ISA='{}': expected scalar, avx2 or avx512", v));
    }
    // The variable only lowers the choice; asking for more than the CPU has gets what it has.
    return static_cast<int>(want) < static_cast<int>(best) ? want : best;
}

// Activations converted for one call, reused across calls on a thread (no allocation per token).
struct Scratch {
    std::vector<float> f32;         // [n][cols] rounded to f16 / bf16
    std::vector<std::byte> blocks;  // [n][cols / block] ActBlockQ8 / ActBlockQ8_1 / ActBlockQ8K
    std::vector<ActPanel> panels;   // [n][ceil(cols / 256)]
};
thread_local Scratch t_scratch;

// Below this many multiply-adds a product runs on the calling thread: waking workers would cost more.
constexpr int64_t kMinParallelMacs = int64_t{1} << 15;
// Below this many activations the conversion runs on the calling thread (a prefill of 16 tokens
// x 2048 columns already gains from splitting its ~50 us of quantization).
constexpr int64_t kMinParallelConvert = int64_t{1} << 14;

// Runs body(t) for every token t < n, on the pool when there is enough work.
template <class F>
void for_each_token(int64_t n, int64_t cols, ThreadPool* pool, const F& body) {
    if (pool != nullptr && pool->size() > 1 && n > 1 && n * cols >= kMinParallelConvert) {
        pool->parallel_for(n, [&](int64_t b, int64_t e) {
            for (int64_t t = b; t < e; ++t) body(t);
        });
    } else {
        for (int64_t t = 0; t < n; ++t) body(t);
    }
}

void check_matmul_args(const MatrixRef& w, int64_t n) {
    if (!supports_matmul(w.type)) {
        throw Error(fmt::format("matmul: weight type {} is not supported", type_name(w.type)));
    }
    if (w.rows < 0 || w.cols < 0 || n < 0) {
        throw Error(fmt::format("matmul: negative size (rows {}, cols {}, n {})", w.rows, w.cols, n));
    }
    if (!row_bytes(w.type, static_cast<uint64_t>(w.cols))) {
        throw Error(fmt::format("matmul: {} columns is not a multiple of the {} block size {}", w.cols,
                                type_name(w.type), type_traits(w.type).block_size));
    }
}

}  // namespace

const IsaOps kScalarOps = {Isa::Scalar,          "scalar",         tile_scalar,
                           quantize_q8_0_scalar, round_f16_scalar, round_bf16_scalar};

bool isa_supported(Isa isa) {
    return static_cast<int>(isa) <= static_cast<int>(best_isa());
}

Isa best_isa() {
    static const Isa best = compute_best_isa();
    return best;
}

Isa active_isa() {
    static const Isa active = isa_from_env(best_isa());
    return active;
}

const char* isa_name(Isa isa) {
    switch (isa) {
        case Isa::Scalar: return "scalar";
        case Isa::Avx2: return "avx2";
        case Isa::Avx512: return "avx512";
    }
    return "unknown";
}

const IsaOps& isa_ops(Isa isa) {
    if (!isa_supported(isa)) {
        throw Error(fmt::format("matmul: this CPU cannot run the {} kernels", isa_name(isa)));
    }
    switch (isa) {
        case Isa::Scalar: return kScalarOps;
#if defined(__x86_64__)
        case Isa::Avx2: return kAvx2Ops;
        case Isa::Avx512: return kAvx512Ops;
#else
        default: break;
#endif
    }
    return kScalarOps;  // not reached: only x86-64 supports the SIMD ISAs
}

namespace {

// The Tile of a whole product, with the activations converted into `s` (which must outlive it).
Tile prepare_tile(Isa isa, const MatrixRef& w, const float* x, int64_t n, float* y, Scratch& s, ThreadPool* pool) {
    const IsaOps& ops = isa_ops(isa);
    const int64_t cols = w.cols;

    Tile tile{};
    tile.type = w.type;
    tile.w = w.data;
    tile.w_row_bytes = static_cast<size_t>(*row_bytes(w.type, static_cast<uint64_t>(cols)));
    tile.cols = cols;
    tile.y = y;
    tile.rows = w.rows;

    // Convert the activations once per call, not per row.
    switch (w.type) {
        case TensorType::F32:
            tile.x = reinterpret_cast<const std::byte*>(x);
            tile.x_row_bytes = static_cast<size_t>(cols) * sizeof(float);
            break;
        case TensorType::F16:
        case TensorType::BF16: {
            s.f32.resize(static_cast<size_t>(n * cols));
            float* out = s.f32.data();  // [n][cols]
            const auto round = w.type == TensorType::F16 ? ops.round_f16 : ops.round_bf16;
            for_each_token(n, cols, pool, [&](int64_t t) { round(x + t * cols, out + t * cols, cols); });
            tile.x = reinterpret_cast<const std::byte*>(out);
            tile.x_row_bytes = static_cast<size_t>(cols) * sizeof(float);
            break;
        }
        default: {
            // Quantized weights: ggml's blocks (what the scalar reference reads), then for the
            // SIMD kernels the same values in panel order.
            const ActKind kind = act_kind(w.type);
            const int64_t block = kind == ActKind::Q8_K ? quant::kQK_K : kQK;
            const int64_t nb = cols / block;
            const size_t block_bytes = kind == ActKind::Q8_0   ? sizeof(ActBlockQ8)
                                       : kind == ActKind::Q8_1 ? sizeof(ActBlockQ8_1)
                                                               : sizeof(ActBlockQ8K);
            const bool panels = isa != Isa::Scalar;
            const int64_t n_chunks = (cols + kChunk - 1) / kChunk;
            s.blocks.resize(static_cast<size_t>(n * nb) * block_bytes);
            std::byte* q = s.blocks.data();  // [n][nb] blocks
            if (panels) s.panels.resize(static_cast<size_t>(n * n_chunks));
            ActPanel* p = s.panels.data();  // [n][n_chunks]
            for_each_token(n, cols, pool, [&](int64_t t) {
                std::byte* qt = q + static_cast<size_t>(t * nb) * block_bytes;
                switch (kind) {
                    case ActKind::Q8_0: ops.quantize_q8_0(x + t * cols, reinterpret_cast<ActBlockQ8*>(qt), cols); break;
                    case ActKind::Q8_1: quantize_q8_1(x + t * cols, reinterpret_cast<ActBlockQ8_1*>(qt), cols); break;
                    default: quantize_q8_K(x + t * cols, reinterpret_cast<ActBlockQ8K*>(qt), cols); break;
                }
                if (panels) make_act_panels(w.type, qt, cols, p + t * n_chunks);
            });
            if (panels) {
                tile.x = reinterpret_cast<const std::byte*>(p);
                tile.x_row_bytes = static_cast<size_t>(n_chunks) * sizeof(ActPanel);
            } else {
                tile.x = q;
                tile.x_row_bytes = static_cast<size_t>(nb) * block_bytes;
            }
            break;
        }
    }
    return tile;
}

}  // namespace

void matmul_with_isa(Isa isa, const MatrixRef& w, const float* x, int64_t n, float* y, ThreadPool* pool) {
    check_matmul_args(w, n);
    if (n == 0 || w.rows == 0) return;
    const IsaOps& ops = isa_ops(isa);
    const Tile tile = prepare_tile(isa, w, x, n, y, t_scratch, pool);

    const int64_t rows = w.rows;
    const int n_threads = pool != nullptr ? pool->size() : 1;
    // Work items are (token range, row): rows split over the threads; the tokens are split too
    // only when there are too few rows to keep every thread busy (a small matrix in prefill).
    int64_t n_splits = 1;
    const int64_t n_groups = (n + 3) / 4;  // groups of 4 tokens, what a kernel takes per row load
    if (n_groups > 1 && rows < 16 * int64_t{n_threads}) {
        n_splits = std::min(n_groups, (16 * int64_t{n_threads} + rows - 1) / rows);
    }
    const auto body = [&](int64_t begin, int64_t end) {
        while (begin < end) {
            const int64_t split = begin / rows;
            Tile t = tile;
            t.r0 = begin % rows;
            t.r1 = std::min(rows, t.r0 + (end - begin));
            t.t0 = std::min(n, 4 * (n_groups * split / n_splits));
            t.t1 = std::min(n, 4 * (n_groups * (split + 1) / n_splits));
            ops.tile(t);
            begin += t.r1 - t.r0;
        }
    };
    const int64_t items = n_splits * rows;
    if (pool != nullptr && n_threads > 1 && rows * w.cols * n >= kMinParallelMacs) {
        pool->parallel_for(items, body);
    } else {
        body(0, items);
    }
}

void matmul_batch_with_isa(Isa isa, std::span<const MatmulJob> jobs, ThreadPool* pool) {
    for (const MatmulJob& j : jobs) check_matmul_args(j.w, j.n);
    const IsaOps& ops = isa_ops(isa);
    // Each job's activations go to a scratch of its own; a job with the same input and weight
    // format as the one before (an expert's gate and up) reuses that one's.
    thread_local std::vector<Scratch> t_batch_scratch;
    // The caller's: a thread_local named inside the lambda would be each worker's own.
    std::vector<Scratch>& scratch = t_batch_scratch;
    if (scratch.size() < jobs.size()) scratch.resize(jobs.size());
    std::vector<Tile> tiles(jobs.size());
    std::vector<size_t> source(jobs.size());  // the job whose conversion job i uses
    for (size_t i = 0; i < jobs.size(); ++i) {
        source[i] = i;
        if (i > 0) {
            const MatmulJob &a = jobs[i - 1], &b = jobs[i];
            if (a.x == b.x && a.n == b.n && a.w.cols == b.w.cols && a.w.type == b.w.type && a.w.rows > 0)
                source[i] = source[i - 1];
        }
    }
    const auto convert = [&](int64_t begin, int64_t end) {
        for (auto i = static_cast<size_t>(begin); i < static_cast<size_t>(end); ++i) {
            const MatmulJob& j = jobs[i];
            if (source[i] == i && j.n > 0 && j.w.rows > 0)
                tiles[i] = prepare_tile(isa, j.w, j.x, j.n, j.y, scratch[i], nullptr);
        }
    };
    const auto n_jobs = static_cast<int64_t>(jobs.size());
    if (pool != nullptr && pool->size() > 1 && n_jobs > 1) {
        pool->parallel_for(n_jobs, convert);
    } else {
        convert(0, n_jobs);
    }
    // Work items: blocks of kBatchRows rows of one job, all its tokens. One parallel_for for all.
    constexpr int64_t kBatchRows = 16;
    std::vector<int64_t> first_item(jobs.size() + 1, 0);  // job i's items: [first_item[i], first_item[i + 1])
    for (size_t i = 0; i < jobs.size(); ++i) {
        const MatmulJob& j = jobs[i];
        if (source[i] != i) {
            tiles[i] = tiles[source[i]];
            tiles[i].type = j.w.type;
            tiles[i].w = j.w.data;
            tiles[i].y = j.y;
            tiles[i].rows = j.w.rows;
        }
        const int64_t items = j.n > 0 ? (j.w.rows + kBatchRows - 1) / kBatchRows : 0;
        first_item[i + 1] = first_item[i] + items;
    }
    const auto body = [&](int64_t begin, int64_t end) {
        size_t i =
            static_cast<size_t>(std::upper_bound(first_item.begin(), first_item.end(), begin) - first_item.begin()) - 1;
        for (int64_t item = begin; item < end; ++item) {
            while (item >= first_item[i + 1]) ++i;
            Tile t = tiles[i];
            t.r0 = (item - first_item[i]) * kBatchRows;
            t.r1 = std::min(jobs[i].w.rows, t.r0 + kBatchRows);
            t.t0 = 0;
            t.t1 = jobs[i].n;
            ops.tile(t);
        }
    };
    const int64_t total = first_item.back();
    if (pool != nullptr && pool->size() > 1 && total > 1) {
        pool->parallel_for(total, body);
    } else {
        body(0, total);
    }
}

}  // namespace detail

void matmul_batch(std::span<const MatmulJob> jobs, ThreadPool& pool) {
    detail::matmul_batch_with_isa(detail::active_isa(), jobs, &pool);
}

bool supports_matmul(TensorType type) {
    return type == TensorType::F32 || type == TensorType::F16 || type == TensorType::BF16 ||
           detail::is_block_quant(type);
}

const char* matmul_isa() {
    return detail::isa_name(detail::active_isa());
}

void matmul(const MatrixRef& w, const float* x, int64_t n, float* y, ThreadPool& pool) {
    detail::matmul_with_isa(detail::active_isa(), w, x, n, y, &pool);
}

void matmul_reference(const MatrixRef& w, const float* x, int64_t n, float* y) {
    detail::matmul_with_isa(detail::Isa::Scalar, w, x, n, y, nullptr);
}

void dequantize_row(TensorType type, const std::byte* row, int64_t n, float* out) {
    if (!supports_matmul(type)) {
        throw Error(fmt::format("dequantize_row: type {} is not supported", type_name(type)));
    }
    if (n < 0 || !row_bytes(type, static_cast<uint64_t>(n))) {
        throw Error(fmt::format("dequantize_row: {} elements is not a multiple of the {} block size {}", n,
                                type_name(type), type_traits(type).block_size));
    }
    // Every type matmul takes has a scalar decoder in quant/ (the reference, bit-equal to gguf-py).
    quant::dequantize_row(type, row, n, out);
}

}  // namespace hymoe::cpu
