// quant::dequantize_row and quant::quantize_row:
//  - dequantize_row against gguf-py (and llama.cpp's C dequantize_row_*, which the fixture script
//    checked to agree), bit for bit, on random and edge blocks of every type it decodes;
//  - quantize_row against llama.cpp's own quantize_row_*_ref (called by the fixture script through
//    llama-cpp-python's libggml-base), byte for byte, on rows of several shapes;
//  - both fixtures in tests/fixtures/quant_blocks.json, written by make_quant_blocks.py;
//  - quantize -> dequantize error within the bound each format implies, on seeded random rows;
//  - a row decodes as its blocks do one by one; bad types and lengths throw hymoe::Error.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "hymoe/error.hpp"
#include "quant/blocks.hpp"
#include "quant/fp16.hpp"
#include "quant/quant.hpp"
#include "test_support.hpp"

namespace hymoe::quant {
namespace {

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

std::vector<std::byte> hex_bytes(const std::string& hex) {
    std::vector<std::byte> out(hex.size() / 2);
    for (size_t i = 0; i < out.size(); ++i) {
        out[i] = static_cast<std::byte>(std::stoul(hex.substr(2 * i, 2), nullptr, 16));
    }
    return out;
}

std::vector<float> hex_floats(const std::string& hex) {
    const std::vector<std::byte> bytes = hex_bytes(hex);
    std::vector<float> out(bytes.size() / sizeof(float));
    std::memcpy(out.data(), bytes.data(), out.size() * sizeof(float));
    return out;
}

uint32_t bits(float f) {
    return std::bit_cast<uint32_t>(f);
}

TensorType type_named(const std::string& name) {
    const auto t = tensor_type_from_name(name);
    if (!t) throw Error("fixture names an unknown type " + name);
    return *t;
}

size_t bytes_of(TensorType type, int64_t n) {
    return static_cast<size_t>(row_bytes(type, static_cast<uint64_t>(n)).value());
}

std::filesystem::path fixture_path() {
    return test::fixtures_dir() / "quant_blocks.json";
}

// The fixture, or null when the file is missing (the tests then skip, saying so).
const nlohmann::json* fixture() {
    static const nlohmann::json doc = [] {
        if (!std::filesystem::exists(fixture_path())) return nlohmann::json();
        return nlohmann::json::parse(test::read_text(fixture_path()));
    }();
    return doc.is_null() ? nullptr : &doc;
}

#define REQUIRE_FIXTURE(var)                                                                             \
    const nlohmann::json* var = fixture();                                                               \
    if (var == nullptr)                                                                                  \
    GTEST_SKIP() << fixture_path().string()                                                              \
                 << " is missing: run tests/fixtures/make_quant_blocks.py (it is committed, so this is " \
                    "a broken checkout)"

// The types quantize_row must encode: the model generator and the matmul tests rely on these.
const TensorType kMustQuantize[] = {TensorType::F32,  TensorType::F16,  TensorType::BF16, TensorType::Q8_0,
                                    TensorType::Q4_0, TensorType::Q4_1, TensorType::Q5_0, TensorType::Q5_1,
                                    TensorType::Q4_K, TensorType::Q5_K, TensorType::Q6_K, TensorType::MXFP4};

// ---- dequantize against gguf-py ----

TEST(Dequantize, EveryTypeMatchesGgufPyBitForBit) {
    REQUIRE_FIXTURE(doc);
    const auto& types = doc->at("dequantize");
    ASSERT_GE(types.size(), 18u);
    for (const auto& [name, entry] : types.items()) {
        SCOPED_TRACE(name + " (" + entry.at("source").get<std::string>() + ")");
        const TensorType type = type_named(name);
        ASSERT_TRUE(can_dequantize(type));
        const auto n = entry.at("n").get<int64_t>();
        const std::vector<std::byte> src = hex_bytes(entry.at("bytes"));
        const std::vector<float> want = hex_floats(entry.at("f32"));
        ASSERT_EQ(src.size(), bytes_of(type, n));
        ASSERT_EQ(want.size(), static_cast<size_t>(n));
        std::vector<float> got(want.size());
        dequantize_row(type, src.data(), n, got.data());
        Mismatches m;
        for (size_t i = 0; i < want.size(); ++i) {
            if (bits(got[i]) != bits(want[i])) {
                m.add("[{}] {} ({:08x}), gguf-py {} ({:08x})", i, got[i], bits(got[i]), want[i], bits(want[i]));
            }
        }
        EXPECT_EQ(m.count, 0) << m.text;
    }
}

// Decoding a row of several blocks gives what decoding each block alone gives.
TEST(Dequantize, RowEqualsItsBlocksOneByOne) {
    REQUIRE_FIXTURE(doc);
    for (const auto& [name, entry] : doc->at("dequantize").items()) {
        SCOPED_TRACE(name);
        const TensorType type = type_named(name);
        const auto& traits = type_traits(type);
        const auto n = entry.at("n").get<int64_t>();
        const std::vector<std::byte> src = hex_bytes(entry.at("bytes"));
        std::vector<float> row(static_cast<size_t>(n));
        dequantize_row(type, src.data(), n, row.data());
        const int64_t qk = traits.block_size;
        ASSERT_GE(n / qk, 3) << "the fixture should hold several blocks";
        Mismatches m;
        std::vector<float> one(static_cast<size_t>(qk));
        for (int64_t b = 0; b < n / qk; ++b) {
            dequantize_row(type, src.data() + b * traits.type_size, qk, one.data());
            for (int64_t j = 0; j < qk; ++j) {
                if (bits(one[j]) != bits(row[b * qk + j]))
                    m.add("block {} [{}]: {} vs {}", b, j, one[j], row[b * qk + j]);
            }
        }
        EXPECT_EQ(m.count, 0) << m.text;
    }
}

// ---- quantize against llama.cpp ----

TEST(Quantize, EveryTypeMatchesGgmlByteForByte) {
    REQUIRE_FIXTURE(doc);
    const auto& q = doc->at("quantize");
    const auto n = q.at("n").get<int64_t>();
    std::vector<std::string> checked, not_handled;
    for (const auto& [name, entry] : q.at("types").items()) {
        const TensorType type = type_named(name);
        if (!can_quantize(type)) {
            not_handled.push_back(name);
            continue;
        }
        checked.push_back(name);
        for (const auto& [row_name, hex] : entry.at("rows").items()) {
            SCOPED_TRACE(fmt::format("{} row {} ({})", name, row_name, entry.at("source").get<std::string>()));
            const std::vector<float> x = hex_floats(q.at("f32").at(row_name));
            const std::vector<std::byte> want = hex_bytes(hex);
            ASSERT_EQ(x.size(), static_cast<size_t>(n));
            ASSERT_EQ(want.size(), bytes_of(type, n));
            std::vector<std::byte> got(want.size());
            quantize_row(type, x.data(), n, got.data());
            Mismatches m;
            const size_t block_bytes = type_traits(type).type_size;
            for (size_t i = 0; i < want.size(); ++i) {
                if (got[i] != want[i]) {
                    m.add("byte {} (block {}, offset {}): {:02x}, ggml {:02x}", i, i / block_bytes, i % block_bytes,
                          static_cast<int>(got[i]), static_cast<int>(want[i]));
                }
            }
            EXPECT_EQ(m.count, 0) << m.text;
        }
    }
    EXPECT_GE(checked.size(), 17u);
    for (TensorType t : kMustQuantize) {
        EXPECT_TRUE(can_quantize(t)) << type_name(t);
        if (t != TensorType::F32) {  // F32 is a copy; ggml has no quantize function for it
            EXPECT_NE(std::find(checked.begin(), checked.end(), std::string(type_name(t))), checked.end())
                << type_name(t) << " has no reference rows in the fixture";
        }
    }
    std::string skipped;
    for (const auto& s : not_handled) skipped += " " + s;
    if (!skipped.empty()) std::cout << "[ NOTE     ] references present, quantize not implemented:" << skipped << "\n";
}

// ---- round trip error bounds ----

// Rows of a seeded RNG: normal, tiny and huge magnitudes, one-sided, with outliers, with an
// all-zero block. n = 1024 (four super-blocks, 32 small blocks).
std::vector<std::vector<float>> random_rows() {
    std::mt19937 rng(1234);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::uniform_real_distribution<float> uni(-1.0f, 1.0f);
    constexpr int n = 1024;
    std::vector<std::vector<float>> rows;
    for (const float s : {1.0f, 1e-4f, 5e2f}) {
        std::vector<float> r(n);
        for (float& v : r) v = normal(rng) * s;
        rows.push_back(r);
    }
    std::vector<float> r(n);
    for (float& v : r) v = uni(rng) + 0.6f;  // mostly positive: the offset formats' min matters
    rows.push_back(r);
    for (float& v : r) v = normal(rng) * 0.05f;
    for (int k = 0; k < 20; ++k) r[rng() % n] = uni(rng) * 40.0f;  // outliers
    std::fill(r.begin() + 64, r.begin() + 96, 0.0f);               // an all-zero 32-block
    std::fill(r.begin() + 512, r.begin() + 768, 0.0f);             // an all-zero super-block
    rows.push_back(r);
    return rows;
}

// The f16 rounding of a scale: |d - fp16(d)| <= 2^-11 |fp16(d)| for normal halves, and at most
// half the subnormal step 2^-24 below them.
double f16_slack(float dh) {
    return std::ldexp(std::fabs(static_cast<double>(dh)), -11) + std::ldexp(1.0, -25);
}

// One element's quantization grid: value = scale * q + offset for integer q in [qmin, qmax].
// `slack` is what the encoder may lose beyond picking the nearest level of that grid (when it
// rounds against the f32 scale before the f16 one is stored, the chosen q is off by |q| times
// the f16 rounding of the scale). `max_clip_steps` is how far outside the grid's range the format
// lets an element of the block fall, in steps: 0 where the grid spans the block, 1 for Q4_0 /
// Q5_0 (whose positive side is one level shorter than the negative), none (< 0) for the K-quants.
struct Grid {
    double scale, offset;
    int qmin, qmax;
    double slack;
    double max_clip_steps;  // < 0: the range may clip (K-quant fits trade outliers for resolution)
};

// The grid of element j of a row of `type`, read from the encoded block.
Grid grid_of(TensorType type, const std::byte* row, int64_t j) {
    using enum TensorType;
    const auto& tr = type_traits(type);
    const std::byte* blk = row + (j / tr.block_size) * tr.type_size;
    const int64_t e = j % tr.block_size;  // index inside the block
    const auto load = [blk]<class B>(B* b) { std::memcpy(b, blk, sizeof(B)); };
    switch (type) {
        case Q8_0: {
            BlockQ8_0 b;
            load(&b);
            const float d = fp16_to_f32(b.d);
            return {d, 0, -127, 127, 127 * f16_slack(d), 0};
        }
        case Q8_1: {
            BlockQ8_1 b;
            load(&b);
            const float d = fp16_to_f32(b.d);
            return {d, 0, -127, 127, 127 * f16_slack(d), 0};
        }
        case Q4_0: {
            BlockQ4_0 b;
            load(&b);
            const float d = fp16_to_f32(b.d);
            return {d, 0, -8, 7, 8 * f16_slack(d), 1};
        }
        case Q5_0: {
            BlockQ5_0 b;
            load(&b);
            const float d = fp16_to_f32(b.d);
            return {d, 0, -16, 15, 16 * f16_slack(d), 1};
        }
        case Q4_1: {
            BlockQ4_1 b;
            load(&b);
            const float d = fp16_to_f32(b.d), m = fp16_to_f32(b.m);
            return {d, m, 0, 15, 15 * f16_slack(d) + f16_slack(m), 0};
        }
        case Q5_1: {
            BlockQ5_1 b;
            load(&b);
            const float d = fp16_to_f32(b.d), m = fp16_to_f32(b.m);
            return {d, m, 0, 31, 31 * f16_slack(d) + f16_slack(m), 0};
        }
        case Q8_K: {
            BlockQ8_K b;
            load(&b);
            return {b.d, 0, -127, 127, 0, 0};
        }
        case Q2_K: {
            BlockQ2_K b;
            load(&b);
            const uint8_t sc = b.scales[e / 16];
            return {fp16_to_f32(b.d) * static_cast<float>(sc & 15),
                    -(fp16_to_f32(b.dmin) * static_cast<float>(sc >> 4)),
                    0,
                    3,
                    0,
                    -1};
        }
        case Q3_K: {
            BlockQ3_K b;
            load(&b);
            const int s = static_cast<int>(e / 16);
            const int lo = s < 8 ? b.scales[s] & 15 : b.scales[s - 8] >> 4;
            const int hi = (b.scales[8 + s % 4] >> (2 * (s / 4))) & 3;
            return {fp16_to_f32(b.d) * static_cast<float>((lo | hi << 4) - 32), 0, -4, 3, 0, -1};
        }
        case Q4_K:
        case Q5_K: {
            // d, dmin and scales sit at the same offsets in both blocks.
            BlockQ4_K b;
            std::memcpy(&b, blk, offsetof(BlockQ4_K, qs));
            const int s = static_cast<int>(e / 32);
            const int sc = s < 4 ? b.scales[s] & 63 : (b.scales[s + 4] & 15) | (b.scales[s - 4] >> 6) << 4;
            const int m = s < 4 ? b.scales[s + 4] & 63 : (b.scales[s + 4] >> 4) | (b.scales[s] >> 6) << 4;
            return {fp16_to_f32(b.d) * static_cast<float>(sc),
                    -(fp16_to_f32(b.dmin) * static_cast<float>(m)),
                    0,
                    type == Q4_K ? 15 : 31,
                    0,
                    -1};
        }
        case Q6_K: {
            BlockQ6_K b;
            load(&b);
            return {fp16_to_f32(b.d) * static_cast<float>(b.scales[e / 16]), 0, -32, 31, 0, -1};
        }
        default: throw Error(fmt::format("no grid for {}", type_name(type)));
    }
}

// Every element decodes to the level of its grid nearest to it (within scale/2, plus the slack),
// after clipping to the grid's range; where the format bounds the clipping, it is at most
// max_clip_steps scale steps.
//   K-quants: q is re-chosen as nearest_int((x + dmin m) / (d sc)) with the stored scales, so each
//   element is within half a sub-block step of the grid; the fit may clip outliers.
//   Q8_0 / Q8_1 / Q8_K: d = amax / 127, so no element is clipped; |err| <= d/2.
//   Q4_0 / Q5_0: d = max / -8 (/ -16) puts the largest element exactly on q = -8 (-16); the other
//   side reaches 7 d (15 d), so an element near +8 d is clipped by up to d: |err| <= d.
//   Q4_1 / Q5_1: d = (max - min) / 15 (31), m = min: the grid spans the block; |err| <= d/2.
// All plus the f16 rounding of the scales (slack) and f32 rounding of the arithmetic (eps).
TEST(QuantizeRoundTrip, ErrorWithinTheFormatsBound) {
    using enum TensorType;
    const std::vector<std::vector<float>> rows = random_rows();
    for (TensorType type : {Q8_0, Q8_1, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q8_K}) {
        SCOPED_TRACE(type_name(type));
        ASSERT_TRUE(can_quantize(type));
        Mismatches m;
        for (size_t r = 0; r < rows.size(); ++r) {
            const std::vector<float>& x = rows[r];
            const auto n = static_cast<int64_t>(x.size());
            std::vector<std::byte> q(bytes_of(type, n));
            std::vector<float> y(x.size());
            quantize_row(type, x.data(), n, q.data());
            dequantize_row(type, q.data(), n, y.data());
            const int64_t qk = type_traits(type).block_size;
            for (int64_t j = 0; j < n; ++j) {
                const Grid g = grid_of(type, q.data(), j);
                double amax = 0;  // of the block: scales the f32 rounding allowance
                for (int64_t k = j / qk * qk; k < (j / qk + 1) * qk; ++k)
                    amax = std::max(amax, std::fabs(double{x[k]}));
                const double eps = 1e-5 * amax + 1e-30;
                const double lo = std::min(g.scale * g.qmin, g.scale * g.qmax) + g.offset;
                const double hi = std::max(g.scale * g.qmin, g.scale * g.qmax) + g.offset;
                const double xv = x[j];
                const double clip = std::max({0.0, lo - xv, xv - hi});
                const double err = std::fabs(xv - y[j]);
                const double bound = clip + 0.5 * std::fabs(g.scale) + g.slack + eps;
                if (!(err <= bound))
                    m.add("row {} [{}]: x {} -> {}, err {:.3g} > bound {:.3g}", r, j, xv, y[j], err, bound);
                if (g.max_clip_steps >= 0 && !(clip <= g.max_clip_steps * std::fabs(g.scale) + g.slack + eps)) {
                    m.add("row {} [{}]: x {} outside the grid [{}, {}]", r, j, xv, lo, hi);
                }
            }
        }
        EXPECT_EQ(m.count, 0) << m.text;
    }
}

// MXFP4: 2^(e-127) E2M1 values {0, 0.5, 1, 1.5, 2, 3, 4, 6} with the shared exponent putting the
// block maximum in [4, 8) units. The widest gap (4..6) is 2 units, so an element within the range
// is at most 1 unit from its level; above 6 units it saturates, at most 2 units off.
TEST(QuantizeRoundTrip, Mxfp4WithinOneUnit) {
    const std::vector<std::vector<float>> rows = random_rows();
    Mismatches m;
    for (size_t r = 0; r < rows.size(); ++r) {
        const std::vector<float>& x = rows[r];
        const auto n = static_cast<int64_t>(x.size());
        std::vector<std::byte> q(bytes_of(TensorType::MXFP4, n));
        std::vector<float> y(x.size());
        quantize_row(TensorType::MXFP4, x.data(), n, q.data());
        dequantize_row(TensorType::MXFP4, q.data(), n, y.data());
        for (int64_t j = 0; j < n; ++j) {
            BlockMxfp4 b;
            std::memcpy(&b, q.data() + j / kQK * sizeof(BlockMxfp4), sizeof b);
            const double unit = 2.0 * e8m0_to_f32_half(b.e);
            const double ax = std::fabs(double{x[j]});
            const double bound = (ax > 6 * unit ? ax - 5 * unit : unit) * (1 + 1e-6);
            if (!(std::fabs(x[j] - y[j]) <= bound && ax < 8 * unit)) {
                m.add("row {} [{}]: x {} -> {} (e {})", r, j, x[j], y[j], b.e);
            }
        }
    }
    EXPECT_EQ(m.count, 0) << m.text;
}

// F16 / BF16 / F32 are exact conversions: decoding gives round_to_fp16 / round_to_bf16 / x itself.
TEST(QuantizeRoundTrip, FloatTypesRoundToNearestEven) {
    const std::vector<std::vector<float>> rows = random_rows();
    Mismatches m;
    for (TensorType type : {TensorType::F32, TensorType::F16, TensorType::BF16}) {
        for (const std::vector<float>& x : rows) {
            const auto n = static_cast<int64_t>(x.size());
            std::vector<std::byte> q(bytes_of(type, n));
            std::vector<float> y(x.size());
            quantize_row(type, x.data(), n, q.data());
            dequantize_row(type, q.data(), n, y.data());
            for (size_t j = 0; j < x.size(); ++j) {
                const float want = type == TensorType::F16    ? round_to_fp16(x[j])
                                   : type == TensorType::BF16 ? round_to_bf16(x[j])
                                                              : x[j];
                if (bits(y[j]) != bits(want)) m.add("{} [{}]: {} -> {}, want {}", type_name(type), j, x[j], y[j], want);
            }
        }
    }
    EXPECT_EQ(m.count, 0) << m.text;
}

// A sanity check on the fits as a whole: relative RMS error on a normal row, well under what
// each format's bits give (a broken search that clips everything would blow through these).
TEST(QuantizeRoundTrip, RelativeRmsErrorOnANormalRow) {
    using enum TensorType;
    const std::vector<float> x = random_rows()[0];
    const auto n = static_cast<int64_t>(x.size());
    const std::pair<TensorType, double> limits[] = {{Q8_0, 0.006}, {Q8_1, 0.006}, {Q8_K, 0.01}, {Q6_K, 0.025},
                                                    {Q5_0, 0.05},  {Q5_1, 0.05},  {Q5_K, 0.04}, {Q4_0, 0.1},
                                                    {Q4_1, 0.1},   {Q4_K, 0.08},  {Q3_K, 0.2},  {Q2_K, 0.4},
                                                    {MXFP4, 0.2},  {IQ4_NL, 0.1}, {IQ4_XS, 0.1}};
    for (const auto& [type, limit] : limits) {
        std::vector<std::byte> q(bytes_of(type, n));
        std::vector<float> y(x.size());
        quantize_row(type, x.data(), n, q.data());
        dequantize_row(type, q.data(), n, y.data());
        double se = 0, sx = 0;
        for (size_t j = 0; j < x.size(); ++j) {
            se += (double{x[j]} - y[j]) * (double{x[j]} - y[j]);
            sx += double{x[j]} * x[j];
        }
        EXPECT_LT(std::sqrt(se / sx), limit) << type_name(type);
    }
}

// quantize_row writes exactly row_bytes bytes: nothing past the end of the row.
TEST(Quantize, WritesExactlyRowBytes) {
    const std::vector<float> x = random_rows()[0];
    for (const auto& t : all_tensor_types()) {
        if (!can_quantize(t.type)) continue;
        const auto n = static_cast<int64_t>(x.size());
        const size_t size = bytes_of(t.type, n);
        std::vector<std::byte> q(size + 64, std::byte{0xA5});
        quantize_row(t.type, x.data(), n, q.data());
        EXPECT_TRUE(std::all_of(q.begin() + static_cast<std::ptrdiff_t>(size), q.end(), [](std::byte b) {
            return b == std::byte{0xA5};
        })) << t.name;
    }
}

// ---- bad input ----

template <class F>
std::string error_of(F&& f) {
    try {
        f();
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

TEST(Quantize, RejectsUnsupportedTypesAndPartialBlocks) {
    std::vector<float> x(512, 1.0f);
    std::vector<std::byte> q(4096);
    std::vector<float> y(512);
    using enum TensorType;
    // A length that is not a whole number of blocks, and a negative one: the message names both.
    for (TensorType t : {Q4_0, Q8_0, Q4_K, Q6_K, MXFP4}) {
        const int64_t bad = type_traits(t).block_size + 1;
        std::string msg = error_of([&] { quantize_row(t, x.data(), bad, q.data()); });
        EXPECT_NE(msg.find(type_name(t)), std::string::npos) << msg;
        EXPECT_NE(msg.find(std::to_string(bad)), std::string::npos) << msg;
        msg = error_of([&] { dequantize_row(t, q.data(), bad, y.data()); });
        EXPECT_NE(msg.find(type_name(t)), std::string::npos) << msg;
        EXPECT_NE(msg.find(std::to_string(bad)), std::string::npos) << msg;
        msg = error_of([&] { quantize_row(t, x.data(), -32, q.data()); });
        EXPECT_NE(msg.find("-32"), std::string::npos) << msg;
        msg = error_of([&] { dequantize_row(t, q.data(), -256, y.data()); });
        EXPECT_NE(msg.find("-256"), std::string::npos) << msg;
    }
    // Types without a codec.
    for (TensorType t : {IQ2_XXS, TQ1_0, I32, F64, Q4_0_4_4, U8, NVFP4}) {
        EXPECT_FALSE(can_quantize(t)) << type_name(t);
        EXPECT_FALSE(can_dequantize(t)) << type_name(t);
        std::string msg = error_of([&] { quantize_row(t, x.data(), 256, q.data()); });
        EXPECT_NE(msg.find(type_name(t)), std::string::npos) << msg;
        msg = error_of([&] { dequantize_row(t, q.data(), 256, y.data()); });
        EXPECT_NE(msg.find(type_name(t)), std::string::npos) << msg;
    }
    // An empty row is a whole number of blocks: nothing to do, nothing thrown.
    EXPECT_NO_THROW(quantize_row(Q4_K, x.data(), 0, q.data()));
    EXPECT_NO_THROW(dequantize_row(Q4_K, q.data(), 0, y.data()));
}

}  // namespace
}  // namespace hymoe::quant
