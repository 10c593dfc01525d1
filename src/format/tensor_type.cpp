#include "format/tensor_type.hpp"

#include <array>
#include <cassert>
#include <cctype>

#include "util/checked.hpp"

namespace hymoe {

namespace {

constexpr uint32_t QK_K = 256;
using enum TypeStatus;

// clang-format off
constexpr std::array kTypes = {
    //          type                     name        block  bytes/block                    status     in_gguf
    TypeTraits{TensorType::F32,        "f32",        1,     4,                              Supported, true},
    TypeTraits{TensorType::F16,        "f16",        1,     2,                              Supported, true},
    TypeTraits{TensorType::Q4_0,       "q4_0",       32,    2 + 16,                         Supported, true},
    TypeTraits{TensorType::Q4_1,       "q4_1",       32,    2 + 2 + 16,                     Supported, true},
    TypeTraits{TensorType::Q4_2,       "q4_2",       16,    2 + 8,                          Removed,   true},
    TypeTraits{TensorType::Q4_3,       "q4_3",       16,    2 + 2 + 8,                      Removed,   true},
    TypeTraits{TensorType::Q5_0,       "q5_0",       32,    2 + 4 + 16,                     Supported, true},
    TypeTraits{TensorType::Q5_1,       "q5_1",       32,    2 + 2 + 4 + 16,                 Supported, true},
    TypeTraits{TensorType::Q8_0,       "q8_0",       32,    2 + 32,                         Supported, true},
    // ggml-common.h: two halves (d, s) + 32 int8 = 36. (gguf-py's table says 40, a leftover
    // from when d and s were floats; ggml sizes tensors with the struct.)
    TypeTraits{TensorType::Q8_1,       "q8_1",       32,    2 + 2 + 32,                     Supported, true},
    TypeTraits{TensorType::Q2_K,       "q2_K",       QK_K,  QK_K / 16 + QK_K / 4 + 2 + 2,   Supported, true},
    TypeTraits{TensorType::Q3_K,       "q3_K",       QK_K,  QK_K / 8 + QK_K / 4 + 12 + 2,   Supported, true},
    TypeTraits{TensorType::Q4_K,       "q4_K",       QK_K,  2 + 2 + 12 + QK_K / 2,          Supported, true},
    TypeTraits{TensorType::Q5_K,       "q5_K",       QK_K,  2 + 2 + 12 + QK_K / 8 + QK_K / 2, Supported, true},
    TypeTraits{TensorType::Q6_K,       "q6_K",       QK_K,  QK_K / 2 + QK_K / 4 + QK_K / 16 + 2, Supported, true},
    TypeTraits{TensorType::Q8_K,       "q8_K",       QK_K,  4 + QK_K + QK_K / 16 * 2,       Supported, true},
    TypeTraits{TensorType::IQ2_XXS,    "iq2_xxs",    QK_K,  2 + QK_K / 4,                   Supported, true},
    TypeTraits{TensorType::IQ2_XS,     "iq2_xs",     QK_K,  2 + QK_K / 4 + QK_K / 32,       Supported, true},
    TypeTraits{TensorType::IQ3_XXS,    "iq3_xxs",    QK_K,  2 + 3 * QK_K / 8,               Supported, true},
    TypeTraits{TensorType::IQ1_S,      "iq1_s",      QK_K,  2 + QK_K / 8 + QK_K / 16,       Supported, true},
    TypeTraits{TensorType::IQ4_NL,     "iq4_nl",     32,    2 + 16,                         Supported, true},
    TypeTraits{TensorType::IQ3_S,      "iq3_s",      QK_K,  2 + QK_K / 4 + QK_K / 8 + QK_K / 32 + 4, Supported, true},
    TypeTraits{TensorType::IQ2_S,      "iq2_s",      QK_K,  2 + QK_K / 4 + QK_K / 16,       Supported, true},
    TypeTraits{TensorType::IQ4_XS,     "iq4_xs",     QK_K,  2 + 2 + QK_K / 64 + QK_K / 2,   Supported, true},
    TypeTraits{TensorType::I8,         "i8",         1,     1,                              Supported, true},
    TypeTraits{TensorType::I16,        "i16",        1,     2,                              Supported, true},
    TypeTraits{TensorType::I32,        "i32",        1,     4,                              Supported, true},
    TypeTraits{TensorType::I64,        "i64",        1,     8,                              Supported, true},
    TypeTraits{TensorType::F64,        "f64",        1,     8,                              Supported, true},
    TypeTraits{TensorType::IQ1_M,      "iq1_m",      QK_K,  QK_K / 8 + QK_K / 16 + QK_K / 32, Supported, true},
    TypeTraits{TensorType::BF16,       "bf16",       1,     2,                              Supported, true},
    TypeTraits{TensorType::Q4_0_4_4,   "q4_0_4x4",   32,    2 + 16,                         Removed,   true},
    TypeTraits{TensorType::Q4_0_4_8,   "q4_0_4x8",   32,    2 + 16,                         Removed,   true},
    TypeTraits{TensorType::Q4_0_8_8,   "q4_0_8x8",   32,    2 + 16,                         Removed,   true},
    TypeTraits{TensorType::TQ1_0,      "tq1_0",      QK_K,  (QK_K - 4 * QK_K / 64) / 5 + QK_K / 64 + 2, Supported, true},
    TypeTraits{TensorType::TQ2_0,      "tq2_0",      QK_K,  QK_K / 4 + 2,                   Supported, true},
    TypeTraits{TensorType::IQ4_NL_4_4, "iq4_nl_4x4", 32,    2 + 16,                         Removed,   true},
    TypeTraits{TensorType::IQ4_NL_4_8, "iq4_nl_4x8", 32,    2 + 16,                         Removed,   true},
    TypeTraits{TensorType::IQ4_NL_8_8, "iq4_nl_8x8", 32,    2 + 16,                         Removed,   true},
    TypeTraits{TensorType::MXFP4,      "mxfp4",      32,    1 + 16,                         Supported, true},
    TypeTraits{TensorType::NVFP4,      "nvfp4",      64,    4 + 32,                         Supported, true},
    TypeTraits{TensorType::Q1_0,       "q1_0",       128,   2 + 16,                         Supported, true},
    TypeTraits{TensorType::U8,         "u8",         1,     1,                              Supported, false},
    TypeTraits{TensorType::BOOL,       "bool",       1,     1,                              Supported, false},
    TypeTraits{TensorType::F8_E4M3,    "f8_e4m3",    1,     1,                              Supported, false},
    TypeTraits{TensorType::F8_E5M2,    "f8_e5m2",    1,     1,                              Supported, false},
    TypeTraits{TensorType::F8_E8M0,    "f8_e8m0",    1,     1,                              Supported, false},
    TypeTraits{TensorType::U16,        "u16",        1,     2,                              Supported, false},
    TypeTraits{TensorType::U32,        "u32",        1,     4,                              Supported, false},
    TypeTraits{TensorType::U64,        "u64",        1,     8,                              Supported, false},
};
// clang-format on

constexpr uint32_t kGgufIdCount = 42;  // ids 0..41

constexpr bool table_is_in_id_order() {
    for (uint32_t i = 0; i < kGgufIdCount; ++i) {
        if (static_cast<uint32_t>(kTypes[i].type) != i || !kTypes[i].in_gguf) return false;
    }
    for (size_t i = kGgufIdCount; i < kTypes.size(); ++i) {
        if (kTypes[i].in_gguf) return false;
    }
    return true;
}
static_assert(table_is_in_id_order(), "kTypes must list GGUF ids 0..41 in order, then the non-GGUF types");

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i) {
        if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) {
            return false;
        }
    }
    return true;
}

}  // namespace

std::span<const TypeTraits> all_tensor_types() {
    return kTypes;
}

const TypeTraits& type_traits(TensorType type) {
    const auto id = static_cast<uint32_t>(type);
    if (id < kGgufIdCount) return kTypes[id];
    for (size_t i = kGgufIdCount; i < kTypes.size(); ++i) {
        if (kTypes[i].type == type) return kTypes[i];
    }
    assert(false && "TensorType value outside the table");
    return kTypes[0];
}

std::string_view type_name(TensorType type) {
    return type_traits(type).name;
}

std::optional<TensorType> tensor_type_from_gguf_id(uint32_t id) {
    if (id >= kGgufIdCount) return std::nullopt;
    return kTypes[id].type;
}

std::optional<TensorType> tensor_type_from_name(std::string_view name) {
    for (const auto& t : kTypes) {
        if (iequals(t.name, name)) return t.type;
    }
    return std::nullopt;
}

std::optional<uint64_t> row_bytes(TensorType type, uint64_t n) {
    const auto& t = type_traits(type);
    if (n % t.block_size != 0) return std::nullopt;
    return checked_mul(n / t.block_size, t.type_size);
}

}  // namespace hymoe
