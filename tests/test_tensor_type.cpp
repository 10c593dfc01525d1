// hymoe's tensor-type table against gguf-py's (tests/fixtures/gguf_py_types.json, written by
// tests/fixtures/dump_gguf_py_types.py), so an id or size that drifts from upstream fails here.
#include <gtest/gtest.h>

#include <cctype>
#include <cstdint>
#include <fstream>
#include <limits>
#include <map>
#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include "format/tensor_type.hpp"

namespace hymoe {
namespace {

struct PyType {
    std::string name;
    uint32_t block_size = 0;
    uint32_t type_size = 0;
};

// gguf-py's table by GGUF id.
std::map<uint32_t, PyType> load_gguf_py_types() {
    const std::string path = std::string(HYMOE_SOURCE_DIR) + "/tests/fixtures/gguf_py_types.json";
    std::ifstream in(path);
    if (!in) {
        ADD_FAILURE() << "cannot open " << path;
        return {};
    }
    const auto doc = nlohmann::json::parse(in);
    std::map<uint32_t, PyType> out;
    for (const auto& t : doc.at("types")) {
        out[t.at("id").get<uint32_t>()] = {t.at("name").get<std::string>(), t.at("block_size").get<uint32_t>(),
                                           t.at("type_size").get<uint32_t>()};
    }
    return out;
}

std::string lower(std::string_view s) {
    std::string out;
    for (char c : s) out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

std::string upper(std::string_view s) {
    std::string out;
    for (char c : s) out += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return out;
}

constexpr uint32_t kGgufIdCount = 42;  // ggml ids 0..41

// ggml ids whose layouts were withdrawn; gguf-py no longer lists them.
const std::set<uint32_t> kRemovedIds = {4, 5, 31, 32, 33, 36, 37, 38};

TEST(TensorType, FixtureIsNotEmpty) {
    const auto py = load_gguf_py_types();
    // gguf-py 0.19 has 34 types; fewer means the fixture was truncated or the dump broke.
    EXPECT_GE(py.size(), 34u);
}

TEST(TensorType, EveryGgufPyTypeMatchesOurs) {
    for (const auto& [id, py] : load_gguf_py_types()) {
        SCOPED_TRACE(testing::Message() << "gguf-py " << py.name << " (id " << id << ")");
        const auto type = tensor_type_from_gguf_id(id);
        ASSERT_TRUE(type.has_value()) << "id unknown to hymoe";
        const auto& t = type_traits(*type);
        EXPECT_EQ(static_cast<uint32_t>(t.type), id);
        EXPECT_EQ(lower(t.name), lower(py.name));
        EXPECT_EQ(t.status, TypeStatus::Supported);
        EXPECT_TRUE(t.in_gguf);
        EXPECT_EQ(t.block_size, py.block_size);
        if (*type == TensorType::Q8_1) continue;  // the one known disagreement, tested below
        EXPECT_EQ(t.type_size, py.type_size);
    }
}

// gguf-py's GGML_QUANT_SIZES says 40 bytes for q8_1, left from when d and s were floats; ggml-common.h's
// block_q8_1 is two halves (d, s) + 32 int8 = 36, and ggml sizes tensors with the struct. Both numbers are
// asserted so this fails, and gets a second look, if either side changes.
TEST(TensorType, Q8_1IsTheDocumentedException) {
    const auto py = load_gguf_py_types();
    const uint32_t id = static_cast<uint32_t>(TensorType::Q8_1);
    ASSERT_TRUE(py.contains(id));
    EXPECT_EQ(py.at(id).type_size, 40u) << "gguf-py changed its q8_1 size; drop the exception if it is now 36";
    EXPECT_EQ(py.at(id).block_size, 32u);
    EXPECT_EQ(type_traits(TensorType::Q8_1).type_size, 2u + 2u + 32u);
    EXPECT_EQ(type_traits(TensorType::Q8_1).block_size, 32u);
}

TEST(TensorType, IdsMissingFromGgufPyAreRemoved) {
    const auto py = load_gguf_py_types();
    for (uint32_t id = 0; id < kGgufIdCount; ++id) {
        SCOPED_TRACE(testing::Message() << "id " << id);
        const auto type = tensor_type_from_gguf_id(id);
        ASSERT_TRUE(type.has_value());
        const bool removed = kRemovedIds.contains(id);
        EXPECT_EQ(py.contains(id), !removed) << "gguf-py and the removed-id list disagree";
        EXPECT_EQ(type_traits(*type).status, removed ? TypeStatus::Removed : TypeStatus::Supported);
    }
    // gguf-py must not know ids we do not.
    for (const auto& [id, t] : py) EXPECT_LT(id, kGgufIdCount) << t.name;
}

TEST(TensorType, IdsOutsideGgmlAreRejected) {
    for (uint32_t id : {kGgufIdCount, 100u, 999u, 1000u, 1007u, std::numeric_limits<uint32_t>::max()}) {
        // 1000.. are safetensors-only types: they have enum values but are no GGUF id.
        EXPECT_FALSE(tensor_type_from_gguf_id(id).has_value()) << id;
    }
}

TEST(TensorType, TableIsInIdOrderAndSane) {
    const auto all = all_tensor_types();
    ASSERT_GE(all.size(), kGgufIdCount);
    std::set<std::string> names;
    for (size_t i = 0; i < all.size(); ++i) {
        const auto& t = all[i];
        SCOPED_TRACE(std::string(t.name));
        EXPECT_EQ(t.in_gguf, i < kGgufIdCount);
        if (i < kGgufIdCount) {
            EXPECT_EQ(static_cast<uint32_t>(t.type), i);
        }
        EXPECT_GT(t.block_size, 0u);
        EXPECT_GT(t.type_size, 0u);
        EXPECT_TRUE(names.insert(lower(t.name)).second) << "duplicate name";
        EXPECT_EQ(&type_traits(t.type), &t);
        EXPECT_EQ(type_name(t.type), t.name);
    }
}

TEST(TensorType, NameRoundTrips) {
    for (const auto& t : all_tensor_types()) {
        SCOPED_TRACE(std::string(t.name));
        EXPECT_EQ(tensor_type_from_name(t.name), t.type);
        EXPECT_EQ(tensor_type_from_name(upper(t.name)), t.type);
        EXPECT_EQ(tensor_type_from_name(lower(t.name)), t.type);
    }
    EXPECT_EQ(tensor_type_from_name("Q4_K"), TensorType::Q4_K);
    EXPECT_EQ(tensor_type_from_name("BF16"), TensorType::BF16);
    EXPECT_FALSE(tensor_type_from_name("").has_value());
    EXPECT_FALSE(tensor_type_from_name("q4_z").has_value());
    EXPECT_FALSE(tensor_type_from_name("f32 ").has_value());
    EXPECT_FALSE(tensor_type_from_name("q4_k_m").has_value());  // a file type, not a tensor type
}

TEST(TensorType, RowBytes) {
    EXPECT_EQ(row_bytes(TensorType::F32, 0), 0u);
    EXPECT_EQ(row_bytes(TensorType::F32, 7), 28u);
    EXPECT_EQ(row_bytes(TensorType::BF16, 3), 6u);
    EXPECT_EQ(row_bytes(TensorType::Q8_0, 64), 68u);
    EXPECT_EQ(row_bytes(TensorType::Q4_K, 512), 288u);
    EXPECT_EQ(row_bytes(TensorType::Q6_K, 256), 210u);
    EXPECT_EQ(row_bytes(TensorType::IQ4_XS, 256), 136u);
    EXPECT_EQ(row_bytes(TensorType::MXFP4, 2880), 2880u / 32 * 17);
}

TEST(TensorType, RowBytesRejectsNonMultiplesAndOverflow) {
    for (const auto& t : all_tensor_types()) {
        if (t.block_size == 1) continue;
        SCOPED_TRACE(std::string(t.name));
        EXPECT_FALSE(row_bytes(t.type, 1).has_value());
        EXPECT_FALSE(row_bytes(t.type, t.block_size - 1).has_value());
        EXPECT_FALSE(row_bytes(t.type, t.block_size + 1).has_value());
        EXPECT_TRUE(row_bytes(t.type, t.block_size).has_value());
    }
    EXPECT_FALSE(row_bytes(TensorType::F64, uint64_t{1} << 62).has_value());
    EXPECT_FALSE(row_bytes(TensorType::F32, std::numeric_limits<uint64_t>::max()).has_value());
    EXPECT_FALSE(row_bytes(TensorType::Q8_0, std::numeric_limits<uint64_t>::max() / 32 * 32).has_value());
}

}  // namespace
}  // namespace hymoe
