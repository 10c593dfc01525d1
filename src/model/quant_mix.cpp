#include "model/quant_mix.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdio>
#include <numeric>

#include <fmt/format.h>

#include "hymoe/error.hpp"

namespace hymoe {

namespace {

using enum FileType;

// clang-format off
constexpr std::array kFileTypes = {
    FileTypeInfo{AllF32,         "F32",       TensorType::F32,   "all matrices f32"},
    FileTypeInfo{MostlyF16,      "F16",       TensorType::F16,   "matrices f16"},
    FileTypeInfo{MostlyBF16,     "BF16",      TensorType::BF16,  "matrices bf16"},
    FileTypeInfo{MostlyQ8_0,     "Q8_0",      TensorType::Q8_0,  "8.5 bits per weight"},
    FileTypeInfo{MostlyQ4_0,     "Q4_0",      TensorType::Q4_0,  "4.5 bpw, legacy"},
    FileTypeInfo{MostlyQ4_1,     "Q4_1",      TensorType::Q4_1,  "5.0 bpw, legacy"},
    FileTypeInfo{MostlyQ5_0,     "Q5_0",      TensorType::Q5_0,  "5.5 bpw, legacy"},
    FileTypeInfo{MostlyQ5_1,     "Q5_1",      TensorType::Q5_1,  "6.0 bpw, legacy"},
    FileTypeInfo{MostlyQ4_K_S,   "Q4_K_S",    TensorType::Q4_K,  "Q4_K, a few Q5_K"},
    FileTypeInfo{MostlyQ4_K_M,   "Q4_K_M",    TensorType::Q4_K,  "Q4_K, Q6_K for output, half of attn_v and ffn_down"},
    FileTypeInfo{MostlyQ5_K_S,   "Q5_K_S",    TensorType::Q5_K,  "Q5_K"},
    FileTypeInfo{MostlyQ5_K_M,   "Q5_K_M",    TensorType::Q5_K,  "Q5_K, Q6_K for output, half of attn_v and ffn_down"},
    FileTypeInfo{MostlyQ6_K,     "Q6_K",      TensorType::Q6_K,  "6.56 bpw"},
    FileTypeInfo{MostlyMXFP4Moe, "MXFP4_MOE", TensorType::MXFP4, "MXFP4 experts, Q8_0 for the rest (as gpt-oss ships)"},
};
// clang-format on

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
           });
}

bool contains(std::string_view s, std::string_view part) {
    return s.find(part) != std::string_view::npos;
}

// llama.cpp's tensor_category: broad roles from the name, whatever the architecture.
enum class Category {
    TokenEmbd,
    AttnQ,
    AttnV,
    AttnK,
    AttnQkv,
    AttnKvB,
    AttnOutput,
    FfnUp,
    FfnGate,
    FfnDown,
    Output,
    Other
};

Category category_of(std::string_view name) {
    if (name == "output.weight") return Category::Output;
    if (name == "token_embd.weight" || name == "per_layer_token_embd.weight") return Category::TokenEmbd;
    if (contains(name, "attn_qkv.weight")) return Category::AttnQkv;
    if (contains(name, "attn_kv_b.weight")) return Category::AttnKvB;
    if (contains(name, "attn_v.weight")) return Category::AttnV;
    if (contains(name, "attn_k.weight")) return Category::AttnK;
    if (contains(name, "attn_q.weight")) return Category::AttnQ;
    if (contains(name, "attn_output.weight")) return Category::AttnOutput;
    if (contains(name, "ffn_up")) return Category::FfnUp;
    if (contains(name, "ffn_gate")) return Category::FfnGate;
    if (contains(name, "ffn_down")) return Category::FfnDown;
    return Category::Other;
}

bool is_attn_v_like(Category c) {
    return c == Category::AttnV || c == Category::AttnQkv || c == Category::AttnKvB;
}

// ggml_n_dims: dimensions up to the last one larger than 1 (a [1, d] tensor is 1-D).
int n_dims(const std::vector<int64_t>& shape) {
    int n = 1;
    for (size_t i = 0; i + 1 < shape.size(); ++i) {
        if (shape[i] > 1) {
            n = static_cast<int>(shape.size() - i);
            break;
        }
    }
    return n;
}

// llama.cpp's tensor_allows_quantization, for the tensors of the architectures hymoe loads.
bool allows_quantization(const MixTensor& t) {
    if (n_dims(t.shape) < 2) return false;
    const std::string_view name = t.name;
    if (name.size() < 6 || name.substr(name.size() - 6) != "weight") return false;
    if (contains(name, "_norm.weight")) return false;
    if (contains(name, "ffn_gate_inp.weight")) return false;  // routers stay f32
    return true;
}

// The layer of a "blk.N." name, or -1.
int layer_of(std::string_view name) {
    int layer = -1;
    const std::string s(name);
    if (std::sscanf(s.c_str(), "blk.%d.", &layer) != 1) return -1;
    return layer;
}

bool is_quantized(TensorType t) {
    return type_traits(t).block_size > 1;
}

// llama.cpp's use_more_bits: the first and last eighth of the layers and every third in between.
bool use_more_bits(int64_t i, int64_t n) {
    return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
}

struct MixState {
    FileType ftype;
    MixModel model;
    bool tied_embeddings = true;
    int64_t n_attention_wv = 0;
    int64_t i_attention_wv = 0;
    int64_t i_ffn_down = 0;
};

