// `hymoe synth`: random weights in a real model's shape, generated in parallel chunks of rows,
// quantized and streamed to disk. Every chunk has its own seed (from the model seed, the tensor
// name and the chunk index), so a seed gives the same file whatever the thread count.
#include "hymoe/synth.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <numbers>
#include <optional>

#include <fmt/format.h>

#include "cpu/thread_pool.hpp"
#include "format/gguf.hpp"
#include "format/gguf_writer.hpp"
#include "format/model_file.hpp"
#include "hymoe/error.hpp"
#include "model/synth_plan.hpp"
#include "quant/quant.hpp"

namespace hymoe {

namespace synth {
std::span<const std::byte> builtin_vocab();  // synth_vocab.cpp
}

namespace {

using namespace synth;

// ---- random numbers -------------------------------------------------------------------------

constexpr uint64_t mix64(uint64_t x) {  // splitmix64's finalizer
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

uint64_t hash_of(uint64_t seed, std::string_view s, uint64_t n = 0) {
    uint64_t h = 0xcbf29ce484222325ULL ^ mix64(seed);
    for (char c : s) h = (h ^ static_cast<uint8_t>(c)) * 0x100000001b3ULL;
    return mix64(h ^ mix64(n + 0x9e3779b97f4a7c15ULL));
}

// A counter-based stream: splitmix64. normal() sums four 16-bit uniforms (Irwin-Hall), a
// unit-variance approximation of N(0, 1) bounded at +-3.46 that costs one draw.
class Rng {
public:
    explicit Rng(uint64_t seed) : state_(seed) {}
    uint64_t next() { return mix64(state_ += 0x9e3779b97f4a7c15ULL); }
    float normal() {
        const uint64_t r = next();
        const auto sum = static_cast<int64_t>((r & 0xffff) + ((r >> 16) & 0xffff) + ((r >> 32) & 0xffff) + (r >> 48));
        constexpr float kScale = 1.7320508f / 65536.0f;  // sqrt(3) / 2^16
        return static_cast<float>(sum - 131070) * kScale;
    }
    double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

private:
    uint64_t state_;
};

// ---- routing skew ---------------------------------------------------------------------------

// Every embedding row carries kShare * sqrt(d) along one unit direction g, so every hidden state
// does. Router rows get a component along g that adds a fixed logit offset per expert.
constexpr float kShare = 0.5f;
constexpr float kRouterGain = 2.0f;      // router noise: logits ~ N(0, 2^2) per expert
constexpr float kResidualGrowth = 1.0f;  // assumed variance the layers add to the residual

struct Skew {
    std::vector<float> g;  // [d_model] unit vector
    float share = 0;       // kShare, or 0 with zipf and locality both off
    double zipf = 0, locality = 0;
    uint32_t n_layers_shape = 1;

    // Expected x.g for the normalized input of layer `il`.
    float expected_dot(const Shape& s, int il) const {
        const float base = 1.0f + share * share;
        const float grown = base + kResidualGrowth * static_cast<float>(std::max(il, 0)) /
                                       static_cast<float>(std::max<uint32_t>(n_layers_shape, 1));
        return share * std::sqrt(static_cast<float>(s.d_model)) / std::sqrt(grown);
    }
};

Skew make_skew(const Shape& s, const SynthOptions& o) {
    Skew k;
    k.zipf = o.zipf;
    k.locality = o.locality;
    k.n_layers_shape = s.n_layers;
    k.share = (o.zipf > 0 || o.locality > 0) ? kShare : 0.0f;
    Rng rng(hash_of(o.seed, "skew.direction"));
    k.g.resize(s.d_model);
    double norm = 0;
    for (float& v : k.g) {
        v = rng.normal();
        norm += static_cast<double>(v) * v;
    }
    for (float& v : k.g) v = static_cast<float>(v / std::sqrt(norm));
    return k;
}

// Router [n_experts, d_model] of layer il: noise orthogonal to g, plus offset_e / E[x.g] along g
// with offset_e = -zipf * b * ln(rank_e), rank a random permutation per layer; b is the scale of a
// Gumbel with the noise's variance, so the top-1 choice has P(rank r) ~ r^-zipf.
std::vector<float> make_router(const Shape& s, const Skew& k, const Tensor& t, uint64_t seed) {
    const auto E = static_cast<size_t>(t.shape[0]), d = static_cast<size_t>(t.shape[1]);
    std::vector<float> w(E * d);
    Rng rng(hash_of(seed, t.name));
    for (size_t e = 0; e < E; ++e) {
        float* row = w.data() + e * d;
        double dot = 0;
        for (size_t i = 0; i < d; ++i) {
            row[i] = rng.normal() * t.stddev;
            dot += static_cast<double>(row[i]) * k.g[i];
        }
        for (size_t i = 0; i < d; ++i) row[i] -= static_cast<float>(dot) * k.g[i];
    }
    if (k.zipf <= 0 || k.share <= 0) return w;
    std::vector<size_t> rank(E);
    for (size_t e = 0; e < E; ++e) rank[e] = e + 1;
    for (size_t e = E - 1; e > 0; --e) std::swap(rank[e], rank[static_cast<size_t>(rng.next() % (e + 1))]);
    const double b = kRouterGain * std::sqrt(6.0) / std::numbers::pi;
    std::vector<double> offset(E);
    double mean = 0;
    for (size_t e = 0; e < E; ++e) mean += offset[e] = -k.zipf * b * std::log(static_cast<double>(rank[e]));
    mean /= static_cast<double>(E);
    const double c = k.expected_dot(s, t.layer);
    for (size_t e = 0; e < E; ++e) {
        const auto along = static_cast<float>((offset[e] - mean) / c);
        for (size_t i = 0; i < d; ++i) w[e * d + i] += along * k.g[i];
    }
    return w;
}

// The locality component of attn_q / attn_k rows: every q and k row gets beta * g, so every
// query and key carries beta * E[x.g] in each dimension; under RoPE their product is a score
// bias locality * mean_i cos(theta_i * distance): largest for the token itself and its
// neighbours, falling with distance (a recency bias).
float locality_beta(const Shape& s, const Skew& k, int il) {
    if (k.locality <= 0 || k.share <= 0) return 0;
    const float c = k.expected_dot(s, il);
    return static_cast<float>(std::sqrt(k.locality / std::sqrt(static_cast<double>(s.head_dim)))) / c;
}

// ---- the vocabulary -------------------------------------------------------------------------

struct Vocab {
    std::vector<std::pair<std::string, MetaValue>> keys;  // tokenizer.*
    int64_t n_tokens = 0;                                 // 0: no tokenizer
    std::string name;
};

Vocab load_vocab(const std::string& spec) {
    Vocab v;
    if (spec == "none") return v;
    std::optional<ModelFile> file;
    std::optional<GgufContents> builtin;
    const Metadata* meta = nullptr;
    if (spec == "builtin") {
        const std::span<const std::byte> bytes = synth::builtin_vocab();
        if (bytes.empty())
            throw Error("synth: this build has no built-in vocabulary; pass --vocab FILE or --vocab none");
        builtin.emplace(parse_gguf(bytes, "built-in vocabulary"));
        meta = &builtin->metadata;
        v.name = "built-in llama-spm";
    } else {
        file.emplace(open_model_file(spec));
        if (file->format() != FileFormat::Gguf) throw Error(fmt::format("synth: --vocab {}: not a GGUF file", spec));
        meta = &file->metadata();
        v.name = spec;
    }
    const MetaArray* tokens = meta->get_array("tokenizer.ggml.tokens");
    if (tokens == nullptr || tokens->items.empty())
        throw Error(
            fmt::format("synth: --vocab {}: no tokenizer.ggml.tokens (expected a GGUF with a vocabulary)", spec));
    v.n_tokens = static_cast<int64_t>(tokens->items.size());
    for (const auto& [key, value] : meta->entries())
        if (key.rfind("tokenizer.", 0) == 0) v.keys.emplace_back(key, value);
    return v;
}

// Pads the token list to n_vocab as llama.cpp's converter does for a padded embedding:
// "[PAD{i}]" tokens of type UNUSED (5), score -1000 (SPM: [PAD1].., BPE: [PAD{id}]).
void pad_vocab(Vocab& v, int64_t n_vocab) {
    if (v.n_tokens >= n_vocab) return;
    bool spm = false;
    for (const auto& [key, value] : v.keys)
        if (key == "tokenizer.ggml.model" && value.as_string() && *value.as_string() == "llama") spm = true;
    for (auto& [key, value] : v.keys) {
        if (value.type() != MetaType::Array) continue;
        MetaArray arr = *value.as_array();
        if (static_cast<int64_t>(arr.items.size()) != v.n_tokens) continue;  // merges and the like
        for (int64_t id = v.n_tokens; id < n_vocab; ++id) {
            if (key == "tokenizer.ggml.tokens") {
                arr.items.push_back(MetaValue::string(fmt::format("[PAD{}]", spm ? id - v.n_tokens + 1 : id)));
            } else if (key == "tokenizer.ggml.scores") {
                arr.items.push_back(MetaValue::floating(arr.element_type, -1000.0));
            } else if (key == "tokenizer.ggml.token_type") {
                arr.items.push_back(MetaValue::signed_int(arr.element_type, 5));  // UNUSED
            } else {
                continue;
            }
        }
        value = MetaValue::array(std::move(arr));
    }
}

// ---- the model ------------------------------------------------------------------------------

struct Prepared {
    const Shape* shape;
    const QuantType* quant;
    uint32_t n_layers;
    int64_t n_vocab;
    Vocab vocab;
    std::vector<Tensor> plan;
};

Prepared prepare(const SynthOptions& o) {
    Prepared p;
    p.shape = &find_shape(o.shape);
    p.quant = &find_quant_type(o.type);
    const Shape& s = *p.shape;
    // More layers than the shape has are allowed: a deeper model of the same width.
    if (o.n_layers < 0) throw Error(fmt::format("synth: --layers must be positive, got {}", o.n_layers));
    p.n_layers = o.n_layers > 0 ? static_cast<uint32_t>(o.n_layers) : s.n_layers;
    if (p.n_layers <= s.n_dense_layers)
        throw Error(fmt::format("synth: {} has {} dense layer(s) first: --layers must be at least {} to have experts",
                                s.name, s.n_dense_layers, s.n_dense_layers + 1));
    if (o.zipf < 0 || o.locality < 0) throw Error("synth: --zipf and --locality must not be negative");
    p.vocab = load_vocab(o.vocab.empty() ? std::string(s.default_vocab) : o.vocab);
    p.n_vocab = std::max<int64_t>(p.vocab.n_tokens, s.n_vocab);
    if (p.vocab.n_tokens > 0) pad_vocab(p.vocab, p.n_vocab);
    p.plan = tensor_plan(s, p.n_layers, p.n_vocab, *p.quant);
    return p;
}

// Tensor `t`: rows [row0, row0 + n_rows) of length ncols as f32 into out.
void generate_rows(const Shape& s, const Skew& k, const Tensor& t, const std::vector<float>& router, uint64_t seed,
                   int64_t row0, int64_t n_rows, int64_t ncols, float* out) {
    const auto n = static_cast<size_t>(n_rows * ncols);
    switch (t.init) {
        case Init::Ones: std::fill(out, out + n, 1.0f); return;
        case Init::Router: std::copy_n(router.data() + row0 * ncols, n, out); return;
        case Init::Normal:
        case Init::Embedding: break;
    }
    Rng rng(seed);
    for (size_t i = 0; i < n; ++i) out[i] = rng.normal() * t.stddev;
    float along = 0;  // per element of g added to every row
    if (t.init == Init::Embedding) along = k.share * std::sqrt(static_cast<float>(s.d_model));
    if (t.locality) along = locality_beta(s, k, t.layer);
    if (along == 0 || ncols != static_cast<int64_t>(k.g.size())) return;
    for (int64_t r = 0; r < n_rows; ++r)
        for (int64_t i = 0; i < ncols; ++i) out[r * ncols + i] += along * k.g[static_cast<size_t>(i)];
}

std::string type_label(TensorType t) {
    return std::string(type_traits(t).name);
}

}  // namespace

std::vector<std::string> synth_shape_names() {
    std::vector<std::string> names;
    for (const auto& s : shapes()) names.emplace_back(s.name);
    return names;
}

std::vector<std::string> synth_type_names() {
    std::vector<std::string> names;
    for (const auto& q : quant_types()) names.emplace_back(q.name);
    return names;
}

SynthPlan plan_synthetic_model(const SynthOptions& options) {
    const Prepared p = prepare(options);
    SynthPlan out;
    out.architecture = std::string(p.shape->arch);
    out.file_type = static_cast<uint32_t>(p.quant->ftype);
    out.n_vocab = p.n_vocab;
    out.n_layers = p.n_layers;
    for (const Tensor& t : p.plan) {
        uint64_t bytes = row_bytes(t.type, static_cast<uint64_t>(t.shape.back())).value_or(0);
        for (size_t i = 0; i + 1 < t.shape.size(); ++i) bytes *= static_cast<uint64_t>(t.shape[i]);
        out.tensors.push_back({t.name, type_label(t.type), t.shape, bytes});
        out.tensor_bytes += bytes;
    }
    return out;
}

SynthResult write_synthetic_model(const SynthOptions& options) {
    if (options.output.empty()) throw Error("synth: no output path given (-o FILE)");
    const Prepared p = prepare(options);
    const Shape& s = *p.shape;
    // Fail before writing anything when a planned type has no quantizer in this build.
    for (const Tensor& t : p.plan) {
        if (t.type == TensorType::F32 || quant::can_quantize(t.type)) continue;
        throw Error(
            fmt::format("synth: --type {} needs {} (for {}{}), which this build cannot quantize yet", options.type,
                        type_label(t.type), t.name,
                        t.type == file_type_info(p.quant->ftype).default_type ? "" : ", a fallback or mix type"));
    }

    const std::string a(s.arch);
    GgufWriter w;
    w.add_metadata("general.architecture", MetaValue::string(a));
    w.add_metadata("general.name", MetaValue::string(fmt::format("hymoe synthetic {} {} (random weights, seed {})",
                                                                 s.name, options.type, options.seed)));
    w.add_metadata("general.file_type", MetaValue::unsigned_int(MetaType::U32, static_cast<uint64_t>(p.quant->ftype)));
    if (p.quant->ftype != FileType::AllF32)
        w.add_metadata("general.quantization_version", MetaValue::unsigned_int(MetaType::U32, 2));
    for (const auto& [key, value] : p.vocab.keys) w.add_metadata(key, value);
    add_hparams(w, s, p.n_layers, p.n_vocab);
    for (const Tensor& t : p.plan) w.add_tensor(t.name, t.type, t.shape);

    const Skew skew = make_skew(s, options);
    cpu::ThreadPool pool(options.n_threads);
    const auto start = std::chrono::steady_clock::now();
    GgufWriter::Stream out = w.open(options.output);
    constexpr int64_t kChunkElements = int64_t{1} << 18;  // fixed: the chunk seeds depend on it
    std::vector<std::byte> batch;
    std::vector<std::vector<float>> scratch(static_cast<size_t>(pool.size()));
    for (const Tensor& t : p.plan) {
        const int64_t ncols = t.shape.empty() ? 1 : t.shape.back();
        int64_t nrows = 1;
        for (size_t i = 0; i + 1 < t.shape.size(); ++i) nrows *= t.shape[i];
        const uint64_t rb = row_bytes(t.type, static_cast<uint64_t>(ncols)).value_or(0);
        const int64_t rows_per_chunk = std::max<int64_t>(1, kChunkElements / ncols);
        const int64_t n_chunks = (nrows + rows_per_chunk - 1) / rows_per_chunk;
        const int64_t chunks_per_batch = 4 * static_cast<int64_t>(pool.size());
        const std::vector<float> router =
            t.init == Init::Router ? make_router(s, skew, t, options.seed) : std::vector<float>{};
        const uint64_t tensor_seed = hash_of(options.seed, t.name);
        for (int64_t c0 = 0; c0 < n_chunks; c0 += chunks_per_batch) {
            const int64_t c1 = std::min(n_chunks, c0 + chunks_per_batch);
            const int64_t batch_rows = std::min(nrows, c1 * rows_per_chunk) - c0 * rows_per_chunk;
            batch.resize(static_cast<size_t>(batch_rows) * rb);
            std::atomic<int> next_slot{0};
            pool.parallel_for(c1 - c0, [&](int64_t b, int64_t e) {
                std::vector<float>& buf = scratch[static_cast<size_t>(next_slot++)];
                buf.resize(static_cast<size_t>(rows_per_chunk * ncols));
                for (int64_t c = c0 + b; c < c0 + e; ++c) {
                    const int64_t row0 = c * rows_per_chunk, n = std::min(rows_per_chunk, nrows - row0);
                    generate_rows(s, skew, t, router, hash_of(tensor_seed, "chunk", static_cast<uint64_t>(c)), row0, n,
                                  ncols, buf.data());
                    std::byte* dst = batch.data() + static_cast<size_t>(row0 - c0 * rows_per_chunk) * rb;
                    for (int64_t r = 0; r < n; ++r) {
                        const float* src = buf.data() + r * ncols;
                        if (t.type == TensorType::F32)
                            std::memcpy(dst + static_cast<size_t>(r) * rb, src, rb);
                        else
                            quant::quantize_row(t.type, src, ncols, dst + static_cast<size_t>(r) * rb);
                    }
                }
            });
            out.append(batch);
        }
    }
    out.finish();
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return {options.output, static_cast<uint64_t>(std::filesystem::file_size(options.output)), p.plan.size(), seconds};
}

}  // namespace hymoe
