// Tokenizers read from Hugging Face tokenizer.json against the `tokenizers` library itself: for
// every directory of tests/fixtures/hf-tokenizers (make_hf_tokenizers.py) and every test string,
// the ids of encode (special tokens parsed, and not) and decode; the special tokens and chat
// configuration of a model directory; and files that are missing, unsupported or malformed.
#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "hymoe/error.hpp"
#include "test_support.hpp"
#include "tokenizer/hf_pipeline.hpp"
#include "tokenizer/hf_tokenizer.hpp"
#include "tokenizer/pretokenize.hpp"
#include "tokenizer/tokenizer.hpp"

namespace hymoe {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

fs::path fixture(const std::string& name) {
    return test::fixtures_dir() / "hf-tokenizers" / name;
}

const json& expected() {
    static const json j = json::parse(test::read_text(fixture("expected.json")));
    return j;
}

const std::vector<std::string> kFixtures = {"gpt2",   "olmoe",   "deepseek-llm", "mixtral", "llama-metaspace", "qwen2",
                                            "llama3", "gpt-oss", "deepseek-v3",  "custom",  "custom-unk"};

std::string ids_text(const std::vector<int32_t>& ids) {
    return fmt::format("[{}]", fmt::join(ids, " "));
}

TEST(HfFixtures, EveryDirectoryIsTested) {
    std::vector<std::string> listed;
    for (const auto& [name, _] : expected().items()) listed.push_back(name);
    std::vector<std::string> tested = kFixtures;
    std::sort(listed.begin(), listed.end());
    std::sort(tested.begin(), tested.end());
    EXPECT_EQ(listed, tested);
}

// Every string of `exp` (one directory's entry of expected.json) through the tokenizer in `dir`.
void check_vectors(const fs::path& dir, const std::string& name, const json& exp) {
    const Tokenizer tok = Tokenizer::from_hf(dir);
    EXPECT_EQ(tok.n_vocab(), exp.at("n_vocab").get<int64_t>()) << name;
    size_t passed = 0;
    size_t failures = 0;
    const json& cases = exp.at("cases");
    for (size_t i = 0; i < cases.size(); ++i) {
        const json& c = cases[i];
        const std::string text = c.at("text").get<std::string>();
        const auto want = c.at("ids").get<std::vector<int32_t>>();
        const auto want_plain = c.at("ids_split_special").get<std::vector<int32_t>>();
        const std::vector<int32_t> ids = tok.encode(text, true, true);
        const std::vector<int32_t> plain = tok.encode(text, true, false);
        bool ok = ids == want && plain == want_plain;
        std::string decoded;
        if (!c.at("decoded").is_null()) {  // null: tokenizers itself panicked decoding it
            decoded = tok.decode(want);
            ok = ok && decoded == c.at("decoded").get<std::string>();
        }
        if (ok) {
            ++passed;
        } else if (++failures <= 10) {
            ADD_FAILURE() << name << " case " << i << " " << json(text).dump().substr(0, 200) << "\n  ids     "
                          << ids_text(ids) << "\n  HF      " << ids_text(want) << "\n  plain   " << ids_text(plain)
                          << "\n  HF      " << ids_text(want_plain) << "\n  decoded " << json(decoded).dump()
                          << "\n  HF      " << c.at("decoded").dump();
        }
    }
    ::testing::Test::RecordProperty(name + "_passed", fmt::format("{}/{}", passed, cases.size()));
    fmt::print("{}: {}/{} strings match tokenizers\n", name, passed, cases.size());
    EXPECT_EQ(passed, cases.size()) << name;
}

class HfVectors : public ::testing::TestWithParam<std::string> {};

TEST_P(HfVectors, MatchTokenizers) {
    check_vectors(fixture(GetParam()), GetParam(), expected().at(GetParam()));
}

// Directories made by `make_hf_tokenizers.py --full DIR` (full-size vocabularies, not in the
// repository), when HYMOE_HF_TOKENIZERS_DIR names one.
TEST(HfVectorsExtra, FromEnvironment) {
    const char* env = std::getenv("HYMOE_HF_TOKENIZERS_DIR");
    if (env == nullptr || *env == '\0') GTEST_SKIP() << "HYMOE_HF_TOKENIZERS_DIR is not set";
    const fs::path root = env;
    const json all = json::parse(test::read_text(root / "expected.json"));
    for (const auto& [name, exp] : all.items()) check_vectors(root / name, name, exp);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, HfVectors, ::testing::ValuesIn(kFixtures), test::ParamName{});

// Streaming one token at a time gives the same text as decoding all at once (byte-level
// tokenizers: no space is added or stripped), where that text is valid UTF-8 (the streamer
// passes bytes through; decode repairs them as tokenizers does).
TEST(HfTokenizer, StreamerAgreesWithDecode) {
    for (const std::string name : {"gpt2", "olmoe", "deepseek-llm", "qwen2", "llama3", "gpt-oss", "deepseek-v3"}) {
        const Tokenizer tok = Tokenizer::from_hf(fixture(name));
        for (const json& c : expected().at(name).at("cases")) {
            const auto ids = c.at("ids").get<std::vector<int32_t>>();
            if (c.at("decoded").get<std::string>().find("\xEF\xBF\xBD") != std::string::npos) continue;
            TextStreamer streamer;
            std::string joined;
            for (const int32_t id : ids) joined += streamer.feed(tok, id);
            joined += streamer.flush();
            EXPECT_EQ(joined, c.at("decoded").get<std::string>()) << name << " " << c.at("text").dump();
        }
    }
}

TEST(HfTokenizer, SpecialTokensAndFamilies) {
    const Tokenizer mixtral = Tokenizer::from_hf(fixture("mixtral"));
    EXPECT_EQ(mixtral.kind(), Tokenizer::Kind::Spm);
    EXPECT_EQ(mixtral.bos(), 1);
    EXPECT_EQ(mixtral.eos(), 2);
    EXPECT_TRUE(mixtral.add_bos());
    EXPECT_FALSE(mixtral.add_eos());
    EXPECT_TRUE(mixtral.is_end_of_generation(2));
    EXPECT_TRUE(mixtral.is_control(1));
    EXPECT_EQ(mixtral.token_to_piece(mixtral.encode("\n", false, false).back()), "\n");  // <0x0A>

    const Tokenizer qwen = Tokenizer::from_hf(fixture("qwen2"));
    EXPECT_EQ(qwen.kind(), Tokenizer::Kind::Bpe);
    EXPECT_EQ(qwen.pre(), "qwen2");
    EXPECT_EQ(qwen.bos(), -1);
    EXPECT_FALSE(qwen.add_bos());
    const int32_t im_end = qwen.encode("<|im_end|>", false, true).at(0);
    EXPECT_EQ(qwen.eos(), im_end);
    EXPECT_TRUE(qwen.is_end_of_generation(im_end));
    EXPECT_TRUE(qwen.is_control(im_end));
    const int32_t think = qwen.encode("<think>", false, false).at(0);  // not special: matched anyway
    EXPECT_FALSE(qwen.is_control(think));
    EXPECT_EQ(qwen.token_to_piece(think), "<think>");
    EXPECT_EQ(qwen.token_to_piece(im_end), "<|im_end|>");
    EXPECT_THROW(qwen.token_to_piece(static_cast<int32_t>(qwen.n_vocab())), Error);

    const Tokenizer llama3 = Tokenizer::from_hf(fixture("llama3") / "tokenizer.json");  // a file works too
    EXPECT_EQ(llama3.pre(), "llama-bpe");
    EXPECT_TRUE(llama3.add_bos());
    EXPECT_EQ(llama3.encode("x", true, false).front(), llama3.bos());
    EXPECT_TRUE(llama3.is_end_of_generation(llama3.eos()));  // <|eot_id|>
    EXPECT_TRUE(llama3.is_end_of_generation(llama3.encode("<|end_of_text|>", false, true).at(0)));
    EXPECT_TRUE(llama3.is_end_of_generation(llama3.encode("<|eom_id|>", false, true).at(0)));

    // Harmony: <|return|> and <|call|> end generation, <|end|> only a message.
    const Tokenizer oss = Tokenizer::from_hf(fixture("gpt-oss"));
    EXPECT_EQ(oss.pre(), "gpt-4o");
    EXPECT_TRUE(oss.is_end_of_generation(oss.encode("<|return|>", false, true).at(0)));
    EXPECT_TRUE(oss.is_end_of_generation(oss.encode("<|call|>", false, true).at(0)));
    EXPECT_FALSE(oss.is_end_of_generation(oss.encode("<|end|>", false, true).at(0)));

    // tokenizer_config.json's add_bos_token adds BOS that the post-processor does not.
    const Tokenizer ds3 = Tokenizer::from_hf(fixture("deepseek-v3"));
    EXPECT_EQ(ds3.pre(), "deepseek-v3");
    EXPECT_TRUE(ds3.add_bos());
    EXPECT_EQ(ds3.token_to_piece(ds3.bos()), "<\uff5cbegin\u2581of\u2581sentence\uff5c>");

    EXPECT_EQ(Tokenizer::from_hf(fixture("deepseek-llm")).pre(), "deepseek-llm");
    EXPECT_EQ(Tokenizer::from_hf(fixture("gpt2")).pre(), "gpt-2");
    EXPECT_EQ(Tokenizer::from_hf(fixture("custom")).pre(), "custom");
}

TEST(HfTokenizer, ChatConfig) {
    const tok::HfChatConfig qwen = tok::read_hf_chat_config(fixture("qwen2"));
    ASSERT_TRUE(qwen.chat_template.has_value());
    EXPECT_NE(qwen.chat_template->find("<|im_start|>"), std::string::npos);
    EXPECT_FALSE(qwen.bos_token.has_value());  // null in the file
    EXPECT_EQ(qwen.eos_token, "<|im_end|>");

    // A list of named templates: the "default" one.
    const auto llama3 = tok::hf_chat_template(fixture("llama3") / "tokenizer.json");
    ASSERT_TRUE(llama3.has_value());
    EXPECT_NE(llama3->find("<|start_header_id|>"), std::string::npos);

    // chat_template.jinja wins over tokenizer_config.json.
    const tok::HfChatConfig oss = tok::read_hf_chat_config(fixture("gpt-oss"));
    EXPECT_EQ(oss.chat_template, test::read_text(fixture("gpt-oss") / "chat_template.jinja"));
    EXPECT_EQ(oss.bos_token, "<|startoftext|>");

    // {"content": ...} token entries.
    EXPECT_EQ(tok::read_hf_chat_config(fixture("deepseek-v3")).bos_token, "<\uff5cbegin\u2581of\u2581sentence\uff5c>");
    EXPECT_FALSE(tok::hf_chat_template(fixture("custom")).has_value());

    const fs::path empty = test::temp_dir_for_test();
    const tok::HfChatConfig none = tok::read_hf_chat_config(empty);
    EXPECT_FALSE(none.chat_template || none.bos_token || none.eos_token);
}

// ---- bad files ----------------------------------------------------------------------------------

json minimal_tokenizer() {
    return json::parse(R"({
        "version": "1.0", "truncation": null, "padding": null,
        "added_tokens": [{"id": 3, "content": "<s>", "single_word": false, "lstrip": false, "rstrip": false,
                          "normalized": false, "special": true}],
        "normalizer": null,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
        "post_processor": {"type": "TemplateProcessing",
                           "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
                           "pair": [], "special_tokens": {"<s>": {"id": "<s>", "ids": [3], "tokens": ["<s>"]}}},
        "decoder": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
        "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
                  "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
                  "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b"]}
    })");
}

