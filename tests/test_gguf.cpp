// The GGUF reader against files written byte by byte by tests/gguf_builder, which knows the format
// from ggml/docs/gguf.md and nothing of the reader. Valid files must read back exactly; every bad
// file must throw hymoe::Error (never another exception, never a crash) whose message names the
// source, the problem and the byte offset where it is.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include <unistd.h>

#include <fmt/format.h>

#include "format/gguf.hpp"
#include "format/tensor_type.hpp"
#include "gguf_builder.hpp"
#include "hymoe/error.hpp"

namespace hymoe {
namespace {

using test::GgufBuilder;
using test::GgufFile;
using test::GgufValue;
namespace gt = test::gguf_type;

constexpr std::string_view kSource = "test.gguf";
constexpr uint64_t k2to40 = uint64_t{1} << 40;
constexpr uint64_t k2to62 = uint64_t{1} << 62;
constexpr uint64_t k2to63 = uint64_t{1} << 63;
constexpr uint64_t kU64Max = std::numeric_limits<uint64_t>::max();

uint32_t id(TensorType t) {
    return static_cast<uint32_t>(t);
}

// ggml's block sizes and bytes per block (ggml-common.h), written out so the expected sizes do
// not come from the table the reader uses.
struct GgmlSize {
    TensorType type;
    uint64_t block;
    uint64_t bytes;
};
constexpr GgmlSize kSizes[] = {
    {TensorType::F32, 1, 4},        {TensorType::F16, 1, 2},      {TensorType::BF16, 1, 2},
    {TensorType::Q8_0, 32, 34},     {TensorType::Q4_K, 256, 144}, {TensorType::Q6_K, 256, 210},
    {TensorType::IQ4_XS, 256, 136}, {TensorType::MXFP4, 32, 17},
};

// ne innermost first, as GGUF stores it.
uint64_t expected_nbytes(TensorType type, const std::vector<uint64_t>& ne) {
    for (const auto& s : kSizes) {
        if (s.type != type) continue;
        const uint64_t ne0 = ne.empty() ? 1 : ne[0];  // a scalar is one element
        uint64_t n = ne0 / s.block * s.bytes;
        for (size_t d = 1; d < ne.size(); ++d) n *= ne[d];
        return n;
    }
    ADD_FAILURE() << "no ggml size for " << type_name(type);
    return 0;
}

GgufContents parse(std::span<const std::byte> bytes) {
    return parse_gguf(bytes, kSource);
}

// Passes when parsing throws hymoe::Error naming the source and containing `phrase` (and, when
// given, "at byte offset <at>"); anything else thrown, or nothing, fails.
testing::AssertionResult rejects(std::span<const std::byte> bytes, std::string_view phrase,
                                 std::optional<uint64_t> at = std::nullopt) {
    try {
        parse(bytes);
    } catch (const Error& e) {
        const std::string msg = e.what();
        if (!msg.starts_with(fmt::format("{}: ", kSource))) {
            return testing::AssertionFailure() << "message does not start with the source: " << msg;
        }
        if (msg.find(phrase) == std::string::npos) {
            return testing::AssertionFailure() << "message lacks \"" << phrase << "\": " << msg;
        }
        if (at && msg.find(fmt::format("at byte offset {})", *at)) == std::string::npos) {
            return testing::AssertionFailure() << "message lacks \"at byte offset " << *at << "\": " << msg;
        }
        return testing::AssertionSuccess() << msg;
    } catch (const std::exception& e) {
        return testing::AssertionFailure() << "threw a non-hymoe exception: " << e.what();
    } catch (...) {
        return testing::AssertionFailure() << "threw a non-std exception";
    }
    return testing::AssertionFailure() << "parsed without error";
}

testing::AssertionResult rejects(const GgufFile& f, std::string_view phrase,
                                 std::optional<uint64_t> at = std::nullopt) {
    return rejects(f.span(), phrase, at);
}

// ---- the builder itself --------------------------------------------------------------------

// The builder against bytes assembled by hand from docs/gguf.md, so a builder bug cannot make a
// reader bug pass. (Its output also reads back identically with gguf-py's GGUFReader.)
TEST(GgufBuilder, WritesTheSpecLayout) {
    const auto f = GgufBuilder().kv("a", GgufValue::u8(7)).tensor("t", {2}, id(TensorType::F32), 8).build();
    std::vector<uint8_t> expect = {
        'G', 'G', 'U', 'F', 3, 0, 0, 0,       // magic, version
        1,   0,   0,   0,   0, 0, 0, 0,       // n_tensors
        1,   0,   0,   0,   0, 0, 0, 0,       // n_kv
        1,   0,   0,   0,   0, 0, 0, 0, 'a',  // key
        0,   0,   0,   0,   7,                // u8 7
        1,   0,   0,   0,   0, 0, 0, 0, 't',  // tensor name
        1,   0,   0,   0,                     // n_dims
        2,   0,   0,   0,   0, 0, 0, 0,       // ne[0]
        0,   0,   0,   0,                     // f32
        0,   0,   0,   0,   0, 0, 0, 0,       // offset
    };
    ASSERT_EQ(expect.size(), 71u);
    expect.resize(96, 0);  // padding to the default alignment of 32
    for (uint8_t i = 0; i < 8; ++i) expect.push_back(std::to_integer<uint8_t>(test::gguf_pattern_byte(0, i)));
    ASSERT_EQ(f.bytes.size(), expect.size());
    for (size_t i = 0; i < expect.size(); ++i) EXPECT_EQ(std::to_integer<uint8_t>(f.bytes[i]), expect[i]) << i;
    EXPECT_EQ(f.kvs.at(0).start, 24u);
    EXPECT_EQ(f.kvs[0].key, 32u);
    EXPECT_EQ(f.kvs[0].type, 33u);
    EXPECT_EQ(f.kvs[0].value, 37u);
    EXPECT_EQ(f.kvs[0].end, 38u);
    const auto& t = f.tensor_infos.at(0);
    EXPECT_EQ(t.start, 38u);
    EXPECT_EQ(t.n_dims, 47u);
    EXPECT_EQ(t.ne, 51u);
    EXPECT_EQ(t.type, 59u);
    EXPECT_EQ(t.offset, 63u);
    EXPECT_EQ(f.pos_infos_end, 71u);
    EXPECT_EQ(f.pos_data, 96u);
}

// ---- valid files ---------------------------------------------------------------------------

template <typename T>
std::vector<GgufValue> values(std::initializer_list<T> items, GgufValue (*make)(T)) {
    std::vector<GgufValue> out;
    for (T v : items) out.push_back(make(v));
    return out;
}

TEST(GgufRead, EveryScalarType) {
    using namespace std::string_literals;
    const auto f = GgufBuilder()
                       .kv("u8", GgufValue::u8(200))
                       .kv("i8", GgufValue::i8(-100))
                       .kv("u16", GgufValue::u16(60000))
                       .kv("i16", GgufValue::i16(-30000))
                       .kv("u32", GgufValue::u32(4000000000u))
                       .kv("i32", GgufValue::i32(-2000000000))
                       .kv("f32", GgufValue::f32(1.5f))
                       .kv("bool.true", GgufValue::boolean(true))
                       .kv("bool.false", GgufValue::boolean(false))
                       .kv("string", GgufValue::str("h\xc3\xa9llo"))
                       .kv("string.nul", GgufValue::str("a\0b"s))
                       .kv("string.empty", GgufValue::str(""))
                       .kv("u64", GgufValue::u64(kU64Max))
                       .kv("i64", GgufValue::i64(std::numeric_limits<int64_t>::min()))
                       .kv("f64", GgufValue::f64(-2.25))
                       .kv("f32.inf", GgufValue::f32(-std::numeric_limits<float>::infinity()))
                       .build();
    const auto c = parse(f.span());
    const Metadata& m = c.metadata;
    ASSERT_EQ(m.size(), 16u);
    EXPECT_TRUE(c.tensors.empty());

    auto type_of = [&](std::string_view key) {
        const MetaValue* v = m.find(key);
        EXPECT_NE(v, nullptr) << key;
        return v ? v->type() : MetaType::Array;
    };
    EXPECT_EQ(type_of("u8"), MetaType::U8);
    EXPECT_EQ(m.get_u64("u8"), 200u);
    EXPECT_EQ(type_of("i8"), MetaType::I8);
    EXPECT_EQ(m.get_i64("i8"), -100);
    EXPECT_EQ(type_of("u16"), MetaType::U16);
    EXPECT_EQ(m.get_u64("u16"), 60000u);
    EXPECT_EQ(type_of("i16"), MetaType::I16);
    EXPECT_EQ(m.get_i64("i16"), -30000);
    EXPECT_EQ(type_of("u32"), MetaType::U32);
    EXPECT_EQ(m.get_u64("u32"), 4000000000u);
    EXPECT_EQ(type_of("i32"), MetaType::I32);
    EXPECT_EQ(m.get_i64("i32"), -2000000000);
    EXPECT_EQ(type_of("f32"), MetaType::F32);
    EXPECT_EQ(m.get_f64("f32"), 1.5);
    EXPECT_EQ(type_of("bool.true"), MetaType::Bool);
    EXPECT_EQ(m.get_bool("bool.true"), true);
    EXPECT_EQ(m.get_bool("bool.false"), false);
    EXPECT_EQ(type_of("string"), MetaType::String);
    EXPECT_EQ(m.get_string("string"), "h\xc3\xa9llo");
    EXPECT_EQ(m.get_string("string.nul"), "a\0b"s);  // length-prefixed: a NUL is an ordinary byte
    EXPECT_EQ(m.get_string("string.empty"), "");
    EXPECT_EQ(type_of("u64"), MetaType::U64);
    EXPECT_EQ(m.get_u64("u64"), kU64Max);
    EXPECT_FALSE(m.get_i64("u64").has_value());  // not representable
    EXPECT_EQ(type_of("i64"), MetaType::I64);
    EXPECT_EQ(m.get_i64("i64"), std::numeric_limits<int64_t>::min());
    EXPECT_EQ(type_of("f64"), MetaType::F64);
    EXPECT_EQ(m.get_f64("f64"), -2.25);
    ASSERT_TRUE(m.get_f64("f32.inf").has_value());
    EXPECT_TRUE(std::isinf(*m.get_f64("f32.inf")));

    // File order is kept.
    ASSERT_EQ(m.entries().size(), 16u);
    EXPECT_EQ(m.entries()[0].first, "u8");
    EXPECT_EQ(m.entries()[15].first, "f32.inf");
}

TEST(GgufRead, ArraysOfEveryType) {
    const auto u8s = values<uint8_t>({0, 255}, GgufValue::u8);
    const auto i8s = values<int8_t>({-128, 127}, GgufValue::i8);
    const auto u16s = values<uint16_t>({1, 65535}, GgufValue::u16);
    const auto i16s = values<int16_t>({-32768, 2}, GgufValue::i16);
    const auto u32s = values<uint32_t>({3, 4294967295u}, GgufValue::u32);
    const auto i32s = values<int32_t>({-5, 6, 7}, GgufValue::i32);
    const auto f32s = values<float>({0.25f, -8.0f}, GgufValue::f32);
    const auto bools = values<bool>({true, false, true}, GgufValue::boolean);
    const auto strs = values<std::string_view>({"<s>", "", "</s>"}, GgufValue::str);
    const auto u64s = values<uint64_t>({kU64Max}, GgufValue::u64);
    const auto i64s = values<int64_t>({-9, 10}, GgufValue::i64);
    const auto f64s = values<double>({1e300}, GgufValue::f64);
    const auto f = GgufBuilder()
                       .kv("a.u8", GgufValue::array(gt::kU8, u8s))
                       .kv("a.i8", GgufValue::array(gt::kI8, i8s))
                       .kv("a.u16", GgufValue::array(gt::kU16, u16s))
                       .kv("a.i16", GgufValue::array(gt::kI16, i16s))
                       .kv("a.u32", GgufValue::array(gt::kU32, u32s))
                       .kv("a.i32", GgufValue::array(gt::kI32, i32s))
                       .kv("a.f32", GgufValue::array(gt::kF32, f32s))
                       .kv("a.bool", GgufValue::array(gt::kBool, bools))
                       .kv("a.string", GgufValue::array(gt::kString, strs))
                       .kv("a.u64", GgufValue::array(gt::kU64, u64s))
                       .kv("a.i64", GgufValue::array(gt::kI64, i64s))
                       .kv("a.f64", GgufValue::array(gt::kF64, f64s))
                       .kv("a.empty", GgufValue::array(gt::kF32, {}))
                       .build();
    const auto c = parse(f.span());
    const Metadata& m = c.metadata;

    auto check = [&](std::string_view key, MetaType elem, size_t n) -> const MetaArray* {
        SCOPED_TRACE(std::string(key));
        const MetaValue* v = m.find(key);
        EXPECT_NE(v, nullptr);
        if (v == nullptr) return nullptr;
        EXPECT_EQ(v->type(), MetaType::Array);
        const MetaArray* a = m.get_array(key);
        EXPECT_NE(a, nullptr);
        if (a == nullptr) return nullptr;
        EXPECT_EQ(a->element_type, elem);
        EXPECT_EQ(a->items.size(), n);
        for (const auto& item : a->items) EXPECT_EQ(item.type(), elem);
        return a->items.size() == n ? a : nullptr;
    };
    if (const auto* a = check("a.u8", MetaType::U8, 2)) {
        EXPECT_EQ(a->items[1].as_u64(), 255u);
    }
    if (const auto* a = check("a.i8", MetaType::I8, 2)) {
        EXPECT_EQ(a->items[0].as_i64(), -128);
    }
    if (const auto* a = check("a.u16", MetaType::U16, 2)) {
        EXPECT_EQ(a->items[1].as_u64(), 65535u);
    }
    if (const auto* a = check("a.i16", MetaType::I16, 2)) {
        EXPECT_EQ(a->items[0].as_i64(), -32768);
    }
    if (const auto* a = check("a.u32", MetaType::U32, 2)) {
        EXPECT_EQ(a->items[1].as_u64(), 4294967295u);
    }
    if (const auto* a = check("a.i32", MetaType::I32, 3)) {
        EXPECT_EQ(a->items[0].as_i64(), -5);
        EXPECT_EQ(a->items[2].as_i64(), 7);
    }
    if (const auto* a = check("a.f32", MetaType::F32, 2)) {
        EXPECT_EQ(a->items[1].as_f64(), -8.0);
    }
    if (const auto* a = check("a.bool", MetaType::Bool, 3)) {
        EXPECT_EQ(a->items[0].as_bool(), true);
        EXPECT_EQ(a->items[1].as_bool(), false);
    }
    if (const auto* a = check("a.string", MetaType::String, 3)) {
        ASSERT_NE(a->items[0].as_string(), nullptr);
        EXPECT_EQ(*a->items[0].as_string(), "<s>");
        EXPECT_EQ(*a->items[1].as_string(), "");
        EXPECT_EQ(*a->items[2].as_string(), "</s>");
    }
    if (const auto* a = check("a.u64", MetaType::U64, 1)) {
        EXPECT_EQ(a->items[0].as_u64(), kU64Max);
    }
    if (const auto* a = check("a.i64", MetaType::I64, 2)) {
        EXPECT_EQ(a->items[0].as_i64(), -9);
    }
    if (const auto* a = check("a.f64", MetaType::F64, 1)) {
        EXPECT_EQ(a->items[0].as_f64(), 1e300);
    }
    check("a.empty", MetaType::F32, 0);
}

TEST(GgufRead, NestedArrays) {
    const auto row0 = values<uint32_t>({1, 2}, GgufValue::u32);
    const auto row1 = values<uint32_t>({3}, GgufValue::u32);
    const GgufValue rows[] = {GgufValue::array(gt::kU32, row0), GgufValue::array(gt::kU32, row1),
                              GgufValue::array(gt::kU32, {})};
    const auto words = values<std::string_view>({"x", "yz"}, GgufValue::str);
    const GgufValue word_lists[] = {GgufValue::array(gt::kString, words)};
    // Three levels: [[[1, 2], [3], []], [["x", "yz"]]] would mix element types, so each level is uniform.
    const GgufValue deep_inner[] = {GgufValue::array(gt::kArray, rows)};
    const auto f = GgufBuilder()
                       .kv("nested.u32", GgufValue::array(gt::kArray, rows))
                       .kv("nested.strings", GgufValue::array(gt::kArray, word_lists))
                       .kv("nested.deep", GgufValue::array(gt::kArray, deep_inner))
                       .build();
    const auto c = parse(f.span());

    const MetaArray* a = c.metadata.get_array("nested.u32");
    ASSERT_NE(a, nullptr);
    EXPECT_EQ(a->element_type, MetaType::Array);
    ASSERT_EQ(a->items.size(), 3u);
    const MetaArray* r0 = a->items[0].as_array();
    ASSERT_NE(r0, nullptr);
    EXPECT_EQ(r0->element_type, MetaType::U32);
    ASSERT_EQ(r0->items.size(), 2u);
    EXPECT_EQ(r0->items[1].as_u64(), 2u);
    ASSERT_NE(a->items[1].as_array(), nullptr);
    EXPECT_EQ(a->items[1].as_array()->items.at(0).as_u64(), 3u);
    ASSERT_NE(a->items[2].as_array(), nullptr);
    EXPECT_TRUE(a->items[2].as_array()->items.empty());

    const MetaArray* s = c.metadata.get_array("nested.strings");
    ASSERT_NE(s, nullptr);
    ASSERT_EQ(s->items.size(), 1u);
    const MetaArray* s0 = s->items[0].as_array();
    ASSERT_NE(s0, nullptr);
    EXPECT_EQ(s0->element_type, MetaType::String);
    ASSERT_EQ(s0->items.size(), 2u);
    ASSERT_NE(s0->items[1].as_string(), nullptr);
    EXPECT_EQ(*s0->items[1].as_string(), "yz");

    const MetaArray* d = c.metadata.get_array("nested.deep");
    ASSERT_NE(d, nullptr);
    ASSERT_EQ(d->items.size(), 1u);
    const MetaArray* d1 = d->items[0].as_array();
    ASSERT_NE(d1, nullptr);
    ASSERT_EQ(d1->items.size(), 3u);
    ASSERT_NE(d1->items[0].as_array(), nullptr);
    EXPECT_EQ(d1->items[0].as_array()->items.at(0).as_u64(), 1u);
}

TEST(GgufRead, Versions2And3) {
    for (uint32_t v : {2u, 3u}) {
        const auto f = GgufBuilder()
                           .version(v)
                           .kv("general.architecture", GgufValue::str("llama"))
                           .tensor("t", {8}, id(TensorType::F32), 32)
                           .build();
        const auto c = parse(f.span());
        EXPECT_EQ(c.details.version, v);
        EXPECT_EQ(c.metadata.get_string("general.architecture"), "llama");
        ASSERT_EQ(c.tensors.size(), 1u);
    }
}

// Checks every tensor of `f` against what the builder wrote.
void expect_tensors_match(const GgufFile& f, const GgufContents& c) {
    ASSERT_EQ(c.tensors.size(), f.tensor_infos.size());
    EXPECT_EQ(c.details.data_offset, f.pos_data);
    for (size_t i = 0; i < c.tensors.size(); ++i) {
        const TensorView& t = c.tensors[i];
        const auto& info = f.tensor_infos[i];
        SCOPED_TRACE(t.name);
        EXPECT_EQ(t.file_index, 0u);
        EXPECT_EQ(t.file_offset, f.pos_data + info.data_offset);
        EXPECT_EQ(t.data, f.bytes.data() + t.file_offset);
        EXPECT_EQ(t.nbytes, info.nbytes);
        if (t.nbytes > 0 && t.data == f.bytes.data() + t.file_offset) {
            EXPECT_EQ(t.data[0], test::gguf_pattern_byte(i, 0));
            EXPECT_EQ(t.data[t.nbytes - 1], test::gguf_pattern_byte(i, t.nbytes - 1));
        }
    }
}

TEST(GgufRead, AlignmentIsHonored) {
    // An F16 tensor of 3 elements (6 bytes) pushes the next one to the next multiple of the alignment.
    for (uint32_t align : {0u, 8u, 32u, 64u, 4096u}) {
        SCOPED_TRACE(align == 0 ? std::string("no general.alignment") : fmt::format("alignment {}", align));
        GgufBuilder b;
        b.kv("general.name", GgufValue::str("x"));
        if (align != 0) b.alignment(align);
        const auto f = b.tensor("a", {3}, id(TensorType::F16), 6).tensor("b", {5}, id(TensorType::F32), 20).build();
        const uint64_t expect = align == 0 ? kGgufDefaultAlignment : align;
        ASSERT_EQ(f.tensor_infos[1].data_offset, expect);  // the builder laid it out as intended
        const auto c = parse(f.span());
        EXPECT_EQ(c.details.alignment, expect);
        EXPECT_EQ(c.details.data_offset % expect, 0u);
        EXPECT_GE(c.details.data_offset, f.pos_infos_end);
        EXPECT_LT(c.details.data_offset, f.pos_infos_end + expect);
        expect_tensors_match(f, c);
    }
}

TEST(GgufRead, ZeroTensors) {
    // Header only: 24 bytes, no metadata, no tensors.
    const auto empty = GgufBuilder().build();
    ASSERT_EQ(empty.bytes.size(), 24u);
    const auto c0 = parse(empty.span());
    EXPECT_EQ(c0.metadata.size(), 0u);
    EXPECT_TRUE(c0.tensors.empty());

    // A vocabulary-only file ends right after its metadata; one padded to the data section is fine too.
    const auto vocab = values<std::string_view>({"a", "b"}, GgufValue::str);
    for (bool pad : {false, true}) {
        const auto f = GgufBuilder()
                           .kv("tokenizer.ggml.model", GgufValue::str("gpt2"))
                           .kv("tokenizer.ggml.tokens", GgufValue::array(gt::kString, vocab))
                           .pad_empty_data_section(pad)
                           .build();
        EXPECT_EQ(f.bytes.size() == f.kvs.back().end, !pad);
        const auto c = parse(f.span());
        EXPECT_TRUE(c.tensors.empty());
        ASSERT_NE(c.metadata.get_array("tokenizer.ggml.tokens"), nullptr);
        EXPECT_EQ(c.metadata.get_array("tokenizer.ggml.tokens")->items.size(), 2u);
    }
}

struct TypeCase {
    TensorType type;
    std::vector<uint64_t> ne;  // innermost first
};

TEST(GgufRead, TensorTypesShapesAndSizes) {
    const std::vector<TypeCase> cases = {
        {TensorType::F32, {5, 3}},      {TensorType::F16, {4, 2, 3}},    {TensorType::BF16, {7}},
        {TensorType::Q8_0, {64, 3}},    {TensorType::Q4_K, {512, 2}},    {TensorType::Q6_K, {256, 1, 2, 2}},
        {TensorType::IQ4_XS, {256, 3}}, {TensorType::MXFP4, {64, 2, 3}}, {TensorType::F32, {}},
    };
    GgufBuilder b;
    b.alignment(32);
    for (size_t i = 0; i < cases.size(); ++i) {
        b.tensor(fmt::format("blk.{}.{}", i, type_name(cases[i].type)), cases[i].ne, id(cases[i].type),
                 expected_nbytes(cases[i].type, cases[i].ne));
    }
    const auto f = b.build();
    const auto c = parse(f.span());
    ASSERT_EQ(c.tensors.size(), cases.size());
    expect_tensors_match(f, c);
    for (size_t i = 0; i < cases.size(); ++i) {
        const TensorView& t = c.tensors[i];
        const auto& ne = cases[i].ne;
        SCOPED_TRACE(t.name);
        EXPECT_EQ(t.name, fmt::format("blk.{}.{}", i, type_name(cases[i].type)));
        EXPECT_EQ(t.type, cases[i].type);
        EXPECT_EQ(t.nbytes, expected_nbytes(cases[i].type, ne));
        const std::vector<int64_t> row_major(ne.rbegin(), ne.rend());
        EXPECT_EQ(t.shape, row_major);
        uint64_t n = 1;
        for (uint64_t d : ne) n *= d;
        EXPECT_EQ(t.n_elements(), n);
        for (size_t d = 0; d < 4; ++d) EXPECT_EQ(t.ne(d), d < ne.size() ? static_cast<int64_t>(ne[d]) : 1);
    }
    // Spot-check the arithmetic against hand-computed numbers.
    EXPECT_EQ(c.tensors[3].nbytes, 2u * 34 * 3);  // q8_0 [3, 64]
    EXPECT_EQ(c.tensors[5].nbytes, 210u * 4);     // q6_K [2, 2, 1, 256]
    EXPECT_EQ(c.tensors[7].nbytes, 2u * 17 * 6);  // mxfp4 [3, 2, 64]
    EXPECT_EQ(c.tensors[8].nbytes, 4u);           // an f32 scalar
}

TEST(GgufRead, TrailingBytesAfterDataAreIgnored) {
    const auto f = GgufBuilder()
                       .tensor("t", {4}, id(TensorType::F32), 16)
                       .trailer(std::vector<std::byte>(100, std::byte{0xAB}))
                       .build();
    const auto c = parse(f.span());
    expect_tensors_match(f, c);
}

TEST(GgufRead, ReadGgufMapsAFile) {
    const auto f = GgufBuilder()
                       .kv("general.architecture", GgufValue::str("llama"))
                       .alignment(64)
                       .tensor("token_embd.weight", {32, 4}, id(TensorType::Q8_0), 4 * 34)
                       .tensor("output_norm.weight", {32}, id(TensorType::F32), 128)
                       .build();
    const auto path = std::filesystem::temp_directory_path() / fmt::format("hymoe_test_gguf_{}.gguf", ::getpid());
    {
        std::ofstream out(path, std::ios::binary);
        out.write(reinterpret_cast<const char*>(f.bytes.data()), static_cast<std::streamsize>(f.bytes.size()));
    }
    {
        const ModelFile m = read_gguf(path.string());
        EXPECT_EQ(m.format(), FileFormat::Gguf);
        EXPECT_EQ(m.gguf().version, 3u);
        EXPECT_EQ(m.gguf().alignment, 64u);
        EXPECT_EQ(m.gguf().data_offset, f.pos_data);
        EXPECT_EQ(m.metadata().get_string("general.architecture"), "llama");
        const TensorView* t = m.find("output_norm.weight");
        ASSERT_NE(t, nullptr);
        EXPECT_EQ(t->file_offset, f.pos_data + f.tensor_infos[1].data_offset);
        EXPECT_EQ(t->data[0], test::gguf_pattern_byte(1, 0));
        EXPECT_EQ(t->data[127], test::gguf_pattern_byte(1, 127));
    }
    std::filesystem::remove(path);
    try {
        read_gguf(path.string());
        ADD_FAILURE() << "a missing file was read";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find(path.string()), std::string::npos) << e.what();
    }
}

// ---- truncation ------------------------------------------------------------------------------

// What a reader may say when a file stops early, depending on which check sees it first.
bool is_truncation_message(std::string_view msg) {
    for (std::string_view p :
         {"file ends while reading", "too short to be GGUF", "cannot fit in", "bytes but only", "past the end"}) {
        if (msg.find(p) != std::string_view::npos) return true;
    }
    return false;
}

// Every value type, strings, a nested array and tensors with padding, so the cuts land in each kind of field.
GgufFile small_complete_file() {
    const auto u16s = values<uint16_t>({1, 2, 3}, GgufValue::u16);
    const auto strs = values<std::string_view>({"ab", "c"}, GgufValue::str);
    const GgufValue nested[] = {GgufValue::array(gt::kU16, u16s), GgufValue::array(gt::kString, strs)};
    return GgufBuilder()
        .kv("general.architecture", GgufValue::str("llama"))
        .kv("u8", GgufValue::u8(1))
        .kv("i8", GgufValue::i8(-1))
        .kv("u16", GgufValue::u16(2))
        .kv("i16", GgufValue::i16(-2))
        .kv("u32", GgufValue::u32(3))
        .kv("i32", GgufValue::i32(-3))
        .kv("f32", GgufValue::f32(0.5f))
        .kv("bool", GgufValue::boolean(true))
        .kv("u64", GgufValue::u64(4))
        .kv("i64", GgufValue::i64(-4))
        .kv("f64", GgufValue::f64(0.25))
        .kv("strings", GgufValue::array(gt::kString, strs))
        .kv("nested", GgufValue::array(gt::kArray, nested))
        .alignment(32)
        .tensor("a", {32, 2}, id(TensorType::Q8_0), 2 * 34)
        .tensor("b", {3}, id(TensorType::F32), 12)
        .build();
}

TEST(GgufReject, TruncatedAtEveryLength) {
    const auto f = small_complete_file();
    ASSERT_NO_THROW(parse(f.span()));
    for (size_t n = 0; n < f.bytes.size(); ++n) {
        const auto cut = f.prefix(n);  // a copy of exactly n bytes, so ASan sees a read past it
        try {
            parse(cut);
            ADD_FAILURE() << "a file cut to " << n << " of " << f.bytes.size() << " bytes parsed";
        } catch (const Error& e) {
            const std::string msg = e.what();
            EXPECT_TRUE(msg.starts_with("test.gguf: ")) << n << ": " << msg;
            EXPECT_TRUE(is_truncation_message(msg)) << n << ": " << msg;
            EXPECT_NE(msg.find("at byte offset"), std::string::npos) << n << ": " << msg;
        } catch (const std::exception& e) {
            ADD_FAILURE() << n << ": threw a non-hymoe exception: " << e.what();
        }
    }
}

TEST(GgufReject, TruncatedVocabOnlyFile) {
    const auto strs = values<std::string_view>({"<s>", "</s>", "hello"}, GgufValue::str);
    const auto f = GgufBuilder()
                       .kv("tokenizer.ggml.model", GgufValue::str("llama"))
                       .kv("tokenizer.ggml.tokens", GgufValue::array(gt::kString, strs))
                       .pad_empty_data_section(true)
                       .build();
    const size_t metadata_end = f.kvs.back().end;
    ASSERT_GT(f.bytes.size(), metadata_end);  // there is padding to cut into
    for (size_t n = 0; n <= f.bytes.size(); ++n) {
        const auto cut = f.prefix(n);
        if (n >= metadata_end) {
            // Without tensors the file is complete once the last key/value is.
            EXPECT_NO_THROW(parse(cut)) << n;
        } else {
            EXPECT_TRUE(rejects(cut, "")) << n;
        }
    }
}

// ---- header --------------------------------------------------------------------------------

TEST(GgufReject, WrongMagic) {
    using namespace std::string_view_literals;
    for (std::string_view magic : {"GGUL"sv, "gguf"sv, "FUGG"sv, "\0\0\0\0"sv, "GGML"sv}) {
        const auto f = GgufBuilder().magic(magic).build();
        EXPECT_TRUE(rejects(f, "not a GGUF file", 0)) << magic;
    }
    const auto safetensors_like = GgufBuilder().magic("{\"__").build();
    EXPECT_TRUE(rejects(safetensors_like, "expected 'GGUF'"));
}

TEST(GgufReject, UnsupportedVersions) {
    EXPECT_TRUE(rejects(GgufBuilder().version(1).build(), "GGUF version 1 is not supported", 4));
    EXPECT_TRUE(rejects(GgufBuilder().version(4).build(), "unknown GGUF version 4", 4));
    EXPECT_TRUE(rejects(GgufBuilder().version(0).build(), "unknown GGUF version 0", 4));
    EXPECT_TRUE(rejects(GgufBuilder().version(0xFFFFFFFF).build(), "unknown GGUF version 4294967295", 4));
    // A big-endian file stores version 3 as 00 00 00 03.
    EXPECT_TRUE(rejects(GgufBuilder().version(0x03000000).build(), "big-endian GGUF (version 3)", 4));
    EXPECT_TRUE(rejects(GgufBuilder().version(0x02000000).build(), "big-endian GGUF (version 2)", 4));
}

TEST(GgufReject, HugeCounts) {
    const auto base = small_complete_file();
    for (uint64_t n : {k2to40, k2to63, kU64Max}) {
        SCOPED_TRACE(n);
        auto f = base;
        f.patch_u64(GgufFile::pos_n_tensors, n);
        EXPECT_TRUE(rejects(f, fmt::format("tensor count {} cannot fit", n), GgufFile::pos_n_tensors));
        f = base;
        f.patch_u64(GgufFile::pos_n_kv, n);
        EXPECT_TRUE(rejects(f, fmt::format("metadata count {} cannot fit", n), GgufFile::pos_n_kv));
    }
    // Counts that fit the file's size but not its contents run out of bytes instead.
    auto f = base;
    f.patch_u64(GgufFile::pos_n_kv, base.kvs.size() + 1);
    EXPECT_TRUE(rejects(f, ""));
}

// ---- key/values ----------------------------------------------------------------------------

TEST(GgufReject, HugeLengths) {
    const auto base =
        GgufBuilder().kv("general.name", GgufValue::str("tiny")).tensor("t", {4}, id(TensorType::F32), 16).build();
    const auto& kv = base.kvs[0];
    const auto& info = base.tensor_infos[0];
    for (uint64_t n : {k2to40, k2to63, kU64Max}) {
        SCOPED_TRACE(n);
        const std::string claims = fmt::format("claims {} bytes but only", n);
        auto f = base;
        f.patch_u64(kv.start, n);  // the key's length
        EXPECT_TRUE(rejects(f, "key 0 " + claims, kv.start));
        f = base;
        f.patch_u64(kv.value, n);  // the string value's length
        EXPECT_TRUE(rejects(f, "the string value of key 'general.name' " + claims, kv.value));
        f = base;
        f.patch_u64(info.start, n);  // the tensor name's length
        EXPECT_TRUE(rejects(f, "the name of tensor 0 " + claims, info.start));
    }
}

TEST(GgufReject, HugeArrayCounts) {
    const auto u32s = values<uint32_t>({1, 2}, GgufValue::u32);
    const auto strs = values<std::string_view>({"a"}, GgufValue::str);
    const GgufValue nested[] = {GgufValue::array(gt::kU32, u32s)};
    const auto base = GgufBuilder()
                          .kv("a.u32", GgufValue::array(gt::kU32, u32s))
                          .kv("a.str", GgufValue::array(gt::kString, strs))
                          .kv("a.nested", GgufValue::array(gt::kArray, nested))
                          .build();
    for (uint64_t n : {k2to40, k2to62, k2to63, kU64Max}) {
        SCOPED_TRACE(n);
        for (size_t k = 0; k < 3; ++k) {
            auto f = base;
            f.patch_u64(base.kvs[k].value + 4, n);  // after the u32 element type
            EXPECT_TRUE(rejects(f, fmt::format("array of {} ", n), base.kvs[k].value + 4)) << k;
        }
        // The count of the inner array of a nested one.
        auto f = base;
        f.patch_u64(base.kvs[2].value + 4 + 8 + 4, n);
        EXPECT_TRUE(rejects(f, "cannot fit in the", base.kvs[2].value + 16));
    }
}

TEST(GgufReject, ArraysNestedTooDeep) {
    // 10000 levels of [[[...]]]: must be refused up front, not recursed into until the stack runs out.
    std::vector<std::byte> body;
    auto put = [&](uint64_t v, size_t n) {
        for (size_t i = 0; i < n; ++i) body.push_back(static_cast<std::byte>((v >> (8 * i)) & 0xFF));
    };
    constexpr int kDepth = 10000;
    for (int i = 0; i < kDepth; ++i) {
        put(gt::kArray, 4);  // element type: array
        put(1, 8);           // one element
    }
    put(gt::kU8, 4);
    put(0, 8);
    const auto f = GgufBuilder().kv("deep", GgufValue::raw(gt::kArray, body)).build();
    EXPECT_TRUE(rejects(f, "key 'deep': arrays nested deeper than"));

    // A handful of levels is fine.
    std::vector<std::byte> shallow;
    body.swap(shallow);
    for (int i = 0; i < 3; ++i) {
        put(gt::kArray, 4);
        put(1, 8);
    }
    put(gt::kU8, 4);
    put(1, 8);
    put(42, 1);
    const auto ok = GgufBuilder().kv("ok", GgufValue::raw(gt::kArray, body)).build();
    const auto c = parse(ok.span());
    const MetaValue* v = c.metadata.find("ok");
    for (int i = 0; i < 4 && v != nullptr; ++i) {
        ASSERT_NE(v->as_array(), nullptr);
        ASSERT_EQ(v->as_array()->items.size(), 1u);
        v = &v->as_array()->items[0];
    }
    ASSERT_NE(v, nullptr);
    EXPECT_EQ(v->as_u64(), 42u);
}

TEST(GgufReject, UnknownValueTypes) {
    for (uint32_t type : {13u, 100u, 0xFFFFFFFFu}) {
        SCOPED_TRACE(type);
        const auto f = GgufBuilder().kv("a", GgufValue::u8(1)).kv("k", GgufValue::raw(type, {})).build();
        EXPECT_TRUE(rejects(f, fmt::format("key 'k': unknown value type {}", type), f.kvs[1].type));
        // As an array's element type.
        const auto elems = GgufValue::array(type, {});
        const auto g = GgufBuilder().kv("arr", elems).build();
        EXPECT_TRUE(rejects(g, fmt::format("key 'arr': unknown array element type {}", type), g.kvs[0].value));
    }
}

TEST(GgufReject, BoolOutOfRange) {
    for (uint8_t b : {uint8_t{2}, uint8_t{255}}) {
        const auto f = GgufBuilder().kv("flag", GgufValue::raw(gt::kBool, {std::byte{b}})).build();
        EXPECT_TRUE(rejects(f, fmt::format("key 'flag': bool value is {}", b), f.kvs[0].value));
    }
    // Inside an array.
    const auto bools = values<bool>({true, false}, GgufValue::boolean);
    auto f = GgufBuilder().kv("flags", GgufValue::array(gt::kBool, bools)).build();
    f.patch_u8(f.kvs[0].value + 12 + 1, 2);
    EXPECT_TRUE(rejects(f, "key 'flags': bool value is 2", f.kvs[0].value + 13));
}

TEST(GgufReject, DuplicateKey) {
    const auto f = GgufBuilder()
                       .kv("general.name", GgufValue::str("a"))
                       .kv("x", GgufValue::u8(1))
                       .kv("general.name", GgufValue::u32(7))
                       .build();
    EXPECT_TRUE(rejects(f, "duplicate key 'general.name'", f.kvs[2].start));
}

// ---- alignment -----------------------------------------------------------------------------

TEST(GgufReject, BadAlignment) {
    for (uint32_t a : {0u, 3u, 6u, 48u, 0x80000001u}) {
        SCOPED_TRACE(a);
        const auto f = GgufBuilder().kv("x", GgufValue::u8(0)).alignment(a).layout_alignment(32).build();
        EXPECT_TRUE(rejects(f, fmt::format("general.alignment is {}, expected a power of two", a), f.kvs[1].start));
    }
    const GgufValue wrong_types[] = {GgufValue::str("32"), GgufValue::u64(32), GgufValue::i32(32), GgufValue::u16(32),
                                     GgufValue::f32(32.0f)};
    for (const auto& v : wrong_types) {
        const auto f = GgufBuilder().kv("general.alignment", v).build();
        EXPECT_TRUE(rejects(f, "general.alignment has type", f.kvs[0].start)) << v.type;
    }
}

// ---- tensor infos --------------------------------------------------------------------------

TEST(GgufReject, DuplicateTensorName) {
    const auto f = GgufBuilder()
                       .tensor("w", {4}, id(TensorType::F32), 16)
                       .tensor("v", {4}, id(TensorType::F32), 16)
                       .tensor("w", {4}, id(TensorType::F32), 16)
                       .build();
    EXPECT_TRUE(rejects(f, "duplicate tensor name in tensor 2 'w'", f.tensor_infos[2].start));
}

TEST(GgufReject, EmptyTensorName) {
    const auto f = GgufBuilder().tensor("", {4}, id(TensorType::F32), 16).build();
    EXPECT_TRUE(rejects(f, "tensor 0 has an empty name", f.tensor_infos[0].start));
}

TEST(GgufReject, TooManyDimensions) {
    const auto f = GgufBuilder().tensor("t5", {1, 1, 1, 1, 4}, id(TensorType::F32), 16).build();
    EXPECT_TRUE(rejects(f, "tensor 0 't5': 5 dimensions, at most 4 allowed", f.tensor_infos[0].n_dims));
    auto g = GgufBuilder().tensor("t", {4}, id(TensorType::F32), 16).build();
    g.patch_u32(g.tensor_infos[0].n_dims, 0xFFFFFFFF);
    EXPECT_TRUE(rejects(g, "4294967295 dimensions", g.tensor_infos[0].n_dims));
}

TEST(GgufReject, HugeDimensions) {
    // Each dimension fits in int64_t but their product does not.
    for (const std::vector<uint64_t>& ne : std::vector<std::vector<uint64_t>>{
             {uint64_t{1} << 32, uint64_t{1} << 32}, {1u << 21, 1u << 21, 1u << 21}, {1, 1, uint64_t{1} << 62, 4}}) {
        const auto f = GgufBuilder().tensor("big", ne, id(TensorType::F32), 16).build();
        EXPECT_TRUE(rejects(f, "'big': its dimensions multiply to more than", f.tensor_infos[0].n_dims));
    }
    // The elements fit but the bytes do not: 2^62 f32 values are 2^64 bytes.
    const auto bytes_overflow = GgufBuilder().tensor("big", {k2to62}, id(TensorType::F32), 16).build();
    EXPECT_TRUE(
        rejects(bytes_overflow, "'big': its dimensions multiply to more than", bytes_overflow.tensor_infos[0].n_dims));
    // A dimension that is negative as int64_t.
    for (uint64_t d : {k2to63, kU64Max}) {
        const auto f = GgufBuilder().tensor("neg", {4, d}, id(TensorType::F32), 16).build();
        EXPECT_TRUE(
            rejects(f, fmt::format("'neg': dimension 1 is {}, larger than 2^63-1", d), f.tensor_infos[0].ne + 8));
    }
}

TEST(GgufReject, RowNotAMultipleOfTheBlock) {
    struct Case {
        TensorType type;
        uint64_t ne0;
        std::string phrase;
    };
    const Case cases[] = {
        {TensorType::Q4_K, 100, "row length 100 is not a multiple of the q4_K block size 256"},
        {TensorType::Q8_0, 33, "row length 33 is not a multiple of the q8_0 block size 32"},
        {TensorType::MXFP4, 16, "row length 16 is not a multiple of the mxfp4 block size 32"},
        {TensorType::IQ4_XS, 0x100000001, "is not a multiple of the iq4_xs block size 256"},
    };
    for (const auto& c : cases) {
        const auto f = GgufBuilder().tensor("q", {c.ne0, 2}, id(c.type), 1024).build();
        EXPECT_TRUE(rejects(f, c.phrase, f.tensor_infos[0].n_dims));
    }
    // A scalar of a block type is one element, not a block.
    const auto scalar = GgufBuilder().tensor("q", {}, id(TensorType::Q8_0), 34).build();
    EXPECT_TRUE(rejects(scalar, "row length 1 is not a multiple"));
}

TEST(GgufReject, UnknownAndRemovedTensorTypes) {
    for (uint32_t type : {42u, 100u, 1000u, 1007u, 0xFFFFFFFFu}) {
        const auto f = GgufBuilder().tensor("t", {32}, type, 64).build();
        EXPECT_TRUE(rejects(f, fmt::format("tensor 0 't': unknown tensor type id {}", type), f.tensor_infos[0].type));
    }
    for (uint32_t type : {4u, 5u, 31u, 32u, 33u, 36u, 37u, 38u}) {
        const auto f = GgufBuilder().tensor("t", {32}, type, 64).build();
        EXPECT_TRUE(rejects(f, fmt::format("(id {}) was removed from ggml", type), f.tensor_infos[0].type));
    }
}

// ---- tensor data ---------------------------------------------------------------------------

GgufFile two_tensor_file() {
    return GgufBuilder()
        .alignment(32)
        .tensor("first", {16}, id(TensorType::F32), 64)
        .tensor("second", {8}, id(TensorType::F32), 32)
        .build();
}

TEST(GgufReject, OffsetPastEndOfFile) {
    const auto base = two_tensor_file();
    for (uint64_t off : {uint64_t{4096}, k2to40, k2to63, kU64Max / 32 * 32}) {
        SCOPED_TRACE(off);
        auto f = base;
        f.patch_u64(f.tensor_infos[1].offset, off);
        EXPECT_TRUE(rejects(f, "tensor 1 'second': data [", f.tensor_infos[1].start));
        EXPECT_TRUE(rejects(f, "runs past the end of the file"));
    }
}

TEST(GgufReject, DataRunsPastEndOfFile) {
    // Starts inside the data section, ends past it.
    auto f = two_tensor_file();
    f.patch_u64(f.tensor_infos[1].offset, f.tensor_infos[1].data_offset + 32);
    EXPECT_TRUE(rejects(f, "tensor 1 'second': data [96, +32 bytes) runs past the end", f.tensor_infos[1].start));
    // Dimensions larger than the data written.
    auto g = two_tensor_file();
    g.patch_u64(g.tensor_infos[0].ne, 1000);
    EXPECT_TRUE(rejects(g, "tensor 0 'first': data [0, +4000 bytes) runs past the end", g.tensor_infos[0].start));
}

TEST(GgufReject, MisalignedOffset) {
    for (uint32_t align : {8u, 32u, 64u}) {
        auto f = GgufBuilder()
                     .alignment(align)
                     .tensor("a", {64}, id(TensorType::F32), 256)
                     .tensor("b", {8}, id(TensorType::F32), 32)
                     .build();
        f.patch_u64(f.tensor_infos[1].offset, 256 + 4);
        const auto phrase = fmt::format("tensor 1 'b': data offset 260 is not a multiple of the alignment {}", align);
        EXPECT_TRUE(rejects(f, phrase, f.tensor_infos[1].offset));
    }
}

TEST(GgufReject, OverlappingTensors) {
    // Same start.
    const auto same = GgufBuilder()
                          .tensor_at("a", {16}, id(TensorType::F32), 64, 0)
                          .tensor_at("b", {8}, id(TensorType::F32), 32, 0)
                          .build();
    EXPECT_TRUE(rejects(same, "overlap"));
    // The second starts inside the first, listed in reverse order in the file.
    const auto inside = GgufBuilder()
                            .tensor_at("late", {16}, id(TensorType::F32), 64, 32)
                            .tensor_at("early", {16}, id(TensorType::F32), 64, 0)
                            .build();
    EXPECT_TRUE(rejects(inside, "tensors 'early' (data bytes [0, 64)) and 'late' (data bytes [32, 96)) overlap",
                        inside.tensor_infos[0].start));
    // A long tensor covering two later ones, with an empty tensor between: the empty one must not hide the overlap.
    const auto hidden = GgufBuilder()
                            .tensor_at("long", {64}, id(TensorType::F32), 256, 0)
                            .tensor_at("empty", {0}, id(TensorType::F32), 0, 64)
                            .tensor_at("short", {8}, id(TensorType::F32), 32, 128)
                            .build();
    EXPECT_TRUE(rejects(hidden, "tensors 'long' (data bytes [0, 256)) and 'short'"));
    // Adjacent tensors share no byte; an empty tensor may sit anywhere.
    const auto adjacent = GgufBuilder()
                              .alignment(8)
                              .tensor_at("a", {2}, id(TensorType::F32), 8, 0)
                              .tensor_at("b", {2}, id(TensorType::F32), 8, 8)
                              .tensor_at("e", {0}, id(TensorType::F32), 0, 8)
                              .build();
    EXPECT_NO_THROW(parse(adjacent.span()));
}

}  // namespace
}  // namespace hymoe
