// The safetensors reader against files written by the PyPI `safetensors` package
// (tests/fixtures/make_safetensors_fixtures.py), and against malformed files built here.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <limits>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "format/model_file.hpp"
#include "format/safetensors.hpp"
#include "hymoe/error.hpp"

namespace hymoe {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

const fs::path kFixtures = fs::path(HYMOE_SOURCE_DIR) / "tests" / "fixtures" / "safetensors";

// The safetensors dtype strings and the types they must become; written out here rather than
// taken from the reader so a wrong mapping there shows up.
TensorType expected_type(std::string_view dtype) {
    static const std::vector<std::pair<std::string_view, TensorType>> kTable = {
        {"F64", TensorType::F64},         {"F32", TensorType::F32},         {"F16", TensorType::F16},
        {"BF16", TensorType::BF16},       {"I64", TensorType::I64},         {"I32", TensorType::I32},
        {"I16", TensorType::I16},         {"I8", TensorType::I8},           {"U8", TensorType::U8},
        {"BOOL", TensorType::BOOL},       {"F8_E4M3", TensorType::F8_E4M3}, {"F8_E5M2", TensorType::F8_E5M2},
        {"F8_E8M0", TensorType::F8_E8M0}, {"U16", TensorType::U16},         {"U32", TensorType::U32},
        {"U64", TensorType::U64},
    };
    for (const auto& [name, type] : kTable) {
        if (name == dtype) return type;
    }
    ADD_FAILURE() << "expected JSON names unknown dtype " << dtype;
    return TensorType::F32;
}

std::string read_bytes(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    EXPECT_TRUE(in) << "cannot open " << path;
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

Json read_json(const fs::path& path) {
    return Json::parse(read_bytes(path));
}

void write_bytes(const fs::path& path, std::string_view bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    ASSERT_TRUE(out.good()) << "cannot write " << path;
}

std::string hex_of(const std::byte* data, uint64_t n) {
    std::string out;
    for (uint64_t i = 0; i < n; ++i) out += fmt::format("{:02x}", static_cast<unsigned>(data[i]));
    return out;
}

std::span<const std::byte> as_bytes(std::string_view s) {
    return std::as_bytes(std::span(s.data(), s.size()));
}

// n as a u64, little-endian.
std::string length_prefix(uint64_t n) {
    std::string out;
    for (int i = 0; i < 8; ++i) out += static_cast<char>((n >> (8 * i)) & 0xFF);
    return out;
}

// u64 little-endian header length | header | data.
std::string safetensors_file(std::string_view header, std::string_view data = {}) {
    return length_prefix(header.size()) + std::string(header) + std::string(data);
}

// A fresh directory per use, removed afterwards.
class TempDir {
public:
    TempDir() {
        static std::atomic<int> counter{0};
        const auto* test = ::testing::UnitTest::GetInstance()->current_test_info();
        std::string name =
            fmt::format("hymoe_st_{}_{}_{}_{}", test->test_suite_name(), test->name(), ::getpid(), counter++);
        for (char& c : name) {
            if (c == '/') c = '_';  // parameterized test names hold '/'
        }
        path_ = fs::path(::testing::TempDir()) / name;
        fs::remove_all(path_);
        fs::create_directories(path_);
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path_, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const fs::path& path() const { return path_; }
    fs::path operator/(std::string_view name) const { return path_ / name; }

private:
    fs::path path_;
};

// The message of the hymoe::Error that `f` throws; a test failure if it throws nothing or
// something else. Every message must be one line.
std::string error_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const Error& e) {
        std::string message = e.what();
        EXPECT_EQ(message.find('\n'), std::string::npos) << "message is not one line: " << message;
        return message;
    } catch (const std::exception& e) {
        ADD_FAILURE() << "threw a non-hymoe exception: " << e.what();
        return {};
    }
    ADD_FAILURE() << "no error thrown";
    return {};
}

#define EXPECT_CONTAINS(text, part) EXPECT_NE(std::string(text).find(part), std::string::npos) << (text)

void expect_tensors_match(const ModelFile& model, const Json& expected, const std::vector<std::string>& files) {
    const auto tensors = model.tensors();
    ASSERT_EQ(tensors.size(), expected["tensors"].size());
    for (size_t i = 0; i < tensors.size(); ++i) {
        const auto& want = expected["tensors"][i];
        const auto& got = tensors[i];
        SCOPED_TRACE(want["name"].get<std::string>());
        EXPECT_EQ(got.name, want["name"].get<std::string>()) << "tensor order differs at " << i;
        EXPECT_EQ(got.type, expected_type(want["dtype"].get<std::string>()));
        EXPECT_EQ(got.shape, want["shape"].get<std::vector<int64_t>>());
        EXPECT_EQ(got.nbytes, want["nbytes"].get<uint64_t>());
        EXPECT_EQ(got.file_offset, want["file_offset"].get<uint64_t>());
        const std::string file = want.contains("file") ? want["file"].get<std::string>() : files.front();
        ASSERT_LT(got.file_index, model.file_paths().size());
        EXPECT_EQ(fs::path(model.file_paths()[got.file_index]).filename().string(), file);
        EXPECT_EQ(got.file_index, std::find(files.begin(), files.end(), file) - files.begin());
        uint64_t n_elements = 1;
        for (const auto& d : want["shape"]) n_elements *= d.get<uint64_t>();
        EXPECT_EQ(got.n_elements(), n_elements);
        if (want.contains("hex")) {
            EXPECT_EQ(hex_of(got.data, got.nbytes), want["hex"].get<std::string>());
        }
        if (want.contains("head_hex")) {
            const auto head = want["head_hex"].get<std::string>();
            EXPECT_EQ(hex_of(got.data, head.size() / 2), head);
        }
    }
}

// ---- files written by the Python package ---------------------------------------------------

TEST(SafetensorsFixtures, AllDtypesMatchThePythonWriter) {
    const auto path = kFixtures / "all_dtypes.safetensors";
    const Json expected = read_json(kFixtures / "all_dtypes.expected.json");
    const ModelFile model = read_safetensors(path.string());
    EXPECT_EQ(model.format(), FileFormat::Safetensors);
    EXPECT_EQ(model.path(), path.string());
    ASSERT_EQ(model.file_paths().size(), 1u);
    EXPECT_EQ(model.total_file_bytes(), fs::file_size(path));
    expect_tensors_match(model, expected, {"all_dtypes.safetensors"});

    // Every dtype the task lists is in the fixture, so each mapping above was exercised.
    EXPECT_EQ(expected["tensors"].size(), 16u);
    for (const auto& [key, value] : expected["metadata"].items()) {
        EXPECT_EQ(model.metadata().get_string("safetensors." + key), value.get<std::string>()) << key;
    }
    EXPECT_EQ(model.metadata().get_string("safetensors.note"), "non-ASCII \u2713 \u00b5");
}

TEST(SafetensorsFixtures, ParseGivesViewsIntoTheBuffer) {
    const std::string bytes = read_bytes(kFixtures / "all_dtypes.safetensors");
    const Json expected = read_json(kFixtures / "all_dtypes.expected.json");
    const auto contents = parse_safetensors(as_bytes(bytes), "all_dtypes");
    ASSERT_EQ(contents.tensors.size(), expected["tensors"].size());
    for (size_t i = 0; i < contents.tensors.size(); ++i) {
        const auto& t = contents.tensors[i];
        EXPECT_EQ(t.data, reinterpret_cast<const std::byte*>(bytes.data()) + t.file_offset) << t.name;
        if (i > 0) {
            EXPECT_LE(contents.tensors[i - 1].file_offset, t.file_offset);
        }
    }
    ASSERT_EQ(contents.header_metadata.size(), expected["metadata"].size());
    for (const auto& [key, value] : contents.header_metadata) {
        EXPECT_EQ(expected["metadata"][key].get<std::string>(), value);
    }
}

TEST(SafetensorsFixtures, TypeIdsAreGgufIdsWhereGgmlHasTheType) {
    const auto contents = parse_safetensors(as_bytes(read_bytes(kFixtures / "all_dtypes.safetensors")), "x");
    const std::map<std::string, uint32_t> gguf_ids = {
        {"tensor.f32", 0},  {"tensor.f16", 1},  {"tensor.i8", 24},  {"tensor.i16", 25},
        {"tensor.i32", 26}, {"tensor.i64", 27}, {"tensor.f64", 28}, {"tensor.bf16", 30},
    };
    size_t with_gguf_id = 0;
    for (const auto& t : contents.tensors) {
        const auto id = static_cast<uint32_t>(t.type);
        if (const auto want = gguf_ids.find(t.name); want != gguf_ids.end()) {
            EXPECT_EQ(id, want->second) << t.name;
            ++with_gguf_id;
        } else {
            EXPECT_GE(id, 1000u) << t.name << " has no ggml type, so its id is outside GGUF's";
        }
    }
    EXPECT_EQ(with_gguf_id, gguf_ids.size());
}

void check_sharded(const ModelFile& model) {
    const Json expected = read_json(kFixtures / "sharded.expected.json");
    const auto files = expected["files"].get<std::vector<std::string>>();
    ASSERT_EQ(model.file_paths().size(), 2u);
    expect_tensors_match(model, expected, files);
    ASSERT_NE(model.find("model.layers.0.mlp.experts.3.gate_proj.weight"), nullptr);
    EXPECT_EQ(model.find("model.layers.0.mlp.experts.3.gate_proj.weight")->shape, (std::vector<int64_t>{8, 16}));
    EXPECT_EQ(model.find("model.layers.1.mlp.experts.0.down_proj.weight")->file_index, 1u);
}

TEST(SafetensorsFixtures, ShardedDirectory) {
    const auto directory = kFixtures / "sharded";
    const ModelFile model = read_safetensors(directory.string());
    check_sharded(model);
    EXPECT_EQ(model.directory(), directory.string());
}

TEST(SafetensorsFixtures, ShardedViaIndexPath) {
    const auto index = kFixtures / "sharded" / "model.safetensors.index.json";
    const ModelFile model = read_safetensors(index.string());
    check_sharded(model);
    EXPECT_EQ(model.path(), index.string());
    // config.json beside the index is still read.
    EXPECT_EQ(model.metadata().get_string("model_type"), "qwen3_moe");
}

TEST(SafetensorsFixtures, ShardedViaOpenModelFile) {
    check_sharded(open_model_file((kFixtures / "sharded").string()));
}

TEST(SafetensorsFixtures, ConfigJsonBecomesFlatMetadata) {
    const ModelFile model = read_safetensors((kFixtures / "sharded").string());
    const Metadata& meta = model.metadata();
    auto type_of = [&](std::string_view key) {
        const auto* v = meta.find(key);
        EXPECT_NE(v, nullptr) << key;
        return v != nullptr ? v->type() : MetaType::U8;
    };
    EXPECT_EQ(type_of("hidden_size"), MetaType::I64);
    EXPECT_EQ(meta.get_i64("hidden_size"), 16);
    EXPECT_EQ(meta.get_i64("num_experts"), 4);
    EXPECT_EQ(meta.get_i64("max_position_embeddings"), 4096);
    EXPECT_EQ(type_of("rope_theta"), MetaType::F64);
    EXPECT_EQ(meta.get_f64("rope_theta"), 1000000.0);
    EXPECT_EQ(meta.get_f64("rms_norm_eps"), 1e-6);
    EXPECT_EQ(type_of("rope_scaling.factor"), MetaType::F64);
    EXPECT_EQ(meta.get_f64("rope_scaling.factor"), 4.0);
    EXPECT_EQ(meta.get_string("rope_scaling.rope_type"), "yarn");
    EXPECT_EQ(meta.get_i64("rope_scaling.original_max_position_embeddings"), 1024);
    EXPECT_FALSE(meta.contains("rope_scaling"));  // objects only appear as their leaves
    EXPECT_EQ(type_of("norm_topk_prob"), MetaType::Bool);
    EXPECT_EQ(meta.get_bool("norm_topk_prob"), true);
    EXPECT_EQ(meta.get_bool("tie_word_embeddings"), false);
    EXPECT_EQ(meta.get_string("hidden_act"), "silu");
    EXPECT_FALSE(meta.contains("sliding_window"));  // null in config.json
    const auto* architectures = meta.get_array("architectures");
    ASSERT_NE(architectures, nullptr);
    EXPECT_EQ(architectures->element_type, MetaType::String);
    ASSERT_EQ(architectures->items.size(), 1u);
    EXPECT_EQ(*architectures->items[0].as_string(), "Qwen3MoeForCausalLM");
    ASSERT_NE(meta.get_array("mlp_only_layers"), nullptr);
    EXPECT_TRUE(meta.get_array("mlp_only_layers")->items.empty());
    // config.json keeps its file order, ahead of the header and index metadata.
    EXPECT_EQ(meta.entries().front().first, "architectures");
    EXPECT_EQ(meta.get_string("safetensors.format"), "pt");
    const auto index = read_json(kFixtures / "sharded" / "model.safetensors.index.json");
    EXPECT_EQ(meta.get_u64("safetensors.index.total_size"), index["metadata"]["total_size"].get<uint64_t>());
    uint64_t tensor_bytes = 0;
    for (const auto& t : model.tensors()) tensor_bytes += t.nbytes;
    EXPECT_EQ(meta.get_u64("safetensors.index.total_size"), tensor_bytes);
}

TEST(SafetensorsFixtures, HuggingFaceQwen3MoeTiny) {
    const auto expected_path = kFixtures / "hf-qwen3moe-tiny.expected.json";
    if (!fs::exists(expected_path)) GTEST_SKIP() << "fixture not generated (torch/transformers were missing)";
    const Json expected = read_json(expected_path);
    const ModelFile model = read_safetensors((kFixtures / "hf-qwen3moe-tiny").string());
    expect_tensors_match(model, expected, expected["files"].get<std::vector<std::string>>());
    EXPECT_EQ(model.metadata().get_string("model_type"), "qwen3_moe");
    EXPECT_EQ(model.metadata().get_i64("hidden_size"), 32);
    EXPECT_EQ(model.metadata().get_i64("num_hidden_layers"), 2);
    EXPECT_EQ(model.metadata().get_string("safetensors.format"), "pt");
    EXPECT_TRUE(model.metadata().get_u64("safetensors.index.total_size").has_value());
    const auto* expert = model.find("model.layers.1.mlp.experts.3.up_proj.weight");
    ASSERT_NE(expert, nullptr);
    EXPECT_EQ(expert->type, TensorType::F32);
    EXPECT_EQ(expert->shape, (std::vector<int64_t>{16, 32}));
    EXPECT_EQ(expert->ne(0), 32);
}

// ---- metadata_from_json ------------------------------------------------------------------

TEST(SafetensorsMetadata, FlattensEveryJsonKind) {
    const Metadata meta = metadata_from_json(R"({
        "small": 7, "negative": -3, "huge": 18446744073709551615, "edge": 9223372036854775807,
        "ratio": 0.5, "whole_float": 2.0, "flag": true, "name": "x\u00e9", "nothing": null,
        "outer": {"inner": {"deep": 1, "gone": null}, "list": [1, 2]}, "empty_object": {},
        "mixed": [1, "two", 3.0, null, {"k": [1]}, [4, 5]], "strings": ["a", "b"], "empty": []
    })",
                                             "inline.json");
    using enum MetaType;
    ASSERT_NE(meta.find("small"), nullptr);
    EXPECT_EQ(meta.find("small")->type(), I64);
    EXPECT_EQ(meta.get_i64("small"), 7);
    EXPECT_EQ(meta.find("negative")->type(), I64);
    EXPECT_EQ(meta.get_i64("negative"), -3);
    EXPECT_EQ(meta.find("huge")->type(), U64);
    EXPECT_EQ(meta.get_u64("huge"), std::numeric_limits<uint64_t>::max());
    EXPECT_EQ(meta.find("edge")->type(), I64);
    EXPECT_EQ(meta.get_i64("edge"), std::numeric_limits<int64_t>::max());
    EXPECT_EQ(meta.find("ratio")->type(), F64);
    EXPECT_EQ(meta.get_f64("ratio"), 0.5);
    EXPECT_EQ(meta.find("whole_float")->type(), F64);
    EXPECT_EQ(meta.get_bool("flag"), true);
    EXPECT_EQ(meta.get_string("name"), "x\u00e9");
    EXPECT_FALSE(meta.contains("nothing"));
    EXPECT_FALSE(meta.contains("outer"));
    EXPECT_FALSE(meta.contains("outer.inner"));
    EXPECT_FALSE(meta.contains("outer.inner.gone"));
    EXPECT_FALSE(meta.contains("empty_object"));
    EXPECT_EQ(meta.get_i64("outer.inner.deep"), 1);
    ASSERT_NE(meta.get_array("outer.list"), nullptr);
    EXPECT_EQ(meta.get_array("outer.list")->element_type, I64);

    const MetaArray* mixed = meta.get_array("mixed");
    ASSERT_NE(mixed, nullptr);
    EXPECT_EQ(mixed->element_type, I64);  // the first element's
    ASSERT_EQ(mixed->items.size(), 5u);   // the null is skipped
    EXPECT_EQ(mixed->items[0].as_i64(), 1);
    EXPECT_EQ(*mixed->items[1].as_string(), "two");
    EXPECT_EQ(mixed->items[2].type(), F64);
    ASSERT_NE(mixed->items[3].as_string(), nullptr);
    EXPECT_EQ(Json::parse(*mixed->items[3].as_string()), Json::parse(R"({"k": [1]})"));
    ASSERT_NE(mixed->items[4].as_array(), nullptr);
    EXPECT_EQ(mixed->items[4].as_array()->items.size(), 2u);
    EXPECT_EQ(meta.get_array("strings")->element_type, String);
    EXPECT_TRUE(meta.get_array("empty")->items.empty());

    // File order is kept.
    std::vector<std::string> keys;
    for (const auto& [key, value] : meta.entries()) keys.push_back(key);
    EXPECT_EQ(keys.front(), "small");
    EXPECT_EQ(keys.back(), "empty");
}

