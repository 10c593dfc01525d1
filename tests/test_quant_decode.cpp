// kernels/quant_decode.cuh on the CPU: every decode32<T> gives, bit for bit, the floats
// quant::dequantize_row gives for the same 32 elements of a row. The GPU kernels decode with the
// same header, so this is the exactness check of their weight reads that needs no GPU.
//
// Rows are random bytes with the f16 scales forced finite (and sometimes subnormal or zero),
// several blocks long; edge blocks put inf / NaN / extreme scales in; the float types and the
// MXFP4 scale are checked over every bit pattern. Floats are compared as bits (NaN-safe).
#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "../kernels/quant_decode.cuh"
#include "format/tensor_type.hpp"
#include "quant/blocks.hpp"
#include "quant/fp16.hpp"
#include "quant/quant.hpp"

namespace hymoe::kernels {
namespace {

constexpr WeightType kAllTypes[] = {
    WeightType::F32,  WeightType::F16,  WeightType::BF16,   WeightType::Q4_0,   WeightType::Q4_1,  WeightType::Q5_0,
    WeightType::Q5_1, WeightType::Q8_0, WeightType::Q2_K,   WeightType::Q3_K,   WeightType::Q4_K,  WeightType::Q5_K,
    WeightType::Q6_K, WeightType::IQ4_NL, WeightType::IQ4_XS, WeightType::MXFP4,
};

TensorType to_tensor_type(WeightType t) {
    return static_cast<TensorType>(static_cast<uint32_t>(t));
}

std::string name_of(WeightType t) {
    return std::string(type_name(to_tensor_type(t)));
}

// Byte offsets of the f16 scale fields inside one block of `t` (none for the float types and MXFP4).
std::vector<size_t> f16_fields(WeightType t) {
    using namespace quant;
    switch (t) {
        case WeightType::Q4_0: return {offsetof(BlockQ4_0, d)};
        case WeightType::Q4_1: return {offsetof(BlockQ4_1, d), offsetof(BlockQ4_1, m)};
        case WeightType::Q5_0: return {offsetof(BlockQ5_0, d)};
        case WeightType::Q5_1: return {offsetof(BlockQ5_1, d), offsetof(BlockQ5_1, m)};
        case WeightType::Q8_0: return {offsetof(BlockQ8_0, d)};
        case WeightType::Q2_K: return {offsetof(BlockQ2_K, d), offsetof(BlockQ2_K, dmin)};
        case WeightType::Q3_K: return {offsetof(BlockQ3_K, d)};
        case WeightType::Q4_K: return {offsetof(BlockQ4_K, d), offsetof(BlockQ4_K, dmin)};
        case WeightType::Q5_K: return {offsetof(BlockQ5_K, d), offsetof(BlockQ5_K, dmin)};
        case WeightType::Q6_K: return {offsetof(BlockQ6_K, d)};
        case WeightType::IQ4_NL: return {offsetof(BlockIq4Nl, d)};
        case WeightType::IQ4_XS: return {offsetof(BlockIq4Xs, d)};
        default: return {};
    }
}

void put_u16(std::vector<std::byte>& row, size_t at, uint16_t v) {
    row[at] = static_cast<std::byte>(v & 0xff);
    row[at + 1] = static_cast<std::byte>(v >> 8);
}

// A finite f16: random sign and mantissa, an exponent that keeps products far from overflow;
// one in eight subnormal (exponent 0), which includes zero now and then.
uint16_t random_finite_f16(std::mt19937& rng) {
    const auto r = static_cast<uint16_t>(rng());
    const uint16_t exp = (rng() % 8 == 0) ? 0 : static_cast<uint16_t>(5 + rng() % 16);
    return static_cast<uint16_t>((r & 0x83ffu) | (exp << 10));
}

// A finite float for the F32 rows (random bytes would be fine too, but keep values plausible).
uint32_t random_float_bits(std::mt19937& rng) {
    const auto r = static_cast<uint32_t>(rng());
    const auto exp = static_cast<uint32_t>(100 + rng() % 40);
    return (r & 0x807fffffu) | (exp << 23);
}

// A row of `cols` elements of `t` with random contents and finite f16 scales.
std::vector<std::byte> random_row(WeightType t, int64_t cols, std::mt19937& rng) {
    const int64_t bytes = weight_row_bytes(t, cols);
    std::vector<std::byte> row(static_cast<size_t>(bytes));
    for (auto& b : row) b = static_cast<std::byte>(rng() & 0xff);
    if (t == WeightType::F32) {
        for (int64_t i = 0; i < cols; ++i) {
            const uint32_t v = random_float_bits(rng);
            std::memcpy(row.data() + 4 * i, &v, 4);
        }
    } else if (t == WeightType::F16) {
        for (int64_t i = 0; i < cols; ++i) put_u16(row, static_cast<size_t>(2 * i), random_finite_f16(rng));
    } else {
        const int block_bytes = static_cast<int>(type_traits(to_tensor_type(t)).type_size);
        for (int64_t at = 0; at < bytes; at += block_bytes) {
            for (size_t f : f16_fields(t)) put_u16(row, static_cast<size_t>(at) + f, random_finite_f16(rng));
        }
    }
    return row;
}

// decode32 over every group of `bytes` against want; describes the first few mismatches.
template <WeightType T>
int compare_groups(const uint8_t* bytes, const std::vector<float>& want, int64_t shift, std::string& why) {
    int bad = 0;
    const auto cols = static_cast<int64_t>(want.size());
    for (int64_t g = 0; g < cols / 32; ++g) {
        float got[32];
        decode32<T>(bytes, g, got);
        for (int j = 0; j < 32; ++j) {
            const float w = want[static_cast<size_t>(32 * g + j)];
            uint32_t a = 0, b = 0;
            std::memcpy(&a, &got[j], 4);
            std::memcpy(&b, &w, 4);
            if (a != b && bad++ < 10) {
                why += "\n  element " + std::to_string(32 * g + j) + ": got bits " + std::to_string(a) + " (" +
                       std::to_string(got[j]) + ") want " + std::to_string(b) + " (" + std::to_string(w) +
                       ") at byte offset " + std::to_string(shift);
            }
        }
    }
    return bad;
}

// decode32 over every group of the row against quant::dequantize_row; returns the mismatch count.
// The row is decoded from a copy at each byte offset 0..3 of an aligned buffer: on the GPU,
// decode32 reads aligned words and shifts them into place (test_quant_decode built with the
// device path emulated checks that part).
template <WeightType T>
int compare_row(const std::vector<std::byte>& row, int64_t cols, std::string& why) {
    std::vector<float> want(static_cast<size_t>(cols));
    quant::dequantize_row(to_tensor_type(T), row.data(), cols, want.data());
    std::vector<uint32_t> buffer(row.size() / 4 + 2);
    int bad = 0;
    for (int64_t shift = 0; shift < 4; ++shift) {
        auto* bytes = reinterpret_cast<uint8_t*>(buffer.data()) + shift;
        std::memcpy(bytes, row.data(), row.size());
        bad += compare_groups<T>(bytes, want, shift, why);
    }
    return bad;
}

int compare_row(WeightType t, const std::vector<std::byte>& row, int64_t cols, std::string& why) {
    int bad = -1;
    const bool known = dispatch_weight_type(t, [&](auto tag) { bad = compare_row<decltype(tag)::value>(row, cols, why); });
    EXPECT_TRUE(known);
    return bad;
}

TEST(QuantDecode, TraitsMatchTheTensorTypeTable) {
    for (WeightType t : kAllTypes) {
        const TypeTraits& tt = type_traits(to_tensor_type(t));
        dispatch_weight_type(t, [&](auto tag) {
            using Tr = WeightTraits<decltype(tag)::value>;
            EXPECT_EQ(Tr::block_elems, static_cast<int>(tt.block_size)) << name_of(t);
            EXPECT_EQ(Tr::block_bytes, static_cast<int>(tt.type_size)) << name_of(t);
        });
        EXPECT_EQ(weight_block_elems(t), static_cast<int>(tt.block_size)) << name_of(t);
        const int64_t cols = 3 * 256;
        EXPECT_EQ(static_cast<uint64_t>(weight_row_bytes(t, cols)), *row_bytes(to_tensor_type(t), cols)) << name_of(t);
    }
    EXPECT_FALSE(dispatch_weight_type(static_cast<WeightType>(15), [](auto) {}));  // Q8_K: not a weight type here
    EXPECT_EQ(weight_block_elems(static_cast<WeightType>(9)), 0);
}

TEST(QuantDecode, RandomRowsOfEveryTypeMatchDequantizeRowBitForBit) {
    for (WeightType t : kAllTypes) {
        const int block = weight_block_elems(t);
        const int64_t unit = block < 32 ? 32 : block;  // decode32 reads whole groups of 32
        std::mt19937 rng(1234u + static_cast<uint32_t>(t));
        for (int64_t n_units : {1, 2, 3, 5, 8}) {
            for (int rep = 0; rep < 20; ++rep) {
                const int64_t cols = n_units * unit;
                const std::vector<std::byte> row = random_row(t, cols, rng);
                std::string why;
                EXPECT_EQ(compare_row(t, row, cols, why), 0) << name_of(t) << ", " << cols << " columns" << why;
            }
        }
    }
}

// Scales at the edges: zero, the smallest subnormal, the largest finite, inf and NaN of both
// signs. Both sides are host code doing the same IEEE operations, so even NaN bits agree.
TEST(QuantDecode, EdgeScalesMatchBitForBit) {
    const uint16_t edges[] = {0x0000, 0x8000, 0x0001, 0x83ff, 0x0400, 0x7bff, 0xfbff, 0x7c00, 0xfc00, 0x7e00, 0x7d01};
    for (WeightType t : kAllTypes) {
        const std::vector<size_t> fields = f16_fields(t);
        if (fields.empty()) continue;
        const int64_t cols = weight_block_elems(t) == 256 ? 256 : 32;
        std::mt19937 rng(77u + static_cast<uint32_t>(t));
        for (uint16_t e1 : edges) {
            for (uint16_t e2 : {uint16_t{0x3c00}, uint16_t{0x7c00}, uint16_t{0x0001}}) {
                std::vector<std::byte> row = random_row(t, cols, rng);
                put_u16(row, fields[0], e1);
                if (fields.size() > 1) put_u16(row, fields[1], e2);
                std::string why;
                EXPECT_EQ(compare_row(t, row, cols, why), 0) << name_of(t) << " scale bits " << e1 << why;
            }
        }
        // All-zero and all-ones quant bytes (extreme elements) with a unit scale.
        for (uint8_t fill : {uint8_t{0x00}, uint8_t{0xff}}) {
            std::vector<std::byte> row(static_cast<size_t>(weight_row_bytes(t, cols)), static_cast<std::byte>(fill));
            for (size_t f : fields) put_u16(row, f, 0x3c00);
            std::string why;
            EXPECT_EQ(compare_row(t, row, cols, why), 0) << name_of(t) << " fill " << int(fill) << why;
        }
    }
}

// Every f16 and bf16 bit pattern, as rows of the float types (subnormals, infs and NaNs included).
TEST(QuantDecode, EveryHalfAndBfloatPattern) {
    const int64_t cols = 65536;
    std::vector<std::byte> row(2 * cols);
    for (int64_t i = 0; i < cols; ++i) put_u16(row, static_cast<size_t>(2 * i), static_cast<uint16_t>(i));
    for (WeightType t : {WeightType::F16, WeightType::BF16}) {
        std::string why;
        EXPECT_EQ(compare_row(t, row, cols, why), 0) << name_of(t) << why;
    }
    for (uint32_t h = 0; h < 65536; ++h) {
        const float a = qd::f16_to_f32(h), b = quant::fp16_to_f32(static_cast<uint16_t>(h));
        ASSERT_EQ(std::memcmp(&a, &b, 4), 0) << "f16 bits " << h;
    }
}

// Every MXFP4 scale byte, with every nibble in the block.
TEST(QuantDecode, EveryMxfp4Scale) {
    std::vector<std::byte> row(17 * 256);
    for (int e = 0; e < 256; ++e) {
        row[static_cast<size_t>(17 * e)] = static_cast<std::byte>(e);
        for (int j = 0; j < 16; ++j) row[static_cast<size_t>(17 * e + 1 + j)] = static_cast<std::byte>(j * 17 + e % 16);
    }
    std::string why;
    EXPECT_EQ(compare_row(WeightType::MXFP4, row, 32 * 256, why), 0) << why;
}

}  // namespace
}  // namespace hymoe::kernels
