// `hymoe tokenize` as a user runs it: ids as JSON, --no-bos, --no-special, --detok, errors.
#include <algorithm>
#include <cstdlib>
#include <string>

#include <fmt/format.h>
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

std::string vocab(const fs::path& ref, const std::string& name) {
    return fmt::format("'{}'", (ref / "vocab" / (name + ".gguf")).string());
}

TEST(CliTokenize, Gpt2VocabOnlyFile) {
    HYMOE_REQUIRE_REFERENCE(ref);
    const RunResult r = run_cli("tokenize -m " + vocab(ref, "ggml-vocab-gpt-2") + " -p 'Hello world'");
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "[15496, 995]\n");
}

TEST(CliTokenize, SpmAddsBosUnlessNoBos) {
    HYMOE_REQUIRE_REFERENCE(ref);
    const std::string m = vocab(ref, "ggml-vocab-llama-spm");
    EXPECT_EQ(run_cli("tokenize -m " + m + " -p 'Hello world'").out, "[1, 15043, 3186]\n");
    EXPECT_EQ(run_cli("tokenize -m " + m + " -p 'Hello world' --no-bos").out, "[15043, 3186]\n");
}

// An HF directory (tokenizer.json): the ids HF `tokenizers` gives, recorded in
// tests/fixtures/hf-tokenizers/expected.json, for every case without a quote in it.
TEST(CliTokenize, HfDirectoryMatchesTokenizers) {
    const fs::path dir = test::fixtures_dir() / "hf-tokenizers";
    const auto expected = nlohmann::json::parse(test::read_text(dir / "expected.json"));
    for (const char* name : {"qwen2", "mixtral"}) {
        int checked = 0;
        for (const auto& c : expected.at(name).at("cases")) {
            const std::string text = c.at("text");
            if (text.empty() || text.find_first_of("'\n") != std::string::npos || text[0] == '-') continue;
            const RunResult r = run_cli(fmt::format("tokenize -m '{}' -p '{}'", (dir / name).string(), text));
            ASSERT_EQ(r.exit_code, 0) << name << " " << text << ": " << r.err;
            EXPECT_EQ(nlohmann::json::parse(r.out), c.at("ids")) << name << ": " << text;
            if (++checked == 12) break;
        }
        EXPECT_EQ(checked, 12) << name;
    }
}

TEST(CliTokenize, NoSpecialKeepsControlTextAsText) {
    HYMOE_REQUIRE_REFERENCE(ref);
    const std::string m = vocab(ref, "ggml-vocab-gpt-2");
    EXPECT_EQ(run_cli("tokenize -m " + m + " -p '<|endoftext|>'").out, "[50256]\n");
    const RunResult plain = run_cli("tokenize -m " + m + " -p '<|endoftext|>' --no-special");
    EXPECT_EQ(plain.exit_code, 0) << plain.err;
    EXPECT_EQ(plain.out.find("50256"), std::string::npos) << plain.out;
}

TEST(CliTokenize, DetokPrintsText) {
    HYMOE_REQUIRE_REFERENCE(ref);
    EXPECT_EQ(run_cli("tokenize -m " + vocab(ref, "ggml-vocab-llama-spm") + " --detok -p '[1, 15043, 3186]'").out,
              "Hello world\n");
    EXPECT_EQ(run_cli("tokenize -m " + vocab(ref, "ggml-vocab-gpt-2") + " --detok -p 15496,995").out, "Hello world\n");
}

TEST(CliTokenize, Errors) {
    HYMOE_REQUIRE_REFERENCE(ref);
    expect_one_line_error(run_cli("tokenize -m /nonexistent/vocab.gguf -p hi"), "/nonexistent/vocab.gguf");
    expect_one_line_error(run_cli("tokenize -m " + vocab(ref, "ggml-vocab-gpt-2") + " --detok -p '1,x'"),
                          "-p: 'x' (item 1) is not a token id");
    expect_one_line_error(run_cli("tokenize -m " + vocab(ref, "ggml-vocab-gpt-2") + " --detok -p 99999999"),
                          "'99999999'");
}

}  // namespace
}  // namespace hymoe
