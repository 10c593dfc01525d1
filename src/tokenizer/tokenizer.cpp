#include "tokenizer/tokenizer.hpp"

#include <algorithm>
#include <iterator>
#include <utility>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "hymoe/error.hpp"
#include "tokenizer/hf_pipeline.hpp"
#include "tokenizer/pretokenize.hpp"
#include "tokenizer/vocab.hpp"

namespace hymoe {

using tok::Vocab;

namespace {

constexpr std::string_view kSpace = "\xE2\x96\x81";  // U+2581, SentencePiece's escaped space

// GGUF token types (llama.cpp's llama_token_type) to attribute bits.
uint32_t attr_from_type(int64_t type) {
    switch (type) {
        case 1: return tok::kAttrNormal;
        case 2: return tok::kAttrUnknown;
        case 3: return tok::kAttrControl;
        case 4: return tok::kAttrUserDefined;
        case 5: return tok::kAttrUnused;
        case 6: return tok::kAttrByte;
        default: return tok::kAttrUndefined;
    }
}

const MetaArray& require_array(const Metadata& meta, const std::string& source, const char* key) {
    const MetaArray* arr = meta.get_array(key);
    if (arr == nullptr) {
        throw Error(fmt::format("{}: {} {}", source, key,
                                meta.contains(key) ? "is not an array" : "is missing (no tokenizer in this file?)"));
    }
    return *arr;
}

// Texts llama.cpp recognises as end-of-turn / end-of-generation when no key names them.
constexpr std::string_view kEotTexts[] = {
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "<|end_of_text|>",
    "<EOT>",
    "_<EOT>",
    "[EOT]",
    "<\xEF\xBD\x9C"
    "end\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>",
    "<end_of_utterance>",
};
constexpr std::string_view kEogTexts[] = {
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<|return|>",
    "<|call|>",
    "<|flush|>",
    "<|calls|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "</s>",
    "<|eom_id|>",
    "<EOT>",
    "_<EOT>",
    "[EOT]",
    "[EOS]",
    "<|end_of_text|>",
    "<end_of_utterance>",
    "<eos>",
    "<turn|>",
    "<|tool_response>",
    "<\xEF\xBD\x9C"
    "end\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>",
    "[e~[",
};

template <size_t N>
bool one_of(const std::string& text, const std::string_view (&list)[N]) {
    return std::find(std::begin(list), std::end(list), text) != std::end(list);
}

}  // namespace

Tokenizer Tokenizer::from_gguf(const ModelFile& file) {
    return from_metadata(file.metadata(), file.path());
}

Tokenizer Tokenizer::from_metadata(const Metadata& meta, const std::string& source) {
    Tokenizer t;
    auto vocab = std::make_shared<Vocab>();
    const auto model = meta.get_string("tokenizer.ggml.model");
    if (!model) throw Error(fmt::format("{}: tokenizer.ggml.model is missing (no tokenizer in this file?)", source));
    t.pre_ = std::string(meta.get_string("tokenizer.ggml.pre").value_or(""));
    if (*model == "llama") {
        // llama.cpp's SPM defaults.
        t.kind_ = Kind::Spm;
        t.bos_ = 1;
        t.eos_ = 2;
        t.add_space_prefix_ = true;
        t.add_bos_ = true;
    } else if (*model == "gpt2") {
        t.kind_ = Kind::Bpe;
        t.bos_ = 11;
        t.eos_ = 11;
        tok::PreType pre_type = tok::PreType::Default;
        if (t.pre_.empty()) {
            spdlog::warn("{}: tokenizer.ggml.pre is missing; using the 'default' pre-tokenizer", source);
        } else if (!tok::pre_type_from_name(t.pre_, pre_type)) {
            spdlog::warn(
                "{}: pre-tokenizer '{}' (tokenizer.ggml.pre) is not supported; using 'default', "
                "tokens may differ from llama.cpp's",
                source, t.pre_);
        }
        if (pre_type == tok::PreType::Llama3) {
            t.ignore_merges_ = true;
            t.add_bos_ = true;
        }
        t.pre_tokenizer_ = std::make_shared<tok::PreTokenizer>(pre_type);
    } else {
        throw Error(
            fmt::format("{}: tokenizer model '{}' (tokenizer.ggml.model) is not supported; "
                        "expected 'gpt2' or 'llama'",
                        source, *model));
    }
    if (const auto v = meta.get_bool("tokenizer.ggml.add_space_prefix")) t.add_space_prefix_ = *v;

    const MetaArray& tokens = require_array(meta, source, "tokenizer.ggml.tokens");
    if (tokens.items.empty()) throw Error(fmt::format("{}: tokenizer.ggml.tokens is empty", source));
    const size_t n = tokens.items.size();
    const MetaArray* scores = meta.get_array("tokenizer.ggml.scores");
    if (scores != nullptr && scores->items.size() < n) {
        throw Error(
            fmt::format("{}: tokenizer.ggml.scores has {} entries for {} tokens", source, scores->items.size(), n));
    }
    const MetaArray* types = meta.get_array("tokenizer.ggml.token_type");
    if (types != nullptr && types->items.size() < n) {
        throw Error(
            fmt::format("{}: tokenizer.ggml.token_type has {} entries for {} tokens", source, types->items.size(), n));
    }
    vocab->tokens.resize(n);
    vocab->token_to_id.reserve(n);
    for (size_t i = 0; i < n; ++i) {
        const std::string* text = tokens.items[i].as_string();
        if (text == nullptr) throw Error(fmt::format("{}: tokenizer.ggml.tokens[{}] is not a string", source, i));
        tok::TokenData& td = vocab->tokens[i];
        td.text = text->empty() ? fmt::format("[EMPTY_{}]", i) : *text;  // as llama.cpp names empty tokens
        if (scores != nullptr) td.score = static_cast<float>(scores->items[i].as_f64().value_or(0.0));
        if (types != nullptr) td.attr = attr_from_type(types->items[i].as_i64().value_or(0));
        if (!vocab->token_to_id.emplace(td.text, static_cast<int32_t>(i)).second) {
            throw Error(fmt::format("{}: tokenizer.ggml.tokens has '{}' twice (ids {} and {})", source, td.text,
                                    vocab->token_to_id[td.text], i));
        }
    }

    if (t.kind_ == Kind::Bpe) {
        const MetaArray& merges = require_array(meta, source, "tokenizer.ggml.merges");
        vocab->bpe_ranks.reserve(merges.items.size());
        for (size_t i = 0; i < merges.items.size(); ++i) {
            const std::string* m = merges.items[i].as_string();
            // The separator is the first space after the first character, so a left part that
            // starts with a space still splits as llama.cpp splits it.
            const size_t pos = m == nullptr || m->empty() ? std::string::npos : m->find(' ', 1);
            if (pos == std::string::npos) {
                throw Error(fmt::format("{}: tokenizer.ggml.merges[{}] {} is not 'left right'", source, i,
                                        m == nullptr ? std::string("(not a string)") : "'" + *m + "'"));
            }
            vocab->bpe_ranks.emplace(std::make_pair(m->substr(0, pos), m->substr(pos + 1)), static_cast<int32_t>(i));
        }
    }

    // Special ids: a key's value wins when it is in range; a default out of range means none.
    const auto n_tokens = static_cast<int64_t>(n);
    int32_t unk = t.kind_ == Kind::Spm ? 0 : -1;
    const auto read_id = [&](const char* key, int32_t& id) {
        if (id >= n_tokens) id = -1;
        const auto v = meta.get_i64(key);
        if (!v) return;
        if (*v < 0 || *v >= n_tokens) {
            spdlog::warn("{}: {} = {} is outside the vocabulary of {}; ignored", source, key, *v, n_tokens);
            return;
        }
        id = static_cast<int32_t>(*v);
    };
    read_id("tokenizer.ggml.bos_token_id", t.bos_);
    read_id("tokenizer.ggml.eos_token_id", t.eos_);
    read_id("tokenizer.ggml.eot_token_id", t.eot_);
    read_id("tokenizer.ggml.eom_token_id", t.eom_);
    read_id("tokenizer.ggml.unknown_token_id", unk);
    if (const auto v = meta.get_bool("tokenizer.ggml.add_bos_token")) t.add_bos_ = *v;
    if (const auto v = meta.get_bool("tokenizer.ggml.add_eos_token")) t.add_eos_ = *v;
    if (t.add_bos_ && t.bos_ < 0) {
        throw Error(fmt::format("{}: tokenizer.ggml.add_bos_token is true but there is no BOS token", source));
    }
    if (t.add_eos_ && t.eos_ < 0) {
        throw Error(fmt::format("{}: tokenizer.ggml.add_eos_token is true but there is no EOS token", source));
    }

    t.find_end_of_generation(*vocab, true, {});

    for (size_t i = 0; i < n; ++i) {
        const tok::TokenData& td = vocab->tokens[i];
        if (td.attr & (tok::kAttrControl | tok::kAttrUserDefined | tok::kAttrUnknown)) {
            t.special_by_length_.push_back(static_cast<int32_t>(i));
        }
    }
    std::stable_sort(t.special_by_length_.begin(), t.special_by_length_.end(),
                     [&](int32_t a, int32_t b) { return vocab->tokens[a].text.size() > vocab->tokens[b].text.size(); });
    t.vocab_ = std::move(vocab);
    return t;
}

void Tokenizer::find_end_of_generation(Vocab& vocab, bool mark_control, std::span<const int32_t> extra) {
    // Recognise end-of-turn and end-of-generation tokens by their text, as llama.cpp does, and
    // (GGUF) make them control tokens, so they are not matched as text unless parse_special.
    const uint32_t control = mark_control ? tok::kAttrControl : 0u;
    std::vector<int32_t> eog(extra.begin(), extra.end());
    for (size_t i = 0; i < vocab.tokens.size(); ++i) {
        tok::TokenData& td = vocab.tokens[i];
        const auto id = static_cast<int32_t>(i);
        if (eot_ < 0 && one_of(td.text, kEotTexts)) {
            eot_ = id;
            td.attr |= control;
        }
        if (eom_ < 0 && td.text == "<|eom_id|>") {
            eom_ = id;
            td.attr |= control;
        }
        if (one_of(td.text, kEogTexts)) {
            eog.push_back(id);
            td.attr |= control;
        }
        // gpt-oss (harmony) structure tokens are always rendered: llama.cpp marks them user-defined.
        if (mark_control && (td.text == "<|channel|>" || td.text == "<|message|>" || td.text == "<|start|>" ||
                             td.text == "<|constrain|>")) {
            td.attr = tok::kAttrUserDefined;
        }
    }
    for (const int32_t id : {eos_, eot_, eom_}) {
        if (id >= 0) eog.push_back(id);
    }
    std::sort(eog.begin(), eog.end());
    eog.erase(std::unique(eog.begin(), eog.end()), eog.end());
    // Harmony: with <|return|> and <|call|> present, <|end|> ends a message, not generation.
    const auto has_eog = [&](std::string_view text) {
        return std::any_of(eog.begin(), eog.end(), [&](int32_t id) { return vocab.tokens[id].text == text; });
    };
    if (has_eog("<|end|>") &&
        ((has_eog("<|return|>") && has_eog("<|call|>")) || (has_eog("<|calls|>") && has_eog("<|flush|>")))) {
        const auto it =
            std::find_if(eog.begin(), eog.end(), [&](int32_t id) { return vocab.tokens[id].text == "<|end|>"; });
        if (mark_control) vocab.tokens[*it].attr = tok::kAttrUserDefined;
        eog.erase(it);
    }
    eog_ = std::move(eog);
}

int64_t Tokenizer::n_vocab() const {
    return static_cast<int64_t>(vocab_->tokens.size());
}

bool Tokenizer::is_end_of_generation(int32_t id) const {
    return std::binary_search(eog_.begin(), eog_.end(), id);
}

bool Tokenizer::is_control(int32_t id) const {
    return id >= 0 && id < n_vocab() && (vocab_->tokens[id].attr & tok::kAttrControl);
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special, bool parse_special) const {
    if (hf_) {
        std::vector<int32_t> out;
        hf_->encode(text, add_special, parse_special, out);
        return out;
    }
    // The text split around special tokens, longest token first (llama.cpp's
    // tokenizer_st_partition, without the lstrip/rstrip attributes no GGUF stores).
    struct Fragment {
        int32_t token;  // -1: raw text
        size_t offset;
        size_t length;
    };
    std::vector<Fragment> fragments;
    if (!text.empty()) fragments.push_back({-1, 0, text.size()});
    for (const int32_t special : special_by_length_) {
        const tok::TokenData& td = vocab_->tokens[special];
        if (!parse_special && (td.attr & (tok::kAttrControl | tok::kAttrUnknown))) continue;
        if (td.text.empty()) continue;
        std::vector<Fragment> next;
        next.reserve(fragments.size());
        for (const Fragment& f : fragments) {
            if (f.token >= 0) {
                next.push_back(f);
                continue;
            }
            const std::string_view raw = text.substr(f.offset, f.length);
            size_t pos = 0;
            for (size_t hit = raw.find(td.text); hit != std::string_view::npos; hit = raw.find(td.text, pos)) {
                if (hit > pos) next.push_back({-1, f.offset + pos, hit - pos});
                next.push_back({special, 0, 0});
                pos = hit + td.text.size();
            }
            if (pos < raw.size()) next.push_back({-1, f.offset + pos, raw.size() - pos});
        }
        fragments = std::move(next);
    }

    std::vector<int32_t> out;
    if (add_special && add_bos_) out.push_back(bos_);
    bool prev_special = true;  // SPM: the first word gets the space prefix
    for (const Fragment& f : fragments) {
        if (f.token >= 0) {
            out.push_back(f.token);
            prev_special = true;
            continue;
        }
        const std::string_view raw = text.substr(f.offset, f.length);
        switch (kind_) {
            case Kind::Bpe: tok::bpe_tokenize(*vocab_, *pre_tokenizer_, ignore_merges_, raw, out); break;
            case Kind::Spm: {
                std::string escaped;
                if (add_space_prefix_ && prev_special) escaped = kSpace;
                for (const char c : raw) {
                    if (c == ' ') {
                        escaped += kSpace;
                    } else {
                        escaped += c;
                    }
                }
                tok::spm_tokenize(*vocab_, escaped, out);
                break;
            }
        }
        prev_special = false;
    }
    if (add_special && add_eos_) out.push_back(eos_);
    return out;
}

std::string Tokenizer::token_to_piece(int32_t id) const {
    if (id < 0 || id >= n_vocab()) {
        throw Error(fmt::format("token id {} is outside the vocabulary of {}", id, n_vocab()));
    }
    const tok::TokenData& td = vocab_->tokens[id];
    if (hf_) {
        // The decoder on this one token, without the steps that depend on its position.
        if (td.attr & tok::kAttrControl) return td.text;
        if (td.attr & tok::kAttrUnused) return {};  // an id no token has
        const std::string_view text = td.text;
        return hf_->decode(std::span<const std::string_view>(&text, 1), true);
    }
    if (td.attr & (tok::kAttrControl | tok::kAttrUnknown | tok::kAttrUserDefined)) return td.text;
    if (td.attr & tok::kAttrNormal) {
        if (kind_ == Kind::Bpe) return tok::byte_decode(td.text);
        std::string out;
        out.reserve(td.text.size());
        for (size_t i = 0; i < td.text.size();) {
            if (std::string_view(td.text).substr(i, kSpace.size()) == kSpace) {
                out += ' ';
                i += kSpace.size();
            } else {
                out += td.text[i++];
            }
        }
        return out;
    }
    if (td.attr & tok::kAttrByte) {
        const int byte = tok::spm_token_byte(td.text);
        return byte < 0 ? std::string() : std::string(1, static_cast<char>(byte));
    }
    return {};  // unused and undefined tokens render as nothing, as in llama.cpp
}

std::string Tokenizer::visible_piece(int32_t id) const {
    if (id >= 0 && id < n_vocab() && (vocab_->tokens[id].attr & (tok::kAttrControl | tok::kAttrUnknown))) return {};
    return token_to_piece(id);
}

std::string Tokenizer::decode(std::span<const int32_t> ids) const {
    if (hf_) {
        std::vector<std::string_view> tokens;
        tokens.reserve(ids.size());
        for (const int32_t id : ids) {
            if (id < 0 || id >= n_vocab()) {
                throw Error(fmt::format("token id {} is outside the vocabulary of {}", id, n_vocab()));
            }
            const tok::TokenData& td = vocab_->tokens[id];
            if (td.attr & (tok::kAttrControl | tok::kAttrUnused)) continue;  // skip_special_tokens
            tokens.push_back(td.text);
        }
        return hf_->decode(tokens, false);
    }
    std::string out;
    bool strip_space = add_space_prefix_;
    for (size_t i = 0; i < ids.size(); ++i) {
        if (i == 0 && ids[0] == bos_ && add_bos_) continue;  // the prefix space follows BOS
        std::string piece = visible_piece(ids[i]);
        if (strip_space && !piece.empty() && piece[0] == ' ') piece.erase(0, 1);
        strip_space = false;
        out += piece;
    }
    return out;
}

std::string TextStreamer::feed(const Tokenizer& tokenizer, int32_t id) {
    pending_ += tokenizer.visible_piece(id);
    // Hold back a trailing lead byte whose sequence is not complete yet.
    size_t keep_from = pending_.size();
    for (size_t back = 1; back <= std::min<size_t>(4, pending_.size()); ++back) {
        const size_t pos = pending_.size() - back;
        const auto b = static_cast<unsigned char>(pending_[pos]);
        if ((b & 0xC0) == 0x80) continue;  // continuation byte: look further back
        if (b >= 0xC0 && tok::utf8_len(pending_[pos]) > back) keep_from = pos;
        break;
    }
    std::string ready = pending_.substr(0, keep_from);
    pending_.erase(0, keep_from);
    return ready;
}

std::string TextStreamer::flush() {
    return std::exchange(pending_, std::string());
}

}  // namespace hymoe