TEST(SafetensorsMetadata, MalformedJsonNamesSourceAndByte) {
    const std::string message = error_of([] { metadata_from_json("{\"a\": 1,\n \"b\": }", "my-config.json"); });
    EXPECT_EQ(message.rfind("my-config.json: ", 0), 0u) << message;
    EXPECT_CONTAINS(message, "malformed JSON at byte 15");
    EXPECT_CONTAINS(error_of([] { metadata_from_json("", "empty.json"); }), "empty.json: malformed JSON at byte 0");
    EXPECT_CONTAINS(error_of([] { metadata_from_json("[1, 2]", "list.json"); }),
                    "list.json: JSON top level is an array");
    EXPECT_CONTAINS(error_of([] { metadata_from_json("{\"a\": \"\xff\"}", "utf8.json"); }),
                    "utf8.json: malformed JSON");
    const std::string deep = "{\"a\": " + std::string(100'000, '[') + std::string(100'000, ']') + "}";
    EXPECT_CONTAINS(error_of([&] { metadata_from_json(deep, "deep.json"); }),
                    "deep.json: JSON nests deeper than 64 levels");
    const std::string deep_objects = [] {
        std::string text;
        for (int i = 0; i < 100'000; ++i) text += "{\"k\": ";
        return text + "1" + std::string(100'000, '}');
    }();
    EXPECT_CONTAINS(error_of([&] { metadata_from_json(deep_objects, "objects.json"); }),
                    "objects.json: JSON nests deeper");
    // 64 nested objects are within the limit; 65 are not.
    std::string nested = "1";
    std::string key = "k";
    for (int i = 0; i < 64; ++i) nested = fmt::format("{{\"k\": {}}}", nested);
    for (int i = 1; i < 64; ++i) key += ".k";
    EXPECT_EQ(metadata_from_json(nested, "ok.json").get_i64(key), 1);
    EXPECT_CONTAINS(error_of([&] { metadata_from_json("{\"k\": " + nested + "}", "65.json"); }),
                    "65.json: JSON nests deeper than 64 levels");
}

// ---- malformed single files --------------------------------------------------------------

struct BadFile {
    std::string name;    // test name and file name
    std::string bytes;   // the whole file
    std::string phrase;  // must appear in the message
};

// A file whose header holds one tensor "t" with this entry, followed by 16 data bytes.
std::string one_tensor(std::string_view entry) {
    return safetensors_file(fmt::format(R"({{"t": {}}})", entry), std::string(16, '\0'));
}

std::vector<BadFile> bad_files() {
    const std::string f32x4 = R"("dtype": "F32", "shape": [4])";
    return {
        {"Empty", "", "file is 0 bytes, too short"},
        {"SevenBytes", std::string(7, '\0'), "file is 7 bytes, too short"},
        {"HeaderPastEnd", length_prefix(100) + "{}",
         "header length 100 (byte 0) runs past the end of the file (10 bytes)"},
        {"HeaderAboveCap", length_prefix(100'000'001) + "{}",
         "header length 100000001 (byte 0) is above the 100000000"},
        {"HeaderTwoToThe63", length_prefix(uint64_t{1} << 63) + "{}", "header length 9223372036854775808 (byte 0)"},
        {"HeaderMaxU64", length_prefix(std::numeric_limits<uint64_t>::max()) + "{}", "is above the 100000000-byte"},
        {"ZeroHeader", safetensors_file(""), "malformed JSON header at byte 8"},
        {"SyntaxError", safetensors_file(R"({"t": {"dtype": "F32",})"), "malformed JSON header at byte 30"},
        {"BadUtf8", safetensors_file("{\"t\xff\": {}}"), "malformed JSON header at byte 11"},
        {"NulInHeader", safetensors_file(std::string("{\"a\"\0: 1}", 9)), "malformed JSON header at byte 12"},
        {"TrailingGarbage", safetensors_file("{} x"), "malformed JSON header at byte 11"},
        {"HeaderIsArray", safetensors_file("[1, 2]"), "JSON header (bytes 8..14) is an array, not an object"},
        {"EntryNotObject", safetensors_file(R"({"t": 5})"), "tensor 't': header entry is a number, not an object"},
        {"DtypeMissing", one_tensor(R"({"shape": [4], "data_offsets": [0, 16]})"), "tensor 't': \"dtype\" is missing"},
        {"DtypeNotString", one_tensor(R"({"dtype": 4, "shape": [4], "data_offsets": [0, 16]})"),
         "tensor 't': \"dtype\" is missing or not a string"},
        {"DtypeUnknown", one_tensor(R"({"dtype": "F4", "shape": [4], "data_offsets": [0, 16]})"),
         "tensor 't': unsupported dtype 'F4'"},
        {"DtypeLowerCase", one_tensor(R"({"dtype": "f32", "shape": [4], "data_offsets": [0, 16]})"),
         "tensor 't': unsupported dtype 'f32'"},
        {"ShapeMissing", one_tensor(R"({"dtype": "F32", "data_offsets": [0, 16]})"),
         "tensor 't': \"shape\" is missing"},
        {"ShapeNotArray", one_tensor(R"({"dtype": "F32", "shape": 4, "data_offsets": [0, 16]})"),
         "tensor 't': \"shape\" is missing or not an array"},
        {"ShapeNegative", one_tensor(R"({"dtype": "F32", "shape": [2, -2], "data_offsets": [0, 16]})"),
         "tensor 't': shape dimension 1 -2 is negative"},
        {"ShapeFloat", one_tensor(R"({"dtype": "F32", "shape": [4.0], "data_offsets": [0, 16]})"),
         "tensor 't': shape dimension 0 4.0 is not an integer"},
        {"ShapeString", one_tensor(R"({"dtype": "F32", "shape": ["4"], "data_offsets": [0, 16]})"),
         "tensor 't': shape dimension 0 is a string, not an integer"},
        {"ShapeAboveInt64", one_tensor(R"({"dtype": "U8", "shape": [9223372036854775808], "data_offsets": [0, 16]})"),
         "shape dimension 0 9223372036854775808 is above the limit 9223372036854775807"},
        {"ShapeAboveUint64", one_tensor(R"({"dtype": "U8", "shape": [18446744073709551616], "data_offsets": [0, 16]})"),
         "tensor 't': shape dimension 0 1.8446744073709552e+19 is not an integer"},
        {"OffsetsMissing", one_tensor(R"({"dtype": "F32", "shape": [4]})"), "tensor 't': \"data_offsets\" is missing"},
        {"OffsetsOne", one_tensor(fmt::format("{{{}, \"data_offsets\": [16]}}", f32x4)),
         "tensor 't': \"data_offsets\" is missing or not a pair [begin, end]"},
        {"OffsetsThree", one_tensor(fmt::format("{{{}, \"data_offsets\": [0, 16, 16]}}", f32x4)),
         "\"data_offsets\" is missing or not a pair"},
        {"OffsetsNegative", one_tensor(fmt::format("{{{}, \"data_offsets\": [-1, 16]}}", f32x4)),
         "tensor 't': data_offsets[0] -1 is negative"},
        {"OffsetsFloat", one_tensor(fmt::format("{{{}, \"data_offsets\": [0, 16.5]}}", f32x4)),
         "tensor 't': data_offsets[1] 16.5 is not an integer"},
        {"OffsetsReversed", one_tensor(fmt::format("{{{}, \"data_offsets\": [16, 0]}}", f32x4)),
         "tensor 't': data_offsets [16, 0] end before they begin"},
        {"OffsetsPastEnd", one_tensor(fmt::format("{{{}, \"data_offsets\": [4, 20]}}", f32x4)),
         "tensor 't': data_offsets [4, 20] run past the end of the data section (16 bytes from byte"},
        {"OffsetsHuge", one_tensor(fmt::format("{{{}, \"data_offsets\": [0, 18446744073709551615]}}", f32x4)),
         "run past the end of the data section"},
        {"SizeMismatch", one_tensor(R"({"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 12]})"),
         "tensor 't': shape [2, 2] of F32 needs 16 bytes but data_offsets [0, 12] hold 12 bytes"},
        {"SizeMismatchBf16", one_tensor(R"({"dtype": "BF16", "shape": [4], "data_offsets": [0, 16]})"),
         "tensor 't': shape [4] of BF16 needs 8 bytes but data_offsets [0, 16] hold 16 bytes"},
        {"ElementCountOverflow",
         one_tensor(R"({"dtype": "U8", "shape": [4294967296, 4294967296], "data_offsets": [0, 16]})"),
         "tensor 't': shape [4294967296, 4294967296] of U8 is too large (its byte size overflows 64 bits)"},
        {"ByteCountOverflow",
         one_tensor(R"({"dtype": "F64", "shape": [4611686018427387904], "data_offsets": [0, 16]})"),
         "tensor 't': shape [4611686018427387904] of F64 is too large"},
        {"Overlap",
         safetensors_file(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                                         "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})",
                          std::string(12, '\0')),
         "tensors 'a' (bytes "},
        {"OverlapSameRange",
         safetensors_file(R"({"a": {"dtype": "U8", "shape": [4], "data_offsets": [0, 4]},
                                                  "b": {"dtype": "I32", "shape": [1], "data_offsets": [0, 4]}})",
                          std::string(4, '\0')),
         "and 'b' (bytes "},
        {"DuplicateName",
         safetensors_file(R"({"t": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]},
                                               "t": {"dtype": "U8", "shape": [1], "data_offsets": [1, 2]}})",
                          "ab"),
         "JSON header lists 't' twice"},
        {"MetadataNotObject", safetensors_file(R"({"__metadata__": ["a"]})"),
         "\"__metadata__\" is an array, not an object"},
        {"MetadataValueNotString", safetensors_file(R"({"__metadata__": {"format": "pt", "epoch": 3}})"),
         "\"__metadata__\" value of 'epoch' is a number, not a string"},
        {"DeepNesting", safetensors_file("{\"t\": " + std::string(100'000, '[') + std::string(100'000, ']') + "}"),
         "JSON header nests deeper than 64 levels"},
        {"ControlCharactersEscaped", one_tensor(R"({"dtype": "Q\n4", "shape": [4], "data_offsets": [0, 16]})"),
         "unsupported dtype 'Q\\x0a4'"},
    };
}

