// Which tensor type each tensor of a model gets in a quantized file: llama.cpp's file types
// ("Q4_K_M", "Q8_0", ...) and its per-tensor rules (llama-quant.cpp, llama_tensor_get_type),
// so `hymoe quantize` and `hymoe synth` write the same mixes llama-quantize writes.
//
// The rules are llama.cpp's for the file types hymoe can write: norms, biases and routers stay
// as they are; output.weight (or a tied token_embd) gets Q6_K; attn_v and some ffn_down layers
// get more bits in the _M mixes; 8-expert models (Mixtral) get Q8_0 attn_k/attn_v and Q5_K
// attn_output; a row length that is not a multiple of the type's block falls back (Q4_K ->
// Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0, then F16).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "format/tensor_type.hpp"

namespace hymoe {

// llama.cpp's enum llama_ftype values (general.file_type), for the types hymoe writes.
enum class FileType : uint32_t {
    AllF32 = 0,
    MostlyF16 = 1,
    MostlyQ4_0 = 2,
    MostlyQ4_1 = 3,
    MostlyQ8_0 = 7,
    MostlyQ5_0 = 8,
    MostlyQ5_1 = 9,
    MostlyQ4_K_S = 14,
    MostlyQ4_K_M = 15,
    MostlyQ5_K_S = 16,
    MostlyQ5_K_M = 17,
    MostlyQ6_K = 18,
    MostlyBF16 = 32,
    MostlyMXFP4Moe = 38,
};

struct FileTypeInfo {
    FileType type;
    std::string_view name;     // as llama-quantize names it: "Q4_K_M"
    TensorType default_type;   // what most matrices get
    std::string_view summary;  // one line for --help
};

std::span<const FileTypeInfo> all_file_types();
const FileTypeInfo& file_type_info(FileType type);
// Case-insensitive: "q4_k_m", "Q8_0", "mxfp4_moe"; also "q4_k" / "q5_k" for the _M mixes and
// "mxfp4" for MXFP4_MOE. nullopt for anything else.
std::optional<FileType> file_type_from_name(std::string_view name);
// "q8_0, q4_0, ..." for error messages.
std::string file_type_names();

// A tensor as the mix sees it. shape: row-major, the row length last (TensorView's order).
struct MixTensor {
    std::string name;
    std::vector<int64_t> shape;
    TensorType type = TensorType::F32;  // its type in the input
};

// What the rules need to know of the model (llama.cpp's hparams).
struct MixModel {
    int64_t n_layers = 0;   // block_count
    int64_t n_experts = 0;  // expert_count (0 for a dense model)
};

// The type of every tensor (same order as `tensors`) in a `ftype` file. Tensors that are not
// quantized keep their type. Throws hymoe::Error when a tensor's name carries a layer number the
// model does not have.
std::vector<TensorType> plan_tensor_types(FileType ftype, const MixModel& model, std::span<const MixTensor> tensors);

}  // namespace hymoe
