#include "format/gguf.hpp"

#include <algorithm>
#include <cstring>
#include <limits>
#include <numeric>
#include <unordered_set>

#include <fmt/format.h>

#include "hymoe/error.hpp"
#include "util/checked.hpp"
#include "util/mapped_file.hpp"

namespace hymoe {

namespace {

constexpr uint32_t kMaxDims = 4;                         // GGML_MAX_DIMS
constexpr int kMaxArrayNesting = 8;                      // deeper nesting is rejected, not recursed into
constexpr uint64_t kMinKvBytes = 8 + 4 + 1;              // empty key, u32 type, 1-byte value
constexpr uint64_t kMinTensorInfoBytes = 8 + 4 + 4 + 8;  // empty name, n_dims 0, type, offset
// Counts are bounded by the file size, which for a 20 GB model still allows billions of entries:
// reserve at most this many up front, so memory grows with what is actually parsed.
constexpr uint64_t kMaxReserve = 1 << 16;

size_t capped_reserve(uint64_t count) {
    return static_cast<size_t>(std::min(count, kMaxReserve));
}

// Smallest encoding of one value of a type (for bounding array counts before allocating).
uint64_t min_value_bytes(MetaType type) {
    switch (type) {
        case MetaType::U8:
        case MetaType::I8:
        case MetaType::Bool: return 1;
        case MetaType::U16:
        case MetaType::I16: return 2;
        case MetaType::U32:
        case MetaType::I32:
        case MetaType::F32: return 4;
        case MetaType::U64:
        case MetaType::I64:
        case MetaType::F64:
        case MetaType::String: return 8;     // the length prefix
        case MetaType::Array: return 4 + 8;  // element type + count
    }
    return 1;
}

bool is_known_meta_type(uint32_t t) {
    return t <= static_cast<uint32_t>(MetaType::F64);
}

// Reads little-endian fields from the file, checking each against the bytes that remain.
class Cursor {
public:
    Cursor(std::span<const std::byte> bytes, std::string_view source) : bytes_(bytes), source_(source) {}

    uint64_t pos() const { return pos_; }
    uint64_t size() const { return bytes_.size(); }
    uint64_t remaining() const { return bytes_.size() - pos_; }

    [[noreturn]] void fail_at(uint64_t at, const std::string& what) const {
        throw Error(fmt::format("{}: {} (at byte offset {})", source_, what, at));
    }
    [[noreturn]] void fail(const std::string& what) const { fail_at(pos_, what); }

    template <typename T>
    T read(std::string_view what) {
        if (remaining() < sizeof(T)) {
            fail(fmt::format("file ends while reading {} ({} bytes needed, {} left)", what, sizeof(T), remaining()));
        }
        T v;
        std::memcpy(&v, bytes_.data() + pos_, sizeof(T));
        pos_ += sizeof(T);
        return v;
    }

