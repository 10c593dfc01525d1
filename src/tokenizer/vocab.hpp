// The tokenizer's tables as read from tokenizer.ggml.*, shared by the BPE and SPM encoders.
// Internal to src/tokenizer/.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace hymoe::tok {

// llama.cpp's llama_token_attr bits; GGUF stores token types, converted on load.
enum TokenAttr : uint32_t {
    kAttrUndefined = 0,
    kAttrUnknown = 1u << 0,
    kAttrUnused = 1u << 1,
    kAttrNormal = 1u << 2,
    kAttrControl = 1u << 3,
    kAttrUserDefined = 1u << 4,
    kAttrByte = 1u << 5,
};

struct TokenData {
    std::string text;
    float score = 0.0f;
    uint32_t attr = kAttrNormal;
};

struct PairHash {
    size_t operator()(const std::pair<std::string, std::string>& p) const {
        return std::hash<std::string>{}(p.first) ^ (std::hash<std::string>{}(p.second) << 1);
    }
};

struct Vocab {
    std::vector<TokenData> tokens;
    std::unordered_map<std::string, int32_t> token_to_id;
    // BPE only: rank of the merge "left right" (its index in tokenizer.ggml.merges).
    std::unordered_map<std::pair<std::string, std::string>, int32_t, PairHash> bpe_ranks;

    int32_t find(std::string_view text) const {
        const auto it = token_to_id.find(std::string(text));
        return it == token_to_id.end() ? -1 : it->second;
    }
    int32_t bpe_rank(const std::string& left, const std::string& right) const {
        const auto it = bpe_ranks.find({left, right});
        return it == bpe_ranks.end() ? -1 : it->second;
    }
};

class PreTokenizer;

// Appends the ids of one raw-text fragment (no special tokens in it) to `out`.
void bpe_tokenize(const Vocab& vocab, const PreTokenizer& pre, bool ignore_merges, std::string_view text,
                  std::vector<int32_t>& out);
// `text` already has spaces escaped as U+2581 and the space prefix added.
void spm_tokenize(const Vocab& vocab, std::string_view text, std::vector<int32_t>& out);

// The byte of an SPM byte token "<0xNN>", or -1.
int spm_token_byte(std::string_view text);

}  // namespace hymoe::tok