void write_file(const fs::path& path, const std::string& text) {
    std::ofstream out(path, std::ios::binary);
    out << text;
}

fs::path write_tokenizer(const fs::path& dir, const json& tokenizer) {
    fs::create_directories(dir);
    write_file(dir / "tokenizer.json", tokenizer.dump());
    return dir;
}

std::string load_error(const fs::path& dir) {
    try {
        Tokenizer::from_hf(dir);
    } catch (const Error& e) {
        return e.what();
    }
    return "(no error)";
}

// The error names the file and says `what`, on one line.
void expect_error(const fs::path& dir, const std::string& file, const std::string& what) {
    const std::string err = load_error(dir);
    EXPECT_NE(err.find((dir / file).string()), std::string::npos) << err;
    EXPECT_NE(err.find(what), std::string::npos) << err;
    EXPECT_EQ(err.find('\n'), std::string::npos) << err;
}

TEST(HfTokenizer, MinimalFileWorks) {
    const fs::path dir = write_tokenizer(test::temp_dir_for_test() / "ok", minimal_tokenizer());
    const Tokenizer tok = Tokenizer::from_hf(dir);
    EXPECT_EQ(tok.encode("ab<s>ba", true, true), (std::vector<int32_t>{3, 2, 3, 1, 0}));
    EXPECT_EQ(tok.decode(std::vector<int32_t>{3, 2, 3, 1, 0}), "abba");
    EXPECT_EQ(tok.n_vocab(), 4);
}

