// Re-encoding a GGUF model in another file type, as llama-quantize does: the metadata is copied,
// general.file_type is set, and every tensor is converted to the type quant_mix.hpp chooses.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "format/tensor_type.hpp"
#include "model/quant_mix.hpp"

namespace hymoe {

struct QuantizeOptions {
    std::string input;   // a GGUF model
    std::string output;  // the GGUF file to write
    FileType ftype = FileType::MostlyQ8_0;
    // Converting a tensor that is already quantized (to another quantized type) loses more than
    // quantizing its original once; llama-quantize refuses unless asked, and so does this.
    bool allow_requantize = false;
    int n_threads = 0;  // 0: the hardware's
};

struct QuantizedTensor {
    std::string name;
    std::vector<int64_t> shape;  // row-major
    TensorType from = TensorType::F32;
    TensorType to = TensorType::F32;
    uint64_t bytes_in = 0;
    uint64_t bytes_out = 0;
};

struct QuantizeResult {
    std::vector<QuantizedTensor> tensors;  // in file order
    uint64_t file_bytes = 0;
};

// Throws hymoe::Error naming the file or tensor when the input is not a GGUF model, a tensor
// cannot be converted, or the output cannot be written. `on_tensor` (optional) is called after
// each tensor is written.
QuantizeResult quantize_model(const QuantizeOptions& options,
                              const std::function<void(const QuantizedTensor&)>& on_tensor = {});

}  // namespace hymoe