class SafetensorsBadFile : public ::testing::TestWithParam<BadFile> {};

TEST_P(SafetensorsBadFile, ThrowsNamingTheFile) {
    const BadFile& bad = GetParam();
    const TempDir dir;
    const fs::path path = dir / (bad.name + ".safetensors");
    write_bytes(path, bad.bytes);
    const std::string message = error_of([&] { read_safetensors(path.string()); });
    EXPECT_EQ(message.rfind(path.string() + ": ", 0), 0u) << message;
    EXPECT_CONTAINS(message, bad.phrase);

    // The in-memory parser says the same, from an exactly sized buffer so ASan sees overreads.
    const std::vector<char> exact(bad.bytes.begin(), bad.bytes.end());
    const auto in_memory =
        error_of([&] { parse_safetensors(std::as_bytes(std::span(exact.data(), exact.size())), "in-memory source"); });
    EXPECT_EQ(in_memory.rfind("in-memory source: ", 0), 0u) << in_memory;
    EXPECT_CONTAINS(in_memory, bad.phrase);
}

INSTANTIATE_TEST_SUITE_P(Malformed, SafetensorsBadFile, ::testing::ValuesIn(bad_files()),
                         [](const auto& param_info) { return param_info.param.name; });

TEST(SafetensorsParse, OverlapNamesBothTensorsAndTheirBytes) {
    const std::string file = safetensors_file(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                                                  "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})",
                                              std::string(12, '\0'));
    const uint64_t data_start = file.size() - 12;
    const auto message = error_of([&] { parse_safetensors(as_bytes(file), "two.safetensors"); });
    EXPECT_CONTAINS(message, fmt::format("tensors 'a' (bytes {}..{}) and 'b' (bytes {}..{}) overlap", data_start,
                                         data_start + 8, data_start + 4, data_start + 12));
}

