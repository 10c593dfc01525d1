// bench_gpu: the GPU microbenchmarks of docs/gpu-check.md, each figure beside its limit.
//
//   d2d_copy_gbs            cudaMemcpyAsync device to device of 1 GiB, bytes read + written: the
//                           limit every memory-bound figure below is read against
//   expert_ffn_decode.*     kernels::expert_ffn for one token (gate + up + down of the active
//                           experts): bytes of weights read per second
//   gate_gemv_decode.*      kernels::grouped_matmul_gemv, the gate projection alone, one token
//   cublas_bf16.*           cuBLAS dense bf16 GEMM (f32 out) of M = pairs, N = d_ff, K = d_model
//   gate_gemm_pp512.*       kernels::grouped_matmul_gemm, gate projection, a 512-token prefill:
//                           TFLOP/s against cuBLAS of the same total size
//   expert_ffn_pp512.*      kernels::expert_ffn for the same prefill (all three projections)
//   matmul_gemv.4096x4096.* kernels::matmul with n = 1
// on the expert shapes of Qwen3-30B-A3B (d_model 2048, d_ff 768, 128 experts, top 8) and
// Mixtral-8x7B (4096, 14336, 8 experts, top 2), in Q4_K, Q8_0 and BF16.
//
// All experts of a layer sit in device memory, filled with realistic random blocks (a few rows
// quantized by quant::quantize_row, their quants randomized, replicated on the device). Decode
// calls rotate over routings that use disjoint sets of experts, so a timed batch streams far more
// weights than the L2 cache holds. Routings are built on the host, so this program does not
// depend on the routing kernels. Every output buffer is filled with NaN before the first call and
// checked for non-finite values after it.
//
//   bench_gpu [--json FILE] [--quick] [--reps N]
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "cuda/memory.hpp"
#include "format/tensor_type.hpp"
#include "gpu_figures.hpp"
#include "hymoe/error.hpp"
#include "launch.hpp"
#include "quant/blocks.hpp"
#include "quant/quant.hpp"

