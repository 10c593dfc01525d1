#include "hymoe/inspect.hpp"

#include <string>

#include "format/model_file.hpp"
#include "model/expert_split.hpp"
#include "tokenizer/summary.hpp"

namespace hymoe {

namespace {

bool starts_with(std::string_view s, std::string_view prefix) {
    return s.substr(0, prefix.size()) == prefix;
}

std::string architecture_of(const ModelFile& model) {
    const Metadata& meta = model.metadata();
    if (const auto arch = meta.get_string("general.architecture")) return std::string(*arch);
    if (const MetaArray* archs = meta.get_array("architectures"); archs && !archs->items.empty()) {
        if (const std::string* first = archs->items.front().as_string()) return *first;
    }
    if (const auto type = meta.get_string("model_type")) return std::string(*type);
    return "";
}

// GGUF: the general.* keys and the architecture's own keys ("qwen3moe.*"); tokenizer keys are
// summarized separately. safetensors: config.json.
bool is_hyperparameter(const ModelFile& model, std::string_view key, std::string_view arch) {
    switch (model.format()) {
        case FileFormat::Gguf:
            if (key == "general.architecture" || key == "general.name") return false;
            return starts_with(key, "general.") || (!arch.empty() && starts_with(key, std::string(arch) + "."));
        case FileFormat::Safetensors: return !starts_with(key, "safetensors.");
    }
    return false;
}

}  // namespace

ModelInfo inspect_model(const std::string& path) {
    const ModelFile model = open_model_file(path);
    const Metadata& meta = model.metadata();

    ModelInfo info;
    info.path = model.path();
    info.format = std::string(format_name(model.format()));
    info.files = model.file_paths();
    info.file_bytes = model.total_file_bytes();
    if (model.format() == FileFormat::Gguf) {
        info.gguf_version = model.gguf().version;
        info.gguf_alignment = model.gguf().alignment;
    }
    info.architecture = architecture_of(model);
    info.name = std::string(meta.get_string("general.name").value_or(meta.get_string("_name_or_path").value_or("")));
    for (const auto& [key, value] : meta.entries()) {
        if (is_hyperparameter(model, key, info.architecture))
            info.hyperparameters.push_back({key, value.to_display(), value.to_json()});
    }
    info.tokenizer = summarize_tokenizer(model);

    info.tensors.reserve(model.tensors().size());
    for (const TensorView& t : model.tensors()) {
        const TensorRole role = classify_tensor(t.name);
        info.tensors.push_back({t.name, std::string(type_name(t.type)), t.shape, t.nbytes, t.file_index, t.file_offset,
                                role.layer, role.is_expert});
        info.tensor_bytes += t.nbytes;
    }
    info.experts = compute_expert_split(model.tensors());
    return info;
}

}  // namespace hymoe
