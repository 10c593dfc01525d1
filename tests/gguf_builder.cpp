#include "gguf_builder.hpp"

#include <algorithm>
#include <bit>
#include <cassert>
#include <utility>

namespace hymoe::test {

namespace {

// Little-endian whatever the host is, because that is what GGUF v2/v3 files are.
void put_le(std::vector<std::byte>& out, uint64_t v, size_t n_bytes) {
    for (size_t i = 0; i < n_bytes; ++i) out.push_back(static_cast<std::byte>((v >> (8 * i)) & 0xFF));
}

void patch_le(std::vector<std::byte>& out, size_t pos, uint64_t v, size_t n_bytes) {
    assert(pos + n_bytes <= out.size());
    for (size_t i = 0; i < n_bytes; ++i) out[pos + i] = static_cast<std::byte>((v >> (8 * i)) & 0xFF);
}

void put_bytes(std::vector<std::byte>& out, std::string_view s) {
    for (char c : s) out.push_back(static_cast<std::byte>(c));
}

void put_string(std::vector<std::byte>& out, std::string_view s) {
    put_le(out, s.size(), 8);
    put_bytes(out, s);
}

GgufValue scalar(uint32_t type, uint64_t bits, size_t n_bytes) {
    GgufValue v;
    v.type = type;
    put_le(v.body, bits, n_bytes);
    return v;
}

uint64_t round_up(uint64_t x, uint64_t align) {
    return align == 0 ? x : (x + align - 1) / align * align;
}

}  // namespace

GgufValue GgufValue::u8(uint8_t v) {
    return scalar(gguf_type::kU8, v, 1);
}
GgufValue GgufValue::i8(int8_t v) {
    return scalar(gguf_type::kI8, static_cast<uint8_t>(v), 1);
}
GgufValue GgufValue::u16(uint16_t v) {
    return scalar(gguf_type::kU16, v, 2);
}
GgufValue GgufValue::i16(int16_t v) {
    return scalar(gguf_type::kI16, static_cast<uint16_t>(v), 2);
}
GgufValue GgufValue::u32(uint32_t v) {
    return scalar(gguf_type::kU32, v, 4);
}
GgufValue GgufValue::i32(int32_t v) {
    return scalar(gguf_type::kI32, static_cast<uint32_t>(v), 4);
}
GgufValue GgufValue::f32(float v) {
    return scalar(gguf_type::kF32, std::bit_cast<uint32_t>(v), 4);
}
GgufValue GgufValue::boolean(bool v) {
    return scalar(gguf_type::kBool, v ? 1 : 0, 1);
}
GgufValue GgufValue::u64(uint64_t v) {
    return scalar(gguf_type::kU64, v, 8);
}
GgufValue GgufValue::i64(int64_t v) {
    return scalar(gguf_type::kI64, static_cast<uint64_t>(v), 8);
}
GgufValue GgufValue::f64(double v) {
    return scalar(gguf_type::kF64, std::bit_cast<uint64_t>(v), 8);
}

GgufValue GgufValue::str(std::string_view v) {
    GgufValue out;
    out.type = gguf_type::kString;
    put_string(out.body, v);
    return out;
}

GgufValue GgufValue::array(uint32_t element_type, std::span<const GgufValue> items) {
    GgufValue out;
    out.type = gguf_type::kArray;
    put_le(out.body, element_type, 4);
    put_le(out.body, items.size(), 8);
    for (const auto& item : items) out.body.insert(out.body.end(), item.body.begin(), item.body.end());
    return out;
}

GgufValue GgufValue::raw(uint32_t type, std::vector<std::byte> body) {
    GgufValue out;
    out.type = type;
    out.body = std::move(body);
    return out;
}

void GgufFile::patch_u8(size_t pos, uint8_t v) {
    patch_le(bytes, pos, v, 1);
}
void GgufFile::patch_u32(size_t pos, uint32_t v) {
    patch_le(bytes, pos, v, 4);
}
void GgufFile::patch_u64(size_t pos, uint64_t v) {
    patch_le(bytes, pos, v, 8);
}

std::vector<std::byte> GgufFile::prefix(size_t n) const {
    assert(n <= bytes.size());
    return {bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(n)};
}

std::byte gguf_pattern_byte(size_t tensor_index, uint64_t i) {
    // Different per tensor and never constant along a tensor, so a view shifted by a byte or
    // pointing at the wrong tensor reads different values.
    return static_cast<std::byte>((i * 7 + tensor_index * 61 + 1) & 0xFF);
}

GgufBuilder& GgufBuilder::magic(std::string_view four_bytes) {
    magic_ = std::string(four_bytes);
    return *this;
}

GgufBuilder& GgufBuilder::version(uint32_t v) {
    version_ = v;
    return *this;
}

GgufBuilder& GgufBuilder::kv(std::string key, GgufValue value) {
    kvs_.push_back({std::move(key), std::move(value)});
    return *this;
}

GgufBuilder& GgufBuilder::alignment(uint32_t a) {
    layout_alignment_ = a;
    return kv("general.alignment", GgufValue::u32(a));
}

GgufBuilder& GgufBuilder::layout_alignment(uint64_t a) {
    layout_alignment_ = a;
    return *this;
}

GgufBuilder& GgufBuilder::tensor(std::string name, std::vector<uint64_t> ne, uint32_t type_id, uint64_t nbytes) {
    tensors_.push_back({std::move(name), std::move(ne), type_id, nbytes, std::nullopt});
    return *this;
}

GgufBuilder& GgufBuilder::tensor_at(std::string name, std::vector<uint64_t> ne, uint32_t type_id, uint64_t nbytes,
                                    uint64_t offset) {
    tensors_.push_back({std::move(name), std::move(ne), type_id, nbytes, offset});
    return *this;
}

GgufBuilder& GgufBuilder::pad_empty_data_section(bool pad) {
    pad_empty_ = pad;
    return *this;
}

GgufBuilder& GgufBuilder::trailer(std::vector<std::byte> extra) {
    trailer_ = std::move(extra);
    return *this;
}

GgufFile GgufBuilder::build() const {
    GgufFile f;
    auto& out = f.bytes;
    f.alignment = layout_alignment_;

    put_bytes(out, magic_);
    // A magic of another length would move every later field; tests that want a short file truncate instead.
    assert(out.size() == GgufFile::pos_version);
    put_le(out, version_, 4);
    put_le(out, tensors_.size(), 8);
    put_le(out, kvs_.size(), 8);

    for (const auto& kv : kvs_) {
        GgufKvPos p;
        p.start = out.size();
        put_string(out, kv.key);
        p.key = p.start + 8;
        p.type = out.size();
        put_le(out, kv.value.type, 4);
        p.value = out.size();
        out.insert(out.end(), kv.value.body.begin(), kv.value.body.end());
        p.end = out.size();
        f.kvs.push_back(p);
    }

    // Offsets first, so the infos can be written in one pass.
    uint64_t next = 0;
    uint64_t data_size = 0;
    std::vector<uint64_t> offsets;
    for (const auto& t : tensors_) {
        const uint64_t off = t.offset ? *t.offset : round_up(next, layout_alignment_);
        offsets.push_back(off);
        next = off + t.nbytes;
        data_size = std::max(data_size, off + t.nbytes);
    }

    for (size_t i = 0; i < tensors_.size(); ++i) {
        const auto& t = tensors_[i];
        GgufTensorInfoPos p;
        p.start = out.size();
        put_string(out, t.name);
        p.name = p.start + 8;
        p.n_dims = out.size();
        put_le(out, t.ne.size(), 4);
        p.ne = out.size();
        for (uint64_t d : t.ne) put_le(out, d, 8);
        p.type = out.size();
        put_le(out, t.type_id, 4);
        p.offset = out.size();
        put_le(out, offsets[i], 8);
        p.end = out.size();
        p.data_offset = offsets[i];
        p.nbytes = t.nbytes;
        f.tensor_infos.push_back(p);
    }
    f.pos_infos_end = out.size();
    f.pos_data = static_cast<size_t>(round_up(out.size(), layout_alignment_));

    if (!tensors_.empty() || pad_empty_) {
        out.resize(f.pos_data + data_size, std::byte{0});
        for (size_t i = 0; i < tensors_.size(); ++i) {
            std::byte* data = out.data() + f.pos_data + offsets[i];
            for (uint64_t b = 0; b < tensors_[i].nbytes; ++b) data[b] = gguf_pattern_byte(i, b);
        }
    }
    out.insert(out.end(), trailer_.begin(), trailer_.end());
    return f;
}

}  // namespace hymoe::test