TEST(SafetensorsParse, AcceptsEdgeCasesTheFormatAllows) {
    // Empty header, no tensors.
    EXPECT_TRUE(parse_safetensors(as_bytes(safetensors_file("{}")), "empty").tensors.empty());
    // Padding after the JSON (the Rust writer pads with spaces), a null __metadata__, unknown
    // fields, a gap between tensors, an empty tensor inside another's bytes, and a huge shape
    // with a zero dimension.
    const std::string file = safetensors_file(
        R"({"__metadata__": null,
            "b": {"dtype": "U8", "shape": [4], "data_offsets": [8, 12], "extra": [1]},
            "a": {"dtype": "I16", "shape": [2], "data_offsets": [0, 4]},
            "inside": {"dtype": "F32", "shape": [0], "data_offsets": [9, 9]},
            "zero": {"dtype": "F64", "shape": [4611686018427387904, 0, 4611686018427387904], "data_offsets": [12, 12]},
            "scalar": {"dtype": "U32", "shape": [], "data_offsets": [12, 16]}}    )",
        "\x01\x02\x03\x04----\x05\x06\x07\x08\x09\x0a\x0b\x0c");
    const auto contents = parse_safetensors(as_bytes(file), "edge");
    EXPECT_TRUE(contents.header_metadata.empty());
    std::vector<std::string> names;
    for (const auto& t : contents.tensors) names.push_back(t.name);
    EXPECT_EQ(names, (std::vector<std::string>{"a", "b", "inside", "zero", "scalar"}));
    const uint64_t data_start = file.size() - 16;
    EXPECT_EQ(contents.tensors[0].file_offset, data_start);
    EXPECT_EQ(contents.tensors[1].file_offset, data_start + 8);
    EXPECT_EQ(hex_of(contents.tensors[1].data, 4), "05060708");
    EXPECT_EQ(contents.tensors[3].nbytes, 0u);
    EXPECT_EQ(contents.tensors[3].shape.size(), 3u);
    EXPECT_EQ(contents.tensors[4].shape.size(), 0u);
    EXPECT_EQ(contents.tensors[4].n_elements(), 1u);
    EXPECT_EQ(hex_of(contents.tensors[4].data, 4), "090a0b0c");
}

