// Which tensors are routed experts, and of which layer. Offloading moves routed-expert bytes;
// everything else (embeddings, attention, norms, routers, shared experts, lm_head) stays
// resident. Names follow GGUF (`blk.3.ffn_gate_exps.weight`, experts stacked along the
// outermost dimension) and Hugging Face (`model.layers.3.mlp.experts.7.gate_proj.weight`, one
// tensor per expert; or stacked, as gpt-oss's `mlp.experts.gate_up_proj_blocks`).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "format/model_file.hpp"
#include "hymoe/inspect.hpp"

namespace hymoe {

struct TensorRole {
    int layer = -1;          // block index, -1 outside the layers
    bool is_expert = false;  // a routed expert's tensor (not a shared expert, not the router)
    int expert = -1;         // for one-tensor-per-expert layouts; -1 when stacked
};

TensorRole classify_tensor(std::string_view name);

// Bytes of routed experts per layer and by type, and of everything else.
ExpertSplit compute_expert_split(std::span<const TensorView> tensors);

}  // namespace hymoe
