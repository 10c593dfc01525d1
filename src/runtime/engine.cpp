// Model and Session: the library API over the forward pass.
#include "hymoe/engine.hpp"

#include <charconv>
#include <mutex>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "hymoe/build_info.hpp"
#include "hymoe/error.hpp"
#include "runtime/cpu_backend.hpp"
#include "runtime/forward.hpp"
#include "runtime/offload_context.hpp"
#ifdef HYMOE_WITH_CUDA
#include "runtime/cuda_backend.hpp"
#endif

namespace hymoe {

// ---- Model ----------------------------------------------------------------------------------

namespace {

// "cuda" -> 0, "cuda:3" -> 3; nullopt for anything else.
std::optional<int> cuda_device_index(const std::string& device) {
    if (device == "cuda") return 0;
    if (!device.starts_with("cuda:")) return std::nullopt;
    int index = -1;
    const char* first = device.data() + 5;
    const char* last = device.data() + device.size();
    const auto [end, ec] = std::from_chars(first, last, index);
    if (ec != std::errc() || end != last || first == last || index < 0) return std::nullopt;
    return index;
}

#ifdef HYMOE_WITH_CUDA
// The engine says once per process why it runs on the CPU when a GPU was possible: a warning
// when a GPU is there but cannot take the model, a debug line when there is none (the usual
// case of a CPU-only machine; `hymoe info` and the run summary say it too).
void note_cpu_fallback(const std::string& why, bool gpu_present) {
    static std::once_flag once;
    std::call_once(once, [&] {
        if (gpu_present) {
            spdlog::warn("running on the CPU: {}", why);
        } else {
            spdlog::debug("running on the CPU: {}", why);
        }
    });
}
#endif

// Chooses and builds the backend LoadOptions::device asks for.
std::unique_ptr<Backend> make_backend(Model::Impl& m, const LoadOptions& options) {
    const std::string& device = options.device;
    if (device == "cpu") return make_cpu_backend(m.config, m.weights, m.pool);
    // The RAM tier computes experts on the CPU; a GPU backend would upload them all.
    if (m.ram_tier && device == "auto") return make_cpu_backend(m.config, m.weights, m.pool);
    if (m.ram_tier)
        throw Error(fmt::format("device '{}': the RAM expert tier (--ram-experts-gb) runs on the CPU only; "
                                "use --device cpu",
                                device));
    const std::optional<int> index = device == "auto" ? std::optional<int>(0) : cuda_device_index(device);
    if (!index)
        throw Error(fmt::format("device '{}' is not one of auto, cpu, cuda, cuda:N", device));
#ifdef HYMOE_WITH_CUDA
    CudaBackendOptions cuda_options;
    cuda_options.device = *index;
    cuda_options.gpu_mem = options.gpu_mem;
    cuda_options.expert_cache = options.offload.expert_cache;
    cuda_options.cache_policy = offload::parse_cache_policy(options.offload.cache_policy);
    cuda_options.misses = offload::parse_miss_policy(options.offload.misses);
    cuda_options.prefetch = options.offload.prefetch;
    cuda_options.cpu_attention = options.offload.attn == "cpu";  // "auto" is the GPU, for now
    cuda_options.cpu_pool = &m.pool;
    if (device != "auto") return make_cuda_backend(m.config, m.weights, cuda_options);
    std::string why;
    if (list_gpus(&why).empty()) {
        note_cpu_fallback("no usable GPU (" + why + ")", false);
        return make_cpu_backend(m.config, m.weights, m.pool);
    }
    try {
        return make_cuda_backend(m.config, m.weights, cuda_options);
    } catch (const Error& e) {
        note_cpu_fallback(e.what(), true);
        return make_cpu_backend(m.config, m.weights, m.pool);
    }
#else
    if (device != "auto")
        throw Error(fmt::format("device '{}': hymoe was built without CUDA (HYMOE_CUDA=OFF or no nvcc at build time)",
                                device));
    return make_cpu_backend(m.config, m.weights, m.pool);
#endif
}

}  // namespace

Model::Model(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Model::~Model() = default;

std::shared_ptr<const Model> Model::load(const std::string& path, const LoadOptions& options) {
    if (options.n_threads < 0) throw Error(fmt::format("thread count {} is negative", options.n_threads));
    if (options.n_ctx < 0) throw Error(fmt::format("context length {} is negative", options.n_ctx));
    ModelFile file = open_model_file(path);
    ModelConfig config = load_model_config(file);
    ModelWeights weights = load_weights(file, config);
    const int64_t n_ctx = options.n_ctx == 0 ? config.n_ctx_train : options.n_ctx;
    auto impl =
        std::make_unique<Impl>(std::move(file), std::move(config), std::move(weights), n_ctx, options.n_threads);
    impl->arch_name = std::string(arch_spec(impl->config.arch).gguf_arch);
    const OffloadOptions& off = options.offload;
    const offload::CachePolicyKind policy = offload::parse_cache_policy(off.cache_policy);
    if (off.ram_experts < -1) throw Error(fmt::format("RAM for experts {} is negative", off.ram_experts));
    if (off.ram_experts >= 0) {
        if (impl->config.n_experts == 0)
            throw Error(fmt::format("{}: --ram-experts-gb: the model has no routed experts", path));
        const offload::MachineRates rates{
            .cpu_mem_gbs = off.cpu_read_gbs, .cpu_gops = off.cpu_gops, .file_read_gbs = off.file_read_gbs};
        impl->ram_tier = std::make_unique<offload::RamTier>(impl->config, impl->weights, impl->file,
                                                            static_cast<uint64_t>(off.ram_experts), policy, rates);
    }
    impl->prefetch = off.prefetch;
    if (off.attn != "auto" && off.attn != "gpu" && off.attn != "cpu")
        throw Error(fmt::format("--attn '{}': expected gpu or cpu", off.attn));
    if (off.misses != "auto" && off.misses != "gpu" && off.misses != "cpu")
        throw Error(fmt::format("--misses '{}': expected cpu or gpu", off.misses));
    impl->backend = make_backend(*impl, options);
    // The GPU tier's choices have one answer on the CPU: asking for another is an error (--attn cpu
    // is what the CPU does anyway). On a GPU, --misses needs the expert tier.
    const bool on_cpu = impl->backend->name() == "cpu";
    if (on_cpu) {
        const auto needs_gpu = [](const std::string& flag) {
            return Error(fmt::format("{}: needs a GPU (this run computes on the CPU)", flag));
        };
        if (off.expert_cache >= 0) throw needs_gpu("--expert-cache-gb");
        if (off.attn == "gpu") throw needs_gpu("--attn gpu");
        if (off.misses == "gpu") throw needs_gpu("--misses gpu");
    } else {
        if (off.misses != "auto" && off.expert_cache < 0)
            throw Error(fmt::format("--misses {}: every expert is on the GPU; use it with --expert-cache-gb",
                                    off.misses));
    }
    impl->backend_name = impl->backend->name();
    return std::shared_ptr<const Model>(new Model(std::move(impl)));
}

const std::string& Model::path() const {
    return impl_->file.path();
}
const std::string& Model::architecture() const {
    return impl_->arch_name;
}
int64_t Model::n_vocab() const {
    return impl_->config.n_vocab;
}
int64_t Model::n_ctx() const {
    return impl_->n_ctx;
}
int Model::n_threads() const {
    return impl_->pool.size();
}
const std::string& Model::backend_name() const {
    return impl_->backend_name;
}
ExpertCacheStats Model::expert_cache_stats() const {
    if (impl_->ram_tier) return impl_->ram_tier->stats();
    return impl_->backend->expert_cache_stats();
}

// ---- Session --------------------------------------------------------------------------------

struct Session::State {
    std::unique_ptr<OffloadContext> context;  // KV cache and scratch, in the backend's memory
    std::vector<float> logits;                // [n_out][n_vocab] of the last call
    int64_t n_out = 0;
    int64_t n_past = 0;
};

Session::Session(std::shared_ptr<const Model> model) : model_(std::move(model)) {
    if (!model_) throw Error("Session needs a model");
    state_ = std::make_unique<State>();
    const Model::Impl& m = model_->impl();
    state_->context = std::make_unique<OffloadContext>(m.backend->new_context(model_->n_ctx()), m.config, m.weights,
                                                       m.ram_tier.get(), m.prefetch, m.pool);
}
Session::~Session() = default;
Session::Session(Session&&) noexcept = default;
Session& Session::operator=(Session&&) noexcept = default;

void Session::prefill(std::span<const int32_t> tokens, bool all_logits) {
    state_->context->set_position(state_->n_past);
    forward(model_->impl(), *state_->context, model_->n_ctx(), state_->n_past, tokens, all_logits, state_->logits);
    state_->n_past += static_cast<int64_t>(tokens.size());
    state_->n_out = all_logits ? static_cast<int64_t>(tokens.size()) : 1;
}

void Session::decode(int32_t token) {
    prefill(std::span<const int32_t>(&token, 1), false);
}

std::span<const float> Session::logits() const {
    if (state_->n_out == 0) return {};
    const auto v = static_cast<size_t>(model_->n_vocab());
    return std::span<const float>(state_->logits).subspan((static_cast<size_t>(state_->n_out) - 1) * v, v);
}

std::span<const float> Session::all_logits() const {
    return std::span<const float>(state_->logits).first(static_cast<size_t>(state_->n_out * model_->n_vocab()));
}

int64_t Session::n_past() const {
    return state_->n_past;
}

void Session::reset() {
    state_->n_past = 0;
    state_->n_out = 0;
}

void Session::truncate(int64_t n_keep) {
    if (n_keep < 0 || n_keep > state_->n_past)
        throw Error(fmt::format("Session::truncate({}): the cache holds {} tokens", n_keep, state_->n_past));
    if (n_keep == state_->n_past) return;
    // Positions past n_keep are overwritten by the next prefill; nothing else refers to them.
    state_->n_past = n_keep;
    state_->n_out = 0;
}

void Session::set_routing_observer(RoutingObserver observer) {
    state_->context->set_observer(std::move(observer));
}

const Model& Session::model() const {
    return *model_;
}

}  // namespace hymoe
