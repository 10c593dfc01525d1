// A model file opened read-only: GGUF, or safetensors (one file, a sharded directory, or a
// Hugging Face model directory). Both readers produce this same shape, so nothing above
// format/ knows which format a model came from.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "format/metadata.hpp"
#include "format/tensor_type.hpp"
#include "util/mapped_file.hpp"

namespace hymoe {

struct TensorView {
    std::string name;
    TensorType type = TensorType::F32;
    // Row-major, outermost first, like numpy and torch: a GGUF tensor with ggml
    // ne = {n_embd, n_ff, n_expert} has shape {n_expert, n_ff, n_embd}.
    std::vector<int64_t> shape;
    const std::byte* data = nullptr;  // into the mapped file; valid while the ModelFile lives
    uint64_t nbytes = 0;
    uint32_t file_index = 0;   // which of ModelFile::files() holds the data
    uint64_t file_offset = 0;  // absolute byte offset of the data in that file

    uint64_t n_elements() const;
    // ggml's ne[i]: the i-th dimension counted from the innermost (ne(0) is the row length).
    int64_t ne(size_t i) const { return i < shape.size() ? shape[shape.size() - 1 - i] : 1; }
};

enum class FileFormat { Gguf, Safetensors };
std::string_view format_name(FileFormat format);

struct GgufDetails {
    uint32_t version = 0;
    uint64_t alignment = 0;
    uint64_t data_offset = 0;  // absolute offset of the tensor data section
};

class ModelFile {
public:
    ModelFile(FileFormat format, std::string path, std::vector<MappedFile> files, Metadata metadata,
              std::vector<TensorView> tensors);
    ModelFile(ModelFile&&) noexcept = default;
    ModelFile& operator=(ModelFile&&) noexcept = default;

    FileFormat format() const { return format_; }
    // What the user opened: the .gguf / .safetensors file or the model directory.
    const std::string& path() const { return path_; }
    // The directory holding the model's files (for config.json, tokenizer.json, ...).
    std::string directory() const;
    const Metadata& metadata() const { return metadata_; }
    // In file order (GGUF) or shard-then-offset order (safetensors).
    std::span<const TensorView> tensors() const { return tensors_; }
    const TensorView* find(std::string_view name) const;
    // Paths of the mapped files, indexed by TensorView::file_index.
    std::vector<std::string> file_paths() const;
    uint64_t total_file_bytes() const;

    // Where bytes [p, p + n) lie in the mapped files: (file index, absolute offset), or nullopt
    // when they are not wholly inside one mapping (a converted copy held in memory).
    struct Location {
        uint32_t file_index = 0;
        uint64_t offset = 0;
    };
    std::optional<Location> locate(const std::byte* p, uint64_t n) const;

    const GgufDetails& gguf() const { return gguf_; }
    void set_gguf_details(const GgufDetails& d) { gguf_ = d; }

private:
    FileFormat format_;
    std::string path_;
    std::vector<MappedFile> files_;
    Metadata metadata_;
    std::vector<TensorView> tensors_;
    std::unordered_map<std::string, size_t> index_;
    GgufDetails gguf_;
};

// Opens any supported model: a .gguf file, a .safetensors file, or a directory holding
// model.safetensors, model.safetensors.index.json (+ shards), or exactly one .gguf file.
// Throws hymoe::Error naming the path and what was wrong.
ModelFile open_model_file(const std::string& path);

}  // namespace hymoe