// ---- truncation ----------------------------------------------------------------------------

TEST(SafetensorsTruncated, EveryPrefixOfAValidFileThrows) {
    const std::string whole = read_bytes(kFixtures / "all_dtypes.safetensors");
    ASSERT_GT(whole.size(), 100u);
    ASSERT_EQ(parse_safetensors(as_bytes(whole), "whole").tensors.size(), 16u);
    size_t thrown = 0;
    for (size_t n = 0; n < whole.size(); ++n) {
        // A buffer of exactly n bytes, so a read past the prefix is an ASan error.
        const std::vector<char> prefix(whole.begin(), whole.begin() + static_cast<std::ptrdiff_t>(n));
        const auto source = fmt::format("prefix-{}", n);
        try {
            parse_safetensors(std::as_bytes(std::span(prefix.data(), prefix.size())), source);
            ADD_FAILURE() << "a " << n << "-byte prefix parsed";
        } catch (const Error& e) {
            EXPECT_EQ(std::string(e.what()).rfind(source + ": ", 0), 0u) << e.what();
            ++thrown;
        }
    }
    EXPECT_EQ(thrown, whole.size());
}

TEST(SafetensorsTruncated, EveryTruncatedFileOnDiskThrows) {
    const std::string whole = read_bytes(kFixtures / "all_dtypes.safetensors");
    const TempDir dir;
    const fs::path path = dir / "truncated.safetensors";
    size_t thrown = 0;
    for (size_t n = 0; n < whole.size(); ++n) {
        write_bytes(path, std::string_view(whole).substr(0, n));
        const auto message = error_of([&] { read_safetensors(path.string()); });
        EXPECT_CONTAINS(message, "truncated.safetensors: ");
        if (!message.empty()) ++thrown;
    }
    EXPECT_EQ(thrown, whole.size());
}

