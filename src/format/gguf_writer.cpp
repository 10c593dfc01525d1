#include "format/gguf_writer.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include <fmt/format.h>

#include "hymoe/error.hpp"
#include "util/checked.hpp"

namespace hymoe {

namespace {

class ByteSink {
public:
    explicit ByteSink(std::ofstream& out) : out_(out) {}
    template <typename T>
    void put(T v) {
        char b[sizeof(T)];
        std::memcpy(b, &v, sizeof(T));
        out_.write(b, sizeof(T));
        pos_ += sizeof(T);
    }
    void put_string(const std::string& s) {
        put<uint64_t>(s.size());
        out_.write(s.data(), static_cast<std::streamsize>(s.size()));
        pos_ += s.size();
    }
    void put_bytes(std::span<const std::byte> b) {
        out_.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
        pos_ += b.size();
    }
    void pad_to(uint64_t alignment) {
        while (pos_ % alignment != 0) put<uint8_t>(0);
    }
    uint64_t pos() const { return pos_; }

private:
    std::ofstream& out_;
    uint64_t pos_ = 0;
};

void put_value(ByteSink& sink, const MetaValue& v) {
    switch (v.type()) {
        case MetaType::U8: sink.put(static_cast<uint8_t>(*v.as_u64())); break;
        case MetaType::I8: sink.put(static_cast<int8_t>(*v.as_i64())); break;
        case MetaType::U16: sink.put(static_cast<uint16_t>(*v.as_u64())); break;
        case MetaType::I16: sink.put(static_cast<int16_t>(*v.as_i64())); break;
        case MetaType::U32: sink.put(static_cast<uint32_t>(*v.as_u64())); break;
        case MetaType::I32: sink.put(static_cast<int32_t>(*v.as_i64())); break;
        case MetaType::U64: sink.put(*v.as_u64()); break;
        case MetaType::I64: sink.put(*v.as_i64()); break;
        case MetaType::F32: sink.put(static_cast<float>(*v.as_f64())); break;
        case MetaType::F64: sink.put(*v.as_f64()); break;
        case MetaType::Bool: sink.put(static_cast<uint8_t>(*v.as_bool() ? 1 : 0)); break;
        case MetaType::String: sink.put_string(*v.as_string()); break;
        case MetaType::Array: {
            const MetaArray& arr = *v.as_array();
            sink.put(static_cast<uint32_t>(arr.element_type));
            sink.put<uint64_t>(arr.items.size());
            for (const MetaValue& item : arr.items) put_value(sink, item);
            break;
        }
    }
}

}  // namespace

GgufWriter::GgufWriter(uint32_t alignment) : alignment_(alignment) {
    if (alignment == 0 || (alignment & (alignment - 1)) != 0) {
        throw Error(fmt::format("GGUF alignment must be a power of two, got {}", alignment));
    }
    if (alignment != 32) metadata_.add("general.alignment", MetaValue::unsigned_int(MetaType::U32, alignment));
}

void GgufWriter::add_metadata(std::string key, MetaValue value) {
    if (!metadata_.add(key, std::move(value))) throw Error(fmt::format("GGUF writer: duplicate key '{}'", key));
}

void GgufWriter::add_tensor(std::string name, TensorType type, std::vector<int64_t> shape) {
    const TypeTraits& traits = type_traits(type);
    if (!traits.in_gguf || traits.status == TypeStatus::Removed) {
        throw Error(fmt::format("GGUF writer: tensor '{}': type {} cannot be stored in GGUF", name, traits.name));
    }
    if (shape.size() > 4) throw Error(fmt::format("GGUF writer: tensor '{}' has more than 4 dimensions", name));
    std::optional<uint64_t> nbytes = row_bytes(type, shape.empty() ? 1 : static_cast<uint64_t>(shape.back()));
    if (!nbytes) {
        throw Error(fmt::format("GGUF writer: tensor '{}': row length {} is not a multiple of the {} block size {}",
                                name, shape.back(), traits.name, traits.block_size));
    }
    for (size_t i = 0; i + 1 < shape.size() && nbytes; ++i)
        nbytes = checked_mul(*nbytes, static_cast<uint64_t>(shape[i]));
    if (!nbytes) throw Error(fmt::format("GGUF writer: tensor '{}' is too large", name));
    const uint64_t offset = *checked_align_up(data_bytes_, alignment_);
    tensors_.push_back({std::move(name), type, std::move(shape), *nbytes, offset});
    data_bytes_ = offset + *nbytes;
}

GgufWriter::Stream::Stream(const GgufWriter& writer, std::string path)
    : writer_(&writer), path_(std::move(path)), tmp_(path_ + ".partial") {
    out_.open(tmp_, std::ios::binary | std::ios::trunc);
    if (!out_) throw Error(fmt::format("{}: cannot create", tmp_));
    ByteSink sink(out_);
    sink.put<uint32_t>(0x46554747);  // "GGUF"
    sink.put<uint32_t>(3);
    sink.put<uint64_t>(writer.tensors_.size());
    sink.put<uint64_t>(writer.metadata_.size());
    for (const auto& [key, value] : writer.metadata_.entries()) {
        sink.put_string(key);
        sink.put(static_cast<uint32_t>(value.type()));
        put_value(sink, value);
    }
    for (const PendingTensor& t : writer.tensors_) {
        sink.put_string(t.name);
        sink.put<uint32_t>(static_cast<uint32_t>(t.shape.size()));
        for (auto d = t.shape.rbegin(); d != t.shape.rend(); ++d) sink.put<uint64_t>(static_cast<uint64_t>(*d));
        sink.put(static_cast<uint32_t>(t.type));
        sink.put<uint64_t>(t.offset);
    }
    sink.pad_to(writer.alignment_);
    for (const PendingTensor& t : writer.tensors_) total_ += t.nbytes;
    pad_to_next_tensor();
}

GgufWriter::Stream::Stream(Stream&& other) noexcept
    : writer_(other.writer_),
      path_(std::move(other.path_)),
      tmp_(std::move(other.tmp_)),
      out_(std::move(other.out_)),
      written_(other.written_),
      total_(other.total_),
      pos_(other.pos_),
      tensor_(other.tensor_),
      in_tensor_(other.in_tensor_),
      done_(other.done_) {
    other.done_ = true;  // the moved-from stream owns no file
}

GgufWriter::Stream::~Stream() {
    if (done_) return;
    out_.close();
    std::error_code ec;
    std::filesystem::remove(tmp_, ec);
}

// Skips finished (and empty) tensors and writes the zero padding up to the next one's offset.
void GgufWriter::Stream::pad_to_next_tensor() {
    const auto& ts = writer_->tensors_;
    while (tensor_ < ts.size() && in_tensor_ == ts[tensor_].nbytes) {
        ++tensor_;
        in_tensor_ = 0;
    }
    if (tensor_ >= ts.size()) return;
    static constexpr char kZeros[64] = {};
    while (pos_ < ts[tensor_].offset) {
        const uint64_t n = std::min<uint64_t>(ts[tensor_].offset - pos_, sizeof(kZeros));
        out_.write(kZeros, static_cast<std::streamsize>(n));
        pos_ += n;
    }
}

void GgufWriter::Stream::append(std::span<const std::byte> bytes) {
    if (done_) throw Error(fmt::format("{}: GGUF stream already finished", path_));
    if (bytes.size() > remaining())
        throw Error(fmt::format("{}: {} bytes appended past the end of the tensor data ({} expected)", path_,
                                written_ + bytes.size(), total_));
    const auto& ts = writer_->tensors_;
    while (!bytes.empty()) {
        const uint64_t n = std::min<uint64_t>(bytes.size(), ts[tensor_].nbytes - in_tensor_);
        out_.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(n));
        bytes = bytes.subspan(n);
        pos_ += n;
        in_tensor_ += n;
        written_ += n;
        pad_to_next_tensor();
    }
    if (!out_) throw Error(fmt::format("{}: write failed (disk full?)", tmp_));
}

void GgufWriter::Stream::finish() {
    if (done_) throw Error(fmt::format("{}: GGUF stream already finished", path_));
    if (written_ != total_)
        throw Error(fmt::format("{}: only {} of {} tensor bytes were written", path_, written_, total_));
    out_.flush();
    if (!out_) throw Error(fmt::format("{}: write failed (disk full?)", tmp_));
    out_.close();
    std::error_code ec;
    std::filesystem::rename(tmp_, path_, ec);
    if (ec) throw Error(fmt::format("{}: cannot rename to {}: {}", tmp_, path_, ec.message()));
    done_ = true;
}

GgufWriter::Stream GgufWriter::open(const std::string& path) const {
    return Stream(*this, path);
}

void GgufWriter::write(const std::string& path, const FillFn& fill) const {
    Stream stream = open(path);
    std::vector<std::byte> buffer;
    for (size_t i = 0; i < tensors_.size(); ++i) {
        buffer.assign(tensors_[i].nbytes, std::byte{0});
        fill(i, buffer);
        stream.append(buffer);
    }
    stream.finish();
}

}  // namespace hymoe
