// Pre-tokenization of byte-level BPE: the regex splits llama.cpp applies before merging
// (chosen by tokenizer.ggml.pre), and GPT-2's byte <-> printable-character mapping.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace hymoe::tok {

// The pre-tokenizer families hymoe implements; names are tokenizer.ggml.pre values.
enum class PreType { Default, Gpt2, Llama3, Qwen2, DeepseekLlm, Deepseek3, Gpt4o };

// nullopt-like: returns false for a `pre` value hymoe does not know.
bool pre_type_from_name(std::string_view name, PreType& type);

class PreTokenizer {
public:
    explicit PreTokenizer(PreType type);
    ~PreTokenizer();
    PreTokenizer(const PreTokenizer&) = delete;
    PreTokenizer& operator=(const PreTokenizer&) = delete;

    // Splits `text` into words, each already mapped through GPT-2's byte encoding. Invalid
    // UTF-8 becomes U+FFFD per bad byte first, as llama.cpp's unicode_cpts_from_utf8 does.
    std::vector<std::string> split(std::string_view text) const;

private:
    struct Compiled;
    std::vector<std::unique_ptr<Compiled>> regexes_;
};

// GPT-2's bytes_to_unicode: every byte as the UTF-8 of a printable code point.
std::string byte_encode(std::string_view bytes);
// The inverse; code points outside the table are kept as their UTF-8 (llama.cpp's
// llama_decode_text does the same).
std::string byte_decode(std::string_view text);

// Number of bytes of the UTF-8 sequence starting with `lead` (1 for continuation bytes),
// llama.cpp's unicode_len_utf8.
inline size_t utf8_len(char lead) {
    static constexpr size_t kLookup[] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return kLookup[static_cast<unsigned char>(lead) >> 4];
}

}  // namespace hymoe::tok
