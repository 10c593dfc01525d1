// The library API: load a model once, run any number of sessions over it.
//
//   auto model = hymoe::Model::load("model.gguf", {.n_threads = 8, .n_ctx = 4096});
//   hymoe::Session session(model);
//   session.prefill(prompt_ids);
//   int32_t next = argmax(session.logits());
//   session.decode(next);
//
// Weights are shared and read-only; each Session keeps its own KV cache. Sessions of one model
// share its thread pool, so calls from several threads take turns.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace hymoe {

struct LoadOptions {
    int n_threads = 0;     // compute threads; 0 = all hardware threads
    int64_t n_ctx = 4096;  // KV cache length per session; 0 = the model's training context
    // Where the forward pass runs: "auto" (GPU 0 when one is present and the weights fit in
    // gpu_mem, else the CPU, saying why once), "cpu", "cuda" or "cuda:N" (an error when that GPU
    // cannot be used or the weights do not fit).
    std::string device = "auto";
    uint64_t gpu_mem = 0;  // GPU memory budget in bytes; 0 = the device's free memory less a margin
};

class Model {
public:
    // Opens a GGUF file, a safetensors file or an HF model directory. Throws hymoe::Error for
    // an unsupported architecture or a missing, misshapen or unsupported tensor.
    static std::shared_ptr<const Model> load(const std::string& path, const LoadOptions& options = {});
    ~Model();

    const std::string& path() const;
    const std::string& architecture() const;  // "qwen3moe", "deepseek2", ... (GGUF names)
    int64_t n_vocab() const;
    int64_t n_ctx() const;  // per-session context length
    int n_threads() const;
    const std::string& backend_name() const;  // "cpu" or "cuda:0 (NVIDIA H100 80GB HBM3)"

    struct Impl;
    const Impl& impl() const { return *impl_; }

private:
    explicit Model(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

class Session {
public:
    explicit Session(std::shared_ptr<const Model> model);
    ~Session();
    Session(Session&&) noexcept;
    Session& operator=(Session&&) noexcept;

    // Evaluates tokens after those already in the cache. With all_logits, the logits of every
    // one of them are kept (all_logits()); logits() is always the last one's.
    void prefill(std::span<const int32_t> tokens, bool all_logits = false);
    // Evaluates one more token.
    void decode(int32_t token);

    std::span<const float> logits() const;      // [n_vocab] after the last evaluated token
    std::span<const float> all_logits() const;  // [n_tokens][n_vocab] of the last prefill(all_logits)
    int64_t n_past() const;                     // tokens in the cache
    void reset();                               // empties the cache
    // Keeps the first n_keep tokens and forgets the rest (0 <= n_keep <= n_past()), so a
    // conversation re-evaluates only what changed. logits() is empty until the next prefill.
    void truncate(int64_t n_keep);

    const Model& model() const;

private:
    struct State;
    std::shared_ptr<const Model> model_;
    std::unique_ptr<State> state_;
};

}  // namespace hymoe