    std::string read_string(std::string_view what) {
        const uint64_t at = pos_;
        const auto len = read<uint64_t>(fmt::format("the length of {}", what));
        if (len > remaining()) {
            fail_at(at, fmt::format("{} claims {} bytes but only {} remain in the file", what, len, remaining()));
        }
        std::string s(reinterpret_cast<const char*>(bytes_.data() + pos_), static_cast<size_t>(len));
        pos_ += len;
        return s;
    }

private:
    std::span<const std::byte> bytes_;
    std::string_view source_;
    uint64_t pos_ = 0;
};

MetaValue read_value(Cursor& in, MetaType type, const std::string& key, int depth) {
    switch (type) {
        case MetaType::U8: return MetaValue::unsigned_int(type, in.read<uint8_t>("a u8 value"));
        case MetaType::I8: return MetaValue::signed_int(type, in.read<int8_t>("an i8 value"));
        case MetaType::U16: return MetaValue::unsigned_int(type, in.read<uint16_t>("a u16 value"));
        case MetaType::I16: return MetaValue::signed_int(type, in.read<int16_t>("an i16 value"));
        case MetaType::U32: return MetaValue::unsigned_int(type, in.read<uint32_t>("a u32 value"));
        case MetaType::I32: return MetaValue::signed_int(type, in.read<int32_t>("an i32 value"));
        case MetaType::U64: return MetaValue::unsigned_int(type, in.read<uint64_t>("a u64 value"));
        case MetaType::I64: return MetaValue::signed_int(type, in.read<int64_t>("an i64 value"));
        case MetaType::F32: return MetaValue::floating(type, in.read<float>("an f32 value"));
        case MetaType::F64: return MetaValue::floating(type, in.read<double>("an f64 value"));
        case MetaType::Bool: {
            const uint64_t at = in.pos();
            const auto b = in.read<uint8_t>("a bool value");
            if (b > 1) in.fail_at(at, fmt::format("key '{}': bool value is {}, expected 0 or 1", key, b));
            return MetaValue::boolean(b == 1);
        }
        case MetaType::String:
            return MetaValue::string(in.read_string(fmt::format("the string value of key '{}'", key)));
        case MetaType::Array: {
            const uint64_t at = in.pos();
            if (depth >= kMaxArrayNesting) {
                in.fail_at(at, fmt::format("key '{}': arrays nested deeper than {} levels", key, kMaxArrayNesting));
            }
            const auto elem = in.read<uint32_t>("an array element type");
            if (!is_known_meta_type(elem))
                in.fail_at(at, fmt::format("key '{}': unknown array element type {}", key, elem));
            const auto elem_type = static_cast<MetaType>(elem);
            const uint64_t count_at = in.pos();
            const auto count = in.read<uint64_t>("an array length");
            if (count > in.remaining() / min_value_bytes(elem_type)) {
                in.fail_at(count_at, fmt::format("key '{}': array of {} {} elements cannot fit in the {} bytes left",
                                                 key, count, meta_type_name(elem_type), in.remaining()));
            }
            MetaArray arr;
            arr.element_type = elem_type;
            arr.items.reserve(capped_reserve(count));
            for (uint64_t i = 0; i < count; ++i) arr.items.push_back(read_value(in, elem_type, key, depth + 1));
            return MetaValue::array(std::move(arr));
        }
    }
    in.fail(fmt::format("key '{}': unknown value type {}", key, static_cast<uint32_t>(type)));
}

void read_header(Cursor& in, uint32_t& version, uint64_t& n_tensors, uint64_t& n_kv) {
    if (in.size() < 4) in.fail_at(0, fmt::format("file is {} bytes, too short to be GGUF", in.size()));
    const auto magic = in.read<uint32_t>("the magic");
    constexpr uint32_t kMagic = 0x46554747;  // "GGUF" little-endian
    if (magic != kMagic) {
        char shown[5] = {};
        std::memcpy(shown, &magic, 4);
        for (char& c : shown) {
            if (c != 0 && (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7e)) c = '?';
        }
        in.fail_at(0, fmt::format("not a GGUF file: starts with '{}' (0x{:08x}), expected 'GGUF'", shown, magic));
    }
    const uint64_t version_at = in.pos();
    version = in.read<uint32_t>("the version");
    if (version == 1) {
        in.fail_at(version_at, "GGUF version 1 is not supported (versions 2 and 3 are); re-convert the model");
    }
    if (version != 2 && version != 3) {
        const uint32_t swapped = __builtin_bswap32(version);
        if (swapped >= 1 && swapped <= 3) {
            in.fail_at(version_at, fmt::format("big-endian GGUF (version {}) is not supported", swapped));
        }
        in.fail_at(version_at, fmt::format("unknown GGUF version {} (versions 2 and 3 are supported)", version));
    }
    const uint64_t counts_at = in.pos();
    n_tensors = in.read<uint64_t>("the tensor count");
    n_kv = in.read<uint64_t>("the metadata count");
    // Bound both counts by the smallest encoding of an entry before anything is allocated.
    if (n_kv > in.remaining() / kMinKvBytes) {
        in.fail_at(counts_at + 8, fmt::format("metadata count {} cannot fit in a {}-byte file (truncated or corrupt)",
                                              n_kv, in.size()));
    }
    if (n_tensors > (in.remaining() - n_kv * kMinKvBytes) / kMinTensorInfoBytes) {
        in.fail_at(counts_at, fmt::format("tensor count {} cannot fit in a {}-byte file (truncated or corrupt)",
                                          n_tensors, in.size()));
    }
}

// `at` is where the general.alignment key/value starts, so an error points at it.
uint64_t read_alignment(const Metadata& meta, Cursor& in, uint64_t at) {
    const MetaValue* v = meta.find("general.alignment");
    if (v == nullptr) return kGgufDefaultAlignment;
    if (v->type() != MetaType::U32) {
        in.fail_at(at, fmt::format("general.alignment has type {}, expected u32", meta_type_name(v->type())));
    }
    const uint64_t a = *v->as_u64();
    if (a == 0 || (a & (a - 1)) != 0) {
        in.fail_at(at, fmt::format("general.alignment is {}, expected a power of two", a));
    }
    return a;
}

struct RawTensorInfo {
    uint64_t info_at = 0;  // where the tensor info starts, for error messages
    uint64_t offset = 0;   // relative to the data section
};

}  // namespace

GgufContents parse_gguf(std::span<const std::byte> bytes, std::string_view source) {
    Cursor in(bytes, source);
    GgufContents out;
    uint64_t n_tensors = 0;
    uint64_t n_kv = 0;
    read_header(in, out.details.version, n_tensors, n_kv);

    uint64_t alignment_at = 0;
    for (uint64_t i = 0; i < n_kv; ++i) {
        const uint64_t at = in.pos();
        std::string key = in.read_string(fmt::format("key {}", i));
        if (key == "general.alignment") alignment_at = at;
        const uint64_t type_at = in.pos();
        const auto type = in.read<uint32_t>(fmt::format("the value type of key '{}'", key));
        if (!is_known_meta_type(type)) in.fail_at(type_at, fmt::format("key '{}': unknown value type {}", key, type));
        MetaValue value = read_value(in, static_cast<MetaType>(type), key, 0);
        if (!out.metadata.add(key, std::move(value))) in.fail_at(at, fmt::format("duplicate key '{}'", key));
    }
    const uint64_t alignment = read_alignment(out.metadata, in, alignment_at);
    out.details.alignment = alignment;

    std::vector<RawTensorInfo> raw;
    raw.reserve(capped_reserve(n_tensors));
    out.tensors.reserve(capped_reserve(n_tensors));
    for (uint64_t i = 0; i < n_tensors; ++i) {
        const uint64_t at = in.pos();
        TensorView t;
        t.name = in.read_string(fmt::format("the name of tensor {}", i));
        if (t.name.empty()) in.fail_at(at, fmt::format("tensor {} has an empty name", i));
        const std::string who = fmt::format("tensor {} '{}'", i, t.name);
        const uint64_t dims_at = in.pos();
        const auto n_dims = in.read<uint32_t>(fmt::format("the dimension count of {}", who));
        if (n_dims > kMaxDims) {
            in.fail_at(dims_at, fmt::format("{}: {} dimensions, at most {} allowed", who, n_dims, kMaxDims));
        }
        std::vector<uint64_t> ne(n_dims);
        for (uint32_t d = 0; d < n_dims; ++d) {
            const uint64_t ne_at = in.pos();
            ne[d] = in.read<uint64_t>(fmt::format("dimension {} of {}", d, who));
            if (ne[d] > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
                in.fail_at(ne_at, fmt::format("{}: dimension {} is {}, larger than 2^63-1", who, d, ne[d]));
            }
        }
        const uint64_t type_at = in.pos();
        const auto type_id = in.read<uint32_t>(fmt::format("the type of {}", who));
        const auto type = tensor_type_from_gguf_id(type_id);
        if (!type) in.fail_at(type_at, fmt::format("{}: unknown tensor type id {}", who, type_id));
        const TypeTraits& traits = type_traits(*type);
        if (traits.status == TypeStatus::Removed) {
            in.fail_at(type_at, fmt::format("{}: tensor type {} (id {}) was removed from ggml; re-convert the model "
                                            "with a current llama.cpp",
                                            who, traits.name, type_id));
        }
        t.type = *type;
        const uint64_t offset_at = in.pos();
        const auto offset = in.read<uint64_t>(fmt::format("the data offset of {}", who));

        // Size: ne[0] in whole blocks, times the other dimensions, without overflow.
        const uint64_t ne0 = n_dims > 0 ? ne[0] : 1;
        auto nbytes = row_bytes(t.type, ne0);
        if (!nbytes && ne0 % traits.block_size != 0) {  // otherwise the row's bytes overflow, reported below
            in.fail_at(dims_at, fmt::format("{}: row length {} is not a multiple of the {} block size {}", who, ne0,
                                            traits.name, traits.block_size));
        }
        for (uint32_t d = 1; d < n_dims && nbytes; ++d) nbytes = checked_mul(*nbytes, ne[d]);
        uint64_t elements = 1;
        for (uint32_t d = 0; d < n_dims; ++d) {
            auto e = checked_mul(elements, ne[d]);
            if (!e) {
                nbytes.reset();
                break;
            }
            elements = *e;
        }
        if (!nbytes || elements > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
            in.fail_at(dims_at,
                       fmt::format("{}: its dimensions multiply to more than 2^63 elements or 2^64 bytes", who));
        }
        if (offset % alignment != 0) {
            in.fail_at(offset_at,
                       fmt::format("{}: data offset {} is not a multiple of the alignment {}", who, offset, alignment));
        }
        t.nbytes = *nbytes;
        for (auto d = ne.rbegin(); d != ne.rend(); ++d) t.shape.push_back(static_cast<int64_t>(*d));  // row-major
        raw.push_back({at, offset});
        out.tensors.push_back(std::move(t));
    }

    // Names are unique. (Checked once the vector no longer grows: views into it stay valid.)
    std::unordered_set<std::string_view> names;
    names.reserve(out.tensors.size());
    for (size_t i = 0; i < out.tensors.size(); ++i) {
        if (!names.insert(out.tensors[i].name).second) {
            in.fail_at(raw[i].info_at, fmt::format("duplicate tensor name in tensor {} '{}'", i, out.tensors[i].name));
        }
    }

    // The data section starts at the next multiple of the alignment. A file without tensors
    // (a vocabulary-only GGUF) may end right after its metadata.
    const auto data_offset = checked_align_up(in.pos(), alignment);
    if (!data_offset || (n_tensors > 0 && *data_offset > in.size())) {
        in.fail(fmt::format("the tensor data section would start at byte {}, past the end of the {}-byte file",
                            data_offset.value_or(std::numeric_limits<uint64_t>::max()), in.size()));
    }
    out.details.data_offset = *data_offset;
    const uint64_t data_size = n_tensors > 0 ? in.size() - *data_offset : 0;

    for (size_t i = 0; i < out.tensors.size(); ++i) {
        TensorView& t = out.tensors[i];
        const uint64_t offset = raw[i].offset;
        if (offset > data_size || t.nbytes > data_size - offset) {
            in.fail_at(raw[i].info_at,
                       fmt::format("tensor {} '{}': data [{}, +{} bytes) runs past the end of the file (data section "
                                   "starts at byte {} and holds {} bytes)",
                                   i, t.name, offset, t.nbytes, *data_offset, data_size));
        }
        t.file_offset = *data_offset + offset;
        t.data = bytes.data() + t.file_offset;
    }

    // No two tensors may share bytes.
    std::vector<size_t> order(out.tensors.size());
    std::iota(order.begin(), order.end(), size_t{0});
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return raw[a].offset < raw[b].offset; });
    // Compared with the previous non-empty tensor: an empty one between two others must not hide their overlap.
    size_t a = order.size();
    for (const size_t b : order) {
        if (out.tensors[b].nbytes == 0) continue;
        if (a != order.size() && raw[a].offset + out.tensors[a].nbytes > raw[b].offset) {
            in.fail_at(raw[b].info_at,
                       fmt::format("tensors '{}' (data bytes [{}, {})) and '{}' (data bytes [{}, {})) overlap",
                                   out.tensors[a].name, raw[a].offset, raw[a].offset + out.tensors[a].nbytes,
                                   out.tensors[b].name, raw[b].offset, raw[b].offset + out.tensors[b].nbytes));
        }
        a = b;
    }
    return out;
}

ModelFile read_gguf(const std::string& path) {
    MappedFile file(path);
    GgufContents contents = parse_gguf(file.bytes(), path);
    std::vector<MappedFile> files;
    files.push_back(std::move(file));  // the mapping's address does not change on move
    ModelFile model(FileFormat::Gguf, path, std::move(files), std::move(contents.metadata),
                    std::move(contents.tensors));
    model.set_gguf_details(contents.details);
    return model;
}

}  // namespace hymoe
