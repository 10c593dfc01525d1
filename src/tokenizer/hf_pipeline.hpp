// A Hugging Face tokenizer.json pipeline, run the way the `tokenizers` library runs it: added
// tokens cut out of the text (leftmost, longest first), normalizer, pre-tokenizer, BPE model,
// post-processor; and the decoder chain back. Built by Tokenizer::from_hf (hf_tokenizer.cpp);
// internal to src/tokenizer/.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace hymoe::tok {

class Regex;

// tokenizers' SplitDelimiterBehavior: what happens to a match and the text around it.
enum class SplitBehavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };

struct HfAddedToken {
    int32_t id = -1;
    std::string content;
    std::string match_text;  // what is looked for: the content, after the normalizer if `normalized`
    bool special = false;
    bool normalized = false;
    bool lstrip = false;
    bool rstrip = false;
    bool single_word = false;
};

struct HfNormalizerStep {
    enum class Kind { Nfc, Nfd, Nfkc, Nfkd, Prepend, Replace };
    Kind kind = Kind::Nfc;
    std::string text;                    // Prepend: the prefix; Replace: the replacement
    std::shared_ptr<const Regex> regex;  // Replace: the pattern (a String pattern escaped)
    std::optional<std::string> literal;  // Replace: a String pattern, replaced without the regex
};

struct HfPreTokenizerStep {
    enum class Kind { Split, ByteLevel, Metaspace };
    enum class Prepend { Always, First, Never };
    Kind kind = Kind::Split;
    std::shared_ptr<const Regex> regex;  // Split (Digits is a Split on \p{N}); ByteLevel's GPT-2 regex
    SplitBehavior behavior = SplitBehavior::Isolated;
    bool invert = false;
    bool add_prefix_space = false;  // ByteLevel
    std::string replacement;        // Metaspace
    Prepend prepend = Prepend::Always;
    bool split = false;  // Metaspace
};

struct HfDecoderStep {
    enum class Kind { ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace };
    Kind kind = Kind::ByteLevel;
    std::shared_ptr<const Regex> regex;  // Replace
    std::optional<std::string> literal;  // Replace: a String pattern, replaced without the regex
    std::string content;                 // Replace: the replacement; Strip: the character; Metaspace: replacement
    size_t start = 0;                    // Strip: at most this many leading `content` characters
    size_t stop = 0;                     // Strip: trailing
    bool prepend = true;                 // Metaspace: prepend_scheme is not "never"
};

// tokenizers' BPE model: characters (or <0xNN> byte tokens, or the unknown token), merged by the
// rank of each adjacent pair, lowest first, leftmost on ties.
struct HfBpe {
    std::unordered_map<std::string, int32_t> vocab;  // model.vocab only, not the added tokens
    // pair_key(left, right) -> (rank, merged id)
    std::unordered_map<uint64_t, std::pair<int32_t, int32_t>> merges;
    int32_t unk = -1;
    bool fuse_unk = false;
    bool byte_fallback = false;
    bool ignore_merges = false;
    std::array<int32_t, 256> byte_ids{};  // <0xNN> tokens, -1 where absent

    void tokenize(std::string_view word, std::vector<int32_t>& out) const;

    static uint64_t pair_key(int32_t left, int32_t right) {
        return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
    }
};

class HfPipeline {
public:
    std::vector<HfAddedToken> added;
    std::vector<HfNormalizerStep> normalizer;
    std::vector<HfPreTokenizerStep> pre_tokenizer;
    HfBpe model;
    std::optional<std::vector<HfDecoderStep>> decoder;  // nullopt: tokens joined by spaces
    std::vector<int32_t> prefix;                        // the post-processor's ids before the text
    std::vector<int32_t> suffix;                        // and after

    // Call once the added tokens are in place.
    void index_added_tokens();

    // tokenizers' encode(text, add_special_tokens=add_special), with encode_special_tokens =
    // !parse_special (special added tokens then stay text). Invalid UTF-8 becomes U+FFFD first.
    void encode(std::string_view text, bool add_special, bool parse_special, std::vector<int32_t>& out) const;
    std::string normalize(std::string_view text) const;

    // tokenizers' decode of token strings (skipping special tokens is the caller's part).
    // streaming: the bytes of one token, for a streamer: no lossy UTF-8 repair and none of the
    // steps that depend on the position in the text (Strip, Metaspace's first-token rule).
    std::string decode(std::span<const std::string_view> tokens, bool streaming) const;

private:
    struct Piece;
    // Cuts the added tokens of one set (normalized or not) out of `text`, as tokenizers'
    // AddedVocabulary::find_matches: (token id or -1, begin, end).
    struct Match {
        int32_t id;
        size_t begin;
        size_t end;
    };
    std::vector<Match> find_added(std::string_view text, bool normalized_set, bool parse_special) const;
    void pre_tokenize(std::vector<Piece>& pieces) const;

    // Per set (0: matched on the raw text, 1: on the normalized text): token indices by first
    // byte, longest first.
    std::array<std::array<std::vector<size_t>, 256>, 2> added_by_byte_;
};

// Rust's String::from_utf8_lossy: each maximal invalid subsequence becomes one U+FFFD.
std::string utf8_lossy(std::string_view bytes);

}  // namespace hymoe::tok