namespace hymoe::bench {
namespace {

namespace k = hymoe::kernels;

struct Options {
    std::string json;
    bool quick = false;
    int reps = 20;
};

struct ExpertShape {
    const char* name;
    int64_t d_model, d_ff, n_experts, n_used;
};
constexpr ExpertShape kQwen3{"qwen3-30b-a3b", 2048, 768, 128, 8};
constexpr ExpertShape kMixtral{"mixtral-8x7b", 4096, 14336, 8, 2};
constexpr int64_t kPrefillTokens = 512;
constexpr double kBatchBytes = 1e9;  // a timed batch streams about this many bytes of weights

uint16_t to_bf16(float f) {  // round to nearest even; inputs are finite
    uint32_t u;
    std::memcpy(&u, &f, 4);
    u += 0x7FFFu + ((u >> 16) & 1u);
    return static_cast<uint16_t>(u >> 16);
}

int64_t bytes_of_row(TensorType type, int64_t cols) {
    const auto rb = row_bytes(type, static_cast<uint64_t>(cols));
    if (!rb) throw Error("bench_gpu: " + std::to_string(cols) + " is not a whole number of blocks");
    return static_cast<int64_t>(*rb);
}

// The bytes of a block type that hold quants rather than scales: randomizing them keeps every
// block's scales realistic (as quantize_row wrote them) while the rows differ.
std::pair<size_t, size_t> quant_bytes_of_block(TensorType type) {
    switch (type) {
        case TensorType::Q4_K: return {offsetof(quant::BlockQ4_K, qs), sizeof(quant::BlockQ4_K)};
        case TensorType::Q8_0: return {offsetof(quant::BlockQ8_0, qs), sizeof(quant::BlockQ8_0)};
        default: return {0, 0};  // other types: rows repeat the quantized source rows
    }
}

// `count` matrices of [rows][cols] `type`, one after another in one allocation.
struct WeightSet {
    TensorType type = TensorType::F32;
    int64_t count = 0, rows = 0, cols = 0, row_bytes = 0;
    cuda::DeviceBuffer<uint8_t> data;  // [count][rows][row_bytes]
    size_t matrix_bytes() const { return static_cast<size_t>(rows * row_bytes); }
    const void* matrix(int64_t i) const { return data.get() + static_cast<size_t>(i) * matrix_bytes(); }
};

WeightSet make_weights(TensorType type, int64_t count, int64_t rows, int64_t cols, uint64_t seed) {
    WeightSet w;
    w.type = type;
    w.count = count;
    w.rows = rows;
    w.cols = cols;
    w.row_bytes = bytes_of_row(type, cols);
    const int64_t total_rows = count * rows;
    w.data = cuda::DeviceBuffer<uint8_t>(static_cast<size_t>(total_rows * w.row_bytes));

    // A host tile of up to 32 MiB of distinct rows, then copies of it on the device.
    const int64_t tile_rows = std::clamp<int64_t>((int64_t{32} << 20) / w.row_bytes, 1, total_rows);
    std::vector<uint8_t> tile(static_cast<size_t>(tile_rows * w.row_bytes));
    SplitMix rng{seed};
    if (type == TensorType::BF16 || type == TensorType::F32) {
        for (int64_t i = 0; i < tile_rows * cols; ++i) {
            const float v = 0.05f * rng.uniform();
            if (type == TensorType::BF16) {
                const uint16_t b = to_bf16(v);
                std::memcpy(tile.data() + 2 * i, &b, 2);
            } else {
                std::memcpy(tile.data() + 4 * i, &v, 4);
            }
        }
    } else {
        constexpr int kSources = 4;
        std::vector<std::vector<uint8_t>> src(kSources, std::vector<uint8_t>(static_cast<size_t>(w.row_bytes)));
        std::vector<float> f(static_cast<size_t>(cols));
        for (auto& s : src) {
            for (int64_t c = 0; c < cols; ++c) {
                const float block_scale = 0.01f + 0.04f * static_cast<float>((c / 32 * 7919) % 16) / 16.0f;
                f[static_cast<size_t>(c)] = block_scale * rng.uniform();
            }
            quant::quantize_row(type, f.data(), cols, reinterpret_cast<std::byte*>(s.data()));
        }
        const auto [q0, q1] = quant_bytes_of_block(type);
        const size_t block_bytes = type_traits(type).type_size;
        for (int64_t r = 0; r < tile_rows; ++r) {
            uint8_t* row = tile.data() + r * w.row_bytes;
            std::memcpy(row, src[static_cast<size_t>(r % kSources)].data(), static_cast<size_t>(w.row_bytes));
            if (q1 == 0) continue;
            for (size_t b = 0; b < static_cast<size_t>(w.row_bytes); b += block_bytes) {
                for (size_t i = b + q0; i < b + q1; i += 8) {
                    const uint64_t bits = rng.next();
                    std::memcpy(row + i, &bits, std::min<size_t>(8, b + q1 - i));
                }
            }
        }
    }
    uint8_t* d = w.data.get();
    cuda::check(cudaMemcpy(d, tile.data(), tile.size(), cudaMemcpyHostToDevice), "cudaMemcpy weights tile");
    const size_t total = w.data.bytes();
    for (size_t filled = tile.size(); filled < total;) {
        const size_t n = std::min(filled, total - filled);
        cuda::check(cudaMemcpy(d + filled, d, n, cudaMemcpyDeviceToDevice), "cudaMemcpy weights copy");
        filled += n;
    }
    // A device-to-device cudaMemcpy may return before it is done, and the benchmark's stream does
    // not wait for the legacy stream.
    cuda::check(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
    return w;
}

// n floats uniform in [-1, 1) on the device.
cuda::DeviceBuffer<float> random_device_floats(size_t n, uint64_t seed) {
    SplitMix rng{seed};
    std::vector<float> h(n);
    for (float& v : h) v = rng.uniform();
    return cuda::to_device(h);
}

// "ok", or how many of the n floats at `d` are not finite (the buffer was filled with NaN before
// the first call, so an element no kernel wrote shows up here).
std::string check_finite(const float* d, size_t n) {
    std::vector<float> h(n);
    cuda::check(cudaMemcpy(h.data(), d, n * sizeof(float), cudaMemcpyDeviceToHost), "cudaMemcpy check");
    const auto bad = std::count_if(h.begin(), h.end(), [](float v) { return !std::isfinite(v); });
    return bad == 0 ? "ok" : std::to_string(bad) + " of " + std::to_string(n) + " outputs not finite";
}

void poison(float* d, size_t n, cudaStream_t s) {
    cuda::check(cudaMemsetAsync(d, 0xFF, n * sizeof(float), s), "cudaMemsetAsync");  // all-ones bits: NaN
}

// ---- the benchmarks --------------------------------------------------------------------------------

class Bench {
public:
    explicit Bench(const Options& o) : opt_(o) {
        cuda::check(cudaGetDeviceProperties(&prop_, 0), "cudaGetDeviceProperties");
        if (cublasCreate(&cublas_) != CUBLAS_STATUS_SUCCESS) throw Error("cublasCreate failed");
        cublasSetStream(cublas_, stream_.get());
    }
    ~Bench() { cublasDestroy(cublas_); }
    Bench(const Bench&) = delete;
    Bench& operator=(const Bench&) = delete;

    const cudaDeviceProp& prop() const { return prop_; }

    int64_t failed() const {
        return std::count_if(figures_.begin(), figures_.end(),
                             [](const Figure& f) { return !f.error.empty() || f.check != "ok"; });
    }

    // Rewritten after every figure, so a run cut short by a timeout still leaves what it measured.
    void write_json() const {
        if (opt_.json.empty()) return;
        int driver = 0, runtime = 0;
        cudaDriverGetVersion(&driver);
        cudaRuntimeGetVersion(&runtime);
        const std::vector<std::pair<std::string, std::string>> extra{
            {"compute_capability", std::to_string(prop_.major * 10 + prop_.minor)},
            {"sm_count", std::to_string(prop_.multiProcessorCount)},
            {"l2_bytes", std::to_string(prop_.l2CacheSize)},
            {"memory_bytes", std::to_string(prop_.totalGlobalMem)},
            {"driver_version", std::to_string(driver)},
            {"runtime_version", std::to_string(runtime)},
            {"quick", opt_.quick ? "true" : "false"},
            {"reps", std::to_string(opt_.reps)},
            {"failed", std::to_string(failed())},
        };
        std::ofstream(opt_.json) << figures_json(prop_.name, extra, figures_);
    }

    void run() {
        print_header();
        measure("d2d_copy_gbs", [&](Figure& f) { d2d_copy(f); });
        copy_gbs_ = figures_.back().error.empty() ? figures_.back().value : 0;
        for (const ExpertShape& s : {kQwen3, kMixtral}) shape(s);
        for (const TensorType t : {TensorType::Q4_K, TensorType::BF16}) {
            measure(std::string("matmul_gemv.4096x4096.") + lower(t), [&](Figure& f) { matmul_gemv(f, t, 4096, 4096); });
        }
    }

private:
    static std::string lower(TensorType t) {
        std::string n(type_name(t));
        for (char& c : n) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        return n;
    }

    // Runs one figure; an error (a launcher refusing a type, a failed allocation) is recorded as
    // the figure's error and the next figure runs.
    template <typename Fn>
    void measure(const std::string& name, Fn&& fn) {
        Figure f;
        f.name = name;
        try {
            fn(f);
        } catch (const std::exception& e) {
            f = Figure{};
            f.name = name;
            f.error = e.what();
            cudaDeviceSynchronize();
            cudaGetLastError();
        }
        print_figure(f);
        figures_.push_back(f);
        write_json();
    }

    int calls_for(double bytes_per_call, int rotation) const {
        const double per_cycle = bytes_per_call * rotation;
        const int cycles = std::clamp(static_cast<int>(std::ceil(kBatchBytes / per_cycle)), 1, opt_.quick ? 2 : 8);
        return rotation * cycles;
    }

    void finish_bandwidth(Figure& f, double ms, double bytes) {
        f.us = ms * 1e3;
        f.bytes = bytes;
        f.value = bytes / (ms * 1e-3) / 1e9;
        f.unit = "GB/s";
        f.limit = copy_gbs_;
        f.limit_name = "d2d_copy_gbs";
    }

    void finish_rate(Figure& f, double ms, double flops, double limit, const std::string& limit_name) {
        f.us = ms * 1e3;
        f.flops = flops;
        f.value = flops / (ms * 1e-3) / 1e12;
        f.unit = "TFLOP/s";
        f.limit = limit;
        f.limit_name = limit_name;
    }

    void d2d_copy(Figure& f) {
        const size_t n = size_t{1} << 30;
        cuda::DeviceBuffer<uint8_t> src(n), dst(n);
        cuda::check(cudaMemset(src.get(), 0x5A, n), "cudaMemset");
        const double ms = time_ms(stream_.get(), 1, opt_.reps, false, &f.graph, [&](int) {
            cuda::check(cudaMemcpyAsync(dst.get(), src.get(), n, cudaMemcpyDeviceToDevice, stream_.get()),
                        "cudaMemcpyAsync");
        });
        finish_bandwidth(f, ms, 2.0 * static_cast<double>(n));
        f.limit = 0;
        f.limit_name.clear();
        f.check = "ok";
    }

    // cuBLAS dense bf16 GEMM, f32 out: C[M][N] = X[M][K] · W[N][K]^T (row-major). TFLOP/s.
    double cublas_tflops(Figure& f, int64_t m, int64_t n, int64_t kk) {
        const WeightSet x = make_weights(TensorType::BF16, 1, m, kk, 11);
        const WeightSet w = make_weights(TensorType::BF16, 1, n, kk, 12);
        cuda::DeviceBuffer<float> c(static_cast<size_t>(m * n));
        poison(c.get(), c.size(), stream_.get());
        const float alpha = 1.0f, beta = 0.0f;
        const double ms = time_ms(stream_.get(), 4, opt_.reps, false, &f.graph, [&](int) {
            // Column-major view: C^T [N][M] = W [N][K] · X^T, i.e. op(A) = W (A = W^T stored K x N).
            const cublasStatus_t st = cublasGemmEx(
                cublas_, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(n), static_cast<int>(m), static_cast<int>(kk), &alpha,
                w.matrix(0), CUDA_R_16BF, static_cast<int>(kk), x.matrix(0), CUDA_R_16BF, static_cast<int>(kk), &beta,
                c.get(), CUDA_R_32F, static_cast<int>(n), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
            if (st != CUBLAS_STATUS_SUCCESS) throw Error("cublasGemmEx failed (status " + std::to_string(st) + ")");
        });
        f.check = check_finite(c.get(), c.size());
        finish_rate(f, ms, 2.0 * static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(kk), 0, "");
        return f.value;
    }

    void shape(const ExpertShape& s) {
        SplitMix rng{0x5EED0000u + static_cast<uint64_t>(s.d_model)};
        const std::vector<Routing> decode = decode_routings(s.n_experts, s.n_used, rng);
        const std::vector<Routing> prefill = [&] {
            std::vector<Routing> v;
            for (int i = 0; i < 2; ++i) v.push_back(prefill_routing(s.n_experts, s.n_used, kPrefillTokens, rng));
            return v;
        }();
        const int64_t n_pairs = kPrefillTokens * s.n_used;
        const std::string base = std::string(".") + s.name + ".";

        double cublas = 0;
        const std::string cublas_name = "cublas_bf16" + base + "m" + std::to_string(n_pairs) + "n" +
                                        std::to_string(s.d_ff) + "k" + std::to_string(s.d_model);
        measure(cublas_name, [&](Figure& f) { cublas = cublas_tflops(f, n_pairs, s.d_ff, s.d_model); });

        std::vector<TensorType> types{TensorType::Q4_K, TensorType::Q8_0, TensorType::BF16};
        if (opt_.quick) types = {TensorType::Q4_K, TensorType::BF16};
        for (const TensorType t : types) {
            const std::string tn = lower(t);
            Experts e;
            try {
                e = make_experts(s, t);
            } catch (const std::exception& ex) {
                Figure f;
                f.name = "experts" + base + tn;
                f.error = std::string("could not set up the weights: ") + ex.what();
                print_figure(f);
                figures_.push_back(f);
                write_json();
                continue;
            }
            measure("expert_ffn_decode" + base + tn, [&](Figure& f) { expert_ffn(f, s, e, decode, true, 0, ""); });
            measure("gate_gemv_decode" + base + tn, [&](Figure& f) { gate_grouped(f, s, e, decode, false, 0, ""); });
            if (t == TensorType::Q8_0) continue;
            measure("gate_gemm_pp512" + base + tn, [&](Figure& f) { gate_grouped(f, s, e, prefill, true, cublas, cublas_name); });
            measure("expert_ffn_pp512" + base + tn, [&](Figure& f) { expert_ffn(f, s, e, prefill, false, cublas, cublas_name); });
        }
    }

    struct Experts {
        WeightSet gate, up, down;
        cuda::DeviceBuffer<const void*> gate_ptr, up_ptr, down_ptr;  // [n_experts]
        k::ExpertWeights view;
        size_t expert_bytes() const { return gate.matrix_bytes() + up.matrix_bytes() + down.matrix_bytes(); }
    };

    static cuda::DeviceBuffer<const void*> pointers(const WeightSet& w) {
        std::vector<const void*> p(static_cast<size_t>(w.count));
        for (int64_t i = 0; i < w.count; ++i) p[static_cast<size_t>(i)] = w.matrix(i);
        return cuda::to_device(p);
    }

    static Experts make_experts(const ExpertShape& s, TensorType t) {
        Experts e;
        e.gate = make_weights(t, s.n_experts, s.d_ff, s.d_model, 1);  // [n_experts][d_ff][d_model]
        e.up = make_weights(t, s.n_experts, s.d_ff, s.d_model, 2);    // [n_experts][d_ff][d_model]
        e.down = make_weights(t, s.n_experts, s.d_model, s.d_ff, 3);  // [n_experts][d_model][d_ff]
        e.gate_ptr = pointers(e.gate);
        e.up_ptr = pointers(e.up);
        e.down_ptr = pointers(e.down);
        const auto wt = static_cast<k::WeightType>(static_cast<int32_t>(t));
        e.view.gate_type = e.view.up_type = e.view.down_type = wt;
        e.view.gate = e.gate_ptr.get();
        e.view.up = e.up_ptr.get();
        e.view.down = e.down_ptr.get();
        e.view.gate_row_bytes = e.gate.row_bytes;
        e.view.up_row_bytes = e.up.row_bytes;
        e.view.down_row_bytes = e.down.row_bytes;
        e.view.n_experts = s.n_experts;
        e.view.d_model = s.d_model;
        e.view.d_ff = s.d_ff;
        return e;
    }

    // expert_ffn over `routings` (all with the same n_tokens), rotating. Decode reports the
    // weight bandwidth; prefill the rate against cuBLAS.
    void expert_ffn(Figure& f, const ExpertShape& s, const Experts& e, const std::vector<Routing>& routings,
                    bool decode, double limit, const std::string& limit_name) {
        const int64_t n_tokens = routings.front().n_tokens;
        const size_t scratch_bytes = k::expert_ffn_scratch_bytes(e.view, n_tokens, s.n_used);
        cuda::DeviceBuffer<uint8_t> scratch(std::max<size_t>(scratch_bytes, 1));
        const cuda::DeviceBuffer<float> x = random_device_floats(static_cast<size_t>(n_tokens * s.d_model), 21);
        cuda::DeviceBuffer<float> out(static_cast<size_t>(n_tokens * s.d_model));  // [n_tokens][d_model]
        poison(out.get(), out.size(), stream_.get());
        const k::GluParams glu{};
        // Decode: the active experts' three matrices; prefill touches nearly every expert.
        const double bytes = static_cast<double>(e.expert_bytes()) * static_cast<double>(s.n_used);
        const int rotation = static_cast<int>(routings.size());
        const int calls = decode ? calls_for(bytes, rotation) : rotation;
        const double ms = time_ms(stream_.get(), calls, opt_.reps, true, &f.graph, [&](int i) {
            const Routing& r = routings[static_cast<size_t>(i % rotation)];
            cuda::check(k::expert_ffn(e.view, r.view(), glu, x.get(), out.get(), scratch.get(), scratch_bytes,
                                      stream_.get()),
                        "kernels::expert_ffn");
        });
        f.check = check_finite(out.get(), out.size());
        if (decode) {
            finish_bandwidth(f, ms, bytes);
        } else {
            const double flops = 6.0 * static_cast<double>(n_tokens * s.n_used) * static_cast<double>(s.d_ff) *
                                 static_cast<double>(s.d_model);
            finish_rate(f, ms, flops, limit, limit_name);
            f.bytes = static_cast<double>(e.gate.data.bytes() + e.up.data.bytes() + e.down.data.bytes());
        }
    }

    // The gate projection of every pair: grouped_matmul_gemv (decode) or grouped_matmul_gemm.
    void gate_grouped(Figure& f, const ExpertShape& s, const Experts& e, const std::vector<Routing>& routings, bool gemm,
                      double limit, const std::string& limit_name) {
        const int64_t n_tokens = routings.front().n_tokens;
        const int64_t n_pairs = routings.front().n_pairs;
        const cuda::DeviceBuffer<float> x = random_device_floats(static_cast<size_t>(n_tokens * s.d_model), 22);
        cuda::DeviceBuffer<float> y(static_cast<size_t>(n_pairs * s.d_ff));  // [n_pairs][d_ff]
        poison(y.get(), y.size(), stream_.get());
        const int rotation = static_cast<int>(routings.size());
        const double bytes = gemm ? static_cast<double>(e.gate.data.bytes())
                                  : static_cast<double>(e.gate.matrix_bytes()) * static_cast<double>(s.n_used);
        const int calls = gemm ? rotation : calls_for(bytes, rotation);
        const double ms = time_ms(stream_.get(), calls, opt_.reps, true, &f.graph, [&](int i) {
            const Routing& r = routings[static_cast<size_t>(i % rotation)];
            k::GroupedMatmul g;
            g.type = e.view.gate_type;
            g.w = e.view.gate;
            g.row_bytes = e.gate.row_bytes;
            g.rows = s.d_ff;
            g.cols = s.d_model;
            g.x = x.get();
            g.x_rows = r.x_rows.get();
            g.y = y.get();
            g.offsets = r.offsets.get();
            g.active = r.active.get();
            g.n_active = r.n_active.get();
            g.n_experts = s.n_experts;
            g.n_pairs = r.n_pairs;
            g.max_pairs_per_expert = n_tokens;  // the bound the engine knows on the host
            cuda::check(gemm ? k::grouped_matmul_gemm(g, stream_.get()) : k::grouped_matmul_gemv(g, stream_.get()),
                        gemm ? "kernels::grouped_matmul_gemm" : "kernels::grouped_matmul_gemv");
        });
        f.check = check_finite(y.get(), y.size());
        if (gemm) {
            finish_rate(f, ms, 2.0 * static_cast<double>(n_pairs * s.d_ff) * static_cast<double>(s.d_model), limit,
                        limit_name);
            f.bytes = bytes;  // every expert's gate matrix: at 512 tokens each expert has pairs
        } else {
            finish_bandwidth(f, ms, bytes);
        }
    }

    void matmul_gemv(Figure& f, TensorType t, int64_t rows, int64_t cols) {
        const int64_t rb = bytes_of_row(t, cols);
        const double bytes = static_cast<double>(rows * rb);
        const int copies = std::max(2, static_cast<int>(std::ceil(256e6 / bytes)));  // ~256 MB: 5x the L2
        const WeightSet w = make_weights(t, copies, rows, cols, 31);
        const cuda::DeviceBuffer<float> x = random_device_floats(static_cast<size_t>(cols), 32);
        cuda::DeviceBuffer<float> y(static_cast<size_t>(rows));
        poison(y.get(), y.size(), stream_.get());
        const double ms = time_ms(stream_.get(), calls_for(bytes, copies), opt_.reps, true, &f.graph, [&](int i) {
            k::WeightMatrix m;
            m.type = static_cast<k::WeightType>(static_cast<int32_t>(t));
            m.data = w.matrix(i % copies);
            m.rows = rows;
            m.cols = cols;
            m.row_bytes = rb;
            cuda::check(k::matmul(m, x.get(), 1, y.get(), stream_.get()), "kernels::matmul");
        });
        f.check = check_finite(y.get(), y.size());
        finish_bandwidth(f, ms, bytes);
    }

    Options opt_;
    cudaDeviceProp prop_{};
    cuda::Stream stream_;
    cublasHandle_t cublas_ = nullptr;
    double copy_gbs_ = 0;
    std::vector<Figure> figures_;
};

int run(int argc, char** argv) {
    Options opt;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--json" && i + 1 < argc) {
            opt.json = argv[++i];
        } else if (a == "--quick") {
            opt.quick = true;
            opt.reps = 5;
        } else if (a == "--reps" && i + 1 < argc) {
            opt.reps = std::max(1, std::atoi(argv[++i]));
        } else {
            std::fprintf(stderr, "usage: bench_gpu [--json FILE] [--quick] [--reps N]\n");
            return 2;
        }
    }
    int n_devices = 0;
    const cudaError_t err = cudaGetDeviceCount(&n_devices);
    if (err != cudaSuccess || n_devices == 0) {
        std::fprintf(stderr, "bench_gpu: no usable GPU (%s)\n",
                     err != cudaSuccess ? cudaGetErrorString(err) : "no CUDA device");
        return 2;
    }

    Bench bench(opt);
    const cudaDeviceProp& p = bench.prop();
    int driver = 0, runtime = 0;
    cudaDriverGetVersion(&driver);
    cudaRuntimeGetVersion(&runtime);
    std::printf("device: %s (sm_%d%d, %d SMs, %.0f MiB L2, %.1f GiB), driver %d, runtime %d%s\n", p.name, p.major,
                p.minor, p.multiProcessorCount, p.l2CacheSize / 1048576.0, static_cast<double>(p.totalGlobalMem) / (1 << 30),
                driver, runtime, opt.quick ? ", --quick" : "");
    bench.run();
    bench.write_json();
    const int64_t failed = bench.failed();
    if (failed > 0) std::printf("%lld figures failed or wrote non-finite outputs\n", static_cast<long long>(failed));
    return failed == 0 ? 0 : 1;
}

}  // namespace
}  // namespace hymoe::bench

int main(int argc, char** argv) {
    try {
        return hymoe::bench::run(argc, argv);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "bench_gpu: %s\n", e.what());
        return 1;
    }
}
