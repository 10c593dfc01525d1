#include "model/weights.hpp"

#include <cstring>
#include <string>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "format/model_file.hpp"
#include "hymoe/error.hpp"
#include "model/arch.hpp"

namespace hymoe {

namespace {

using Shape = std::vector<int64_t>;

std::string shape_text(const Shape& shape, bool gguf) {
    std::string s = fmt::format("[{}]", fmt::join(shape, ", "));
    if (gguf) {
        Shape ne(shape.rbegin(), shape.rend());
        s += fmt::format(" (GGUF ne {{{}}})", fmt::join(ne, ", "));
    }
    return s;
}

bool is_element_type(TensorType t) {
    return t == TensorType::F32 || t == TensorType::F16 || t == TensorType::BF16;
}

class WeightLoader {
public:
    WeightLoader(const ModelFile& file, const ModelConfig& config, ModelWeights& out)
        : file_(file), c_(config), out_(out), gguf_(file.format() == FileFormat::Gguf) {}

    // The tensor for a role, or null. `suffix` is "weight" or "bias".
    const TensorView* find(TensorRole role, int64_t layer, std::string_view suffix, int64_t expert = -1) const {
        const TensorName& names = tensor_name(role);
        const auto try_pattern = [&](std::string_view pattern) -> const TensorView* {
            if (pattern.empty()) return nullptr;
            const std::string base = expand_tensor_name(pattern, layer, expert);
            if (const TensorView* t = file_.find(base + "." + std::string(suffix))) return t;
            if (!gguf_ && suffix == "bias")
                if (const TensorView* t = file_.find(base + "_bias")) return t;
            if (suffix == "weight")
                if (const TensorView* t = file_.find(base)) return t;
            return nullptr;
        };
        if (gguf_) {
            for (std::string_view p : names.gguf)
                if (const TensorView* t = try_pattern(p)) return t;
        } else {
            for (std::string_view p : names.hf)
                if (const TensorView* t = try_pattern(p)) return t;
        }
        return nullptr;
    }

    // The name a user should look for when the tensor is missing.
    std::string expected_name(TensorRole role, int64_t layer, std::string_view suffix, int64_t expert = -1) const {
        const TensorName& names = tensor_name(role);
        const std::string_view pattern = gguf_ ? names.gguf[0] : names.hf[0];
        if (pattern.empty()) return fmt::format("(no {} name for this tensor)", gguf_ ? "GGUF" : "HF");
        return expand_tensor_name(pattern, layer, expert) + "." + std::string(suffix);
    }

    [[noreturn]] void missing(TensorRole role, int64_t layer, std::string_view suffix, const Shape& shape,
                              int64_t expert = -1) const {
        throw Error(fmt::format("{}: missing tensor '{}' (expected shape {})", file_.path(),
                                expected_name(role, layer, suffix, expert), shape_text(shape, gguf_)));
    }

    void check_shape(const TensorView& t, const Shape& expected) const {
        if (t.shape != expected) {
            throw Error(fmt::format("{}: tensor '{}' has shape {}, expected {}", file_.path(), t.name,
                                    shape_text(t.shape, gguf_), shape_text(expected, gguf_)));
        }
    }

    // A matrix [rows, cols] usable by cpu::matmul; a 1-D [cols] tensor is accepted when rows == 1.
    cpu::MatrixRef matrix(TensorRole role, int64_t layer, int64_t rows, int64_t cols, bool required) {
        const Shape expected{rows, cols};
        const TensorView* t = find(role, layer, "weight");
        if (t == nullptr) {
            if (required) missing(role, layer, "weight", expected);
            return {};
        }
        if (!(rows == 1 && t->shape == Shape{cols})) check_shape(*t, expected);
        return matrix_view(*t, rows, cols, 0);
    }

