// The CUDA backend against the CPU backend: the budget and type checks (these run without a GPU),
// cuBLAS's operand mapping, decode passes captured and replayed as CUDA graphs, and every model of
// the shared reference fixtures run on both backends (prompt logits, greedy decode, graphs on/off),
// and with attention on the CPU beside the GPU (--attn cpu).
#include <gtest/gtest.h>

#if HYMOE_WITH_CUDA

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cpu/matmul.hpp"
#include "cpu/ops.hpp"
#include "cuda/cublas.hpp"
#include "cuda/device_pool.hpp"
#include "cuda/memory.hpp"
#include "format/model_file.hpp"
#include "gpu_test_support.hpp"
#include "hymoe/build_info.hpp"
#include "hymoe/engine.hpp"
#include "hymoe/error.hpp"
#include "launch.hpp"
#include "logit_compare.hpp"
#include "model/config.hpp"
#include "quant/fp16.hpp"
#include "runtime/cuda_backend.hpp"
#include "runtime/forward.hpp"
#include "test_support.hpp"

namespace hymoe {
namespace {

namespace fs = std::filesystem;

// A model with no layers: an embedding table, the final norm and an output matrix, all f32 and
// all on the host. Enough for the backend's weight handling and for one-token passes
// (embed -> rms_norm -> rope -> linear -> download).
struct TinyModel {
    ModelConfig config;
    ModelWeights weights;
    std::vector<float> embd, norm, out;  // [n_vocab][d], [d], [n_vocab][d]

    TinyModel(int64_t n_vocab, int64_t d, bool tied) {
        config.n_vocab = n_vocab;
        config.d_model = d;
        config.n_layers = 0;
        config.norm_eps = 1e-5f;
        config.n_heads = 1;
        config.n_kv_heads = 1;
        config.head_dim = d;
        config.head_dim_v = d;
        config.rope.style = RopeStyle::Neox;
        config.rope.n_dims = d;
        embd = test::random_floats(static_cast<size_t>(n_vocab * d), 1);
        norm = test::random_floats(static_cast<size_t>(d), 2, 0.5f, 1.5f);
        out = test::random_floats(static_cast<size_t>(n_vocab * d), 3);
        weights.token_embd = {TensorType::F32, reinterpret_cast<const std::byte*>(embd.data()), n_vocab, d};
        weights.output_norm = norm.data();
        weights.output.w =
            tied ? weights.token_embd
                 : cpu::MatrixRef{TensorType::F32, reinterpret_cast<const std::byte*>(out.data()), n_vocab, d};
    }

