// Tokenizers read from GGUF metadata (tokenizer.ggml.*), producing the same ids as llama.cpp:
// byte-level BPE ("gpt2", pre-tokenizer chosen by tokenizer.ggml.pre) and SentencePiece BPE
// ("llama"); or from a Hugging Face tokenizer.json, producing the same ids as the `tokenizers`
// library (hf_pipeline.hpp).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "format/model_file.hpp"

namespace hymoe {

namespace tok {
struct Vocab;
class PreTokenizer;
class HfPipeline;
}  // namespace tok

class Tokenizer {
public:
    enum class Kind { Bpe, Spm };

    // Throws hymoe::Error naming the file and the key that is missing or malformed.
    static Tokenizer from_gguf(const ModelFile& file);
    // The same from bare metadata; `source` names it in errors.
    static Tokenizer from_metadata(const Metadata& meta, const std::string& source);
    // From a Hugging Face model directory (or a path to its tokenizer.json): tokenizer.json gives the
    // model, vocabulary, merges, added tokens, normalizer and pre-tokenizer; tokenizer_config.json
    // gives bos/eos, add_bos_token/add_eos_token (each, when a boolean, overrides what the
    // post-processor adds, as llama.cpp's converter reads them); generation_config.json's
    // eos_token_id adds end-of-generation tokens. Throws hymoe::Error naming the file and the JSON
    // path that is missing or unsupported (e.g. tokenizer.json: model.type "Unigram" is not
    // supported). hf_tokenizer.hpp lists what is supported.
    static Tokenizer from_hf(const std::filesystem::path& dir_or_file);

    Kind kind() const { return kind_; }
    int64_t n_vocab() const;
    // add_special: BOS/EOS as tokenizer.ggml.add_bos_token / add_eos_token say (llama.cpp's
    // per-model defaults when absent). parse_special: text of control tokens becomes those
    // tokens; user-defined tokens are always matched, as in llama.cpp.
    // From tokenizer.json: tokenizers' encode(text, add_special_tokens=add_special), with special
    // added tokens (the control tokens) matched only when parse_special.
    std::vector<int32_t> encode(std::string_view text, bool add_special, bool parse_special) const;
    // The token's bytes: byte-level BPE decoded, SPM U+2581 as space, <0xNN> as the byte;
    // control tokens as their text. Throws hymoe::Error for an id out of range.
    std::string token_to_piece(int32_t id) const;
    // The text of `ids`: control and unknown tokens render as nothing, and the space SPM adds
    // before the first word is removed again, so decode(encode(s, true, false)) == s.
    // From tokenizer.json: tokenizers' decode(ids, skip_special_tokens=True), invalid UTF-8
    // repaired with U+FFFD as it does.
    std::string decode(std::span<const int32_t> ids) const;

    int32_t bos() const { return bos_; }
    int32_t eos() const { return eos_; }
    int32_t eot() const { return eot_; }
    bool add_bos() const { return add_bos_; }
    bool add_eos() const { return add_eos_; }
    bool is_end_of_generation(int32_t id) const;
    bool is_control(int32_t id) const;
    const std::string& pre() const { return pre_; }

private:
    Tokenizer() = default;
    // The piece decode() and TextStreamer use: empty for control and unknown tokens.
    std::string visible_piece(int32_t id) const;
    friend class TextStreamer;
    // Finds EOT/EOM and the end-of-generation tokens by their texts, as llama.cpp does, plus
    // `extra`. mark_control: make them control tokens, as llama.cpp does (GGUF); tokenizer.json
    // keeps its own special flags.
    void find_end_of_generation(tok::Vocab& vocab, bool mark_control, std::span<const int32_t> extra);

    Kind kind_ = Kind::Bpe;
    std::shared_ptr<const tok::Vocab> vocab_;
    std::shared_ptr<const tok::PreTokenizer> pre_tokenizer_;  // BPE only
    std::shared_ptr<const tok::HfPipeline> hf_;               // from tokenizer.json: encode/decode run it
    std::string pre_;
    std::vector<int32_t> special_by_length_;  // control, user-defined and unknown tokens, longest first
    std::vector<int32_t> eog_;                // sorted
    int32_t bos_ = -1;
    int32_t eos_ = -1;
    int32_t eot_ = -1;
    int32_t eom_ = -1;
    bool add_bos_ = false;
    bool add_eos_ = false;
    bool add_space_prefix_ = false;
    bool ignore_merges_ = false;
};

// Streams decoded text: feed ids, get back only complete UTF-8 (a multi-byte character split
// across tokens is held until its last byte arrives).
class TextStreamer {
public:
    std::string feed(const Tokenizer& tokenizer, int32_t id);
    // What is still held (an incomplete sequence at the end of generation), as is.
    std::string flush();

private:
    std::string pending_;
};

}  // namespace hymoe