    // An f32 vector [n]; converted (and copied) when stored as f16/bf16 or misaligned.
    const float* vector(TensorRole role, int64_t layer, int64_t n, bool required, std::string_view suffix = "weight") {
        const TensorView* t = find(role, layer, suffix);
        if (t == nullptr) {
            if (required) missing(role, layer, suffix, {n});
            return nullptr;
        }
        if (!(t->shape == Shape{n} || t->shape == Shape{1, n})) check_shape(*t, {n});
        return f32_of(*t, 0, n);
    }

    Linear linear(TensorRole role, int64_t layer, int64_t rows, int64_t cols, bool required, bool bias) {
        Linear l;
        l.w = matrix(role, layer, rows, cols, required);
        if (bias && l.present()) l.bias = vector(role, layer, rows, true, "bias");
        return l;
    }

    // Routed experts: one 3-D GGUF tensor [n_experts, rows, cols], or one HF tensor per expert.
    std::vector<cpu::MatrixRef> experts(TensorRole role, int64_t layer, int64_t rows, int64_t cols) {
        const int64_t n = c_.n_experts;
        std::vector<cpu::MatrixRef> out;
        if (const TensorView* t = find(role, layer, "weight"); t != nullptr && t->shape.size() == 3) {
            if (!gguf_) {
                throw Error(
                    fmt::format("{}: tensor '{}' is a fused 3-D expert tensor; this layout is not supported "
                                "for safetensors (save the model with per-expert tensors)",
                                file_.path(), t->name));
            }
            check_shape(*t, {n, rows, cols});
            const uint64_t bytes = row_bytes(t->type, cols) * static_cast<uint64_t>(rows);
            for (int64_t e = 0; e < n; ++e)
                out.push_back(matrix_view(*t, rows, cols, bytes * static_cast<uint64_t>(e)));
            return out;
        }
        if (gguf_) missing(role, layer, "weight", {n, rows, cols});
        for (int64_t e = 0; e < n; ++e) {
            const TensorView* t = find(role, layer, "weight", e);
            if (t == nullptr) missing(role, layer, "weight", {rows, cols}, e);
            check_shape(*t, {rows, cols});
            out.push_back(matrix_view(*t, rows, cols, 0));
        }
        return out;
    }

    // GGUF expert biases: [n_experts, rows] f32 next to the weights.
    const float* expert_bias(TensorRole role, int64_t layer, int64_t rows) {
        const TensorView* t = find(role, layer, "bias");
        if (t == nullptr) missing(role, layer, "bias", {c_.n_experts, rows});
        check_shape(*t, {c_.n_experts, rows});
        return f32_of(*t, 0, c_.n_experts * rows);
    }

    // HF GPT-OSS: gate_up_proj [n_experts, d_model, 2*d_ff] (x @ W, gate and up interleaved by
    // column) and down_proj [n_experts, d_ff, d_model]: transposed once into [out, in] f32.
    void gpt_oss_fused_experts(int64_t layer, ExpertSet& set) {
        const int64_t n = c_.n_experts, d = c_.d_model, f = c_.d_ff_expert;
        const TensorView* gu = find(TensorRole::ExpertsGateUpFused, layer, "weight");
        if (gu == nullptr) missing(TensorRole::ExpertsGateUpFused, layer, "weight", {n, d, 2 * f});
        check_shape(*gu, {n, d, 2 * f});
        const TensorView* dn = find(TensorRole::ExpertsDown, layer, "weight");
        if (dn == nullptr) missing(TensorRole::ExpertsDown, layer, "weight", {n, f, d});
        check_shape(*dn, {n, f, d});
        std::vector<float> row(static_cast<size_t>(std::max(2 * f, d)));
        for (int64_t e = 0; e < n; ++e) {
            float* gate = owned_f32(f * d);  // [f, d]
            float* up = owned_f32(f * d);    // [f, d]
            for (int64_t i = 0; i < d; ++i) {
                read_row(*gu, (e * d + i), 2 * f, row.data());
                for (int64_t j = 0; j < f; ++j) {
                    gate[j * d + i] = row[static_cast<size_t>(2 * j)];
                    up[j * d + i] = row[static_cast<size_t>(2 * j + 1)];
                }
            }
            float* down = owned_f32(d * f);  // [d, f]
            for (int64_t j = 0; j < f; ++j) {
                read_row(*dn, (e * f + j), d, row.data());
                for (int64_t i = 0; i < d; ++i) down[i * f + j] = row[static_cast<size_t>(i)];
            }
            set.gate.push_back(f32_matrix(gate, f, d));
            set.up.push_back(f32_matrix(up, f, d));
            set.down.push_back(f32_matrix(down, d, f));
        }
        const TensorView* gub = find(TensorRole::ExpertsGateUpFused, layer, "bias");
        if (gub == nullptr) missing(TensorRole::ExpertsGateUpFused, layer, "bias", {n, 2 * f});
        check_shape(*gub, {n, 2 * f});
        float* gate_bias = owned_f32(n * f);
        float* up_bias = owned_f32(n * f);
        for (int64_t e = 0; e < n; ++e) {
            read_row(*gub, e, 2 * f, row.data());
            for (int64_t j = 0; j < f; ++j) {
                gate_bias[e * f + j] = row[static_cast<size_t>(2 * j)];
                up_bias[e * f + j] = row[static_cast<size_t>(2 * j + 1)];
            }
        }
        set.gate_bias = gate_bias;
        set.up_bias = up_bias;
        set.down_bias = expert_bias(TensorRole::ExpertsDown, layer, d);
    }