// llama_tensor_get_type_impl, restricted to the file types above.
TensorType mix_rule(MixState& s, TensorType t, const MixTensor& tensor, Category cat) {
    const FileType ft = s.ftype;
    const int64_t cols = tensor.shape.back();
    const bool eight_experts = s.model.n_experts == 8;
    if (cat == Category::Output || (s.tied_embeddings && cat == Category::TokenEmbd)) {
        if (ft == MostlyMXFP4Moe || cols % type_traits(t).block_size != 0) return TensorType::Q8_0;
        return t != TensorType::Q8_0 ? TensorType::Q6_K : t;
    }
    if (ft == MostlyMXFP4Moe) {
        // Expert tensors (3-D, more than one expert) get MXFP4, everything else Q8_0.
        const bool experts = tensor.shape.size() >= 3 && tensor.shape[tensor.shape.size() - 3] > 1;
        return experts ? TensorType::MXFP4 : TensorType::Q8_0;
    }
    if (cat == Category::TokenEmbd) return t;
    if (is_attn_v_like(cat)) {
        if ((ft == MostlyQ4_K_M || ft == MostlyQ5_K_M) && use_more_bits(s.i_attention_wv, s.n_attention_wv)) {
            t = TensorType::Q6_K;
        } else if (ft == MostlyQ4_K_S && s.i_attention_wv < 4) {
            t = TensorType::Q5_K;
        }
        if (eight_experts) t = TensorType::Q8_0;  // llama.cpp: costs Mixtral ~128 MB
        ++s.i_attention_wv;
        return t;
    }
    if (cat == Category::AttnK) return eight_experts ? TensorType::Q8_0 : t;
    if (cat == Category::FfnDown) {
        int64_t i_layer = s.i_ffn_down;
        const int64_t n_layer = s.model.n_layers;
        if (s.model.n_experts > 1) {
            // Experts' tensors come in any order, so the layer is read from the name.
            i_layer = layer_of(tensor.name);
            if (i_layer < 0 || i_layer >= n_layer)
                throw Error(fmt::format("quantize: tensor {} is not in a layer 0..{}", tensor.name, n_layer - 1));
        }
        if (ft == MostlyQ4_K_M || ft == MostlyQ5_K_M) {
            if (use_more_bits(i_layer, n_layer)) t = TensorType::Q6_K;
        } else if (ft == MostlyQ4_K_S && i_layer < n_layer / 8) {
            t = TensorType::Q5_K;
        }
        ++s.i_ffn_down;
        return t;
    }
    if (cat == Category::AttnOutput) {
        if (eight_experts && (ft == MostlyQ4_K_S || ft == MostlyQ4_K_M)) t = TensorType::Q5_K;
        return t;
    }
    if (cat == Category::AttnQkv) {
        if (ft == MostlyQ4_K_M) return TensorType::Q5_K;
        if (ft == MostlyQ5_K_M) return TensorType::Q6_K;
    }
    return t;
}

// llama.cpp's tensor_type_fallback: a row length the type's blocks do not divide.
TensorType fallback(const MixTensor& tensor, TensorType t) {
    const int64_t cols = tensor.shape.back();
    if (cols % type_traits(t).block_size == 0) return t;
    TensorType f = TensorType::F16;
    switch (t) {
        case TensorType::Q4_K: f = TensorType::Q5_0; break;
        case TensorType::Q5_K: f = TensorType::Q5_1; break;
        case TensorType::Q6_K: f = TensorType::Q8_0; break;
        case TensorType::Q2_K:
        case TensorType::Q3_K: f = TensorType::Q4_0; break;
        case TensorType::IQ4_XS: f = TensorType::IQ4_NL; break;
        default: break;  // Q8_0, Q4_0, ...: llama.cpp keeps such a tensor in F16
    }
    return cols % type_traits(f).block_size == 0 ? f : TensorType::F16;
}

}  // namespace

std::span<const FileTypeInfo> all_file_types() {
    return kFileTypes;
}

const FileTypeInfo& file_type_info(FileType type) {
    for (const auto& f : kFileTypes)
        if (f.type == type) return f;
    throw Error(fmt::format("unknown file type {}", static_cast<uint32_t>(type)));
}

std::optional<FileType> file_type_from_name(std::string_view name) {
    for (const auto& f : kFileTypes)
        if (iequals(f.name, name)) return f.type;
    if (iequals(name, "q4_k")) return MostlyQ4_K_M;
    if (iequals(name, "q5_k")) return MostlyQ5_K_M;
    if (iequals(name, "mxfp4")) return MostlyMXFP4Moe;
    return std::nullopt;
}

std::string file_type_names() {
    std::string out;
    for (const auto& f : kFileTypes) {
        if (!out.empty()) out += ", ";
        for (char c : f.name) out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    return out;
}

std::vector<TensorType> plan_tensor_types(FileType ftype, const MixModel& model, std::span<const MixTensor> tensors) {
    const TensorType default_type = file_type_info(ftype).default_type;
    MixState s{ftype, model};
    for (const MixTensor& t : tensors) {
        const Category c = category_of(t.name);
        if (c == Category::Output) s.tied_embeddings = false;
        if (is_attn_v_like(c)) ++s.n_attention_wv;
    }
    // llama.cpp visits tensors in its loader's order (weight_name_comparer): tensors outside the
    // layers first, then layer by layer, by name within a layer. The attn_v counter depends on it.
    std::vector<size_t> order(tensors.size());
    std::iota(order.begin(), order.end(), size_t{0});
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
        const int la = layer_of(tensors[a].name), lb = layer_of(tensors[b].name);
        if (la != lb) return la < lb;
        return tensors[a].name < tensors[b].name;
    });

    std::vector<TensorType> types(tensors.size());
    for (const size_t i : order) {
        const MixTensor& t = tensors[i];
        if (t.shape.empty() || !allows_quantization(t)) {
            types[i] = t.type;
            continue;
        }
        TensorType type = default_type;
        if (is_quantized(default_type)) type = fallback(t, mix_rule(s, default_type, t, category_of(t.name)));
        types[i] = type;
    }
    return types;
}

}  // namespace hymoe
