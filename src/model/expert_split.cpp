#include "model/expert_split.hpp"

#include <algorithm>
#include <charconv>
#include <map>
#include <string>

namespace hymoe {

namespace {

// Parses the decimal number at the start of s; nullopt if none.
std::optional<int> leading_int(std::string_view s, size_t* consumed) {
    int v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || end == s.data()) return std::nullopt;
    *consumed = static_cast<size_t>(end - s.data());
    return v;
}

// The layer index after "blk." (GGUF) or "layers." / "h." (HF), if the name has one.
int layer_of(std::string_view name) {
    for (std::string_view prefix : {"blk.", "layers.", "h."}) {
        for (size_t at = name.find(prefix); at != std::string_view::npos; at = name.find(prefix, at + 1)) {
            if (at != 0 && name[at - 1] != '.') continue;  // must be a whole path component
            size_t n = 0;
            auto v = leading_int(name.substr(at + prefix.size()), &n);
            if (v && at + prefix.size() + n < name.size() && name[at + prefix.size() + n] == '.') return *v;
        }
    }
    return -1;
}

}  // namespace

TensorRole classify_tensor(std::string_view name) {
    TensorRole role;
    role.layer = layer_of(name);
    if (role.layer < 0) return role;

    // GGUF: ffn_{gate,up,down,gate_up}_exps.{weight,bias,scale}; shared experts are "_shexp".
    if (name.find("_exps.") != std::string_view::npos) {
        role.is_expert = true;
        return role;
    }
    // HF: ".experts." then an index (one tensor per expert) or a name (stacked). The leading dot
    // keeps "shared_experts." (DeepSeek) and "shared_expert." (Qwen2-MoE) out.
    const size_t at = name.find(".experts.");
    if (at != std::string_view::npos) {
        role.is_expert = true;
        size_t n = 0;
        if (auto e = leading_int(name.substr(at + 9), &n)) role.expert = *e;
    }
    return role;
}

ExpertSplit compute_expert_split(std::span<const TensorView> tensors) {
    struct LayerAcc {
        uint64_t bytes = 0;
        uint32_t stacked_experts = 0;  // outermost dim of stacked expert tensors
        int max_expert = -1;           // highest per-expert index seen
    };
    std::map<int, LayerAcc> layers;
    std::map<std::string, TypeBytes> expert_types;
    std::map<std::string, TypeBytes> other_types;
    ExpertSplit split;

    for (const TensorView& t : tensors) {
        const TensorRole role = classify_tensor(t.name);
        const std::string type(type_name(t.type));
        auto& by_type = role.is_expert ? expert_types[type] : other_types[type];
        by_type.type = type;
        by_type.n_tensors += 1;
        by_type.bytes += t.nbytes;
        if (!role.is_expert) {
            split.non_expert_bytes += t.nbytes;
            continue;
        }
        split.expert_bytes += t.nbytes;
        LayerAcc& acc = layers[role.layer];
        acc.bytes += t.nbytes;
        if (role.expert >= 0) {
            acc.max_expert = std::max(acc.max_expert, role.expert);
        } else if (!t.shape.empty()) {
            acc.stacked_experts = std::max(acc.stacked_experts, static_cast<uint32_t>(t.shape.front()));
        }
    }
    for (const auto& [layer, acc] : layers) {
        LayerExperts le;
        le.layer = layer;
        le.n_experts = std::max(acc.stacked_experts, static_cast<uint32_t>(acc.max_expert + 1));
        le.bytes = acc.bytes;
        le.bytes_per_expert = le.n_experts > 0 ? acc.bytes / le.n_experts : 0;
        split.layers.push_back(le);
    }
    for (auto& [_, tb] : expert_types) split.expert_by_type.push_back(tb);
    for (auto& [_, tb] : other_types) split.non_expert_by_type.push_back(tb);
    return split;
}

}  // namespace hymoe