    // MLA's per-head k_b (transposed: [kv_lora, nope]) and v_b ([v, kv_lora]), from the split
    // GGUF tensors or from the unsplit kv_b [n_heads*(nope+v), kv_lora].
    void mla_kv_b(int64_t layer, LayerWeights& lw) {
        const int64_t h = c_.n_heads, r = c_.kv_lora_rank, nope = c_.head_dim_nope, dv = c_.head_dim_v;
        const TensorView* kb = find(TensorRole::AttnKB, layer, "weight");
        const TensorView* vb = find(TensorRole::AttnVB, layer, "weight");
        if (kb != nullptr || vb != nullptr) {
            if (kb == nullptr) missing(TensorRole::AttnKB, layer, "weight", {h, r, nope});
            if (vb == nullptr) missing(TensorRole::AttnVB, layer, "weight", {h, dv, r});
            check_shape(*kb, {h, r, nope});
            check_shape(*vb, {h, dv, r});
            for (int64_t i = 0; i < h; ++i) {
                lw.k_b.push_back(matrix_view(*kb, r, nope, row_bytes(kb->type, nope) * r * i));
                lw.v_b.push_back(matrix_view(*vb, dv, r, row_bytes(vb->type, r) * dv * i));
            }
            return;
        }
        const TensorView* kv = find(TensorRole::AttnKvB, layer, "weight");
        if (kv == nullptr) missing(TensorRole::AttnKvB, layer, "weight", {h * (nope + dv), r});
        check_shape(*kv, {h * (nope + dv), r});
        std::vector<float> row(static_cast<size_t>(r));
        for (int64_t i = 0; i < h; ++i) {
            float* kt = owned_f32(r * nope);  // [kv_lora, nope]
            for (int64_t j = 0; j < nope; ++j) {
                read_row(*kv, i * (nope + dv) + j, r, row.data());
                for (int64_t l = 0; l < r; ++l) kt[l * nope + j] = row[static_cast<size_t>(l)];
            }
            lw.k_b.push_back(f32_matrix(kt, r, nope));
            lw.v_b.push_back(matrix_view(*kv, dv, r, row_bytes(kv->type, r) * (i * (nope + dv) + nope)));
        }
    }

private:
    static uint64_t row_bytes(TensorType type, int64_t n) {
        // Shapes were checked against the config, and the file reader checked every size.
        return hymoe::row_bytes(type, static_cast<uint64_t>(n)).value_or(0);
    }

