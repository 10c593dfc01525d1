// Model and Session: the library API over the forward pass.
#include "hymoe/engine.hpp"

#include <fmt/format.h>

#include "hymoe/error.hpp"
#include "runtime/forward.hpp"

namespace hymoe {

// ---- Model ----------------------------------------------------------------------------------

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

// ---- Session --------------------------------------------------------------------------------

struct Session::State {
    KvCache cache;
    ForwardScratch scratch;
    std::vector<float> logits;  // [n_out][n_vocab] of the last call
    int64_t n_out = 0;
    int64_t n_past = 0;

    State(const ModelConfig& config, int64_t n_ctx) : cache(config, n_ctx) {}
};

Session::Session(std::shared_ptr<const Model> model) : model_(std::move(model)) {
    if (!model_) throw Error("Session needs a model");
    state_ = std::make_unique<State>(model_->impl().config, model_->n_ctx());
}
Session::~Session() = default;
Session::Session(Session&&) noexcept = default;
Session& Session::operator=(Session&&) noexcept = default;

void Session::prefill(std::span<const int32_t> tokens, bool all_logits) {
    forward(model_->impl(), state_->cache, state_->n_past, tokens, all_logits, state_->scratch, state_->logits);
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

const Model& Session::model() const {
    return *model_;
}

}  // namespace hymoe
