// `hymoe chat` and `hymoe run --chat` as a user runs them, on a small synthetic model with a
// real vocabulary (the demo's). The rendered prompt is compared with what transformers renders
// from the same template (tests/fixtures/chat-templates/expected.json).
#include <filesystem>
#include <string>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cli_runner.hpp"
#include "test_support.hpp"

namespace hymoe {
namespace {

namespace fs = std::filesystem;
using test::expect_one_line_error;
using test::run_cli;
using test::RunResult;

// A tiny Mixtral-shaped model with the llama SPM vocabulary (bos <s>, eos </s>), made once.
const std::string& demo_model() {
    static const std::string path = [] {
        const fs::path dir = fs::path(::testing::TempDir()) / fmt::format("hymoe_chat_{}", ::getpid());
        fs::create_directories(dir);
        const fs::path model = dir / "tiny-mixtral.gguf";
        const fs::path vocab = fs::path(HYMOE_SOURCE_DIR) / "tools/hymoe/demo/ggml-vocab-llama-spm.gguf";
        const RunResult r =
            run_cli(fmt::format("synth --shape tiny-mixtral --vocab '{}' -o '{}'", vocab.string(), model.string()));
        EXPECT_EQ(r.exit_code, 0) << r.err;
        return model.string();
    }();
    return path;
}

std::string prompt_of(const RunResult& r) {
    const std::string head = " tokens):\n";
    const std::string tail = "\n[end of prompt]\n";
    const size_t a = r.err.find(head);
    const size_t b = r.err.find(tail);
    if (a == std::string::npos || b == std::string::npos || b < a) return "<no prompt in stderr>";
    return r.err.substr(a + head.size(), b - a - head.size());
}

TEST(CliChat, RunChatRendersTheTemplateAsTransformersDoes) {
    const fs::path dir = test::fixtures_dir() / "chat-templates";
    const auto expected = nlohmann::json::parse(test::read_text(dir / "expected.json"));
    const auto& mixtral = expected.at("templates").at("mixtral");
    ASSERT_EQ(mixtral.at("bos_token"), "<s>");  // the demo vocabulary's
    bool checked = false;
    for (const auto& c : mixtral.at("cases")) {
        const auto& messages = c.at("messages");
        if (messages.size() != 1 || messages[0].at("role") != "user" || !c.contains("expected") ||
            !c.at("add_generation_prompt").get<bool>() || !c.value("extra", nlohmann::json::object()).empty())
            continue;
        const std::string user = messages[0].at("content");
        if (user.find('\'') != std::string::npos) continue;  // quoted for the shell below
        const RunResult r =
            run_cli(fmt::format("run -m '{}' --chat --chat-template '{}' -p '{}' -n 2 --temp 0 "
                                "--verbose-prompt",
                                demo_model(), (dir / mixtral.at("file").get<std::string>()).string(), user));
        ASSERT_EQ(r.exit_code, 0) << r.err;
        EXPECT_EQ(prompt_of(r), c.at("expected").get<std::string>());
        EXPECT_EQ(r.err.find("plain"), std::string::npos) << "no fallback warning expected: " << r.err;
        checked = true;
    }
    EXPECT_TRUE(checked) << "no single-user-message case for mixtral in expected.json";
}

TEST(CliChat, NoTemplateFallsBackToPlainFormatWithAWarning) {
    const RunResult r = run_cli(
        fmt::format("run -m '{}' --chat --system 'Be brief.' -p 'Hi' -n 2 --temp 0 --verbose-prompt", demo_model()));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.err.find("has no chat template"), std::string::npos) << r.err;
    EXPECT_EQ(prompt_of(r), "System: Be brief.\n\nUser: Hi\n\nAssistant:");
}

TEST(CliChat, MultiTurnResetAndExit) {
    // Two turns, a reset, a multi-line message written with a trailing backslash, one with
    // """ fences, then /exit: everything after it is not read.
    const std::string input =
        "Hello there\n"
        "How are you?\n"
        "/reset\n"
        "first line \\\n"
        "second line\n"
        "\"\"\"\n"
        "fenced one\n"
        "fenced two\n"
        "\"\"\"\n"
        "/exit\n"
        "never sent\n";
    const RunResult r = run_cli(fmt::format("chat -m '{}' -n 3 --temp 0", demo_model()), input);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.err.find("(conversation cleared)"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("chat: 4 answers;"), std::string::npos) << r.err;
}

TEST(CliChat, FullContextIsReportedAndTheChatGoesOn) {
    std::string long_message;
    for (int i = 0; i < 40; ++i) long_message += "many words here ";
    const RunResult r =
        run_cli(fmt::format("chat -m '{}' -c 48 -n 2 --temp 0", demo_model()), long_message + "\nShort one\n");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.err.find("the context is full"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("chat: 1 answers;"), std::string::npos) << "the short message is still answered:\n" << r.err;
}

TEST(CliChat, InvalidUtf8MessageIsRejectedAndTheChatGoesOn) {
    const RunResult r = run_cli(fmt::format("chat -m '{}' -n 2 --temp 0", demo_model()), "bad \xC3\x28 byte\nok\n");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.err.find("not valid UTF-8 (byte 4)"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("chat: 1 answers;"), std::string::npos) << r.err;
}

TEST(CliChat, RunRejectsBadPrompts) {
    const std::string& m = demo_model();
    expect_one_line_error(run_cli(fmt::format("run -m '{}' -p ''", m)), "the prompt is empty");
    expect_one_line_error(run_cli(fmt::format("run -m '{}' -p \"$(printf 'ok \\377')\"", m)),
                          "-p/--prompt: invalid UTF-8 at byte 3 (0xFF)");
    expect_one_line_error(run_cli(fmt::format("run -m '{}' -p \"$(printf '\\355\\240\\200')\"", m)),
                          "invalid UTF-8 at byte 0");
    expect_one_line_error(run_cli(fmt::format("run -m '{}' -p 'one two three four five six' -c 4", m)),
                          "the context only 4");
    expect_one_line_error(run_cli(fmt::format("run -m '{}' -p hi --system x", m)), "--system needs --chat");
    expect_one_line_error(run_cli(fmt::format("run -m '{}' -p hi --top-p 1.5", m)), "top_p must be in (0, 1]");
    const RunResult unknown = run_cli(fmt::format("run -m '{}' -p hi --no-such-flag", m));
    EXPECT_NE(unknown.exit_code, 0);
    EXPECT_NE(unknown.err.find("--no-such-flag"), std::string::npos) << unknown.err;
    const RunResult effort = run_cli(fmt::format("run -m '{}' -p hi --chat --reasoning-effort extreme", m));
    EXPECT_NE(effort.exit_code, 0);
    EXPECT_NE(effort.err.find("extreme"), std::string::npos) << effort.err;
}

}  // namespace
}  // namespace hymoe
