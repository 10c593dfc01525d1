// Writes fuzz seeds: fuzz_seeds <dir> fills <dir>/gguf and <dir>/safetensors. Small valid files
// let the fuzzer start past the header checks, in every value type, tensor type and alignment the
// readers handle; a few GGUF files just past a limit (edge-*.bin) start it next to a rejection.
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "format/tensor_type.hpp"
#include "gguf_builder.hpp"

namespace {

namespace fs = std::filesystem;
using hymoe::TensorType;
using hymoe::test::GgufBuilder;
using hymoe::test::GgufValue;
namespace gt = hymoe::test::gguf_type;

uint32_t id(TensorType t) {
    return static_cast<uint32_t>(t);
}

void write_file(const fs::path& path, const std::vector<std::byte>& bytes) {
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    fmt::print("{} ({} bytes)\n", path.string(), bytes.size());
}

GgufBuilder every_value_type() {
    const GgufValue u8s[] = {GgufValue::u8(0), GgufValue::u8(255)};
    const GgufValue i32s[] = {GgufValue::i32(-1), GgufValue::i32(7)};
    const GgufValue f32s[] = {GgufValue::f32(0.5f)};
    const GgufValue strs[] = {GgufValue::str("a"), GgufValue::str(""), GgufValue::str("<|endoftext|>")};
    const GgufValue inner[] = {GgufValue::array(gt::kU8, u8s), GgufValue::array(gt::kString, strs)};
    GgufBuilder b;
    b.kv("general.architecture", GgufValue::str("llama"))
        .kv("u8", GgufValue::u8(200))
        .kv("i8", GgufValue::i8(-100))
        .kv("u16", GgufValue::u16(60000))
        .kv("i16", GgufValue::i16(-30000))
        .kv("u32", GgufValue::u32(4000000000u))
        .kv("i32", GgufValue::i32(-2000000000))
        .kv("f32", GgufValue::f32(1.5f))
        .kv("bool", GgufValue::boolean(true))
        .kv("u64", GgufValue::u64(UINT64_MAX))
        .kv("i64", GgufValue::i64(INT64_MIN))
        .kv("f64", GgufValue::f64(-2.25))
        .kv("arr.u8", GgufValue::array(gt::kU8, u8s))
        .kv("arr.i32", GgufValue::array(gt::kI32, i32s))
        .kv("arr.f32", GgufValue::array(gt::kF32, f32s))
        .kv("arr.str", GgufValue::array(gt::kString, strs))
        .kv("arr.nested", GgufValue::array(gt::kArray, inner))
        .kv("arr.empty", GgufValue::array(gt::kU64, {}));
    return b;
}

void write_gguf_seeds(const fs::path& dir) {
    write_file(dir / "seed-header-only.bin", GgufBuilder().build().bytes);
    write_file(dir / "seed-every-value-type.bin", every_value_type().build().bytes);
    write_file(dir / "seed-every-value-type-v2.bin", every_value_type().version(2).build().bytes);
    write_file(dir / "seed-empty-padded.bin",
               GgufBuilder().kv("general.name", GgufValue::str("x")).pad_empty_data_section(true).build().bytes);

    write_file(dir / "seed-f32-f16.bin", GgufBuilder()
                                             .version(2)
                                             .kv("general.architecture", GgufValue::str("llama"))
                                             .tensor("token_embd.weight", {4, 3}, id(TensorType::F32), 4 * 3 * 4)
                                             .tensor("output_norm.weight", {4}, id(TensorType::F16), 4 * 2)
                                             .build()
                                             .bytes);
    write_file(dir / "seed-align8-quant.bin", GgufBuilder()
                                                  .alignment(8)
                                                  .tensor("blk.0.attn_q.weight", {32, 2}, id(TensorType::Q8_0), 2 * 34)
                                                  .tensor("blk.0.ffn_down.weight", {256}, id(TensorType::Q4_K), 144)
                                                  .build()
                                                  .bytes);
    write_file(dir / "seed-align64-moe.bin",
               GgufBuilder()
                   .kv("general.architecture", GgufValue::str("qwen3moe"))
                   .alignment(64)
                   .kv("qwen3moe.expert_count", GgufValue::u32(2))
                   .tensor("blk.0.ffn_gate_exps.weight", {256, 1, 2}, id(TensorType::Q6_K), 2 * 210)
                   .tensor("blk.0.ffn_up_exps.weight", {256, 1, 2}, id(TensorType::IQ4_XS), 2 * 136)
                   .tensor("blk.0.ffn_down_exps.weight", {32, 1, 1, 2}, id(TensorType::MXFP4), 2 * 17)
                   .tensor("blk.0.ffn_gate_inp.weight", {2, 2}, id(TensorType::BF16), 2 * 2 * 2)
                   .build()
                   .bytes);
    const GgufValue tokens[] = {GgufValue::str("<s>"), GgufValue::str("</s>"), GgufValue::str("a")};
    const GgufValue scores[] = {GgufValue::f32(0), GgufValue::f32(-1), GgufValue::f32(-2)};
    const GgufValue token_types[] = {GgufValue::i32(3), GgufValue::i32(3), GgufValue::i32(1)};
    write_file(dir / "seed-vocab.bin", GgufBuilder()
                                           .kv("general.architecture", GgufValue::str("llama"))
                                           .kv("tokenizer.ggml.model", GgufValue::str("llama"))
                                           .kv("tokenizer.ggml.tokens", GgufValue::array(gt::kString, tokens))
                                           .kv("tokenizer.ggml.scores", GgufValue::array(gt::kF32, scores))
                                           .kv("tokenizer.ggml.token_type", GgufValue::array(gt::kI32, token_types))
                                           .kv("tokenizer.ggml.bos_token_id", GgufValue::u32(0))
                                           .build()
                                           .bytes);
}

// Files just past the reader's limits, so the fuzzer starts next to each rejection.
void write_gguf_edge_cases(const fs::path& dir) {
    // An empty tensor between two overlapping ones once hid the overlap from the reader.
    write_file(dir / "edge-overlap-behind-empty-tensor.bin", GgufBuilder()
                                                                 .tensor_at("long", {64}, id(TensorType::F32), 256, 0)
                                                                 .tensor_at("empty", {0}, id(TensorType::F32), 0, 64)
                                                                 .tensor_at("short", {8}, id(TensorType::F32), 32, 128)
                                                                 .build()
                                                                 .bytes);
    // Nesting deeper than the reader allows, small enough for -max_len=4096.
    std::vector<std::byte> deep;
    auto put = [&](uint64_t v, size_t n) {
        for (size_t i = 0; i < n; ++i) deep.push_back(static_cast<std::byte>((v >> (8 * i)) & 0xFF));
    };
    for (int i = 0; i < 64; ++i) {
        put(gt::kArray, 4);
        put(1, 8);
    }
    put(gt::kU8, 4);
    put(0, 8);
    write_file(dir / "edge-deep-arrays.bin", GgufBuilder().kv("deep", GgufValue::raw(gt::kArray, deep)).build().bytes);
    write_file(dir / "edge-duplicate-tensor.bin", GgufBuilder()
                                                      .tensor("w", {4}, id(TensorType::F32), 16)
                                                      .tensor("w", {4}, id(TensorType::F32), 16)
                                                      .build()
                                                      .bytes);
    const std::vector<uint64_t> huge = {uint64_t{1} << 32, uint64_t{1} << 32};
    write_file(dir / "edge-huge-dims.bin", GgufBuilder().tensor("big", huge, id(TensorType::F32), 16).build().bytes);
}

// u64 header length, the JSON header, then the data, as the safetensors format section says.
std::vector<std::byte> safetensors(const std::string& header, size_t data_bytes) {
    std::vector<std::byte> out;
    for (size_t i = 0; i < 8; ++i) out.push_back(static_cast<std::byte>((header.size() >> (8 * i)) & 0xFF));
    for (char c : header) out.push_back(static_cast<std::byte>(c));
    for (size_t i = 0; i < data_bytes; ++i) out.push_back(static_cast<std::byte>(i * 13 + 5));
    return out;
}

void write_safetensors_seeds(const fs::path& dir) {
    write_file(dir / "seed-empty.bin", safetensors("{}", 0));
    write_file(dir / "seed-one-f32.bin", safetensors(R"({"__metadata__":{"format":"pt"},)"
                                                     R"("w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}})",
                                                     24));
    // Writers pad the header with spaces to a multiple of 8.
    write_file(dir / "seed-padded-header.bin",
               safetensors(R"({"b":{"dtype":"BF16","shape":[4],"data_offsets":[0,8]}}       )", 8));
    write_file(dir / "seed-dtypes.bin", safetensors(R"({"a":{"dtype":"F16","shape":[2,2],"data_offsets":[0,8]},)"
                                                    R"("b":{"dtype":"I64","shape":[1],"data_offsets":[8,16]},)"
                                                    R"("c":{"dtype":"U8","shape":[3],"data_offsets":[16,19]},)"
                                                    R"("d":{"dtype":"BOOL","shape":[1],"data_offsets":[19,20]},)"
                                                    R"("e":{"dtype":"F8_E4M3","shape":[4],"data_offsets":[20,24]},)"
                                                    R"("s":{"dtype":"F32","shape":[],"data_offsets":[24,28]},)"
                                                    R"("z":{"dtype":"F32","shape":[0,4],"data_offsets":[28,28]}})",
                                                    28));
    write_file(dir / "seed-experts.bin", safetensors(R"({"__metadata__":{"format":"pt","note":"x"},)"
                                                     R"("model.layers.0.mlp.experts.0.gate_proj.weight":)"
                                                     R"({"dtype":"BF16","shape":[2,4],"data_offsets":[0,16]},)"
                                                     R"("model.layers.0.mlp.experts.1.gate_proj.weight":)"
                                                     R"({"dtype":"BF16","shape":[2,4],"data_offsets":[16,32]}})",
                                                     32));
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        fmt::print(stderr, "usage: {} <dir>  (writes <dir>/gguf/*.bin and <dir>/safetensors/*.bin)\n", argv[0]);
        return 2;
    }
    const fs::path root = argv[1];
    fs::create_directories(root / "gguf");
    fs::create_directories(root / "safetensors");
    write_gguf_seeds(root / "gguf");
    write_gguf_edge_cases(root / "gguf");
    write_safetensors_seeds(root / "safetensors");
    return 0;
}