    // The pass run_pass() below makes, on the CPU.
    std::vector<float> reference(int32_t token, int64_t pos) const {
        const int64_t d = config.d_model, v = config.n_vocab;
        std::vector<float> h(static_cast<size_t>(d)), logits(static_cast<size_t>(v));
        cpu::rms_norm(embd.data() + token * d, norm.data(), d, config.norm_eps, h.data());
        std::vector<float> cos(static_cast<size_t>(d / 2)), sin(cos.size());
        cpu::rope_angles(config.rope, pos, cos.data(), sin.data());
        cpu::rope_rotate(config.rope, cos.data(), sin.data(), h.data());
        cpu::matmul_reference(weights.output.w, h.data(), 1, logits.data());
        return logits;
    }
};

// ---- checks that need no GPU ---------------------------------------------------------------------

TEST(CudaBackend, NoGpuThrowsSayingWhy) {
    std::string why;
    if (!list_gpus(&why).empty()) GTEST_SKIP() << "a GPU is present";
    const TinyModel m(16, 8, false);
    try {
        make_cuda_backend(m.config, m.weights, {});
        FAIL() << "make_cuda_backend succeeded without a GPU";
    } catch (const Error& e) {
        const std::string msg = e.what();
        EXPECT_NE(msg.find("no usable CUDA GPU"), std::string::npos) << msg;
        EXPECT_NE(msg.find(why), std::string::npos) << msg << " does not give the reason: " << why;
    }
}

TEST(CudaBackend, PoolBudgetErrorNamesWhatAndTheBudget) {
    // An explicit budget touches no CUDA API, and the check comes before cudaMalloc.
    cuda::DevicePool pool(0, 1ull << 30);
    EXPECT_EQ(pool.budget_bytes(), 1ull << 30);
    EXPECT_EQ(pool.held_bytes(), 0u);
    try {
        pool.allocate((12ull << 30) / 10, cuda::MemoryUse::Weights, "the test weights");
        FAIL() << "no budget error";
    } catch (const Error& e) {
        EXPECT_STREQ(e.what(),
                     "GPU memory budget exceeded: the test weights needs 1.20 GiB, 1.00 GiB of the 1.00 GiB budget is "
                     "left (--gpu-mem)");
    }
    cuda::DevicePool small(0, 1ull << 20);
    EXPECT_THROW(small.allocate(2ull << 20, cuda::MemoryUse::Scratch, "a buffer"), Error);
    EXPECT_THROW(small.require(2ull << 20, "a buffer"), Error);
    EXPECT_NO_THROW(small.require(1ull << 20, "a buffer"));
    EXPECT_EQ(small.held_bytes(), 0u) << "a refused allocation must not stay charged";
}

TEST(CudaBackend, WeightBytesCountATiedMatrixOnce) {
    const TinyModel tied(100, 64, true), untied(100, 64, false);
    const uint64_t table = cuda::align_up(100 * 64 * sizeof(float)), norm = cuda::align_up(64 * sizeof(float));
    EXPECT_EQ(cuda_weight_bytes(tied.weights, tied.config), table + norm);
    EXPECT_EQ(cuda_weight_bytes(untied.weights, untied.config), 2 * table + norm);
}

TEST(CudaBackend, WeightTypeTheKernelsDoNotReadIsNamed) {
    TinyModel m(16, 256, false);
    m.weights.token_embd.type = TensorType::Q8_K;  // an activation format, never a GPU weight
    try {
        cuda_weight_bytes(m.weights, m.config);
        FAIL() << "no error for a q8_K weight";
    } catch (const Error& e) {
        const std::string msg = e.what();
        EXPECT_NE(msg.find("token_embd"), std::string::npos) << msg;
        EXPECT_NE(msg.find("q8_K"), std::string::npos) << msg;
    }
}

// ---- GPU: the pool, cuBLAS, graphs ---------------------------------------------------------------

TEST(CudaBackendGpu, PoolChargesAlignedBytesAndGivesThemBack) {
    HYMOE_REQUIRE_GPU();
    cuda::DevicePool pool(0, 0);
    EXPECT_GT(pool.budget_bytes(), 0u);
    {
        cuda::DeviceAllocation a = pool.allocate(1000, cuda::MemoryUse::KvCache, "a");
        cuda::DeviceAllocation b = pool.allocate(300, cuda::MemoryUse::Scratch, "b");
        EXPECT_EQ(reinterpret_cast<uintptr_t>(a.get()) % 256, 0u);
        EXPECT_EQ(a.bytes(), 1024u);
        EXPECT_EQ(pool.held_bytes(), 1024u + 512u);
        EXPECT_EQ(pool.held_bytes(cuda::MemoryUse::KvCache), 1024u);
        EXPECT_EQ(pool.held_bytes(cuda::MemoryUse::Scratch), 512u);
        cuda::DeviceAllocation moved = std::move(a);
        EXPECT_EQ(pool.held_bytes(), 1024u + 512u);
    }
    EXPECT_EQ(pool.held_bytes(), 0u);
}

// The memory --attn cpu keeps its KV cache in: zeroed, and what a kernel writes through the device
// pointer is what the host reads once the stream is synchronized.
TEST(CudaBackendGpu, MappedHostBufferIsZeroedAndWrittenByTheDevice) {
    HYMOE_REQUIRE_GPU();
    cuda::ScopedDevice on(0);
    cuda::MappedHostBuffer m(4096 + 12);
    ASSERT_NE(m.get(), nullptr);
    ASSERT_NE(m.device_ptr(), nullptr);
    const auto* host = static_cast<const unsigned char*>(m.get());
    EXPECT_TRUE(std::all_of(host, host + m.bytes(), [](unsigned char b) { return b == 0; }));
    cuda::Stream stream;
    const std::vector<float> src = test::random_floats(1000, 21);
    const auto d = cuda::to_device(src);
    // [10][100] rows, written by the kernel that writes new K/V rows into the cache.
    cuda::check(kernels::copy_rows(static_cast<float*>(m.device_ptr()), 100, d.get(), 100, 10, 100, stream.get()),
                "kernels::copy_rows");
    stream.synchronize();
    EXPECT_EQ(std::memcmp(m.get(), src.data(), src.size() * sizeof(float)), 0);
    cuda::MappedHostBuffer moved = std::move(m);
    EXPECT_EQ(m.get(), nullptr);
    EXPECT_EQ(moved.bytes(), 4096u + 12u);
}

// y = x · Wᵀ through cuBLAS for f32, bf16 and f16 operands against the CPU reference (which
// rounds x to the weight's 16-bit type the same way), at sizes that fit no tile.
TEST(CudaBackendGpu, CublasGemmMatchesTheCpuReference) {
    HYMOE_REQUIRE_GPU();
    cuda::DevicePool pool(0, 0);
    cuda::Stream stream;
    cuda::CublasHandle blas(pool, stream.get());
    struct Shape {
        int64_t rows, cols, n;
    };
    for (const Shape s : {Shape{37, 64, 19}, Shape{128, 256, 9}, Shape{3, 32, 100}}) {
        const std::vector<float> w = test::random_floats(static_cast<size_t>(s.rows * s.cols), 11);
        const std::vector<float> x = test::random_floats(static_cast<size_t>(s.n * s.cols), 12);
        for (const TensorType type : {TensorType::F32, TensorType::BF16, TensorType::F16}) {
            SCOPED_TRACE(::testing::Message()
                         << type_name(type) << " rows " << s.rows << " cols " << s.cols << " n " << s.n);
            std::vector<uint16_t> w16(w.size()), x16(x.size());
            for (size_t i = 0; i < w.size(); ++i)
                w16[i] = type == TensorType::BF16 ? quant::f32_to_bf16(w[i]) : quant::f32_to_fp16(w[i]);
            for (size_t i = 0; i < x.size(); ++i)
                x16[i] = type == TensorType::BF16 ? quant::f32_to_bf16(x[i]) : quant::f32_to_fp16(x[i]);
            const bool f32 = type == TensorType::F32;
            const cpu::MatrixRef ref{
                type,
                f32 ? reinterpret_cast<const std::byte*>(w.data()) : reinterpret_cast<const std::byte*>(w16.data()),
                s.rows, s.cols};
            std::vector<float> want(static_cast<size_t>(s.n * s.rows));
            cpu::matmul_reference(ref, x.data(), s.n, want.data());

            cuda::DeviceBuffer<float> y(want.size());
            const std::vector<float> poison(want.size(), test::kPoison);
            y.upload(poison);
            if (f32) {
                const auto dw = cuda::to_device(w), dx = cuda::to_device(x);
                cuda::gemm_f32(blas, dw.get(), dx.get(), s.rows, s.cols, s.n, y.get());
            } else {
                const auto dw = cuda::to_device(w16), dx = cuda::to_device(x16);
                (type == TensorType::BF16 ? cuda::gemm_bf16 : cuda::gemm_f16)(blas, dw.get(), dx.get(), s.rows, s.cols,
                                                                              s.n, y.get());
            }
            stream.synchronize();
            EXPECT_TRUE(test::all_close(y.download(), want, 1e-4f, 1e-3f));
        }
    }
}

// One token through embed -> rms_norm -> rope -> linear -> download, as the forward pass calls
// the ops. `grow` asks for a new large buffer halfway (a growth in the middle of a capture).
std::vector<float> run_pass(BackendContext& ctx, const TinyModel& m, const ModelWeights& w, int32_t token, int64_t pos,
                            bool grow) {
    const int64_t d = m.config.d_model, v = m.config.n_vocab;
    ctx.begin_pass(1);
    float* x = ctx.buffer(Buf::X, d);
    ctx.embed(w.token_embd, std::span<const int32_t>(&token, 1), x);
    if (grow) ctx.buffer(Buf::TmpC, 1 << 20);
    float* h = ctx.buffer(Buf::H, d);
    ctx.rms_norm(x, d, w.output_norm, 1, d, m.config.norm_eps, h, d);
    ctx.rope(h, 1, 1, d, d, pos);
    float* logits = ctx.buffer(Buf::Logits, v);
    ctx.linear(w.output, h, 1, logits);
    std::vector<float> out(static_cast<size_t>(v), test::kPoison);
    ctx.download(logits, v, out.data());
    ctx.end_pass();
    return out;
}

// Replayed decode graphs pick up each step's token and position (the update carries the new
// parameters), a growth mid-capture still gives the right result, and graphs change nothing.
TEST(CudaBackendGpu, DecodeGraphsReplayWithEachStepsParameters) {
    HYMOE_REQUIRE_GPU();
    const TinyModel m(1000, 128, false);
    const auto on = make_cuda_backend(m.config, m.weights, {.device = 0, .gpu_mem = 0, .graphs = true});
    const auto off = make_cuda_backend(m.config, m.weights, {.device = 0, .gpu_mem = 0, .graphs = false});
    EXPECT_TRUE(on->name().starts_with("cuda:0 (")) << on->name();
    const auto ctx_on = on->new_context(64), ctx_off = off->new_context(64);
    const std::vector<int32_t> tokens{5, 999, 0, 77, 5, 512};
    for (size_t step = 0; step < tokens.size(); ++step) {
        SCOPED_TRACE(::testing::Message() << "step " << step);
        const auto pos = static_cast<int64_t>(step) * 7;
        const bool grow = step == 3;
        const std::vector<float> want = m.reference(tokens[step], pos);
        const std::vector<float> got_on = run_pass(*ctx_on, m, on->weights(), tokens[step], pos, grow);
        const std::vector<float> got_off = run_pass(*ctx_off, m, off->weights(), tokens[step], pos, grow);
        EXPECT_TRUE(test::all_close(got_on, want, 1e-4f, 1e-3f));
        EXPECT_TRUE(test::all_close(got_on, got_off, 0.0f, 1e-6f)) << "graphs on and off differ";
    }
    const CudaGraphStats s = cuda_graph_stats(*ctx_on);
    EXPECT_EQ(s.direct, 2);  // the first pass, and the one whose capture was split
    EXPECT_EQ(s.split, 1);
    EXPECT_EQ(s.captured, 4);      // steps 1, 2, 4, 5
    EXPECT_EQ(s.instantiated, 1);  // step 1
    EXPECT_EQ(s.replayed, 3);      // steps 2, 4, 5 updated the executable graph in place
    const CudaGraphStats s_off = cuda_graph_stats(*ctx_off);
    EXPECT_EQ(s_off.direct, 6);
    EXPECT_EQ(s_off.captured, 0);
    std::printf("%s\n", cuda_memory_summary(*on).c_str());
}

// ---- GPU: the reference models on both backends ---------------------------------------------------

std::vector<std::string> reference_models() {
    std::vector<std::string> names;
    if (const auto dir = test::reference_dir()) {
        for (const auto& entry : fs::directory_iterator(*dir))
            if (fs::exists(entry.path() / "reference.json") && fs::exists(entry.path() / "model.gguf"))
                names.push_back(entry.path().filename().string());
    }
    std::sort(names.begin(), names.end());
    if (names.empty()) names.push_back("none");
    return names;
}

// Prefill's grouped expert GEMMs round activations and f32 weights to bf16 on tensor cores, so
// the GPU's logits sit further from the CPU's than the CPU's from llama.cpp (1e-3 for f32 models,
// test_forward_reference); this is the bound for the GPU, and the test prints what it measured.
constexpr double kGpuTolerance = 2e-2;
constexpr int kDecodeSteps = 8;

// The GPU's greedy token agrees with the CPU's: the same, or a token the CPU scores within the
// two backends' largest logit difference of its best (a near-tie rounding may split either way).
::testing::AssertionResult same_choice(std::span<const float> cpu, std::span<const float> gpu) {
    const int32_t a = test::argmax_of(cpu), b = test::argmax_of(gpu);
    if (a == b) return ::testing::AssertionSuccess();
    const double noise = test::compare_values(gpu, cpu).max_abs;
    const double gap = static_cast<double>(cpu[static_cast<size_t>(a)]) - cpu[static_cast<size_t>(b)];
    if (gap <= 2 * noise) return ::testing::AssertionSuccess() << "near-tie";
    return ::testing::AssertionFailure() << "CPU picks " << a << ", GPU picks " << b << "; the CPU scores them " << gap
                                         << " apart, more than twice the largest difference " << noise;
}

struct Paths {
    fs::path model;
    std::vector<int32_t> prompt;
};

class CudaVsCpu : public ::testing::TestWithParam<std::string> {};

#define HYMOE_REFERENCE_MODEL(paths)                                                                \
    HYMOE_REQUIRE_GPU();                                                                            \
    HYMOE_REQUIRE_REFERENCE(ref_root);                                                              \
    if (GetParam() == "none") GTEST_SKIP() << "no fixtures with reference.json under " << ref_root; \
    const Paths paths {                                                                             \
        ref_root / GetParam() / "model.gguf",                                                       \
            nlohmann::json::parse(test::read_text(ref_root / GetParam() / "reference.json"))        \
                .at("prompt_tokens")                                                                \
                .get<std::vector<int32_t>>()                                                        \
    }

LoadOptions load_options(const std::string& device) {
    return {.n_threads = 2, .n_ctx = 256, .device = device, .gpu_mem = 0};
}

TEST_P(CudaVsCpu, PromptLogitsAndTeacherForcedGreedyDecode) {
    HYMOE_REFERENCE_MODEL(p);
    const auto cpu_model = Model::load(p.model.string(), load_options("cpu"));
    const auto gpu_model = Model::load(p.model.string(), load_options("cuda"));
    ASSERT_TRUE(gpu_model->backend_name().starts_with("cuda:")) << gpu_model->backend_name();
    Session cpu(cpu_model), gpu(gpu_model);
    cpu.prefill(p.prompt, true);
    gpu.prefill(p.prompt, true);
    const auto v = static_cast<size_t>(cpu_model->n_vocab());
    ASSERT_EQ(gpu.all_logits().size(), p.prompt.size() * v);
    double worst_prompt = 0;
    for (size_t i = 0; i < p.prompt.size(); ++i) {
        const auto d = test::compare_values(gpu.all_logits().subspan(i * v, v), cpu.all_logits().subspan(i * v, v));
        worst_prompt = std::max(worst_prompt, d.rel_l2);
        EXPECT_LT(d.rel_l2, kGpuTolerance) << "prompt position " << i << ": max abs diff " << d.max_abs;
    }
    // Both sessions are fed the CPU's greedy token, so each step compares the same history.
    double worst_decode = 0;
    for (int step = 0; step < kDecodeSteps; ++step) {
        EXPECT_TRUE(same_choice(cpu.logits(), gpu.logits())) << "decode step " << step;
        const int32_t token = test::argmax_of(cpu.logits());
        cpu.decode(token);
        gpu.decode(token);
        const auto d = test::compare_values(gpu.logits(), cpu.logits());
        worst_decode = std::max(worst_decode, d.rel_l2);
        EXPECT_LT(d.rel_l2, kGpuTolerance) << "decode step " << step << ": max abs diff " << d.max_abs;
    }
    RecordProperty("worst_prompt_rel_l2", std::to_string(worst_prompt));
    RecordProperty("worst_decode_rel_l2", std::to_string(worst_decode));
    std::printf("[ %s ] GPU vs CPU worst relative L2: prompt %.3g, decode %.3g (tolerance %.0e)\n", GetParam().c_str(),
                worst_prompt, worst_decode, kGpuTolerance);
}

// Free-running greedy decode: graphs on and off give the same tokens and logits, and the tokens
// are the CPU's (up to a near-tie, after which the histories differ and the comparison stops).
TEST_P(CudaVsCpu, GreedyDecodeWithGraphsOnAndOffMatchesTheCpu) {
    HYMOE_REFERENCE_MODEL(p);
    const auto greedy = [&](const std::shared_ptr<const Model>& model, std::vector<std::vector<float>>& logits) {
        Session s(model);
        s.prefill(p.prompt);
        std::vector<int32_t> tokens;
        for (int step = 0; step < kDecodeSteps; ++step) {
            logits.emplace_back(s.logits().begin(), s.logits().end());
            tokens.push_back(test::argmax_of(s.logits()));
            s.decode(tokens.back());
        }
        return tokens;
    };
    std::vector<std::vector<float>> cpu_logits, on_logits, off_logits;
    const auto cpu_tokens = greedy(Model::load(p.model.string(), load_options("cpu")), cpu_logits);
    const auto on_tokens = greedy(Model::load(p.model.string(), load_options("cuda")), on_logits);
    ASSERT_EQ(setenv("HYMOE_CUDA_GRAPHS", "0", 1), 0);
    std::vector<int32_t> off_tokens;
    try {
        off_tokens = greedy(Model::load(p.model.string(), load_options("cuda")), off_logits);
    } catch (...) {
        unsetenv("HYMOE_CUDA_GRAPHS");
        throw;
    }
    unsetenv("HYMOE_CUDA_GRAPHS");

    EXPECT_EQ(on_tokens, off_tokens);
    double worst_on_off = 0;
    for (size_t i = 0; i < on_logits.size(); ++i)
        worst_on_off = std::max(worst_on_off, test::relative_l2(on_logits[i], off_logits[i]));
    EXPECT_LT(worst_on_off, 1e-5) << "graphs on and off should run the same kernels with the same parameters";

    for (size_t i = 0; i < cpu_tokens.size(); ++i) {
        if (cpu_tokens[i] == on_tokens[i]) continue;
        EXPECT_TRUE(same_choice(cpu_logits[i], on_logits[i])) << "decode step " << i;
        break;  // the histories differ from here on
    }
    std::printf("[ %s ] greedy tokens equal to the CPU's for %zu of %d steps; graphs on vs off rel L2 %.3g\n",
                GetParam().c_str(),
                static_cast<size_t>(std::mismatch(cpu_tokens.begin(), cpu_tokens.end(), on_tokens.begin()).first -
                                    cpu_tokens.begin()),
                kDecodeSteps, worst_on_off);
}

TEST_P(CudaVsCpu, TooSmallABudgetIsAnErrorNamingTheBudget) {
    HYMOE_REFERENCE_MODEL(p);
    LoadOptions o = load_options("cuda");
    o.gpu_mem = 1ull << 20;  // 1 MiB: no model's weights fit
    try {
        Model::load(p.model.string(), o);
        FAIL() << "the model loaded into a 1 MiB budget";
    } catch (const Error& e) {
        const std::string msg = e.what();
        EXPECT_NE(msg.find("GPU memory budget exceeded"), std::string::npos) << msg;
        EXPECT_NE(msg.find("of the 1.0 MiB budget"), std::string::npos) << msg;
        EXPECT_NE(msg.find("--gpu-mem"), std::string::npos) << msg;
    }
    o.device = "auto";  // the engine falls back to the CPU instead
    EXPECT_EQ(Model::load(p.model.string(), o)->backend_name(), "cpu");
}

// The GPU expert tier (routed experts on the host, a cache of them on the GPU) gives the CPU's
// logits for every cache size, miss policy and cache policy: nothing cached (every expert on
// the CPU, or copied through a zero-slot cache), one slot per layer, half, all.
TEST_P(CudaVsCpu, ExpertTierMatchesTheCpuForEveryCacheSize) {
    HYMOE_REFERENCE_MODEL(p);
    const auto cpu_model = Model::load(p.model.string(), load_options("cpu"));
    Session cpu(cpu_model);
    cpu.prefill(p.prompt, true);
    std::vector<float> want(cpu.all_logits().begin(), cpu.all_logits().end());
    std::vector<int32_t> tokens;
    for (int step = 0; step < kDecodeSteps; ++step) {
        tokens.push_back(test::argmax_of(cpu.logits()));
        cpu.decode(tokens.back());
        want.insert(want.end(), cpu.logits().begin(), cpu.logits().end());
    }
    // The slot size of this model's experts, from the tier's own report with an empty cache.
    LoadOptions probe = load_options("cuda");
    probe.offload.expert_cache = 0;
    const ExpertCacheStats empty = Model::load(p.model.string(), probe)->expert_cache_stats();
    uint64_t one_slot_each = 0;
    for (const auto& l : empty.layers) one_slot_each += l.slot_bytes;
    ASSERT_GT(one_slot_each, 0u);
    for (const uint64_t cache : {uint64_t{0}, one_slot_each, one_slot_each * 4, one_slot_each * 1024}) {
        for (const char* misses : {"auto", "cpu", "gpu"}) {
            LoadOptions o = load_options("cuda");
            o.offload.expert_cache = static_cast<int64_t>(cache);
            o.offload.misses = misses;
            o.offload.cache_policy = cache == one_slot_each ? "lru" : "score";
            const auto model = Model::load(p.model.string(), o);
            Session gpu(model);
            gpu.prefill(p.prompt, true);
            std::vector<float> got(gpu.all_logits().begin(), gpu.all_logits().end());
            for (int32_t t : tokens) {
                gpu.decode(t);
                got.insert(got.end(), gpu.logits().begin(), gpu.logits().end());
            }
            ASSERT_EQ(got.size(), want.size());
            const auto d = test::compare_values(got, want);
            EXPECT_LT(d.rel_l2, kGpuTolerance) << "cache " << cache << " bytes, misses " << misses;
            const ExpertCacheStats s = model->expert_cache_stats();
            EXPECT_GT(s.total.hits + s.total.misses, 0u);
            if (cache == 0) {
                EXPECT_EQ(s.total.hits, 0u);
            }
        }
    }
}

// --attn cpu (the KV cache in mapped host memory written by the GPU, attention on the CPU) gives
// --attn gpu's logits: the prompt's, then teacher-forced decode steps, alone and under the expert
// tier with half of each layer's experts cached. Alone, only attention differs (the CPU's
// reference against the GPU kernel); under the tier the two runs may also split a layer's experts
// differently between GPU and CPU. Either way the GPU-vs-CPU bound applies. Its KV cache takes no
// GPU memory, and the memory summary says where it is.
TEST_P(CudaVsCpu, AttnCpuMatchesAttnGpu) {
    HYMOE_REFERENCE_MODEL(p);
    const ModelConfig config = load_model_config(open_model_file(p.model.string()));
    // Prompt logits at every position, then one row per decode step of `tokens` (filled from
    // the run's own greedy choices when empty).
    const auto logits_of = [&](const LoadOptions& o, std::vector<int32_t>& tokens) {
        const auto model = Model::load(p.model.string(), o);
        EXPECT_TRUE(model->backend_name().starts_with("cuda:")) << model->backend_name();
        const std::string memory = cuda_memory_summary(*model->impl().backend);
        if (o.offload.attn == "cpu") {
            EXPECT_NE(memory.find("kv cache 0.0 MiB"), std::string::npos) << memory;
            EXPECT_NE(memory.find("kv cache in host RAM"), std::string::npos) << memory;
        }
        Session s(model);
        s.prefill(p.prompt, true);
        std::vector<float> out(s.all_logits().begin(), s.all_logits().end());
        const bool pick = tokens.empty();
        for (int step = 0; step < kDecodeSteps; ++step) {
            if (pick) tokens.push_back(test::argmax_of(s.logits()));
            s.decode(tokens[static_cast<size_t>(step)]);
            out.insert(out.end(), s.logits().begin(), s.logits().end());
        }
        if (o.offload.attn == "cpu") {
            const std::string after = cuda_memory_summary(*model->impl().backend);
            EXPECT_NE(after.find("kv cache 0.0 MiB"), std::string::npos) << after;
        }
        return out;
    };
    // The slot size of this model's experts, from the tier's own report with an empty cache.
    LoadOptions probe = load_options("cuda");
    probe.offload.expert_cache = 0;
    uint64_t one_slot_each = 0;
    for (const auto& l : Model::load(p.model.string(), probe)->expert_cache_stats().layers)
        one_slot_each += l.slot_bytes;
    ASSERT_GT(one_slot_each, 0u);
    const auto half =
        static_cast<int64_t>(one_slot_each * static_cast<uint64_t>(std::max<int64_t>(1, config.n_experts / 2)));

    for (const int64_t cache : {int64_t{-1}, half}) {
        SCOPED_TRACE(::testing::Message() << "expert cache " << cache);
        LoadOptions o = load_options("cuda");
        o.offload.expert_cache = cache;
        o.offload.attn = "gpu";
        std::vector<int32_t> tokens;
        const std::vector<float> want = logits_of(o, tokens);
        o.offload.attn = "cpu";
        const std::vector<float> got = logits_of(o, tokens);
        ASSERT_EQ(got.size(), want.size());
        const auto d = test::compare_values(got, want);
        EXPECT_LT(d.rel_l2, kGpuTolerance) << "max abs diff " << d.max_abs;
        std::printf("[ %s ] --attn cpu vs gpu (expert cache %lld): relative L2 %.3g, max abs %.3g\n",
                    GetParam().c_str(), static_cast<long long>(cache), d.rel_l2, d.max_abs);
    }
}

INSTANTIATE_TEST_SUITE_P(Shared, CudaVsCpu, ::testing::ValuesIn(reference_models()), test::ParamName());

}  // namespace
}  // namespace hymoe

#endif  // HYMOE_WITH_CUDA
