// A byte-level GGUF writer for tests, written from ggml/docs/gguf.md and not from the reader, so
// the two cannot share one misreading of the format. It writes exactly what it is told, files
// that are wrong on purpose included, and records where every field landed so a test can patch
// any field or cut the file at any boundary.
//
//   magic "GGUF" | u32 version | u64 n_tensors | u64 n_kv
//   n_kv x (u64 key_len, key, u32 value_type, value)
//   n_tensors x (u64 name_len, name, u32 n_dims, u64 ne[n_dims], u32 type, u64 offset)
//   padding to the alignment | tensor data (offsets relative to the start of this section)
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace hymoe::test {

// GGUF value-type ids (gguf.h `enum gguf_type`), spelled out here instead of taken from
// MetaType so that a wrong id in the reader cannot be hidden by the same wrong id in the test.
namespace gguf_type {
inline constexpr uint32_t kU8 = 0;
inline constexpr uint32_t kI8 = 1;
inline constexpr uint32_t kU16 = 2;
inline constexpr uint32_t kI16 = 3;
inline constexpr uint32_t kU32 = 4;
inline constexpr uint32_t kI32 = 5;
inline constexpr uint32_t kF32 = 6;
inline constexpr uint32_t kBool = 7;
inline constexpr uint32_t kString = 8;
inline constexpr uint32_t kArray = 9;
inline constexpr uint32_t kU64 = 10;
inline constexpr uint32_t kI64 = 11;
inline constexpr uint32_t kF64 = 12;
}  // namespace gguf_type

// One value, already encoded: its type id and the bytes that follow the type id in a key/value.
// For an array the body is (u32 element type, u64 count, the elements' bodies back to back), which
// is also how an array is written as an element of another array.
struct GgufValue {
    uint32_t type = gguf_type::kU8;
    std::vector<std::byte> body;

    static GgufValue u8(uint8_t v);
    static GgufValue i8(int8_t v);
    static GgufValue u16(uint16_t v);
    static GgufValue i16(int16_t v);
    static GgufValue u32(uint32_t v);
    static GgufValue i32(int32_t v);
    static GgufValue f32(float v);
    static GgufValue boolean(bool v);
    static GgufValue str(std::string_view v);
    static GgufValue u64(uint64_t v);
    static GgufValue i64(int64_t v);
    static GgufValue f64(double v);
    // The items' own type ids are not written (GGUF stores one element type per array); an item
    // whose type differs from `element_type` makes a malformed array, which tests may want.
    static GgufValue array(uint32_t element_type, std::span<const GgufValue> items);
    // Any type id followed by any bytes: unknown types, bool 2, hand-made bodies.
    static GgufValue raw(uint32_t type, std::vector<std::byte> body);
};

// Where a built file's fields are. All positions are byte offsets into GgufFile::bytes.
struct GgufKvPos {
    size_t start = 0;  // = the u64 key length
    size_t key = 0;    // the key bytes
    size_t type = 0;   // u32 value type
    size_t value = 0;  // the value body (string: u64 length; array: u32 element type, then u64 count)
    size_t end = 0;    // first byte after the value
};

struct GgufTensorInfoPos {
    size_t start = 0;          // = the u64 name length
    size_t name = 0;           // the name bytes
    size_t n_dims = 0;         // u32
    size_t ne = 0;             // ne[0]; ne[i] is at ne + 8 * i
    size_t type = 0;           // u32 type id
    size_t offset = 0;         // u64 offset relative to the data section
    size_t end = 0;            // first byte after the offset
    uint64_t data_offset = 0;  // the offset written, relative to the data section
    uint64_t nbytes = 0;       // bytes of data written for this tensor
};

struct GgufFile {
    std::vector<std::byte> bytes;

    static constexpr size_t pos_magic = 0;
    static constexpr size_t pos_version = 4;
    static constexpr size_t pos_n_tensors = 8;
    static constexpr size_t pos_n_kv = 16;
    std::vector<GgufKvPos> kvs;                   // in file order
    std::vector<GgufTensorInfoPos> tensor_infos;  // in file order
    size_t pos_infos_end = 0;                     // first byte after the last tensor info (= after the last kv if none)
    size_t pos_data = 0;     // start of the data section; may be >= bytes.size() for a file without tensors
    uint64_t alignment = 0;  // the alignment the data was laid out with

    void patch_u8(size_t pos, uint8_t v);
    void patch_u32(size_t pos, uint32_t v);
    void patch_u64(size_t pos, uint64_t v);
    std::span<const std::byte> span() const { return bytes; }
    // The first n bytes, copied so that reading past them is an out-of-bounds access ASan sees.
    std::vector<std::byte> prefix(size_t n) const;
};

// Byte i of the data of the tensor_index-th tensor, so a test can check a view points at the
// right bytes.
std::byte gguf_pattern_byte(size_t tensor_index, uint64_t i);

class GgufBuilder {
public:
    GgufBuilder& magic(std::string_view four_bytes);
    GgufBuilder& version(uint32_t v);
    GgufBuilder& kv(std::string key, GgufValue value);
    // Writes general.alignment (u32) here, in key order, and lays the data out with it.
    GgufBuilder& alignment(uint32_t a);
    // Lays the data out with `a` without writing a key, for files whose key and layout disagree.
    GgufBuilder& layout_alignment(uint64_t a);
    // Placed after the previous tensor's data at the next multiple of the layout alignment. nbytes
    // is not derived from ne and type: the builder knows no block sizes, the test says what to write.
    GgufBuilder& tensor(std::string name, std::vector<uint64_t> ne, uint32_t type_id, uint64_t nbytes);
    // At an explicit offset relative to the data section (may overlap others or be misaligned).
    GgufBuilder& tensor_at(std::string name, std::vector<uint64_t> ne, uint32_t type_id, uint64_t nbytes,
                           uint64_t offset);
    // ggml's writer pads and ends a file without tensors at the data section; the default here
    // ends it right after the last key/value, as vocab-only files do.
    GgufBuilder& pad_empty_data_section(bool pad);
    // Bytes appended after the data section.
    GgufBuilder& trailer(std::vector<std::byte> extra);

    GgufFile build() const;

private:
    struct Kv {
        std::string key;
        GgufValue value;
    };
    struct Tensor {
        std::string name;
        std::vector<uint64_t> ne;
        uint32_t type_id = 0;
        uint64_t nbytes = 0;
        std::optional<uint64_t> offset;
    };

    std::string magic_ = "GGUF";
    uint32_t version_ = 3;
    std::vector<Kv> kvs_;
    std::vector<Tensor> tensors_;
    uint64_t layout_alignment_ = 32;  // GGUF's default when general.alignment is absent
    bool pad_empty_ = false;
    std::vector<std::byte> trailer_;
};

}  // namespace hymoe::test
