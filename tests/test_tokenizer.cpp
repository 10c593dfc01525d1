// Tokenizers against llama.cpp: its tokenizer test vectors (test-tokenizer-0), the reference
// fixtures' prompt tokens, decode round trips, streaming, and bad metadata.
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "format/gguf_writer.hpp"
#include "format/model_file.hpp"
#include "hymoe/error.hpp"
#include "test_support.hpp"
#include "tokenizer/pretokenize.hpp"
#include "tokenizer/tokenizer.hpp"

namespace hymoe {
namespace {

namespace fs = std::filesystem;

std::vector<std::string> split_inputs(const std::string& text) {
    const std::string sep = "\n__ggml_vocab_test__\n";
    std::vector<std::string> out;
    size_t pos = 0;
    for (size_t hit = text.find(sep); hit != std::string::npos; hit = text.find(sep, pos)) {
        out.push_back(text.substr(pos, hit - pos));
        pos = hit + sep.size();
    }
    if (pos < text.size()) out.push_back(text.substr(pos));
    return out;
}

std::vector<std::vector<int32_t>> read_outputs(const std::string& text) {
    std::vector<std::vector<int32_t>> out;
    std::istringstream lines(text);
    for (std::string line; std::getline(lines, line);) {
        std::istringstream ids(line);
        std::vector<int32_t> row;
        for (int32_t id = 0; ids >> id;) row.push_back(id);
        out.push_back(std::move(row));
    }
    return out;
}

bool valid_utf8(const std::string& s) {
    size_t i = 0;
    while (i < s.size()) {
        const auto b = static_cast<unsigned char>(s[i]);
        const size_t n = b < 0x80 ? 1 : (b >> 5) == 6 ? 2 : (b >> 4) == 14 ? 3 : (b >> 3) == 30 ? 4 : 0;
        if (n == 0 || i + n > s.size()) return false;
        for (size_t k = 1; k < n; ++k)
            if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
        i += n;
    }
    return true;
}

Tokenizer load_vocab(const fs::path& ref, const std::string& name) {
    return Tokenizer::from_gguf(open_model_file((ref / "vocab" / (name + ".gguf")).string()));
}

class VocabVectors : public ::testing::TestWithParam<std::string> {};

TEST_P(VocabVectors, MatchLlamaCpp) {
    HYMOE_REQUIRE_REFERENCE(ref);
    const std::string name = GetParam();
    const Tokenizer tok = load_vocab(ref, name);
    const auto inputs = split_inputs(test::read_text(ref / "vocab" / (name + ".gguf.inp")));
    const auto expected = read_outputs(test::read_text(ref / "vocab" / (name + ".gguf.out")));
    ASSERT_EQ(inputs.size(), expected.size());
    size_t passed = 0;
    for (size_t i = 0; i < inputs.size(); ++i) {
        const std::vector<int32_t> ids = tok.encode(inputs[i], false, false);
        if (ids == expected[i]) {
            ++passed;
        } else {
            ADD_FAILURE() << name << " vector " << i << " '" << inputs[i] << "': got ["
                          << fmt::format("{}", fmt::join(ids, " ")) << "], llama.cpp ["
                          << fmt::format("{}", fmt::join(expected[i], " ")) << "]";
        }
        // Every input is valid UTF-8 and every vocab here is lossless, so decoding gives it back.
        EXPECT_EQ(tok.decode(expected[i]), inputs[i]) << name << " vector " << i;
    }
    RecordProperty("vectors_passed", fmt::format("{}/{}", passed, inputs.size()));
    fmt::print("{}: {}/{} vectors match llama.cpp\n", name, passed, inputs.size());
}

INSTANTIATE_TEST_SUITE_P(Vocabs, VocabVectors,
                         ::testing::Values("ggml-vocab-llama-spm", "ggml-vocab-deepseek-llm", "ggml-vocab-gpt-2"),
                         test::ParamName{});

class ReferencePrompt : public ::testing::TestWithParam<std::string> {};

TEST_P(ReferencePrompt, EncodesLikeLlamaCpp) {
    HYMOE_REQUIRE_REFERENCE(ref);
    const fs::path dir = ref / GetParam();
    if (!fs::exists(dir / "model.gguf")) GTEST_SKIP() << dir << " has no model.gguf";
    const Tokenizer tok = Tokenizer::from_gguf(open_model_file((dir / "model.gguf").string()));
    const std::string prompt = test::read_text(dir / "prompt.txt");
    const auto expected = nlohmann::json::parse(test::read_text(dir / "tokens.json")).get<std::vector<int32_t>>();
    EXPECT_EQ(tok.encode(prompt, true, false), expected) << GetParam() << " pre=" << tok.pre();
    EXPECT_EQ(tok.decode(expected), prompt);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, ReferencePrompt,
                         ::testing::Values("qwen3moe", "qwen2moe", "mixtral", "olmoe", "deepseek2", "deepseek2-v2",
                                           "gpt-oss"),
                         test::ParamName{});

TEST(Tokenizer, SpecialTokensParsedOnlyWhenAsked) {
    HYMOE_REQUIRE_REFERENCE(ref);
    const Tokenizer gpt2 = load_vocab(ref, "ggml-vocab-gpt-2");
    EXPECT_EQ(gpt2.encode("a<|endoftext|>b", false, true), (std::vector<int32_t>{64, 50256, 65}));
    const auto plain = gpt2.encode("a<|endoftext|>b", false, false);
    EXPECT_GT(plain.size(), 3u);
    EXPECT_EQ(gpt2.decode(plain), "a<|endoftext|>b");
    EXPECT_TRUE(gpt2.is_end_of_generation(50256));
    EXPECT_EQ(gpt2.eot(), 50256);
    EXPECT_EQ(gpt2.token_to_piece(50256), "<|endoftext|>");

    const Tokenizer spm = load_vocab(ref, "ggml-vocab-llama-spm");
    EXPECT_EQ(spm.bos(), 1);
    EXPECT_EQ(spm.eos(), 2);
    EXPECT_TRUE(spm.is_end_of_generation(2));
    EXPECT_EQ(spm.encode("Hello</s>", true, true).back(), 2);
    EXPECT_NE(spm.encode("Hello</s>", true, false).back(), 2);
    EXPECT_EQ(spm.token_to_piece(spm.encode("\n", false, false).back()), "\n");  // <0x0A>
}

TEST(Tokenizer, StreamerYieldsWholeCharacters) {
    HYMOE_REQUIRE_REFERENCE(ref);
    for (const std::string name : {"ggml-vocab-gpt-2", "ggml-vocab-llama-spm"}) {
        const Tokenizer tok = load_vocab(ref, name);
        // Rare characters become several byte tokens, so characters split across tokens.
        const std::string text = "caf\xC3\xA9 \xF0\x9F\xA6\x99 \xE1\x80\x81\xE1\x80\xBB \xE2\x9C\x85 done";
        const auto ids = tok.encode(text, false, false);
        TextStreamer streamer;
        std::string joined;
        size_t held = 0;
        for (const int32_t id : ids) {
            const std::string chunk = streamer.feed(tok, id);
            EXPECT_TRUE(valid_utf8(chunk)) << name << ": chunk for token " << id;
            if (chunk.empty()) ++held;
            joined += chunk;
        }
        joined += streamer.flush();
        EXPECT_GT(held, 0u) << name << ": no token split a character; the test proves nothing";
        // The streamer shows generated text as is: SPM's space prefix stays.
        EXPECT_EQ(joined, name == "ggml-vocab-llama-spm" ? " " + text : text) << name;
    }
}

void write_vocab(const fs::path& path, const std::vector<std::pair<std::string, MetaValue>>& kvs) {
    GgufWriter w;
    w.add_metadata("general.architecture", MetaValue::string("llama"));
    for (const auto& [k, v] : kvs) w.add_metadata(k, v);
    w.write(path.string(), [](size_t, std::span<std::byte>) {});
}

MetaValue strings(std::vector<std::string> items) {
    MetaArray arr;
    arr.element_type = MetaType::String;
    for (auto& s : items) arr.items.push_back(MetaValue::string(std::move(s)));
    return MetaValue::array(std::move(arr));
}

std::string load_error(const fs::path& path) {
    try {
        Tokenizer::from_gguf(open_model_file(path.string()));
    } catch (const Error& e) {
        return e.what();
    }
    return "(no error)";
}

TEST(Tokenizer, BadMetadataIsOneClearError) {
    const fs::path dir = test::temp_dir_for_test();
    const fs::path no_tokens = dir / "no_tokens.gguf";
    write_vocab(no_tokens,
                {{"tokenizer.ggml.model", MetaValue::string("gpt2")}, {"tokenizer.ggml.merges", strings({"a b"})}});
    std::string err = load_error(no_tokens);
    EXPECT_NE(err.find(no_tokens.string()), std::string::npos) << err;
    EXPECT_NE(err.find("tokenizer.ggml.tokens is missing"), std::string::npos) << err;

    const fs::path bad_merges = dir / "bad_merges.gguf";
    write_vocab(bad_merges, {{"tokenizer.ggml.model", MetaValue::string("gpt2")},
                             {"tokenizer.ggml.tokens", strings({"a", "b", "ab"})},
                             {"tokenizer.ggml.merges", strings({"a b", "ab"})}});
    err = load_error(bad_merges);
    EXPECT_NE(err.find("tokenizer.ggml.merges[1] 'ab' is not 'left right'"), std::string::npos) << err;
    EXPECT_EQ(err.find('\n'), std::string::npos) << err;

    const fs::path no_merges = dir / "no_merges.gguf";
    write_vocab(no_merges,
                {{"tokenizer.ggml.model", MetaValue::string("gpt2")}, {"tokenizer.ggml.tokens", strings({"a", "b"})}});
    EXPECT_NE(load_error(no_merges).find("tokenizer.ggml.merges is missing"), std::string::npos);

    const fs::path unknown = dir / "unknown_model.gguf";
    write_vocab(unknown,
                {{"tokenizer.ggml.model", MetaValue::string("t5")}, {"tokenizer.ggml.tokens", strings({"a"})}});
    EXPECT_NE(load_error(unknown).find("tokenizer model 't5'"), std::string::npos);

    const fs::path duplicate = dir / "duplicate.gguf";
    write_vocab(duplicate, {{"tokenizer.ggml.model", MetaValue::string("llama")},
                            {"tokenizer.ggml.tokens", strings({"<unk>", "a", "a"})}});
    EXPECT_NE(load_error(duplicate).find("'a' twice"), std::string::npos);
}

TEST(Tokenizer, UnknownPreFallsBackToDefault) {
    const fs::path path = test::temp_dir_for_test() / "odd_pre.gguf";
    write_vocab(path, {{"tokenizer.ggml.model", MetaValue::string("gpt2")},
                       {"tokenizer.ggml.pre", MetaValue::string("no-such-pre")},
                       {"tokenizer.ggml.tokens", strings({"a", "b", "ab", "\xC4\xA0"})},
                       {"tokenizer.ggml.merges", strings({"a b"})}});
    const Tokenizer tok = Tokenizer::from_gguf(open_model_file(path.string()));
    EXPECT_EQ(tok.pre(), "no-such-pre");
    EXPECT_EQ(tok.encode("ab ab", false, false), (std::vector<int32_t>{2, 3, 2}));
    EXPECT_EQ(tok.decode(std::vector<int32_t>{2, 3, 2}), "ab ab");
    EXPECT_THROW(tok.token_to_piece(4), Error);
}

// The pre-tokenizers no vocab here exercises, checked on their splits (GPT-2's byte encoding
// shows a space as U+0120).
TEST(PreTokenizer, SplitsLikeTheirRegexes) {
    using tok::PreTokenizer;
    using tok::PreType;
    const std::string text = "Hello world's 12345 \xE4\xBD\xA0\xE5\xA5\xBD!!\n\n";
    const std::string sp = "\xC4\xA0";
    const std::string nl = "\xC4\x8A";
    const std::string cjk = "\xC3\xA4\xC2\xBD\xC5\x82\xC3\xA5\xC2\xA5\xC2\xBD";  // byte-encoded
    EXPECT_EQ(PreTokenizer(PreType::Llama3).split(text),
              (std::vector<std::string>{"Hello", sp + "world", "'s", sp, "123", "45", sp + cjk, "!!" + nl + nl}));
    EXPECT_EQ(
        PreTokenizer(PreType::Qwen2).split(text),
        (std::vector<std::string>{"Hello", sp + "world", "'s", sp, "1", "2", "3", "4", "5", sp + cjk, "!!" + nl + nl}));
    EXPECT_EQ(PreTokenizer(PreType::Deepseek3).split(text),
              (std::vector<std::string>{"Hello", sp + "world", "'s", sp, "123", "45", sp, cjk, "!!" + nl + nl}));
    EXPECT_EQ(PreTokenizer(PreType::Gpt4o).split("helloWORLD don't 12345"),
              (std::vector<std::string>{"hello", "WORLD", sp + "don't", sp, "123", "45"}));
    // Invalid UTF-8 becomes U+FFFD (byte-encoded) per bad byte, as in llama.cpp.
    EXPECT_EQ(PreTokenizer(PreType::Gpt2).split("a\xFF"), (std::vector<std::string>{"a", "\xC3\xAF\xC2\xBF\xC2\xBD"}));
}

}  // namespace
}  // namespace hymoe