TEST(HfTokenizer, MissingFiles) {
    const fs::path dir = test::temp_dir_for_test();
    std::string err = load_error(dir / "nothing-here");
    EXPECT_NE(err.find("nothing-here"), std::string::npos) << err;
    EXPECT_NE(err.find("not found"), std::string::npos) << err;

    write_file(dir / "tokenizer.model", "sentencepiece");
    err = load_error(dir);
    EXPECT_NE(err.find((dir / "tokenizer.json").string()), std::string::npos) << err;
    EXPECT_NE(err.find("tokenizer.model"), std::string::npos) << err;
}

TEST(HfTokenizer, UnsupportedModelsAndComponents) {
    const fs::path root = test::temp_dir_for_test();
    for (const std::string type : {"Unigram", "WordPiece", "WordLevel"}) {
        json t = minimal_tokenizer();
        t["model"]["type"] = type;
        expect_error(write_tokenizer(root / type, t), "tokenizer.json",
                     fmt::format("model.type \"{}\" is not supported", type));
    }
    struct Case {
        const char* name;
        const char* pointer;  // JSON pointer to replace
        const char* value;
        const char* message;
    };
    const Case cases[] = {
        {"whitespace", "/pre_tokenizer", R"({"type": "Sequence", "pretokenizers": [{"type": "Whitespace"}]})",
         "pre_tokenizer.pretokenizers[0].type \"Whitespace\" is not supported"},
        {"lowercase", "/normalizer", R"({"type": "Lowercase"})", "normalizer.type \"Lowercase\" is not supported"},
        {"wordpiece_dec", "/decoder", R"({"type": "WordPiece", "prefix": "##"})",
         "decoder.type \"WordPiece\" is not supported"},
        {"post", "/post_processor", R"({"type": "Magic"})", "post_processor.type \"Magic\" is not supported"},
        {"prefix", "/model/continuing_subword_prefix", R"("##")",
         "model.continuing_subword_prefix \"##\" is not supported"},
        {"behavior", "/pre_tokenizer", R"({"type": "Split", "pattern": {"Regex": "a"}, "behavior": "isolated"})",
         "pre_tokenizer.behavior \"isolated\" is not"},
        {"bad_regex", "/pre_tokenizer", R"({"type": "Split", "pattern": {"Regex": "(a"}, "behavior": "Isolated"})",
         "pre_tokenizer.pattern regex '(a' does not compile"},
        {"hex_class", "/pre_tokenizer", R"({"type": "Split", "pattern": {"Regex": "\\h+"}, "behavior": "Isolated"})",
         "is not supported"},
    };
    for (const Case& c : cases) {
        json t = minimal_tokenizer();
        t[json::json_pointer(c.pointer)] = json::parse(c.value);
        expect_error(write_tokenizer(root / c.name, t), "tokenizer.json", c.message);
    }
}

TEST(HfTokenizer, MalformedFilesAreOneClearError) {
    const fs::path root = test::temp_dir_for_test();
    // Truncated JSON.
    const std::string full = minimal_tokenizer().dump();
    fs::create_directories(root / "truncated");
    write_file(root / "truncated" / "tokenizer.json", full.substr(0, full.size() / 2));
    expect_error(root / "truncated", "tokenizer.json", "malformed JSON");

    struct Case {
        const char* name;
        const char* pointer;
        const char* value;
        const char* message;
    };
    const Case cases[] = {
        {"top_level", "", "[1, 2]", "the top level is not an object (got array)"},
        {"no_model", "/model", "null", "model is missing"},
        {"vocab_list", "/model/vocab", "[]", "model.vocab is not an object (got array)"},
        {"vocab_id", "/model/vocab/b", R"("one")", R"(model.vocab["b"] is not an integer (got string))"},
        {"negative_id", "/model/vocab/b", "-4", R"(model.vocab["b"] -4 is outside)"},
        {"shared_id", "/model/vocab/b", "0", "model.vocab gives id 0 to both"},
        {"no_merges", "/model/merges", "null", "model.merges is missing"},
        {"merge_type", "/model/merges", "[5]", "model.merges[0] is not a \"left right\" string"},
        {"merge_form", "/model/merges", R"(["a b c"])", "model.merges[0] \"a b c\" is not \"left right\""},
        {"merge_oov", "/model/merges", R"([["a", "z"]])", "model.merges[0] names \"z\", which is not in model.vocab"},
        {"merge_result", "/model/merges", R"([["b", "a"]])", "model.merges[0] makes \"ba\""},
        {"added_content", "/added_tokens/0/content", "3", "added_tokens[0].content is not a string (got number)"},
        {"added_flag", "/added_tokens/0/special", R"("yes")", "added_tokens[0].special is not a boolean"},
        {"added_list", "/added_tokens", "{}", "added_tokens is not an array (got object)"},
        {"pre_type", "/pre_tokenizer/type", "7", "pre_tokenizer.type is not a string (got number)"},
        {"pre_flag", "/pre_tokenizer/use_regex", "1", "pre_tokenizer.use_regex is not a boolean"},
        {"sequence", "/normalizer", R"({"type": "Sequence"})", "normalizer.normalizers is missing"},
        {"pattern", "/normalizer", R"({"type": "Replace", "pattern": {"Glob": "*"}, "content": ""})",
         "normalizer.pattern has neither \"String\" nor \"Regex\""},
        {"template_token", "/post_processor/single/0/SpecialToken/id", R"("</s>")",
         "post_processor.single[0].SpecialToken.id \"</s>\" is not in post_processor.special_tokens"},
        {"template_id", "/post_processor/special_tokens/<s>/ids/0", "99", "post_processor adds id 99"},
        {"strip", "/decoder", R"({"type": "Strip", "content": " ", "start": -1, "stop": 0})",
         "decoder.start -1 is outside"},
    };
    for (const Case& c : cases) {
        json t = minimal_tokenizer();
        t[json::json_pointer(c.pointer)] = json::parse(c.value);
        expect_error(write_tokenizer(root / c.name, t), "tokenizer.json", c.message);
    }

    // tokenizer_config.json and generation_config.json are named in their errors too.
    const fs::path cfg = write_tokenizer(root / "config", minimal_tokenizer());
    write_file(cfg / "tokenizer_config.json", R"({"add_bos_token": "yes"})");
    expect_error(cfg, "tokenizer_config.json", "add_bos_token is not a boolean (got string)");
    write_file(cfg / "tokenizer_config.json", R"({"bos_token": 5})");
    expect_error(cfg, "tokenizer_config.json", "bos_token is not a string or {\"content\": ...} (got number)");
    write_file(cfg / "tokenizer_config.json", R"({"bos_token": {"content": 5}})");
    expect_error(cfg, "tokenizer_config.json", "bos_token.content is not a string");
    write_file(cfg / "tokenizer_config.json", R"({"chat_template": )");
    expect_error(cfg, "tokenizer_config.json", "malformed JSON");
    EXPECT_THROW(tok::read_hf_chat_config(cfg), Error);
    write_file(cfg / "tokenizer_config.json", R"({"chat_template": 12})");
    try {
        tok::read_hf_chat_config(cfg);
        ADD_FAILURE() << "no error for a numeric chat_template";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("tokenizer_config.json: chat_template is not a string"), std::string::npos)
            << e.what();
    }
    write_file(cfg / "tokenizer_config.json", R"({"chat_template": [{"name": "tool_use", "template": "x"}]})");
    EXPECT_FALSE(tok::hf_chat_template(cfg).has_value());  // no "default" entry
    fs::remove(cfg / "tokenizer_config.json");
    write_file(cfg / "generation_config.json", R"({"eos_token_id": [1, "two"]})");
    expect_error(cfg, "generation_config.json", "eos_token_id[1] is not an integer");
}