TEST(SafetensorsTruncated, TruncatedShardIsNamed) {
    const TempDir dir;
    for (const auto& entry : fs::directory_iterator(kFixtures / "sharded")) {
        fs::copy_file(entry.path(), dir / entry.path().filename().string());
    }
    const fs::path shard = dir / "model-00002-of-00002.safetensors";
    fs::resize_file(shard, fs::file_size(shard) - 1);
    const auto message = error_of([&] { read_safetensors(dir.path().string()); });
    EXPECT_EQ(message.rfind(shard.string() + ": ", 0), 0u) << message;
    EXPECT_CONTAINS(message, "run past the end of the data section");
}

// ---- directories, indexes and config.json ----------------------------------------------------

std::string small_file(std::string_view tensor_name, std::string_view metadata = R"({"format": "pt"})") {
    return safetensors_file(
        fmt::format(R"({{"__metadata__": {}, "{}": {{"dtype": "U8", "shape": [2], "data_offsets": [0, 2]}}}})",
                    metadata, tensor_name),
        "\x11\x22");
}

TEST(SafetensorsDirectory, SingleModelFileWithConfig) {
    const TempDir dir;
    write_bytes(dir / "model.safetensors", small_file("w"));
    write_bytes(dir / "other.safetensors", small_file("ignored"));  // model.safetensors is preferred
    write_bytes(dir / "config.json", R"({"model_type": "x", "hidden_size": 8})");
    const ModelFile model = read_safetensors(dir.path().string());
    ASSERT_EQ(model.tensors().size(), 1u);
    EXPECT_EQ(model.tensors()[0].name, "w");
    EXPECT_EQ(model.metadata().get_i64("hidden_size"), 8);
    EXPECT_EQ(model.metadata().get_string("safetensors.format"), "pt");
    EXPECT_EQ(model.path(), dir.path().string());

    // The file itself also picks up the config.json beside it.
    const ModelFile file = read_safetensors((dir / "model.safetensors").string());
    EXPECT_EQ(file.metadata().get_string("model_type"), "x");
}

