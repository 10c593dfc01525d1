// Pre-tokenization of byte-level BPE: the regex splits llama.cpp applies before merging
// (chosen by tokenizer.ggml.pre), GPT-2's byte <-> printable-character mapping, and the PCRE2
// patterns both they and Hugging Face tokenizer.json pipelines (hf_pipeline.hpp) run.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace hymoe::tok {

// The pre-tokenizer families hymoe implements; names are tokenizer.ggml.pre values.
enum class PreType { Default, Gpt2, Llama3, Qwen2, DeepseekLlm, Deepseek3, Gpt4o };

// nullopt-like: returns false for a `pre` value hymoe does not know.
bool pre_type_from_name(std::string_view name, PreType& type);
// The family's usual tokenizer.ggml.pre value ("qwen2", "llama-bpe", ...).
std::string_view pre_type_name(PreType type);

// Per-call PCRE2 state (match data, JIT stack), so that one Regex can match on several threads.
class RegexScratch {
public:
    RegexScratch();
    ~RegexScratch();
    RegexScratch(const RegexScratch&) = delete;
    RegexScratch& operator=(const RegexScratch&) = delete;

private:
    friend class Regex;
    struct State;
    State& state();
    std::unique_ptr<State> state_;  // made on first use
};

// A pattern compiled with PCRE2 (UTF + UCP).
class Regex {
public:
    enum class Dialect {
        // llama.cpp's std::regex forms: `$` is the end of the text; empty matches are skipped.
        LlamaCpp,
        // Hugging Face tokenizers' Oniguruma: `^`/`$` at line ends, \s is Unicode White_Space
        // (not U+180E), \w is letters, marks, numbers and connectors, \uHHHH escapes; an empty
        // match counts unless it directly follows the previous match (tokenizers' find_iter).
        // \h and \H (hex digits in Oniguruma) are refused.
        Oniguruma,
    };
    using Span = std::pair<size_t, size_t>;  // [begin, end) byte offsets

    // Throws hymoe::Error (naming the pattern, not a file) when it does not compile.
    Regex(std::string_view pattern, Dialect dialect);
    ~Regex();
    Regex(const Regex&) = delete;
    Regex& operator=(const Regex&) = delete;

    // The matches in `text` (valid UTF-8), left to right, as the dialect's iterator yields them.
    void find_all(std::string_view text, RegexScratch& scratch, std::vector<Span>& out) const;
    Dialect dialect() const { return dialect_; }

private:
    struct Code;
    std::unique_ptr<Code> code_;
    Dialect dialect_;
};

// The regexes llama.cpp applies one after another, each splitting every piece into its matches
// and the text between them.
class PreTokenizer {
public:
    explicit PreTokenizer(PreType type);
    // A custom list of patterns (llama.cpp dialect), applied as the families' lists are.
    explicit PreTokenizer(const std::vector<std::string>& patterns);
    ~PreTokenizer();
    PreTokenizer(const PreTokenizer&) = delete;
    PreTokenizer& operator=(const PreTokenizer&) = delete;

    // Splits `text` into words, each already mapped through GPT-2's byte encoding. Invalid
    // UTF-8 becomes U+FFFD per bad byte first, as llama.cpp's unicode_cpts_from_utf8 does.
    std::vector<std::string> split(std::string_view text) const;

private:
    std::vector<std::unique_ptr<Regex>> regexes_;
};

// `text` with every invalid UTF-8 byte (and surrogate or out-of-range sequence) replaced by
// U+FFFD, as llama.cpp decodes it.
std::string clean_utf8(std::string_view text);

// GPT-2's bytes_to_unicode: every byte as the UTF-8 of a printable code point.
std::string byte_encode(std::string_view bytes);
// The inverse; code points outside the table are kept as their UTF-8 (llama.cpp's
// llama_decode_text does the same).
std::string byte_decode(std::string_view text);
// The byte a code point of that table stands for, or -1.
int byte_of_code_point(uint32_t cpt);

// Number of bytes of the UTF-8 sequence starting with `lead` (1 for continuation bytes),
// llama.cpp's unicode_len_utf8.
inline size_t utf8_len(char lead) {
    static constexpr size_t kLookup[] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return kLookup[static_cast<unsigned char>(lead) >> 4];
}

}  // namespace hymoe::tok
