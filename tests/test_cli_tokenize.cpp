// `hymoe tokenize` as a user runs it: ids as JSON, --no-bos, --no-special, --detok, errors.
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <string>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "test_support.hpp"

namespace hymoe {
namespace {

namespace fs = std::filesystem;

struct RunResult {
    int exit_code = -1;
    std::string out;
    std::string err;
};

RunResult run_cli(const std::string& args) {
    static int n_runs = 0;  // each run captures into its own files
    const fs::path dir = fs::path(::testing::TempDir()) / fmt::format("hymoe_cli_tok_{}_{}", ::getpid(), n_runs++);
    fs::create_directories(dir);
    const fs::path out = dir / "stdout.txt";
    const fs::path err = dir / "stderr.txt";
    const std::string cmd =
        fmt::format("'{}' {} > '{}' 2> '{}' < /dev/null", HYMOE_CLI_PATH, args, out.string(), err.string());
    const int status = std::system(cmd.c_str());
    RunResult r;
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    r.out = test::read_text(out);
    r.err = test::read_text(err);
    fs::remove_all(dir);
    return r;
}

void expect_one_line_error(const RunResult& r, const std::string& must_contain) {
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_EQ(r.err.rfind("hymoe: error: ", 0), 0u) << r.err;
    EXPECT_NE(r.err.find(must_contain), std::string::npos) << r.err;
}

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