TEST(SafetensorsDirectory, LooseFilesSortedByName) {
    const TempDir dir;
    write_bytes(dir / "b.safetensors", small_file("from_b", R"({"format": "b", "only_b": "1"})"));
    write_bytes(dir / "a.safetensors", small_file("from_a", R"({"format": "a"})"));
    write_bytes(dir / "notes.txt", "not a model");
    const ModelFile model = read_safetensors(dir.path().string());
    ASSERT_EQ(model.file_paths().size(), 2u);
    EXPECT_EQ(fs::path(model.file_paths()[0]).filename(), "a.safetensors");
    ASSERT_EQ(model.tensors().size(), 2u);
    EXPECT_EQ(model.tensors()[0].name, "from_a");
    EXPECT_EQ(model.tensors()[0].file_index, 0u);
    EXPECT_EQ(model.tensors()[1].name, "from_b");
    EXPECT_EQ(model.tensors()[1].file_index, 1u);
    EXPECT_EQ(model.metadata().get_string("safetensors.format"), "a");  // the first file's wins
    EXPECT_EQ(model.metadata().get_string("safetensors.only_b"), "1");
}

TEST(SafetensorsDirectory, NoWeightsIsAnError) {
    const TempDir dir;
    write_bytes(dir / "config.json", "{}");
    const auto message = error_of([&] { read_safetensors(dir.path().string()); });
    EXPECT_EQ(message.rfind(dir.path().string() + ": ", 0), 0u) << message;
    EXPECT_CONTAINS(message, "directory has no model weights");
}

TEST(SafetensorsDirectory, MissingPathIsAnError) {
    const TempDir dir;
    const auto message = error_of([&] { read_safetensors((dir / "nope.safetensors").string()); });
    EXPECT_CONTAINS(message, "nope.safetensors: no such file or directory");
}

