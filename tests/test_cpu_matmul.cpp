// cpu::matmul and friends:
//  - f16 / bf16 rounding against numpy and gguf-py, and dequantize_row against gguf-py, bit for
//    bit (tests/fixtures/quant_vectors.json, written by tests/fixtures/make_quant_vectors.py);
//  - the Q8_0 activation quantization (ggml's x86 quantize_row_q8_0: x * (127 / amax), ties to even);
//  - matmul_reference against a double-precision sum computed here from dequantized weights and
//    activations converted here;
//  - every ISA this CPU runs against matmul_reference (scalar bit-exact, SIMD within a
//    tolerance for the f32 summation order).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cpu/matmul.hpp"
#include "cpu/matmul_kernels.hpp"
#include "cpu/thread_pool.hpp"
#include "hymoe/error.hpp"
#include "quant/blocks.hpp"
#include "quant/fp16.hpp"
#include "quant/quant.hpp"
#include "test_support.hpp"

namespace hymoe {
// gtest prints parameters with this (found by ADL) instead of as raw bytes.
void PrintTo(TensorType type, std::ostream* os) {
    *os << type_name(type);
}
}  // namespace hymoe

namespace hymoe::cpu {
namespace {

namespace d = detail;
using quant::bf16_to_f32;
using quant::e8m0_to_f32_half;
using quant::f32_to_bf16;
using quant::f32_to_fp16;
using quant::fp16_to_f32;

// ---- helpers ----

// Collects mismatches, keeping the text of the first ten.
struct Mismatches {
    int count = 0;
    std::string text;
    template <class... Args>
    void add(fmt::format_string<Args...> f, Args&&... args) {
        if (count++ < 10) text += fmt::format(f, std::forward<Args>(args)...) + "\n";
    }
};

std::vector<uint8_t> from_hex(const std::string& hex) {
    std::vector<uint8_t> out(hex.size() / 2);
    for (size_t i = 0; i < out.size(); ++i)
        out[i] = static_cast<uint8_t>(std::stoul(hex.substr(2 * i, 2), nullptr, 16));
    return out;
}

template <class T>
std::vector<T> hex_as(const std::string& hex) {
    const std::vector<uint8_t> bytes = from_hex(hex);
    std::vector<T> out(bytes.size() / sizeof(T));
    std::memcpy(out.data(), bytes.data(), out.size() * sizeof(T));
    return out;
}

std::vector<std::byte> hex_bytes(const std::string& hex) {
    const std::vector<uint8_t> bytes = from_hex(hex);
    std::vector<std::byte> out(bytes.size());
    std::memcpy(out.data(), bytes.data(), bytes.size());
    return out;
}

uint32_t bits(float f) {
    return std::bit_cast<uint32_t>(f);
}

const nlohmann::json& vectors() {
    static const nlohmann::json doc =
        nlohmann::json::parse(test::read_text(test::fixtures_dir() / "quant_vectors.json"));
    return doc;
}

std::vector<d::Isa> supported_isas() {
    std::vector<d::Isa> out;
    for (d::Isa isa : {d::Isa::Scalar, d::Isa::Avx2, d::Isa::Avx512}) {
        if (d::isa_supported(isa)) out.push_back(isa);
    }
    return out;
}

// ---- f16 / bf16 ----

static_assert(f32_to_fp16(1.0f) == 0x3c00);
static_assert(f32_to_fp16(65504.0f) == 0x7bff);
static_assert(f32_to_fp16(65520.0f) == 0x7c00);  // the tie above the largest half rounds to inf
static_assert(fp16_to_f32(0x0001) == 0x1p-24f);
static_assert(f32_to_bf16(1.0f) == 0x3f80);
static_assert(e8m0_to_f32_half(127) == 0.5f);
static_assert(e8m0_to_f32_half(0) == 0x1p-128f);

TEST(Fp16, MatchesNumpyAndGgufPy) {
    const auto& conv = vectors().at("convert");
    const auto f32 = hex_as<float>(conv.at("f32"));
    const auto f16 = hex_as<uint16_t>(conv.at("f16"));
    const auto bf16 = hex_as<uint16_t>(conv.at("bf16"));
    ASSERT_EQ(f32.size(), f16.size());
    ASSERT_EQ(f32.size(), bf16.size());
    ASSERT_GT(f32.size(), 1000u);
    Mismatches m16, mbf;
    for (size_t i = 0; i < f32.size(); ++i) {
        if (f32_to_fp16(f32[i]) != f16[i]) {
            m16.add("f32 {:08x}: f16 {:04x}, numpy {:04x}", bits(f32[i]), f32_to_fp16(f32[i]), f16[i]);
        }
        if (f32_to_bf16(f32[i]) != bf16[i]) {
            mbf.add("f32 {:08x}: bf16 {:04x}, gguf-py {:04x}", bits(f32[i]), f32_to_bf16(f32[i]), bf16[i]);
        }
    }
    EXPECT_EQ(m16.count, 0) << m16.text;
    EXPECT_EQ(mbf.count, 0) << mbf.text;
}

TEST(Fp16, EveryHalfAndBf16RoundTrips) {
    Mismatches m;
    for (uint32_t h = 0; h < 0x10000; ++h) {
        const auto hv = static_cast<uint16_t>(h);
        const bool nan = (h & 0x7c00) == 0x7c00 && (h & 0x3ff) != 0;
        if (!nan && f32_to_fp16(fp16_to_f32(hv)) != hv) m.add("f16 {:04x} -> {}", h, fp16_to_f32(hv));
        if (nan && !std::isnan(fp16_to_f32(hv))) m.add("f16 NaN {:04x} -> {}", h, fp16_to_f32(hv));
        const bool bnan = (h & 0x7f80) == 0x7f80 && (h & 0x7f) != 0;
        if (!bnan && f32_to_bf16(bf16_to_f32(hv)) != hv) m.add("bf16 {:04x} -> {}", h, bf16_to_f32(hv));
    }
    EXPECT_EQ(m.count, 0) << m.text;
    // Subnormal halves are exact multiples of 2^-24.
    EXPECT_EQ(fp16_to_f32(0x03ff), 1023.0f * 0x1p-24f);
    EXPECT_EQ(fp16_to_f32(0x8001), -0x1p-24f);
}

// Every ISA's activation rounding gives the scalar bits (NaNs included).
TEST(Fp16, IsaRoundingMatchesScalar) {
    const auto f32 = hex_as<float>(vectors().at("convert").at("f32"));
    const auto n = static_cast<int64_t>(f32.size());
    for (d::Isa isa : supported_isas()) {
        const d::IsaOps& ops = d::isa_ops(isa);
        for (const bool bf : {false, true}) {
            std::vector<float> got(f32.size()), want(f32.size());
            (bf ? ops.round_bf16 : ops.round_f16)(f32.data(), got.data(), n);
            (bf ? d::kScalarOps.round_bf16 : d::kScalarOps.round_f16)(f32.data(), want.data(), n);
            Mismatches m;
            for (size_t i = 0; i < f32.size(); ++i) {
                if (bits(got[i]) != bits(want[i])) {
                    m.add("{:08x}: {:08x}, scalar {:08x}", bits(f32[i]), bits(got[i]), bits(want[i]));
                }
            }
            EXPECT_EQ(m.count, 0) << d::isa_name(isa) << (bf ? " bf16\n" : " f16\n") << m.text;
        }
    }
}

// ---- dequantize_row against gguf-py ----

void expect_dequant_matches(TensorType type, const std::string& data_hex, const std::string& want_hex,
                            const std::string& what) {
    const auto data = hex_bytes(data_hex);
    const auto want = hex_as<float>(want_hex);
    std::vector<float> got(want.size());
    dequantize_row(type, data.data(), static_cast<int64_t>(got.size()), got.data());
    Mismatches m;
    for (size_t i = 0; i < want.size(); ++i) {
        if (bits(got[i]) != bits(want[i]))
            m.add("[{}] {} ({:08x}), gguf-py {} ({:08x})", i, got[i], bits(got[i]), want[i], bits(want[i]));
    }
    EXPECT_EQ(m.count, 0) << what << "\n" << m.text;
}

TEST(Dequantize, MatchesGgufPyBitForBit) {
    const auto& doc = vectors();
    int r = 0;
    for (const auto& row : doc.at("rows")) {
        expect_dequant_matches(TensorType::Q8_0, row.at("q8_0"), row.at("q8_0_dequant"), fmt::format("q8_0 row {}", r));
        expect_dequant_matches(TensorType::MXFP4, row.at("mxfp4"), row.at("mxfp4_dequant"),
                               fmt::format("mxfp4 row {}", r));
        ++r;
    }
    const auto& raw = doc.at("raw");
    expect_dequant_matches(TensorType::Q8_0, raw.at("q8_0"), raw.at("q8_0_dequant"), "raw q8_0 blocks");
    expect_dequant_matches(TensorType::MXFP4, raw.at("mxfp4"), raw.at("mxfp4_dequant"), "raw mxfp4 blocks");
}

TEST(Dequantize, Bf16AndF16AndF32) {
    for (const auto& row : vectors().at("rows")) {
        const auto x = hex_as<float>(row.at("f32"));
        const auto bf = hex_bytes(row.at("bf16"));
        ASSERT_EQ(bf.size(), 2 * x.size());
        std::vector<float> got(x.size());
        dequantize_row(TensorType::BF16, bf.data(), static_cast<int64_t>(x.size()), got.data());
        for (size_t i = 0; i < x.size(); ++i) {
            uint16_t b;
            std::memcpy(&b, bf.data() + 2 * i, 2);
            EXPECT_EQ(f32_to_bf16(x[i]), b) << i;  // our rounding gives gguf-py's bytes
            EXPECT_EQ(bits(got[i]), static_cast<uint32_t>(b) << 16) << i;
        }
    }
    const std::vector<uint16_t> halves = {0x3c00, 0x0001, 0xfbff, 0x7c00};
    std::vector<float> out(halves.size());
    dequantize_row(TensorType::F16, reinterpret_cast<const std::byte*>(halves.data()), 4, out.data());
    EXPECT_EQ(out, (std::vector<float>{1.0f, 0x1p-24f, -65504.0f, INFINITY}));
    const std::vector<float> f = {1.5f, -2.0f};
    dequantize_row(TensorType::F32, reinterpret_cast<const std::byte*>(f.data()), 2, out.data());
    EXPECT_EQ(out[0], 1.5f);
    EXPECT_EQ(out[1], -2.0f);
}

TEST(Dequantize, RejectsUnsupportedTypesAndPartialBlocks) {
    std::vector<std::byte> buf(64);
    std::vector<float> out(64);
    EXPECT_THROW(dequantize_row(TensorType::IQ2_XXS, buf.data(), 256, out.data()), Error);
    EXPECT_THROW(dequantize_row(TensorType::Q8_0, buf.data(), 33, out.data()), Error);
}

// ---- Q8_0 activation quantization ----

// The test's own ggml x86 quantize_row_q8_0 (the AVX2 branch llama.cpp runs on x86): d = amax / 127
// (f16), q = x * (127 / amax) rounded half to even (by hand, not with std::nearbyint, so the
// engine's use of it is checked independently).
std::vector<d::BlockQ8_0> quantize_here(const float* x, int64_t cols) {
    std::vector<d::BlockQ8_0> out(static_cast<size_t>(cols / 32));
    for (size_t b = 0; b < out.size(); ++b) {
        float amax = 0.0f;
        for (int j = 0; j < 32; ++j) amax = std::max(amax, std::abs(x[b * 32 + j]));
        out[b].d = f32_to_fp16(amax / 127.0f);
        const float id = amax == 0.0f ? 0.0f : 127.0f / amax;
        for (int j = 0; j < 32; ++j) {
            const float v = x[b * 32 + j] * id;
            float r = std::trunc(v);
            const float frac = std::abs(v - r);
            const bool odd = std::fmod(r, 2.0f) != 0.0f;
            if (frac > 0.5f || (frac == 0.5f && odd)) r += v < 0 ? -1.0f : 1.0f;
            out[b].qs[j] = static_cast<int8_t>(r);
        }
    }
    return out;
}

TEST(QuantizeQ8_0, RoundsTiesToEven) {
    // amax 127 makes id exactly 1, so these values are their own x * id. Ties go to the even
    // neighbour (vroundps, nearest), and 0.49999997 (where floor(x + 0.5) would give 1) stays 0.
    std::vector<float> x(32, 0.0f);
    const float vals[] = {127.0f, 2.5f, -3.5f, 0.5f, 1.5f, -0.5f, -2.5f, 126.5f, 3.4999998f, 0.49999997f};
    std::copy(std::begin(vals), std::end(vals), x.begin());
    const int8_t want[] = {127, 2, -4, 0, 2, 0, -2, 126, 3, 0};
    for (d::Isa isa : supported_isas()) {
        d::ActBlockQ8 blk{};
        d::isa_ops(isa).quantize_q8_0(x.data(), &blk, 32);
        EXPECT_EQ(blk.d, 1.0f) << d::isa_name(isa);
        for (int j = 0; j < 10; ++j) EXPECT_EQ(blk.qs[j], want[j]) << d::isa_name(isa) << " element " << j;
    }
}

TEST(QuantizeQ8_0, EveryIsaMatchesTheTestsQuantizer) {
    std::mt19937 rng(7);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    const int64_t cols = 4096 + 32;
    std::vector<float> x(cols);
    for (int rep = 0; rep < 20; ++rep) {
        const float scale = std::ldexp(1.0f, rep - 10);
        for (auto& v : x) v = normal(rng) * scale;
        if (rep == 3) std::fill(x.begin() + 64, x.begin() + 96, 0.0f);  // a zero block
        const auto want = quantize_here(x.data(), cols);
        for (d::Isa isa : supported_isas()) {
            std::vector<d::ActBlockQ8> got(want.size());
            d::isa_ops(isa).quantize_q8_0(x.data(), got.data(), cols);
            Mismatches m;
            for (size_t b = 0; b < want.size(); ++b) {
                if (bits(got[b].d) != bits(fp16_to_f32(want[b].d))) {
                    m.add("block {}: d {:08x}, want f16 {:04x}", b, bits(got[b].d), want[b].d);
                }
                for (int j = 0; j < 32; ++j) {
                    if (got[b].qs[j] != want[b].qs[j])
                        m.add("block {} [{}]: q {}, want {}", b, j, got[b].qs[j], want[b].qs[j]);
                }
            }
            EXPECT_EQ(m.count, 0) << d::isa_name(isa) << " rep " << rep << "\n" << m.text;
        }
    }
}

// gguf-py quantizes like ggml's quantize_row_q8_0_ref (x * (1 / d), ties away from zero), the
// activation quantizer like ggml's x86 code (x * (127 / amax), ties to even): the scales are equal
// and a value may differ by one only where x * (127 / amax) is within a few ulps of a tie.
TEST(QuantizeQ8_0, EqualsGgufPyExceptAtTies) {
    for (const auto& row : vectors().at("rows")) {
        const auto x = hex_as<float>(row.at("f32"));
        const auto py = hex_as<d::BlockQ8_0>(row.at("q8_0"));
        std::vector<d::ActBlockQ8> got(py.size());
        d::kScalarOps.quantize_q8_0(x.data(), got.data(), static_cast<int64_t>(x.size()));
        int differ = 0;
        for (size_t b = 0; b < py.size(); ++b) {
            EXPECT_EQ(bits(got[b].d), bits(fp16_to_f32(py[b].d))) << "block " << b;
            float amax = 0.0f;
            for (int j = 0; j < 32; ++j) amax = std::max(amax, std::abs(x[b * 32 + j]));
            for (int j = 0; j < 32; ++j) {
                if (got[b].qs[j] == py[b].qs[j]) continue;
                ++differ;
                const float v = x[b * 32 + j] * (127.0f / amax);
                EXPECT_EQ(std::abs(got[b].qs[j] - py[b].qs[j]), 1) << "block " << b << " [" << j << "]";
                EXPECT_NEAR(std::abs(v - std::trunc(v)), 0.5f, 1e-4f) << "block " << b << " [" << j << "]";
            }
        }
        EXPECT_LE(differ, 2);
    }
}

// ---- Q8_1 and Q8_K activation quantizers ----

TEST(QuantizeQ8_1, SumIsRoundedFromTheUnroundedScale) {
    std::vector<float> x(64, 1.0f);
    for (int j = 32; j < 64; ++j) x[j] = j % 2 == 0 ? 2.5f : -0.5f;
    d::ActBlockQ8_1 y[2];
    d::quantize_q8_1(x.data(), y, 64);
    // amax 1: d = f16(1 / 127), q = 127 everywhere, s = f16(32 * 127 * (1 / 127)) = 32.
    EXPECT_EQ(y[0].d, fp16_to_f32(f32_to_fp16(1.0f / 127.0f)));
    EXPECT_EQ(y[0].s, 32.0f);
    for (int j = 0; j < 32; ++j) EXPECT_EQ(y[0].qs[j], 127);
    // amax 2.5: 2.5 -> 127, -0.5 -> round(-25.4) = -25; s = f16(16 * 102 / 50.8).
    for (int j = 0; j < 32; ++j) EXPECT_EQ(y[1].qs[j], j % 2 == 0 ? 127 : -25) << j;
    EXPECT_EQ(y[1].s, fp16_to_f32(f32_to_fp16(static_cast<float>(16 * 102) * (2.5f / 127.0f))));
}

TEST(QuantizeQ8_K, FollowsGgmlRef) {
    std::vector<float> x(3 * 256, 0.0f);
    // Block 0: the largest magnitude is +127 (first), so iscale = -1, d = -1 and q = round-half-even(-x).
    const float v0[] = {2.5f, 3.5f, -0.5f, 1.5f, -126.6f, 127.0f, -127.0f, 0.49f};
    const int8_t q0[] = {-2, -4, 0, -2, 127, -127, 127, 0};
    std::copy(std::begin(v0), std::end(v0), x.begin());
    // Block 1 is all zero. Block 2: -50 comes first: iscale = 127 / 50, d = 50 / 127 (positive).
    x[512] = -50.0f;
    x[513] = 50.0f;
    x[514] = 25.0f;  // 63.5 -> 64 (even)
    d::ActBlockQ8K y[3];
    d::quantize_q8_K(x.data(), y, 3 * 256);
    EXPECT_EQ(y[0].d, -1.0f);
    for (int j = 0; j < 8; ++j) EXPECT_EQ(y[0].qs[j], q0[j]) << j;
    int sum = 0;
    for (int j = 0; j < 8; ++j) sum += q0[j];
    EXPECT_EQ(y[0].bsums[0], sum);
    EXPECT_EQ(y[0].bsums[1], 0);
    EXPECT_EQ(y[1].d, 0.0f);
    for (int j = 0; j < 256; ++j) EXPECT_EQ(y[1].qs[j], 0);
    const float iscale = -127.0f / -50.0f;
    EXPECT_EQ(y[2].d, 1.0f / iscale);
    EXPECT_EQ(y[2].qs[0], -127);
    EXPECT_EQ(y[2].qs[1], 127);
    EXPECT_EQ(y[2].qs[2], 64);
    EXPECT_EQ(y[2].bsums[0], 64);
}

// ---- matmul ----

struct Weights {
    TensorType type;
    int64_t rows, cols;
    std::vector<std::byte> data;  // [rows][row bytes]
    MatrixRef ref() const { return {type, data.data(), rows, cols}; }
};

template <class T>
void put(std::vector<std::byte>& out, T v) {
    const size_t at = out.size();
    out.resize(at + sizeof v);
    std::memcpy(out.data() + at, &v, sizeof v);
}

// Where a block keeps its f16 scales (the other bytes may hold anything).
std::vector<size_t> f16_fields(TensorType type) {
    switch (type) {
        case TensorType::Q4_1:
        case TensorType::Q5_1:
        case TensorType::Q4_K:
        case TensorType::Q5_K: return {0, 2};
        case TensorType::Q2_K: return {offsetof(quant::BlockQ2_K, d), offsetof(quant::BlockQ2_K, dmin)};
        case TensorType::Q3_K: return {offsetof(quant::BlockQ3_K, d)};
        case TensorType::Q6_K: return {offsetof(quant::BlockQ6_K, d)};
        default: return {0};
    }
}

Weights random_weights(TensorType type, int64_t rows, int64_t cols, std::mt19937& rng) {
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::uniform_int_distribution<int> byte(0, 255);
    std::uniform_int_distribution<int> exp(118, 134);
    std::uniform_real_distribution<float> scale(0.001f, 0.05f);
    Weights w{type, rows, cols, {}};
    switch (type) {
        case TensorType::F32:
            for (int64_t i = 0; i < rows * cols; ++i) put(w.data, normal(rng));
            break;
        case TensorType::F16:
            for (int64_t i = 0; i < rows * cols; ++i) put(w.data, f32_to_fp16(normal(rng)));
            break;
        case TensorType::BF16:
            for (int64_t i = 0; i < rows * cols; ++i) put(w.data, f32_to_bf16(normal(rng)));
            break;
        default: {  // random bytes (Q8_0 may hold -128, which ggml never writes), plausible scales
            const TypeTraits& t = type_traits(type);
            const int64_t n_blocks = rows * cols / static_cast<int64_t>(t.block_size);
            w.data.resize(static_cast<size_t>(n_blocks) * t.type_size);
            for (auto& b : w.data) b = static_cast<std::byte>(byte(rng));
            for (int64_t b = 0; b < n_blocks; ++b) {
                std::byte* blk = w.data.data() + b * static_cast<int64_t>(t.type_size);
                if (type == TensorType::MXFP4) {
                    blk[0] = static_cast<std::byte>(exp(rng));
                    continue;
                }
                for (size_t at : f16_fields(type)) {
                    const uint16_t h = f32_to_fp16(byte(rng) % 2 == 0 ? scale(rng) : -scale(rng));
                    std::memcpy(blk + at, &h, 2);
                }
            }
        }
    }
    EXPECT_EQ(w.data.size(), rows * *row_bytes(type, static_cast<uint64_t>(cols)));
    return w;
}

std::vector<float> random_activations(int64_t n, int64_t cols, std::mt19937& rng) {
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<float> x(static_cast<size_t>(n * cols));
    for (auto& v : x) v = normal(rng) * 0.5f;
    if (cols >= 64) {
        for (int64_t j = 32; j < 64; ++j) x[j] = 0.0f;  // an all-zero activation block
    }
    return x;
}

// The test's own ggml quantize_row_q8_K_ref: the first element of largest magnitude maps to -127.
std::vector<double> q8_K_here(const float* x, int64_t cols) {
    std::vector<double> out(static_cast<size_t>(cols));
    for (int64_t b = 0; b < cols / 256; ++b) {
        const float* v = x + b * 256;
        int at = 0;
        for (int j = 1; j < 256; ++j) {
            if (std::abs(v[j]) > std::abs(v[at])) at = j;
        }
        if (v[at] == 0.0f) continue;
        const float iscale = -127.0f / v[at];
        for (int j = 0; j < 256; ++j) {
            const float q = std::min(127.0f, std::nearbyint(iscale * v[j]));
            out[static_cast<size_t>(b * 256 + j)] = static_cast<double>(1.0f / iscale) * q;
        }
    }
    return out;
}

// One token's activations as the dot product sees them, computed here: rounded to f16 / bf16, or
// quantized and expanded. For Q8_1 also each block's s (ggml's f16(d * sum(q))).
struct Converted {
    std::vector<double> x;  // [cols]
    std::vector<double> s;  // [cols / 32], Q8_1 only
};

Converted converted_here(TensorType type, const float* x, int64_t cols) {
    Converted out;
    out.x.resize(static_cast<size_t>(cols));
    switch (type) {
        case TensorType::F32:
            for (int64_t c = 0; c < cols; ++c) out.x[c] = x[c];
            return out;
        case TensorType::F16:
            for (int64_t c = 0; c < cols; ++c) out.x[c] = fp16_to_f32(f32_to_fp16(x[c]));
            return out;
        case TensorType::BF16:
            for (int64_t c = 0; c < cols; ++c) out.x[c] = bf16_to_f32(f32_to_bf16(x[c]));
            return out;
        default: break;
    }
    if (d::act_kind(type) == d::ActKind::Q8_K) {
        out.x = q8_K_here(x, cols);
        return out;
    }
    const auto q = quantize_here(x, cols);
    for (int64_t c = 0; c < cols; ++c) out.x[c] = static_cast<double>(fp16_to_f32(q[c / 32].d)) * q[c / 32].qs[c % 32];
    if (d::act_kind(type) == d::ActKind::Q8_1) {
        for (size_t b = 0; b < q.size(); ++b) {
            int sum = 0;
            for (int j = 0; j < 32; ++j) sum += q[b].qs[j];
            const float d_full = [&] {
                float amax = 0.0f;
                for (int j = 0; j < 32; ++j) amax = std::max(amax, std::abs(x[b * 32 + j]));
                return amax / 127.0f;
            }();
            out.s.push_back(fp16_to_f32(f32_to_fp16(static_cast<float>(sum) * d_full)));
        }
    }
    return out;
}

bool dequantizable(TensorType type) {
    return quant::can_dequantize(type) || type == TensorType::F32 || type == TensorType::F16 ||
           type == TensorType::BF16 || type == TensorType::Q8_0 || type == TensorType::MXFP4;
}

// y in double from dequantized weights and converted activations, and sum |w x| per output
// (the scale the f32 rounding errors are relative to). Q4_1 / Q5_1 take ggml's m * s for the
// min's part: sum (w - m) x + m s.
void double_reference(const Weights& w, const std::vector<float>& x, int64_t n, std::vector<double>& y,
                      std::vector<double>& mag) {
    const size_t row_bytes = w.data.size() / static_cast<size_t>(w.rows);
    const bool q8_1 = w.type == TensorType::Q4_1 || w.type == TensorType::Q5_1;
    std::vector<float> wrow(static_cast<size_t>(w.cols));
    y.assign(static_cast<size_t>(n * w.rows), 0.0);
    mag.assign(y.size(), 0.0);
    std::vector<Converted> xs;
    for (int64_t t = 0; t < n; ++t) xs.push_back(converted_here(w.type, x.data() + t * w.cols, w.cols));
    for (int64_t r = 0; r < w.rows; ++r) {
        const std::byte* row = w.data.data() + r * row_bytes;
        dequantize_row(w.type, row, w.cols, wrow.data());
        for (int64_t t = 0; t < n; ++t) {
            double s = 0.0, m = 0.0;
            for (int64_t c = 0; c < w.cols; ++c) {
                s += wrow[c] * xs[t].x[c];
                m += std::abs(wrow[c] * xs[t].x[c]);
            }
            if (q8_1) {
                const size_t block_bytes = type_traits(w.type).type_size;
                for (int64_t b = 0; b < w.cols / 32; ++b) {
                    uint16_t mh;
                    std::memcpy(&mh, row + b * static_cast<int64_t>(block_bytes) + 2, 2);
                    double sum_x = 0.0;
                    for (int j = 0; j < 32; ++j) sum_x += xs[t].x[b * 32 + j];
                    s += fp16_to_f32(mh) * (xs[t].s[b] - sum_x);
                    m += std::abs(fp16_to_f32(mh) * xs[t].s[b]);
                }
            }
            y[t * w.rows + r] = s;
            mag[t * w.rows + r] = m;
        }
    }
}

constexpr double kRelTol = 1e-5;  // of sum |w x|: f32 sums in another order, another rounding

const TensorType kAllTypes[] = {TensorType::F32,  TensorType::F16,    TensorType::BF16,   TensorType::Q4_0,
                                TensorType::Q4_1, TensorType::Q5_0,   TensorType::Q5_1,   TensorType::Q8_0,
                                TensorType::Q2_K, TensorType::Q3_K,   TensorType::Q4_K,   TensorType::Q5_K,
                                TensorType::Q6_K, TensorType::IQ4_NL, TensorType::IQ4_XS, TensorType::MXFP4};

// Row lengths: 1-3 blocks, and a long row (several 8-chunk passes of the panel kernels, a partial
// chunk for the 32-element types).
std::vector<int64_t> test_cols(TensorType type) {
    const int64_t block = type_traits(type).block_size;
    if (block == 1) return {32, 64, 96, 4096 + 32};
    if (block == 32) return {32, 64, 96, 4096 + 32};
    return {256, 512, 768, 256 * 17};
}

class MatmulTest : public ::testing::TestWithParam<TensorType> {};

// matmul_reference against the double-precision sum computed here.
TEST_P(MatmulTest, ReferenceMatchesDoublePrecision) {
    const TensorType type = GetParam();
    if (!dequantizable(type)) GTEST_SKIP() << "quant::dequantize_row cannot decode " << type_name(type) << " yet";
    std::mt19937 rng(1234 + static_cast<unsigned>(type));
    for (int64_t cols : test_cols(type)) {
        for (int64_t rows : {int64_t{1}, int64_t{7}, int64_t{33}}) {
            for (int64_t n : {int64_t{1}, int64_t{4}, int64_t{17}}) {
                const Weights w = random_weights(type, rows, cols, rng);
                const auto x = random_activations(n, cols, rng);
                std::vector<float> y(static_cast<size_t>(n * rows), NAN);
                matmul_reference(w.ref(), x.data(), n, y.data());
                std::vector<double> want, mag;
                double_reference(w, x, n, want, mag);
                Mismatches m;
                for (size_t i = 0; i < y.size(); ++i) {
                    if (!(std::abs(y[i] - want[i]) <= kRelTol * mag[i])) {
                        m.add("y[{}][{}] = {}, double {} (|w x| sum {})", i / rows, i % rows, y[i], want[i], mag[i]);
                    }
                }
                EXPECT_EQ(m.count, 0) << type_name(type) << " rows " << rows << " cols " << cols << " n " << n << "\n"
                                      << m.text;
            }
        }
    }
}

// Each ISA, threaded, against the one-thread scalar reference.
TEST_P(MatmulTest, EveryIsaMatchesReference) {
    const TensorType type = GetParam();
    if (!dequantizable(type)) GTEST_SKIP() << "quant::dequantize_row cannot decode " << type_name(type) << " yet";
    std::mt19937 rng(99 + static_cast<unsigned>(type));
    ThreadPool pool(3);
    const auto cols_list = test_cols(type);
    for (size_t ci = 0; ci < cols_list.size(); ++ci) {
        const int64_t cols = cols_list[ci];
        for (int64_t rows : {int64_t{1}, int64_t{7}, int64_t{33}}) {
            for (int64_t n : {1, 2, 3, 4, 5, 6, 7, 8, 9, 17}) {
                if (ci + 1 == cols_list.size() && n > 4 && n != 17) continue;  // the long rows: fewer token counts
                const Weights w = random_weights(type, rows, cols, rng);
                const auto x = random_activations(n, cols, rng);
                std::vector<float> ref(static_cast<size_t>(n * rows), NAN);
                matmul_reference(w.ref(), x.data(), n, ref.data());
                std::vector<double> want, mag;
                double_reference(w, x, n, want, mag);
                for (d::Isa isa : supported_isas()) {
                    std::vector<float> y(ref.size(), NAN);
                    d::matmul_with_isa(isa, w.ref(), x.data(), n, y.data(), &pool);
                    Mismatches m;
                    for (size_t i = 0; i < y.size(); ++i) {
                        const bool ok = isa == d::Isa::Scalar ? bits(y[i]) == bits(ref[i])
                                                              : std::abs(y[i] - ref[i]) <= kRelTol * mag[i];
                        if (!ok) m.add("y[{}][{}] = {}, reference {}", i / rows, i % rows, y[i], ref[i]);
                    }
                    EXPECT_EQ(m.count, 0) << d::isa_name(isa) << " " << type_name(type) << " rows " << rows << " cols "
                                          << cols << " n " << n << "\n"
                                          << m.text;
                }
            }
        }
    }
}

// Every ISA against the reference where the integer sums are largest: every weight byte the same
// (the largest and the smallest values, the nibbles 7 and 8), activations that all quantize to
// +-127 (token 0: all +1, token 1: all -1, token 2: alternating), so each product has the
// largest magnitude and, for the first two tokens, one sign. The AVX2 kernel sums several
// products in int16 for the narrow types; this is where that would saturate. MXFP4 also takes the
// smallest exponents (subnormal scales).
TEST_P(MatmulTest, EveryIsaMatchesReferenceAtExtremes) {
    const TensorType type = GetParam();
    if (!dequantizable(type)) GTEST_SKIP() << "quant::dequantize_row cannot decode " << type_name(type) << " yet";
    const TypeTraits& t = type_traits(type);
    if (t.block_size == 1) GTEST_SKIP() << "not a block type";
    ThreadPool pool(2);
    const int64_t rows = 5, cols = test_cols(type).back(), n = 3;
    std::vector<float> x(static_cast<size_t>(n * cols));  // [n][cols]
    for (int64_t c = 0; c < cols; ++c) {
        x[c] = 1.0f;
        x[cols + c] = -1.0f;
        x[2 * cols + c] = c % 2 == 0 ? 1.0f : -1.0f;
    }
    const uint8_t mxfp4_exps[] = {0, 1, 2, 127, 130};
    for (const uint8_t fill : {uint8_t{0x00}, uint8_t{0xff}, uint8_t{0x77}, uint8_t{0x88}}) {
        Weights w{type, rows, cols, {}};
        const int64_t n_blocks = rows * cols / static_cast<int64_t>(t.block_size);
        w.data.assign(static_cast<size_t>(n_blocks) * t.type_size, static_cast<std::byte>(fill));
        for (int64_t b = 0; b < n_blocks; ++b) {
            std::byte* blk = w.data.data() + b * static_cast<int64_t>(t.type_size);
            if (type == TensorType::MXFP4) {
                blk[0] = static_cast<std::byte>(mxfp4_exps[b % 5]);
                continue;
            }
            for (size_t at : f16_fields(type)) {
                const uint16_t h = f32_to_fp16(b % 2 == 0 ? 0.01f : -0.02f);
                std::memcpy(blk + at, &h, 2);
            }
        }
        std::vector<float> ref(static_cast<size_t>(n * rows), NAN);
        matmul_reference(w.ref(), x.data(), n, ref.data());
        std::vector<double> want, mag;
        double_reference(w, x, n, want, mag);
        for (d::Isa isa : supported_isas()) {
            std::vector<float> y(ref.size(), NAN);
            d::matmul_with_isa(isa, w.ref(), x.data(), n, y.data(), &pool);
            Mismatches m;
            for (size_t i = 0; i < y.size(); ++i) {
                if (!(std::abs(y[i] - ref[i]) <= kRelTol * mag[i])) {
                    m.add("y[{}][{}] = {}, reference {}", i / rows, i % rows, y[i], ref[i]);
                }
            }
            EXPECT_EQ(m.count, 0) << d::isa_name(isa) << " " << type_name(type) << " bytes "
                                  << fmt::format("{:#04x}", fill) << "\n"
                                  << m.text;
        }
    }
}

// One token at a time (the decode kernels), at the extremes above and with random weights, over
// rows long enough that a kernel takes them in several passes.
TEST_P(MatmulTest, EveryIsaMatchesReferenceForOneTokenOnLongRows) {
    const TensorType type = GetParam();
    if (!dequantizable(type)) GTEST_SKIP() << "quant::dequantize_row cannot decode " << type_name(type) << " yet";
    const TypeTraits& t = type_traits(type);
    if (t.block_size == 1) GTEST_SKIP() << "not a block type";
    ThreadPool pool(2);
    std::mt19937 rng(7 + static_cast<unsigned>(type));
    const int64_t rows = 3, cols = 256 * 40;
    for (int pattern = 0; pattern < 3; ++pattern) {
        std::vector<float> x(static_cast<size_t>(cols));
        for (int64_t c = 0; c < cols; ++c)
            x[c] = pattern == 0 ? 1.0f : pattern == 1 ? -1.0f : (c % 2 == 0 ? 1.0f : -1.0f);
        for (const int fill : {-1, 0x00, 0xff, 0x77, 0x88}) {
            Weights w = random_weights(type, rows, cols, rng);
            if (fill >= 0) {
                const int64_t n_blocks = rows * cols / static_cast<int64_t>(t.block_size);
                w.data.assign(w.data.size(), static_cast<std::byte>(fill));
                for (int64_t b = 0; b < n_blocks; ++b) {
                    std::byte* blk = w.data.data() + b * static_cast<int64_t>(t.type_size);
                    if (type == TensorType::MXFP4) {
                        blk[0] = static_cast<std::byte>(b % 2 == 0 ? 1 : 127);
                        continue;
                    }
                    for (size_t at : f16_fields(type)) {
                        const uint16_t h = f32_to_fp16(b % 2 == 0 ? 0.01f : -0.02f);
                        std::memcpy(blk + at, &h, 2);
                    }
                }
            }
            const auto xs = fill < 0 ? random_activations(1, cols, rng) : x;
            std::vector<float> ref(static_cast<size_t>(rows), NAN);
            matmul_reference(w.ref(), xs.data(), 1, ref.data());
            std::vector<double> want, mag;
            double_reference(w, xs, 1, want, mag);
            for (d::Isa isa : supported_isas()) {
                std::vector<float> y(ref.size(), NAN);
                d::matmul_with_isa(isa, w.ref(), xs.data(), 1, y.data(), &pool);
                Mismatches m;
                for (size_t i = 0; i < y.size(); ++i) {
                    if (!(std::abs(y[i] - ref[i]) <= kRelTol * mag[i]))
                        m.add("y[{}] = {}, reference {}", i, y[i], ref[i]);
                }
                EXPECT_EQ(m.count, 0) << d::isa_name(isa) << " " << type_name(type) << " fill " << fill << " pattern "
                                      << pattern << "\n"
                                      << m.text;
            }
        }
    }
}

// The public entry point, with pools of several sizes.
TEST_P(MatmulTest, DispatchedMatchesReference) {
    const TensorType type = GetParam();
    if (!dequantizable(type)) GTEST_SKIP() << "quant::dequantize_row cannot decode " << type_name(type) << " yet";
    std::mt19937 rng(5 + static_cast<unsigned>(type));
    const Weights w = random_weights(type, 67, test_cols(type).back(), rng);
    const int64_t n = 9;
    const auto x = random_activations(n, w.cols, rng);
    std::vector<float> ref(static_cast<size_t>(n * w.rows));
    matmul_reference(w.ref(), x.data(), n, ref.data());
    std::vector<double> want, mag;
    double_reference(w, x, n, want, mag);
    for (int threads : {1, 2, 5}) {
        ThreadPool pool(threads);
        std::vector<float> y(ref.size(), NAN);
        matmul(w.ref(), x.data(), n, y.data(), pool);
        Mismatches m;
        for (size_t i = 0; i < y.size(); ++i) {
            if (!(std::abs(y[i] - ref[i]) <= kRelTol * mag[i])) m.add("y[{}] = {}, reference {}", i, y[i], ref[i]);
        }
        EXPECT_EQ(m.count, 0) << matmul_isa() << " threads " << threads << "\n" << m.text;
    }
}

INSTANTIATE_TEST_SUITE_P(Types, MatmulTest, ::testing::ValuesIn(kAllTypes),
                         [](const auto& param_info) { return std::string(type_name(param_info.param)); });

TEST(Matmul, SupportsTheGgufWeightTypes) {
    for (const TypeTraits& t : all_tensor_types()) {
        const bool want = std::find(std::begin(kAllTypes), std::end(kAllTypes), t.type) != std::end(kAllTypes);
        EXPECT_EQ(supports_matmul(t.type), want) << t.name;
    }
}

TEST(Matmul, RejectsBadArguments) {
    ThreadPool pool(2);
    std::vector<std::byte> buf(4096);
    std::vector<float> x(512), y(64);
    EXPECT_THROW(matmul({TensorType::IQ2_XXS, buf.data(), 1, 256}, x.data(), 1, y.data(), pool), Error);
    EXPECT_THROW(matmul({TensorType::Q8_0, buf.data(), 1, 48}, x.data(), 1, y.data(), pool), Error);
    EXPECT_THROW(matmul({TensorType::Q4_K, buf.data(), 1, 128}, x.data(), 1, y.data(), pool), Error);
    EXPECT_THROW(matmul_reference({TensorType::MXFP4, buf.data(), 1, 40}, x.data(), 1, y.data()), Error);
}

TEST(Matmul, EmptyShapes) {
    ThreadPool pool(2);
    std::vector<float> x(8, 1.0f), y(8, NAN);
    const std::vector<float> w(8, 1.0f);
    const auto* wd = reinterpret_cast<const std::byte*>(w.data());
    matmul({TensorType::F32, wd, 2, 4}, x.data(), 0, y.data(), pool);  // no tokens: y untouched
    EXPECT_TRUE(std::isnan(y[0]));
    matmul({TensorType::F32, wd, 2, 0}, x.data(), 3, y.data(), pool);  // no columns: zeros
    for (int i = 0; i < 6; ++i) EXPECT_EQ(y[i], 0.0f);
}

// Columns that are not a multiple of the vector width (F32 / F16 / BF16 have 1-element blocks).
TEST(Matmul, OddColumnCountsForFloatTypes) {
    std::mt19937 rng(11);
    ThreadPool pool(2);
    for (TensorType type : {TensorType::F32, TensorType::F16, TensorType::BF16}) {
        for (int64_t cols : {1, 7, 15, 17, 33, 100, 1001}) {
            const Weights w = random_weights(type, 5, cols, rng);
            const auto x = random_activations(6, cols, rng);
            std::vector<float> ref(30);
            matmul_reference(w.ref(), x.data(), 6, ref.data());
            std::vector<double> want, mag;
            double_reference(w, x, 6, want, mag);
            for (d::Isa isa : supported_isas()) {
                std::vector<float> y(30, NAN);
                d::matmul_with_isa(isa, w.ref(), x.data(), 6, y.data(), &pool);
                for (size_t i = 0; i < y.size(); ++i) {
                    EXPECT_LE(std::abs(y[i] - ref[i]), kRelTol * mag[i])
                        << d::isa_name(isa) << " " << type_name(type) << " cols " << cols << " [" << i << "]";
                    EXPECT_LE(std::abs(ref[i] - want[i]), kRelTol * mag[i]);
                }
            }
        }
    }
}

// matmul_batch gives every job exactly what matmul gives it alone: jobs of several types, a gate/up
// pair sharing one input (one conversion), a job with no tokens, odd row counts, on every ISA.
TEST(MatmulBatch, EqualsOneMatmulPerJob) {
    std::mt19937 rng(99);
    ThreadPool pool(2);
    const int64_t cols = 512;
    const TensorType types[] = {TensorType::Q4_K,  TensorType::Q4_K, TensorType::Q6_K, TensorType::Q8_0,
                                TensorType::MXFP4, TensorType::F32,  TensorType::Q5_0};
    const int64_t rows[] = {33, 33, 7, 48, 1, 17, 64};
    const int64_t ns[] = {3, 3, 1, 0, 5, 2, 9};
    std::vector<Weights> w;
    std::vector<std::vector<float>> x;
    for (size_t i = 0; i < std::size(types); ++i) {
        w.push_back(random_weights(types[i], rows[i], cols, rng));
        // jobs 0 and 1 share their input, as an expert's gate and up do
        x.push_back(i == 1 ? x[0] : random_activations(std::max<int64_t>(ns[i], 1), cols, rng));
    }
    for (d::Isa isa : supported_isas()) {
        std::vector<std::vector<float>> want(std::size(types)), got(std::size(types));
        std::vector<MatmulJob> jobs;
        for (size_t i = 0; i < std::size(types); ++i) {
            want[i].assign(static_cast<size_t>(std::max<int64_t>(ns[i], 1) * rows[i]), -1.0f);
            got[i] = want[i];
            d::matmul_with_isa(isa, w[i].ref(), x[i].data(), ns[i], want[i].data(), nullptr);
            jobs.push_back({w[i].ref(), i == 1 ? x[0].data() : x[i].data(), ns[i], got[i].data()});
        }
        d::matmul_batch_with_isa(isa, jobs, &pool);
        for (size_t i = 0; i < std::size(types); ++i) {
            ASSERT_EQ(got[i].size(), want[i].size());
            for (size_t j = 0; j < got[i].size(); ++j)
                ASSERT_EQ(bits(got[i][j]), bits(want[i][j])) << d::isa_name(isa) << " job " << i << " [" << j << "]";
        }
    }
}

// HYMOE_CPU_ISA lowers the choice (run the binary with it set to check; unset, the best ISA).
TEST(Matmul, IsaNameFollowsEnvironment) {
    const std::string name = matmul_isa();
    const char* env = std::getenv("HYMOE_CPU_ISA");
    const d::Isa best = d::best_isa();
    if (env == nullptr || *env == '\0') {
        EXPECT_EQ(name, d::isa_name(best));
    } else {
        d::Isa want = std::string(env) == "scalar" ? d::Isa::Scalar
                      : std::string(env) == "avx2" ? d::Isa::Avx2
                                                   : d::Isa::Avx512;
        if (static_cast<int>(want) > static_cast<int>(best)) want = best;
        EXPECT_EQ(name, d::isa_name(want));
    }
    std::printf("matmul ISA: %s (best on this CPU: %s)\n", name.c_str(), d::isa_name(best));
}

}  // namespace
}  // namespace hymoe::cpu
