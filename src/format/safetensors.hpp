// safetensors reader: https://github.com/huggingface/safetensors (format section).
//
//   u64 N (little-endian) | N bytes of JSON header | data
//   header: {"__metadata__": {str: str}, NAME: {"dtype": "BF16", "shape": [..],
//            "data_offsets": [begin, end]}, ...}, offsets relative to the data start
//
// A model is one file, a sharded set listed by model.safetensors.index.json
// ({"weight_map": {tensor: shard file}}), or a directory holding either; config.json beside
// it becomes the metadata (nested keys flattened with '.').
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "format/metadata.hpp"
#include "format/model_file.hpp"

namespace hymoe {

struct SafetensorsContents {
    std::vector<std::pair<std::string, std::string>> header_metadata;  // "__metadata__"
    std::vector<TensorView> tensors;  // sorted by data offset; data points into the bytes
};

// Parses one safetensors file held in memory. `source` names it in error messages.
SafetensorsContents parse_safetensors(std::span<const std::byte> bytes, std::string_view source);

// Flattens a JSON document (config.json) into metadata: objects become dotted keys, numbers
// i64/u64/f64, arrays MetaArray. Throws hymoe::Error naming `source` on malformed JSON.
Metadata metadata_from_json(std::string_view json_text, std::string_view source);

// `path` is a .safetensors file, a model.safetensors.index.json, or a directory.
ModelFile read_safetensors(const std::string& path);

}  // namespace hymoe
