// Writes GGUF version 3 files. Tensor data is streamed: either one tensor at a time through a
// callback (write), or in pieces of any size through a Stream (open), so a model larger than
// RAM can be written with a few chunks' worth of memory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <fstream>
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
    uint64_t data_bytes() const { return data_bytes_; }  // the data section, alignment padding included

    // An open output file whose header is written: append the tensors' bytes in add order, in
    // pieces of any size (a piece may span tensors), then finish(). The file is written as
    // `path.partial` and renamed by finish(); a Stream destroyed before finish() removes it.
    class Stream {
    public:
        Stream(Stream&&) noexcept;
        Stream& operator=(Stream&&) = delete;
        ~Stream();

        void append(std::span<const std::byte> bytes);
        uint64_t remaining() const { return total_ - written_; }  // tensor bytes still expected
        // Checks that every tensor byte came, flushes and renames. Throws hymoe::Error naming the path.
        void finish();

    private:
        friend class GgufWriter;
        Stream(const GgufWriter& writer, std::string path);
        void pad_to_next_tensor();

        const GgufWriter* writer_;
        std::string path_, tmp_;
        std::ofstream out_;
        uint64_t written_ = 0;  // tensor bytes appended so far
        uint64_t total_ = 0;    // sum of tensor bytes
        uint64_t pos_ = 0;      // position in the data section
        size_t tensor_ = 0;     // the tensor being written
        uint64_t in_tensor_ = 0;
        bool done_ = false;
    };

    // Creates `path.partial` and writes the header. Throws hymoe::Error naming the path.
    Stream open(const std::string& path) const;

    // fill(index, buffer): write tensor `index`'s data (buffer.size() bytes). Called in add order.
    using FillFn = std::function<void(size_t index, std::span<std::byte> data)>;
    // Writes to `path` (through a temporary file renamed at the end, so a failed write leaves no
    // half file behind). Holds one tensor in memory at a time. Throws hymoe::Error naming the
    // path on I/O failure.
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