TEST(SafetensorsDirectory, MalformedConfigIsNamed) {
    const TempDir dir;
    write_bytes(dir / "model.safetensors", small_file("w"));
    write_bytes(dir / "config.json", "{\"hidden_size\": 8,,}");
    const auto message = error_of([&] { read_safetensors(dir.path().string()); });
    EXPECT_EQ(message.rfind((dir / "config.json").string() + ": ", 0), 0u) << message;
    EXPECT_CONTAINS(message, "malformed JSON at byte 18");
}

TEST(SafetensorsDirectory, SameTensorInTwoFiles) {
    const TempDir dir;
    write_bytes(dir / "a.safetensors", small_file("w"));
    write_bytes(dir / "b.safetensors", small_file("w"));
    const auto message = error_of([&] { read_safetensors(dir.path().string()); });
    EXPECT_CONTAINS(message, fmt::format("tensor 'w' is in both {} and {}", (dir / "a.safetensors").string(),
                                         (dir / "b.safetensors").string()));
}

// A directory holding shards one.safetensors (tensor "x") and two.safetensors (tensor "y")
// and the given index.
fs::path write_indexed(const TempDir& dir, std::string_view index) {
    write_bytes(dir / "one.safetensors", small_file("x"));
    write_bytes(dir / "two.safetensors", small_file("y"));
    write_bytes(dir / "model.safetensors.index.json", index);
    return dir / "model.safetensors.index.json";
}

TEST(SafetensorsIndex, ReadsShardsAndIndexMetadata) {
    const TempDir dir;
    write_indexed(dir, R"({"metadata": {"total_size": 4, "note": {"a": true}},
                           "weight_map": {"y": "two.safetensors", "x": "one.safetensors"}})");
    const ModelFile model = read_safetensors(dir.path().string());
    ASSERT_EQ(model.tensors().size(), 2u);
    EXPECT_EQ(model.tensors()[0].name, "x");
    EXPECT_EQ(model.tensors()[1].file_index, 1u);
    EXPECT_EQ(model.metadata().get_i64("safetensors.index.total_size"), 4);
    EXPECT_EQ(model.metadata().get_bool("safetensors.index.note.a"), true);
}

TEST(SafetensorsIndex, MissingShard) {
    const TempDir dir;
    const auto index = write_indexed(dir, R"({"weight_map": {"x": "one.safetensors", "z": "three.safetensors"}})");
    const auto message = error_of([&] { read_safetensors(index.string()); });
    EXPECT_EQ(message.rfind(index.string() + ": ", 0), 0u) << message;
    EXPECT_CONTAINS(message, "shard 'three.safetensors' named in weight_map (for tensor 'z') does not exist");
}

TEST(SafetensorsIndex, TensorNotInItsShard) {
    const TempDir dir;
    // The index swaps the shards of "x" and "y".
    const auto index = write_indexed(dir, R"({"weight_map": {"x": "two.safetensors", "y": "one.safetensors"}})");
    const auto message = error_of([&] { read_safetensors(dir.path().string()); });
    EXPECT_EQ(message.rfind(index.string() + ": ", 0), 0u) << message;
    EXPECT_CONTAINS(message,
                    fmt::format("weight_map puts tensor 'x' in {}, but that shard does not contain it (it is in {})",
                                (dir / "two.safetensors").string(), (dir / "one.safetensors").string()));
}

TEST(SafetensorsIndex, TensorInNoShard) {
    const TempDir dir;
    const auto index = write_indexed(dir, R"({"weight_map": {"x": "one.safetensors", "q": "two.safetensors"}})");
    const auto message = error_of([&] { read_safetensors(index.string()); });
    EXPECT_EQ(message.rfind(index.string() + ": ", 0), 0u) << message;
    EXPECT_CONTAINS(message, fmt::format("weight_map puts tensor 'q' in {}, but that shard does not contain it",
                                         (dir / "two.safetensors").string()));
    EXPECT_EQ(message.find("it is in"), std::string::npos) << message;
}

TEST(SafetensorsIndex, WeightMapNotAnObject) {
    const TempDir dir;
    const auto index = write_indexed(dir, R"({"weight_map": ["one.safetensors"]})");
    const auto message = error_of([&] { read_safetensors(index.string()); });
    EXPECT_EQ(message.rfind(index.string() + ": ", 0), 0u) << message;
    EXPECT_CONTAINS(message, "\"weight_map\" is missing or not an object");
    EXPECT_CONTAINS(error_of([&] { read_safetensors(write_indexed(dir, "{}").string()); }),
                    "\"weight_map\" is missing or not an object");
}

TEST(SafetensorsIndex, OtherMalformedIndexes) {
    const TempDir dir;
    auto message_for = [&](std::string_view index) {
        return error_of([&] { read_safetensors(write_indexed(dir, index).string()); });
    };
    EXPECT_CONTAINS(message_for(R"({"weight_map": {"x": 1}})"),
                    "model.safetensors.index.json: weight_map entry of tensor 'x' is a number, not a file name");
    EXPECT_CONTAINS(message_for(R"({"weight_map": {}})"),
                    "model.safetensors.index.json: \"weight_map\" lists no tensors");
    EXPECT_CONTAINS(message_for(R"({"weight_map": {"x": "one.safetensors"}, "metadata": 3})"),
                    "model.safetensors.index.json: \"metadata\" is a number, not an object");
    EXPECT_CONTAINS(message_for(R"({"weight_map": {"x": "one.safetensors"})"),
                    "model.safetensors.index.json: malformed JSON at byte 39");
    EXPECT_CONTAINS(message_for("[]"), "model.safetensors.index.json: index is an array, not a JSON object");
}

}  // namespace
}  // namespace hymoe
