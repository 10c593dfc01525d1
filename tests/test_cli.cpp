// The `hymoe` program as a user runs it: exit codes, one-line errors naming the file, JSON.
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cli_runner.hpp"
#include "test_support.hpp"

namespace hymoe {
namespace {

namespace fs = std::filesystem;

using test::count_lines;
using test::expect_one_line_error;
using test::run_cli;
using test::RunResult;

TEST(Cli, MissingFileIsOneLineError) {
    const RunResult r = run_cli("inspect /nonexistent/model.gguf");
    expect_one_line_error(r, "/nonexistent/model.gguf: no such file or directory");
}

TEST(Cli, NotAGgufFile) {
    const fs::path p = test::temp_dir_for_test() / "notes.gguf";
    { std::ofstream(p) << "hello, this is text\n"; }
    const RunResult r = run_cli("inspect " + p.string());
    expect_one_line_error(r, p.string() + ": not a GGUF file");
}

TEST(Cli, TruncatedGgufNamesTheProblem) {
    const fs::path dir = test::temp_dir_for_test();
    const fs::path model = dir / "model.gguf";
    ASSERT_EQ(run_cli(fmt::format("synth -o '{}'", model.string())).exit_code, 0);
    // Cut the file inside its tensor data: the header parses, the last tensor runs past the end.
    fs::resize_file(model, fs::file_size(model) - 100);
    const RunResult r = run_cli("inspect " + model.string());
    expect_one_line_error(r, "runs past the end of the file");
}

TEST(Cli, DirectoryWithoutWeights) {
    const fs::path dir = test::temp_dir_for_test();
    { std::ofstream(dir / "config.json") << "{}"; }
    const RunResult r = run_cli("inspect " + dir.string());
    expect_one_line_error(r, "has no model weights");
}

TEST(Cli, UnknownFlagFails) {
    const RunResult r = run_cli("inspect --no-such-flag model.gguf");
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.err.find("--no-such-flag"), std::string::npos) << r.err;
}

TEST(Cli, UnknownSynthShape) {
    const RunResult r =
        run_cli(fmt::format("synth --shape no-such-model -o '{}'", (test::temp_dir_for_test() / "x.gguf").string()));
    expect_one_line_error(r, "unknown synthetic model shape 'no-such-model'");
}

// A synthetic model's expert split follows from its shape: gate, up and down are
// [8, 32, 64] f32 matrices, so one expert is 3 * 32 * 64 * 4 bytes.
TEST(Cli, SynthThenInspectJson) {
    const fs::path model = test::temp_dir_for_test() / "demo.gguf";
    const RunResult w = run_cli(fmt::format("synth --shape tiny-qwen3moe --layers 3 -o '{}'", model.string()));
    ASSERT_EQ(w.exit_code, 0) << w.err;
    EXPECT_NE(w.err.find("random"), std::string::npos) << "synth must say the weights are random";

    const RunResult r = run_cli(fmt::format("inspect --json --tensors '{}'", model.string()));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["format"], "gguf");
    EXPECT_EQ(j["architecture"], "qwen3moe");
    EXPECT_EQ(j["hyperparameters"]["qwen3moe.block_count"], 3);
    EXPECT_EQ(j["hyperparameters"]["qwen3moe.expert_count"], 8);
    const auto& layers = j["offload_split"]["layers"];
    ASSERT_EQ(layers.size(), 3u);
    for (const auto& l : layers) {
        EXPECT_EQ(l["n_experts"], 8);
        EXPECT_EQ(l["bytes_per_expert"], 3 * 32 * 64 * 4);
    }
    EXPECT_EQ(j["tensors"].size(), j["n_tensors"]);
    uint64_t sum = 0;
    for (const auto& t : j["tensors"]) sum += t["nbytes"].get<uint64_t>();
    EXPECT_EQ(sum, j["tensor_bytes"].get<uint64_t>());
    EXPECT_EQ(
        j["offload_split"]["expert_bytes"].get<uint64_t>() + j["offload_split"]["non_expert_bytes"].get<uint64_t>(),
        sum);
}