    cpu::MatrixRef matrix_view(const TensorView& t, int64_t rows, int64_t cols, uint64_t byte_offset) {
        if (!cpu::supports_matmul(t.type)) {
            throw Error(
                fmt::format("{}: tensor '{}' has type {}, which has no CPU matmul (supported: f32, f16, "
                            "bf16, q8_0, mxfp4)",
                            file_.path(), t.name, type_traits(t.type).name));
        }
        if (cols % static_cast<int64_t>(type_traits(t.type).block_size) != 0) {
            throw Error(fmt::format("{}: tensor '{}' rows of {} do not fill whole {} blocks", file_.path(), t.name,
                                    cols, type_traits(t.type).name));
        }
        const std::byte* data = t.data + byte_offset;
        const size_t align = is_element_type(t.type) ? type_traits(t.type).type_size : 1;
        if (reinterpret_cast<uintptr_t>(data) % align != 0) {
            // safetensors offsets need not be aligned to the element size: copy.
            const uint64_t bytes = row_bytes(t.type, cols) * static_cast<uint64_t>(rows);
            out_.owned.push_back(std::make_unique<std::byte[]>(bytes));
            std::memcpy(out_.owned.back().get(), data, bytes);
            data = out_.owned.back().get();
        }
        return {t.type, data, rows, cols};
    }

    float* owned_f32(int64_t n) {
        out_.owned.push_back(std::make_unique<std::byte[]>(static_cast<size_t>(n) * sizeof(float)));
        return reinterpret_cast<float*>(out_.owned.back().get());
    }
    static cpu::MatrixRef f32_matrix(const float* data, int64_t rows, int64_t cols) {
        return {TensorType::F32, reinterpret_cast<const std::byte*>(data), rows, cols};
    }

    // Row `index` of a tensor viewed as rows of `n` elements, as f32.
    void read_row(const TensorView& t, int64_t index, int64_t n, float* out) const {
        if (!cpu::supports_matmul(t.type))
            throw Error(
                fmt::format("{}: tensor '{}' has unsupported type {}", file_.path(), t.name, type_traits(t.type).name));
        std::vector<std::byte> tmp(row_bytes(t.type, n));  // copy: the file data may be misaligned
        std::memcpy(tmp.data(), t.data + row_bytes(t.type, n) * static_cast<uint64_t>(index), tmp.size());
        cpu::dequantize_row(t.type, tmp.data(), n, out);
    }

    const float* f32_of(const TensorView& t, int64_t row, int64_t n) {
        if (t.type == TensorType::F32 && reinterpret_cast<uintptr_t>(t.data) % alignof(float) == 0)
            return reinterpret_cast<const float*>(t.data) + row * n;
        if (!is_element_type(t.type))
            throw Error(fmt::format("{}: tensor '{}' has type {}, expected f32, f16 or bf16", file_.path(), t.name,
                                    type_traits(t.type).name));
        float* out = owned_f32(n);
        read_row(t, row, n, out);
        return out;
    }

