// GGUF reader, versions 2 and 3 (little-endian). Spec: ggml/docs/gguf.md.
//
//   magic "GGUF" | u32 version | u64 n_tensors | u64 n_kv
//   n_kv x (string key, u32 value_type, value)
//   n_tensors x (string name, u32 n_dims, u64 ne[n_dims], u32 type, u64 offset)
//   padding to general.alignment (default 32)
//   tensor data; each tensor's offset is relative to the start of this section
//
// Every count, length, dimension and offset is checked against the bytes that remain before
// it is used; a bad file throws hymoe::Error naming the file, the byte offset and the problem.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "format/metadata.hpp"
#include "format/model_file.hpp"

namespace hymoe {

inline constexpr uint64_t kGgufDefaultAlignment = 32;

struct GgufContents {
    GgufDetails details;
    Metadata metadata;
    std::vector<TensorView> tensors;  // data points into the parsed bytes; file_index 0
};

// Parses a whole GGUF file held in memory. `source` names it in error messages.
GgufContents parse_gguf(std::span<const std::byte> bytes, std::string_view source);

// Maps the file read-only and parses it.
ModelFile read_gguf(const std::string& path);

}  // namespace hymoe
