// Hugging Face model directories: the chat template and special-token texts beside the tokenizer
// (Tokenizer::from_hf in tokenizer.hpp reads the tokenizer itself).
//
// What Tokenizer::from_hf supports of tokenizer.json (anything else is one hymoe::Error naming the
// file and the JSON path):
//   model            BPE: vocab, merges ("a b" strings or [a, b] pairs), unk_token, fuse_unk,
//                    byte_fallback, ignore_merges (no continuing_subword_prefix/end_of_word_suffix;
//                    dropout is ignored). Not WordPiece, Unigram or WordLevel.
//   added_tokens     content, special, normalized, lstrip, rstrip, single_word; ids as tokenizers
//                    assigns them
//   normalizer       Sequence, NFC, NFD, NFKC, NFKD, Prepend, Replace
//   pre_tokenizer    Sequence, Split (String or Regex pattern, every behavior, invert), ByteLevel,
//                    Digits, Metaspace
//   post_processor   TemplateProcessing, ByteLevel, RobertaProcessing, BertProcessing, Sequence
//   decoder          Sequence, ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace
// Regex patterns are Oniguruma's (Ruby syntax) run by PCRE2 (pretokenize.hpp, Regex::Dialect),
// always as the file writes them, also where the pre-tokenizer is a known family (that only
// names it, as Tokenizer::pre()). Characters assigned in Unicode versions newer than PCRE2's
// (10.42: Unicode 14; tokenizers 0.23: 16) may fall in other classes than in tokenizers, and
// NFC/NFKC use utf8proc's tables.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

namespace hymoe::tok {

struct HfChatConfig {
    // chat_template.jinja when present (it wins, as in transformers 5), else tokenizer_config.json's
    // chat_template: a string, or of a list of {name, template} the one named "default".
    std::optional<std::string> chat_template;
    // tokenizer_config.json's bos_token / eos_token texts ("text" or {"content": "text", ...});
    // nullopt when absent or null.
    std::optional<std::string> bos_token;
    std::optional<std::string> eos_token;
};

// `dir_or_file`: the model directory, or a file in it (its tokenizer.json). Missing files leave
// the fields empty; a malformed one throws hymoe::Error naming the file and the JSON path.
HfChatConfig read_hf_chat_config(const std::filesystem::path& dir_or_file);
// read_hf_chat_config(dir_or_file).chat_template.
std::optional<std::string> hf_chat_template(const std::filesystem::path& dir_or_file);

}  // namespace hymoe::tok