TEST(HfTokenizer, ConfigOverridesAndGenerationConfig) {
    const fs::path dir = write_tokenizer(test::temp_dir_for_test(), minimal_tokenizer());
    // add_bos_token false drops the BOS the template adds; add_eos_token true appends eos_token.
    write_file(dir / "tokenizer_config.json", R"({"add_bos_token": false, "add_eos_token": true, "eos_token": "<s>"})");
    Tokenizer tok = Tokenizer::from_hf(dir);
    EXPECT_EQ(tok.encode("ab", true, false), (std::vector<int32_t>{2, 3}));
    EXPECT_FALSE(tok.add_bos());
    EXPECT_TRUE(tok.add_eos());
    fs::remove(dir / "tokenizer_config.json");
    write_file(dir / "generation_config.json", R"({"eos_token_id": [1, 2]})");
    tok = Tokenizer::from_hf(dir);
    EXPECT_TRUE(tok.is_end_of_generation(1));
    EXPECT_TRUE(tok.is_end_of_generation(2));
    EXPECT_FALSE(tok.is_end_of_generation(0));
    EXPECT_EQ(tok.encode("ab", true, false), (std::vector<int32_t>{3, 2}));
}

// ---- the pieces ---------------------------------------------------------------------------------

std::vector<tok::Regex::Span> matches(std::string_view pattern, std::string_view text) {
    const tok::Regex re(pattern, tok::Regex::Dialect::Oniguruma);
    tok::RegexScratch scratch;
    std::vector<tok::Regex::Span> out;
    re.find_all(text, scratch, out);
    return out;
}