TEST(Cli, InspectEveryReferenceModel) {
    HYMOE_REQUIRE_REFERENCE(ref);
    for (const char* name : {"qwen3moe", "qwen2moe", "mixtral", "olmoe", "deepseek2", "deepseek2-v2", "gpt-oss"}) {
        SCOPED_TRACE(name);
        const auto listing = nlohmann::json::parse(
            test::read_text(test::fixtures_dir() / "reference_tensors" / (std::string(name) + ".json")));
        const RunResult text = run_cli(fmt::format("inspect --tensors '{}'", (ref / name / "model.gguf").string()));
        EXPECT_EQ(text.exit_code, 0) << text.err;
        EXPECT_TRUE(text.err.empty()) << text.err;
        for (const auto& t : listing["tensors"]) {
            EXPECT_NE(text.out.find(t["name"].get<std::string>()), std::string::npos) << t["name"];
        }
        const RunResult js = run_cli(fmt::format("inspect --json '{}'", (ref / name / "model.gguf").string()));
        ASSERT_EQ(js.exit_code, 0) << js.err;
        EXPECT_EQ(nlohmann::json::parse(js.out)["n_tensors"], listing["n_tensors"]);
    }
}

TEST(Cli, InfoRunsWithoutAGpu) {
    const RunResult r = run_cli("info");
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("cuda: "), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("gpu"), std::string::npos) << r.out;
}

// `hymoe eval` on an HF fixture: the logits file must equal what transformers computed.
TEST(Cli, EvalWritesLogitsMatchingTransformers) {
    const fs::path fixtures = test::fixtures_dir() / "hf-models";
    const auto ref = nlohmann::json::parse(test::read_text(fixtures / "qwen3moe.json"));
    const auto prompt = ref.at("prompt_tokens").get<std::vector<int32_t>>();
    const auto n_vocab = ref.at("n_vocab").get<size_t>();
    const fs::path out = test::temp_dir_for_test() / "logits.f32";
    const RunResult r = run_cli(fmt::format("eval -m '{}' --tokens '{}' --top 3 --logits-out '{}'",
                                            (fixtures / "qwen3moe").string(), fmt::join(prompt, ","), out.string()));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(count_lines(r.out), prompt.size() + 1) << r.out;  // a header, then one line per position
    const std::string ours = test::read_text(out);
    const std::string theirs = test::read_text(fixtures / "qwen3moe.logits.bin");
    ASSERT_EQ(ours.size(), prompt.size() * n_vocab * sizeof(float));
    double num = 0, den = 0;
    for (size_t i = 0; i < prompt.size() * n_vocab; ++i) {
        float a = 0, b = 0;
        std::memcpy(&a, ours.data() + 4 * i, 4);
        std::memcpy(&b, theirs.data() + 4 * i, 4);
        num += (static_cast<double>(a) - b) * (static_cast<double>(a) - b);
        den += static_cast<double>(b) * b;
    }
    EXPECT_LT(std::sqrt(num / den), 1e-3);
}

TEST(Cli, EvalRejectsBadTokens) {
    const std::string model = (test::fixtures_dir() / "hf-models" / "qwen3moe").string();
    expect_one_line_error(run_cli(fmt::format("eval -m '{}' --tokens '1,x,3'", model)),
                          "'x' (item 1) is not a token id");
    expect_one_line_error(run_cli(fmt::format("eval -m '{}' --tokens '1,99999'", model)),
                          "token id 99999 at position 1 is outside the vocabulary (0..511)");
}

// `hymoe run --temp 0` on a reference model writes llama.cpp's greedy continuation, byte for byte.
TEST(Cli, RunGreedyMatchesLlamaCppText) {
    HYMOE_REQUIRE_REFERENCE(ref);
    for (const char* name : {"qwen3moe", "mixtral", "deepseek2"}) {
        const fs::path dir = ref / name;
        const RunResult r = run_cli(fmt::format("run -m '{}' -p '{}' -n 32 --temp 0", (dir / "model.gguf").string(),
                                                test::read_text(dir / "prompt.txt")));
        ASSERT_EQ(r.exit_code, 0) << name << ": " << r.err;
        EXPECT_EQ(r.out, test::read_text(dir / "reference.greedy.txt") + "\n") << name;
        EXPECT_NE(r.err.find("generation: 32 tokens"), std::string::npos) << r.err;
    }
}

TEST(Cli, RunRejectsBadSampling) {
    HYMOE_REQUIRE_REFERENCE(ref);
    const std::string model = (ref / "qwen3moe" / "model.gguf").string();
    expect_one_line_error(run_cli(fmt::format("run -m '{}' -p hi --top-p 1.5", model)), "top_p");
}

}  // namespace
}  // namespace hymoe
