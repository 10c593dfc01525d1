#include "format/model_file.hpp"

#include <filesystem>
#include <system_error>

#include <fmt/format.h>

#include "format/gguf.hpp"
#include "format/safetensors.hpp"
#include "hymoe/error.hpp"

namespace hymoe {

namespace fs = std::filesystem;

uint64_t TensorView::n_elements() const {
    uint64_t n = 1;
    for (int64_t d : shape) n *= static_cast<uint64_t>(d);  // readers checked for overflow
    return n;
}

std::string_view format_name(FileFormat format) {
    switch (format) {
        case FileFormat::Gguf: return "gguf";
        case FileFormat::Safetensors: return "safetensors";
    }
    return "?";
}

ModelFile::ModelFile(FileFormat format, std::string path, std::vector<MappedFile> files, Metadata metadata,
                     std::vector<TensorView> tensors)
    : format_(format),
      path_(std::move(path)),
      files_(std::move(files)),
      metadata_(std::move(metadata)),
      tensors_(std::move(tensors)) {
    index_.reserve(tensors_.size());
    for (size_t i = 0; i < tensors_.size(); ++i) index_.emplace(tensors_[i].name, i);
}

std::string ModelFile::directory() const {
    std::error_code ec;
    if (fs::is_directory(path_, ec)) return path_;
    auto parent = fs::path(path_).parent_path();
    return parent.empty() ? std::string(".") : parent.string();
}

const TensorView* ModelFile::find(std::string_view name) const {
    auto it = index_.find(std::string(name));
    return it == index_.end() ? nullptr : &tensors_[it->second];
}

std::vector<std::string> ModelFile::file_paths() const {
    std::vector<std::string> out;
    out.reserve(files_.size());
    for (const auto& f : files_) out.push_back(f.path());
    return out;
}

std::optional<ModelFile::Location> ModelFile::locate(const std::byte* p, uint64_t n) const {
    const auto addr = reinterpret_cast<uintptr_t>(p);
    for (size_t i = 0; i < files_.size(); ++i) {
        const auto bytes = files_[i].bytes();
        const auto base = reinterpret_cast<uintptr_t>(bytes.data());
        if (bytes.empty() || addr < base || addr - base > bytes.size() || n > bytes.size() - (addr - base)) continue;
        return Location{static_cast<uint32_t>(i), static_cast<uint64_t>(addr - base)};
    }
    return std::nullopt;
}

uint64_t ModelFile::total_file_bytes() const {
    uint64_t n = 0;
    for (const auto& f : files_) n += f.size();
    return n;
}

ModelFile open_model_file(const std::string& path) {
    std::error_code ec;
    const auto status = fs::status(path, ec);
    if (ec || !fs::exists(status)) throw Error(fmt::format("{}: no such file or directory", path));

    if (fs::is_directory(status)) {
        // A directory with safetensors weights (or their index) is read_safetensors' to resolve;
        // otherwise it must hold exactly one .gguf.
        if (fs::exists(fs::path(path) / "model.safetensors.index.json", ec)) return read_safetensors(path);
        std::vector<fs::path> ggufs;
        for (const auto& entry : fs::directory_iterator(path, ec)) {
            const auto name = entry.path().filename().string();
            if (name.ends_with(".safetensors")) return read_safetensors(path);
            if (name.ends_with(".gguf")) ggufs.push_back(entry.path());
        }
        if (ggufs.size() == 1) return read_gguf(ggufs.front().string());
        if (ggufs.size() > 1) {
            throw Error(fmt::format("{}: directory holds {} .gguf files; name the one to open", path, ggufs.size()));
        }
        throw Error(fmt::format(
            "{}: directory has no model weights (no .gguf file, model.safetensors or model.safetensors.index.json)",
            path));
    }
    if (path.ends_with(".safetensors") || path.ends_with(".safetensors.index.json")) return read_safetensors(path);
    // Anything else is read as GGUF; the magic check gives a clear error for other files.
    return read_gguf(path);
}

}  // namespace hymoe
