// Chat prompts rendered by hymoe equal what transformers' apply_chat_template renders from the
// same real templates (Mixtral, Qwen2/2.5/3, DeepSeek V2/V3/R1, OLMoE, gpt-oss): the strings in
// tests/fixtures/chat-templates/expected.json, recorded by make_chat_templates.py.
#include <ctime>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "chat/chat_template.hpp"
#include "hymoe/error.hpp"
#include "test_support.hpp"

namespace hymoe {
namespace {

using Json = nlohmann::ordered_json;

const Json& expected() {
    static const Json j = Json::parse(test::read_text(test::fixtures_dir() / "chat-templates" / "expected.json"));
    return j;
}

std::tm fixture_now() {
    // expected.json's "now": 2026-11-26T10:00:00 local time.
    std::tm t{};
    t.tm_year = 2026 - 1900;
    t.tm_mon = 10;
    t.tm_mday = 26;
    t.tm_hour = 10;
    t.tm_wday = 4;  // a Thursday
    t.tm_yday = 329;
    return t;
}

std::vector<std::string> families() {
    std::vector<std::string> names;
    for (const auto& [name, _] : expected().at("templates").items()) names.push_back(name);
    return names;
}

class TransformersChatTemplate : public ::testing::TestWithParam<std::string> {};

TEST_P(TransformersChatTemplate, RendersEveryCaseExactly) {
    ASSERT_EQ(expected().at("now"), "2026-11-26T10:00:00");
    const Json& family = expected().at("templates").at(GetParam());
    const std::string file = family.at("file");
    const std::string source = test::read_text(test::fixtures_dir() / "chat-templates" / file);
    auto text_or_empty = [](const Json& v) { return v.is_string() ? v.get<std::string>() : std::string(); };
    ChatTemplate chat(source, text_or_empty(family.at("bos_token")), text_or_empty(family.at("eos_token")), file);
    ASSERT_FALSE(chat.is_plain()) << chat.fallback_reason();
    chat.set_now(fixture_now());

    int n_cases = 0;
    for (const Json& c : family.at("cases")) {
        SCOPED_TRACE(GetParam() + " / " + c.at("name").get<std::string>());
        ChatRenderOptions options;
        options.add_generation_prompt = c.at("add_generation_prompt").get<bool>();
        if (c.contains("tools")) options.tools = c.at("tools");
        if (c.contains("extra")) options.extra = c.at("extra");
        if (c.contains("error")) {
            try {
                const std::string out = chat.render(c.at("messages"), options);
                ADD_FAILURE() << "expected the template to raise \"" << c.at("error").get<std::string>() << "\", got:\n"
                              << out;
            } catch (const Error& e) {
                EXPECT_NE(std::string(e.what()).find(c.at("error").get<std::string>()), std::string::npos) << e.what();
            }
        } else {
            std::string out;
            EXPECT_NO_THROW(out = chat.render(c.at("messages"), options));
            EXPECT_EQ(out, c.at("expected").get<std::string>());
        }
        ++n_cases;
    }
    EXPECT_GT(n_cases, 0);
}

INSTANTIATE_TEST_SUITE_P(Families, TransformersChatTemplate, ::testing::ValuesIn(families()), test::ParamName());

TEST(ChatTemplate, UnparsableTemplateFallsBackToPlainAndSaysWhy) {
    const ChatTemplate chat("{% for m in messages %}{{ m.content }", "<s>", "</s>", "broken.jinja");
    EXPECT_TRUE(chat.is_plain());
    EXPECT_NE(chat.fallback_reason().find("broken.jinja"), std::string::npos) << chat.fallback_reason();
    EXPECT_NE(chat.fallback_reason().find("line 1"), std::string::npos) << chat.fallback_reason();
    const std::vector<ChatMessage> messages = {{"system", "Be brief."}, {"user", "Hi"}};
    EXPECT_EQ(chat.render(messages), "System: Be brief.\n\nUser: Hi\n\nAssistant:");
    EXPECT_TRUE(chat.tokenize_with_special());
    EXPECT_FALSE(chat.stop_strings().empty());
}

TEST(ChatTemplate, NoTemplateMeansPlainFormat) {
    const ChatTemplate chat("", "<s>", "</s>", "model.gguf");
    EXPECT_TRUE(chat.is_plain());
    EXPECT_NE(chat.fallback_reason().find("model.gguf has no chat template"), std::string::npos);
    const std::vector<ChatMessage> messages = {{"user", "Hi"}, {"assistant", "Yo"}};
    ChatRenderOptions no_prompt;
    no_prompt.add_generation_prompt = false;
    EXPECT_EQ(chat.render(messages, no_prompt), "User: Hi\n\nAssistant: Yo\n\n");
}

TEST(ChatTemplate, ChatMessagesPassReasoningAsTransformersDoes) {
    // Both names of the reasoning reach the template, as transformers aliases them.
    const ChatTemplate chat(
        "{% for m in messages %}[{{ m.thinking }}|{{ m.reasoning_content }}|{{ m.content }}]"
        "{% endfor %}",
        "", "", "inline");
    const std::vector<ChatMessage> messages = {{"assistant", "4", "2+2"}};
    EXPECT_EQ(chat.render(messages), "[2+2|2+2|4]");
}

}  // namespace
}  // namespace hymoe
