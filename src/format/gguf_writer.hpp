// Writes GGUF version 3 files. Tensor data is produced one tensor at a time by a callback, so a
// model larger than RAM can be written with one tensor's worth of memory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "format/metadata.hpp"
#include "format/tensor_type.hpp"

namespace hymoe {

class GgufWriter {
public:
    explicit GgufWriter(uint32_t alignment = 32);

    void add_metadata(std::string key, MetaValue value);
    // shape is row-major (outermost first), as everywhere in hymoe; the file stores it reversed.
    // Throws hymoe::Error if the innermost dimension is not a whole number of blocks.
    void add_tensor(std::string name, TensorType type, std::vector<int64_t> shape);

    size_t n_tensors() const { return tensors_.size(); }
    uint64_t tensor_bytes(size_t index) const { return tensors_[index].nbytes; }

    // fill(index, buffer): write tensor `index`'s data (buffer.size() bytes). Called in add order.
    using FillFn = std::function<void(size_t index, std::span<std::byte> data)>;
    // Writes to `path` (through a temporary file renamed at the end, so a failed write leaves no
    // half file behind). Throws hymoe::Error naming the path on I/O failure.
    void write(const std::string& path, const FillFn& fill) const;

private:
    struct PendingTensor {
        std::string name;
        TensorType type;
        std::vector<int64_t> shape;
        uint64_t nbytes;
        uint64_t offset;  // in the data section
    };
    uint32_t alignment_;
    Metadata metadata_;
    std::vector<PendingTensor> tensors_;
    uint64_t data_bytes_ = 0;
};

}  // namespace hymoe
