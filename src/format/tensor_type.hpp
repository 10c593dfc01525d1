// The tensor-type table shared by every file format.
//
// Ids 0..41 are ggml's `enum ggml_type`, exactly as GGUF files store them, so a file written by
// any GGUF tool loads. Types that only safetensors has (U8, BOOL, FP8, ...) get ids from 1000
// up; they never appear in a GGUF file. Block sizes and bytes per block follow ggml-common.h.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace hymoe {

enum class TensorType : uint32_t {
    F32 = 0,
    F16 = 1,
    Q4_0 = 2,
    Q4_1 = 3,
    Q4_2 = 4,  // removed from ggml
    Q4_3 = 5,  // removed from ggml
    Q5_0 = 6,
    Q5_1 = 7,
    Q8_0 = 8,
    Q8_1 = 9,
    Q2_K = 10,
    Q3_K = 11,
    Q4_K = 12,
    Q5_K = 13,
    Q6_K = 14,
    Q8_K = 15,
    IQ2_XXS = 16,
    IQ2_XS = 17,
    IQ3_XXS = 18,
    IQ1_S = 19,
    IQ4_NL = 20,
    IQ3_S = 21,
    IQ2_S = 22,
    IQ4_XS = 23,
    I8 = 24,
    I16 = 25,
    I32 = 26,
    I64 = 27,
    F64 = 28,
    IQ1_M = 29,
    BF16 = 30,
    Q4_0_4_4 = 31,  // removed: repacked layouts are no longer stored in files
    Q4_0_4_8 = 32,  // removed
    Q4_0_8_8 = 33,  // removed
    TQ1_0 = 34,
    TQ2_0 = 35,
    IQ4_NL_4_4 = 36,  // removed
    IQ4_NL_4_8 = 37,  // removed
    IQ4_NL_8_8 = 38,  // removed
    MXFP4 = 39,
    NVFP4 = 40,
    Q1_0 = 41,

    // Not ggml types: safetensors dtypes with no GGUF counterpart.
    U8 = 1000,
    BOOL = 1001,
    F8_E4M3 = 1002,
    F8_E5M2 = 1003,
    F8_E8M0 = 1004,
    U16 = 1005,
    U32 = 1006,
    U64 = 1007,
};

enum class TypeStatus : uint8_t {
    Supported,  // a defined layout; may still lack compute kernels
    Removed,    // a ggml id whose layout was withdrawn; files using it must be re-converted
};

struct TypeTraits {
    TensorType type;
    std::string_view name;  // ggml's name, lower case ("q4_K", "bf16", "mxfp4")
    uint32_t block_size;    // elements per block along the innermost dimension
    uint32_t type_size;     // bytes per block
    TypeStatus status;
    bool in_gguf;  // a ggml type id a GGUF file may carry
};

// Every type above, in id order.
std::span<const TypeTraits> all_tensor_types();

const TypeTraits& type_traits(TensorType type);
std::string_view type_name(TensorType type);

// The type with this GGUF id, or nullopt when ggml defines no such id.
std::optional<TensorType> tensor_type_from_gguf_id(uint32_t id);

// The type with this ggml name (case-insensitive: "Q4_K", "q4_k"), or nullopt.
std::optional<TensorType> tensor_type_from_name(std::string_view name);

// Bytes of a row of `n` elements (n must be a multiple of the block size), or nullopt when
// n is not a multiple of the block size or the size overflows.
std::optional<uint64_t> row_bytes(TensorType type, uint64_t n);

}  // namespace hymoe