    const ModelFile& file_;
    const ModelConfig& c_;
    ModelWeights& out_;
    bool gguf_;
};

}  // namespace

ModelWeights load_weights(const ModelFile& file, const ModelConfig& c) {
    using R = TensorRole;
    ModelWeights w;
    WeightLoader ld(file, c, w);
    const int64_t d = c.d_model;
    w.token_embd = ld.matrix(R::TokenEmbd, -1, c.n_vocab, d, true);
    w.output_norm = ld.vector(R::OutputNorm, -1, d, true);
    // GGUF files of tied models have no output.weight (llama.cpp then uses token_embd).
    w.output.w = ld.matrix(R::Output, -1, c.n_vocab, d, !c.tied_embeddings && file.format() != FileFormat::Gguf);
    if (!w.output.present()) w.output.w = w.token_embd;  // tied, or a GGUF without output.weight

    w.layers.resize(static_cast<size_t>(c.n_layers));
    for (int64_t il = 0; il < c.n_layers; ++il) {
        LayerWeights& l = w.layers[static_cast<size_t>(il)];
        l.attn_norm = ld.vector(R::AttnNorm, il, d, true);
        if (c.is_mla()) {
            const int64_t q_width = c.n_heads * c.head_dim;
            if (c.q_lora_rank > 0) {
                l.q_a = ld.linear(R::AttnQA, il, c.q_lora_rank, d, true, false);
                l.q_a_norm = ld.vector(R::AttnQANorm, il, c.q_lora_rank, true);
                l.q_b = ld.linear(R::AttnQB, il, q_width, c.q_lora_rank, true, false);
            } else {
                l.q = ld.linear(R::AttnQ, il, q_width, d, true, false);
            }
            l.kv_a = ld.linear(R::AttnKvA, il, c.kv_lora_rank + c.head_dim_rope, d, true, false);
            l.kv_a_norm = ld.vector(R::AttnKvANorm, il, c.kv_lora_rank, true);
            ld.mla_kv_b(il, l);
        } else {
            l.q = ld.linear(R::AttnQ, il, c.n_heads * c.head_dim, d, true, c.attn_qkv_bias);
            l.k = ld.linear(R::AttnK, il, c.n_kv_heads * c.head_dim, d, true, c.attn_qkv_bias);
            l.v = ld.linear(R::AttnV, il, c.n_kv_heads * c.head_dim_v, d, true, c.attn_qkv_bias);
        }
        l.out = ld.linear(R::AttnOut, il, d, c.n_heads * c.head_dim_v, true, c.attn_out_bias);
        switch (c.qk_norm) {
            case QkNorm::None: break;
            case QkNorm::PerHead:
                l.q_norm = ld.vector(R::AttnQNorm, il, c.head_dim, true);
                l.k_norm = ld.vector(R::AttnKNorm, il, c.head_dim, true);
                break;
            case QkNorm::Full:
                l.q_norm = ld.vector(R::AttnQNorm, il, c.n_heads * c.head_dim, true);
                l.k_norm = ld.vector(R::AttnKNorm, il, c.n_kv_heads * c.head_dim, true);
                break;
        }
        if (c.attn_sinks) l.sinks = ld.vector(R::AttnSinks, il, c.n_heads, true);

        l.ffn_norm = ld.vector(R::FfnNorm, il, d, true);
        if (c.layer_moe[static_cast<size_t>(il)] == 0) {
            l.ffn_gate = ld.linear(R::FfnGate, il, c.d_ff_dense, d, true, false);
            l.ffn_up = ld.linear(R::FfnUp, il, c.d_ff_dense, d, true, false);
            l.ffn_down = ld.linear(R::FfnDown, il, d, c.d_ff_dense, true, false);
            continue;
        }
        const int64_t f = c.d_ff_expert;
        l.router = ld.linear(R::Router, il, c.n_experts, d, true, c.router_bias);
        if (c.expert_selection_bias) l.selection_bias = ld.vector(R::ExpertSelectionBias, il, c.n_experts, true);
        if (c.activation == FfnActivation::SwiGluOai && file.format() == FileFormat::Safetensors) {
            ld.gpt_oss_fused_experts(il, l.experts);
        } else {
            l.experts.gate = ld.experts(R::ExpertsGate, il, f, d);
            l.experts.up = ld.experts(R::ExpertsUp, il, f, d);
            l.experts.down = ld.experts(R::ExpertsDown, il, d, f);
            if (c.expert_bias) {
                l.experts.gate_bias = ld.expert_bias(R::ExpertsGate, il, f);
                l.experts.up_bias = ld.expert_bias(R::ExpertsUp, il, f);
                l.experts.down_bias = ld.expert_bias(R::ExpertsDown, il, d);
            }
        }
        if (c.d_ff_shared > 0) {
            l.shared_gate = ld.linear(R::SharedGate, il, c.d_ff_shared, d, true, false);
            l.shared_up = ld.linear(R::SharedUp, il, c.d_ff_shared, d, true, false);
            l.shared_down = ld.linear(R::SharedDown, il, d, c.d_ff_shared, true, false);
            if (c.shared_expert_gate) l.shared_expert_gate = ld.linear(R::SharedExpertGate, il, 1, d, true, false);
        }
    }
    return w;
}

}  // namespace hymoe