TEST(HfRegex, OnigurumaMeanings) {
    using Spans = std::vector<tok::Regex::Span>;
    // An empty match counts unless it directly follows the previous match.
    EXPECT_EQ(matches("x*", "abx"), (Spans{{0, 0}, {1, 1}, {2, 3}}));
    // \s is White_Space: NEL yes, U+180E no.
    EXPECT_EQ(matches(R"(\s)",
                      "a\xC2\x85"
                      "b\xE1\xA0\x8E"
                      "c"),
              (Spans{{1, 3}}));
    EXPECT_EQ(matches(R"([^\s])", "\xE1\xA0\x8E"), (Spans{{0, 3}}));
    EXPECT_EQ(matches(R"(\S+)", "\xE1\xA0\x8E "), (Spans{{0, 3}}));
    // \w takes marks and all numbers.
    EXPECT_EQ(matches(R"(\w+)", "e\xCC\x81\xC2\xB2_ x"), (Spans{{0, 6}, {7, 8}}));
    EXPECT_EQ(matches(R"(\u0041)", "xAB"), (Spans{{1, 2}}));
    // $ and ^ at every line.
    EXPECT_EQ(matches(R"(\s+$)", "a \nb "), (Spans{{1, 2}, {4, 5}}));
    // Caseless matching follows Unicode: 's matches 'ſ, k matches the Kelvin sign.
    EXPECT_EQ(matches(R"((?i:'s|k))", "'\xC5\xBF \xE2\x84\xAA"), (Spans{{0, 3}, {4, 7}}));
    EXPECT_THROW(matches(R"(\h)", "a"), Error);
}

TEST(HfPipeline, LossyUtf8LikeRust) {
    EXPECT_EQ(tok::utf8_lossy("a\xFF"
                              "b"),
              "a\xEF\xBF\xBD"
              "b");
    EXPECT_EQ(tok::utf8_lossy("\xF0\x9F\x98x"), "\xEF\xBF\xBDx");  // one U+FFFD for a cut sequence
    EXPECT_EQ(tok::utf8_lossy("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // a surrogate
    EXPECT_EQ(tok::utf8_lossy("\xE2\x82"), "\xEF\xBF\xBD");
    EXPECT_EQ(tok::utf8_lossy("ok \xE2\x82\xAC"), "ok \xE2\x82\xAC");
}

}  // namespace
}  // namespace hymoe
