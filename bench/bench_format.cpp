// How long opening a model takes: GGUF parse of a file whose metadata is as large as a real
// model's (a 151,936-token vocabulary with scores, types and 151,387 merges, like Qwen3's),
// and the safetensors header parse of a 1,000-tensor shard.
#include <benchmark/benchmark.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include <fmt/format.h>

#include "format/gguf.hpp"
#include "format/gguf_writer.hpp"
#include "format/safetensors.hpp"

namespace {

namespace fs = std::filesystem;
using namespace hymoe;

const fs::path& vocab_gguf() {
    static const fs::path path = [] {
        fs::path p = fs::temp_directory_path() / "hymoe_bench_vocab.gguf";
        constexpr size_t kTokens = 151936;
        constexpr size_t kMerges = 151387;
        MetaArray tokens{MetaType::String, {}}, scores{MetaType::F32, {}}, types{MetaType::I32, {}};
        MetaArray merges{MetaType::String, {}};
        for (size_t i = 0; i < kTokens; ++i) {
            tokens.items.push_back(MetaValue::string(fmt::format("tok{}", i)));
            scores.items.push_back(MetaValue::floating(MetaType::F32, -static_cast<double>(i)));
            types.items.push_back(MetaValue::signed_int(MetaType::I32, 1));
        }
        for (size_t i = 0; i < kMerges; ++i) merges.items.push_back(MetaValue::string(fmt::format("a{} b{}", i, i)));
        GgufWriter w;
        w.add_metadata("general.architecture", MetaValue::string("qwen3moe"));
        w.add_metadata("tokenizer.ggml.model", MetaValue::string("gpt2"));
        w.add_metadata("tokenizer.ggml.tokens", MetaValue::array(std::move(tokens)));
        w.add_metadata("tokenizer.ggml.scores", MetaValue::array(std::move(scores)));
        w.add_metadata("tokenizer.ggml.token_type", MetaValue::array(std::move(types)));
        w.add_metadata("tokenizer.ggml.merges", MetaValue::array(std::move(merges)));
        for (int l = 0; l < 48; ++l) {
            for (const char* t : {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate_exps", "ffn_up_exps",
                                  "ffn_down_exps", "ffn_gate_inp", "attn_norm", "ffn_norm"}) {
                w.add_tensor(fmt::format("blk.{}.{}.weight", l, t), TensorType::F32, {4, 8});
            }
        }
        w.write(p.string(), [](size_t, std::span<std::byte>) {});
        return p;
    }();
    return path;
}

void BM_ReadGgufVocab(benchmark::State& state) {
    const std::string path = vocab_gguf().string();
    for (auto _ : state) {
        ModelFile m = read_gguf(path);
        benchmark::DoNotOptimize(m.tensors().data());
    }
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * fs::file_size(path)));
}
BENCHMARK(BM_ReadGgufVocab)->Unit(benchmark::kMillisecond);

void BM_ParseSafetensorsHeader(benchmark::State& state) {
    std::string header = "{";
    uint64_t offset = 0;
    for (int i = 0; i < 1000; ++i) {
        header += fmt::format(
            "{}\"model.layers.{}.mlp.experts.{}.down_proj.weight\": {{\"dtype\": \"BF16\", "
            "\"shape\": [4, 8], \"data_offsets\": [{}, {}]}}",
            i ? ", " : "", i / 64, i % 64, offset, offset + 64);
        offset += 64;
    }
    header += "}";
    std::vector<std::byte> file(8 + header.size() + offset);
    const uint64_t n = header.size();
    std::memcpy(file.data(), &n, 8);
    std::memcpy(file.data() + 8, header.data(), header.size());
    for (auto _ : state) {
        auto c = parse_safetensors(file, "bench.safetensors");
        benchmark::DoNotOptimize(c.tensors.data());
    }
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * (8 + header.size())));
}
BENCHMARK(BM_ParseSafetensorsHeader)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
