// `hymoe trace`: generate from a prompt and record which experts every token used at every MoE
// layer, as a routing trace (docs/offload.md) for `hymoe simulate`. The prompt is evaluated in
// one batch, then each generated token on its own; a batch's routing is split into one line
// per token.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <exception>
#include <memory>
#include <string>
#include <vector>

#include <fmt/core.h>

#include "commands.hpp"
#include "device_flags.hpp"
#include "generate.hpp"
#include "hymoe/engine.hpp"
#include "hymoe/error.hpp"
#include "offload/routing_trace.hpp"
#include "runtime/forward.hpp"
#include "util/utf8.hpp"

namespace hymoe::cli {

namespace {

struct TraceArgs {
    std::string model;
    std::string prompt;
    std::string output;
    int n_predict = 128;
    int threads = 0;
    int64_t ctx = 4096;
    bool ignore_eos = false;
    SamplingParams sampling;
    DeviceFlags device;
};

offload::RoutingTraceHeader trace_header(const Model& model) {
    const ModelConfig& c = model.impl().config;
    offload::RoutingTraceHeader h;
    h.model = model.path();
    h.architecture = model.architecture();
    h.n_layers = c.n_layers;
    h.n_experts = c.n_experts;
    h.n_experts_used = c.n_experts_used;
    h.n_probs = std::min(2 * c.n_experts_used, c.n_experts);  // what the score policy ranks
    for (size_t l = 0; l < c.layer_moe.size(); ++l)
        if (c.layer_moe[l] != 0) h.moe_layers.push_back(static_cast<int64_t>(l));
    if (h.n_experts <= 0 || h.moe_layers.empty())
        throw Error(fmt::format("{}: the model has no routed experts to trace", model.path()));
    return h;
}

// Splits each routing step (a batch at one layer) into one line per token. An error inside the
// observer is kept and rethrown after the engine call returns, so it never unwinds the forward pass.
class TraceRecorder {
public:
    explicit TraceRecorder(offload::RoutingTraceWriter& writer) : writer_(writer) {}

    void operator()(const RoutingStep& s) {
        if (error_) return;
        try {
            const offload::RoutingTraceHeader& h = writer_.header();
            if (s.n_experts != h.n_experts || s.n_experts_used != h.n_experts_used)
                throw Error(fmt::format("layer {} routed {} of {} experts; the model says {} of {}", s.layer,
                                        s.n_experts_used, s.n_experts, h.n_experts_used, h.n_experts));
            const auto n = static_cast<size_t>(s.n_tokens), k = static_cast<size_t>(s.n_experts_used),
                       ne = static_cast<size_t>(s.n_experts);
            if (s.experts.size() != n * k || s.weights.size() != n * k || s.probs.size() != n * ne)
                throw Error(fmt::format("layer {}: the routing step's arrays do not match {} tokens", s.layer, n));
            for (size_t t = 0; t < n; ++t)
                writer_.write(s.position + static_cast<int64_t>(t), s.layer, s.experts.subspan(t * k, k),
                              s.weights.subspan(t * k, k), s.probs.subspan(t * ne, ne));
        } catch (...) {
            error_ = std::current_exception();
        }
    }
    void rethrow() const {
        if (error_) std::rethrow_exception(error_);
    }

private:
    offload::RoutingTraceWriter& writer_;
    std::exception_ptr error_;
};

void run_trace(const TraceArgs& args) {
    if (args.prompt.empty()) throw Error("-p/--prompt: the prompt is empty");
    require_valid_utf8(args.prompt, "-p/--prompt");
    const Tokenizer tokenizer = load_tokenizer(args.model);
    const std::vector<int32_t> prompt = tokenizer.encode(args.prompt, true, true);
    if (prompt.empty()) throw Error("-p/--prompt: the prompt has no tokens");
    Sampler sampler(args.sampling);
    LoadOptions options{.n_threads = args.threads, .n_ctx = args.ctx};
    apply_device_flags(args.device, options);
    const auto model = Model::load(args.model, options);
    if (static_cast<int64_t>(prompt.size()) >= model->n_ctx())
        throw Error(fmt::format("the prompt is {} tokens, the context only {} (-c)", prompt.size(), model->n_ctx()));
    offload::RoutingTraceWriter writer(args.output, trace_header(*model));
    note_random_weights(args.model);
    auto recorder = std::make_shared<TraceRecorder>(writer);
    Session session(model);
    session.set_routing_observer([recorder](const RoutingStep& s) { (*recorder)(s); });

    const auto t0 = std::chrono::steady_clock::now();
    for (int32_t t : prompt) sampler.accept(t);
    session.prefill(prompt);
    recorder->rethrow();
    // Every generated token is evaluated, the last one too, so that its routing is recorded.
    int n_generated = 0;
    std::string stopped;
    while (n_generated < args.n_predict) {
        if (session.n_past() >= model->n_ctx()) {
            stopped = fmt::format("; stopped: the context of {} tokens is full (-c)", model->n_ctx());
            break;
        }
        const int32_t id = sampler.sample(session.logits());
        if (!args.ignore_eos && tokenizer.is_end_of_generation(id)) {
            stopped = "; stopped at an end-of-generation token (--ignore-eos goes on)";
            break;
        }
        session.decode(id);
        recorder->rethrow();
        ++n_generated;
    }
    session.set_routing_observer({});
    writer.finish();
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    fmt::print(stderr, "trace: {} tokens ({} prompt + {} generated) x {} MoE layers = {} lines to {} in {:.1f} s{}\n",
               prompt.size() + static_cast<size_t>(n_generated), prompt.size(), n_generated,
               writer.header().moe_layers.size(), writer.n_records(), args.output, seconds, stopped);
}

}  // namespace

void add_trace_command(CLI::App& app) {
    auto args = std::make_shared<TraceArgs>();
    auto* cmd =
        app.add_subcommand("trace", "Generate from a prompt and record every token's experts (a routing trace)");
    cmd->add_option("-m,--model", args->model, "GGUF model file, or HF model directory")->required();
    cmd->add_option("-p,--prompt", args->prompt, "the prompt")->required();
    cmd->add_option("-o,--output", args->output, "the routing trace to write")->required();
    cmd->add_option("-n,--n-predict", args->n_predict, "tokens to generate after the prompt")
        ->capture_default_str()
        ->check(CLI::NonNegativeNumber);
    cmd->add_option("-t,--threads", args->threads, "compute threads (0: all)")->check(CLI::NonNegativeNumber);
    cmd->add_option("-c,--ctx", args->ctx, "context length")->capture_default_str()->check(CLI::PositiveNumber);
    cmd->add_flag("--ignore-eos", args->ignore_eos, "go on past end-of-generation tokens");
    add_sampling_options(*cmd, args->sampling);
    args->device.device = "cpu";  // the routing observer reads host buffers
    add_device_flags(cmd, args->device);
    cmd->callback([args] { run_trace(*args); });
}

}  // namespace hymoe::cli
