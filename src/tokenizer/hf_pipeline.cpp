// Each step follows the `tokenizers` (0.23) source it names: AddedVocabulary::find_matches,
// NormalizedString::split, the pre-tokenizers, BPE::merge_word / Word::merge_all, the decoders.
#include "tokenizer/hf_pipeline.hpp"

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <new>
#include <queue>
#include <utility>

#include <utf8proc.h>

#include "hymoe/error.hpp"
#include "tokenizer/pretokenize.hpp"
#include "tokenizer/vocab.hpp"

namespace hymoe::tok {

namespace {

using Span = Regex::Span;

// The code point starting at `pos` of valid UTF-8, and its length.
uint32_t code_point_at(std::string_view s, size_t pos, size_t& len) {
    const auto b = [&](size_t k) { return static_cast<uint32_t>(static_cast<unsigned char>(s[pos + k])); };
    len = std::min(utf8_len(s[pos]), s.size() - pos);
    switch (len) {
        case 1: return b(0);
        case 2: return ((b(0) & 0x1F) << 6) | (b(1) & 0x3F);
        case 3: return ((b(0) & 0x0F) << 12) | ((b(1) & 0x3F) << 6) | (b(2) & 0x3F);
        default: return ((b(0) & 0x07) << 18) | ((b(1) & 0x3F) << 12) | ((b(2) & 0x3F) << 6) | (b(3) & 0x3F);
    }
}

// The code point that ends at `end`.
uint32_t code_point_before(std::string_view s, size_t end, size_t& start) {
    start = end - 1;
    while (start > 0 && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
    size_t len = 0;
    return code_point_at(s, start, len);
}

// Unicode White_Space: the regex crate's \s, which tokenizers' lstrip/rstrip use.
bool is_white_space(uint32_t c) {
    return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

// The regex crate's \w (letters, marks, decimal digits, connector punctuation, joiners), which
// tokenizers' single_word uses.
bool is_word_char(uint32_t c) {
    if (c == 0x200C || c == 0x200D) return true;
    switch (utf8proc_category(static_cast<utf8proc_int32_t>(c))) {
        case UTF8PROC_CATEGORY_LU:
        case UTF8PROC_CATEGORY_LL:
        case UTF8PROC_CATEGORY_LT:
        case UTF8PROC_CATEGORY_LM:
        case UTF8PROC_CATEGORY_LO:
        case UTF8PROC_CATEGORY_MN:
        case UTF8PROC_CATEGORY_MC:
        case UTF8PROC_CATEGORY_ME:
        case UTF8PROC_CATEGORY_ND:
        case UTF8PROC_CATEGORY_NL:
        case UTF8PROC_CATEGORY_PC: return true;
        default: return false;
    }
}

// (span, is_match) over the whole of `text`, as tokenizers' Pattern::find_matches.
std::vector<std::pair<Span, bool>> find_matches(const Regex& regex, std::string_view text, RegexScratch& scratch) {
    std::vector<std::pair<Span, bool>> out;
    if (text.empty()) {
        out.push_back({{0, 0}, false});
        return out;
    }
    std::vector<Span> matches;
    regex.find_all(text, scratch, matches);
    size_t prev = 0;
    for (const auto& [s, e] : matches) {
        if (prev != s) out.push_back({{prev, s}, false});
        out.push_back({{s, e}, true});
        prev = e;
    }
    if (prev != text.size()) out.push_back({{prev, text.size()}, false});
    return out;
}

// NormalizedString::split: the spans that stay, in order (possibly empty).
std::vector<Span> split_spans(const Regex& regex, std::string_view text, SplitBehavior behavior, bool invert,
                              RegexScratch& scratch) {
    auto matches = find_matches(regex, text, scratch);
    if (invert) {
        for (auto& m : matches) m.second = !m.second;
    }
    std::vector<Span> out;
    switch (behavior) {
        case SplitBehavior::Isolated:
            for (const auto& m : matches) out.push_back(m.first);
            break;
        case SplitBehavior::Removed:
            for (const auto& m : matches) {
                if (!m.second) out.push_back(m.first);
            }
            break;
        case SplitBehavior::Contiguous: {
            bool previous = false;
            for (const auto& [span, is_match] : matches) {
                if (is_match == previous && !out.empty()) {
                    out.back().second = span.second;
                } else {
                    out.push_back(span);
                }
                previous = is_match;
            }
            break;
        }
        case SplitBehavior::MergedWithPrevious: {
            bool previous = false;
            for (const auto& [span, is_match] : matches) {
                if (is_match && !previous && !out.empty()) {
                    out.back().second = span.second;
                } else {
                    out.push_back(span);
                }
                previous = is_match;
            }
            break;
        }
        case SplitBehavior::MergedWithNext: {
            bool previous = false;
            for (auto it = matches.rbegin(); it != matches.rend(); ++it) {
                const auto& [span, is_match] = *it;
                if (is_match && !previous && !out.empty()) {
                    out.back().first = span.first;
                } else {
                    out.push_back(span);
                }
                previous = is_match;
            }
            std::reverse(out.begin(), out.end());
            break;
        }
    }
    return out;
}

// Every match of `regex` in `text` replaced by `content` (tokenizers' Replace), or of `literal`
// when set: the same for a non-empty String pattern, without the regex.
std::string replace_all(const Regex& regex, const std::optional<std::string>& literal, std::string_view text,
                        std::string_view content, RegexScratch& scratch) {
    if (literal && !literal->empty()) {
        std::string out;
        out.reserve(text.size());
        size_t pos = 0;
        for (size_t hit = text.find(*literal); hit != std::string_view::npos; hit = text.find(*literal, pos)) {
            out.append(text.substr(pos, hit - pos));
            out += content;
            pos = hit + literal->size();
        }
        out.append(text.substr(pos));
        return out;
    }
    std::string out;
    out.reserve(text.size());
    for (const auto& [span, is_match] : find_matches(regex, text, scratch)) {
        if (is_match) {
            out += content;
        } else {
            out.append(text.substr(span.first, span.second - span.first));
        }
    }
    return out;
}

std::string unicode_normalize(std::string_view text, int options) {
    if (text.empty()) return {};
    utf8proc_uint8_t* raw = nullptr;
    const utf8proc_ssize_t n =
        utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(text.data()), static_cast<utf8proc_ssize_t>(text.size()),
                     &raw, static_cast<utf8proc_option_t>(UTF8PROC_STABLE | options));
    const std::unique_ptr<utf8proc_uint8_t, decltype(&std::free)> out(raw, &std::free);
    if (n < 0) {
        if (n == UTF8PROC_ERROR_NOMEM) throw std::bad_alloc();
        throw Error(std::string("tokenizer: Unicode normalization failed: ") + utf8proc_errmsg(n));
    }
    return std::string(reinterpret_cast<const char*>(out.get()), static_cast<size_t>(n));
}

bool valid_utf8(std::string_view s) {
    return utf8_lossy(s) == s;
}

}  // namespace

std::string utf8_lossy(std::string_view s) {
    static constexpr std::string_view kReplacement = "\xEF\xBF\xBD";
    std::string out;
    out.reserve(s.size());
    size_t i = 0;
    const auto at = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
    while (i < s.size()) {
        const unsigned char b = at(i);
        if (b < 0x80) {
            out += static_cast<char>(b);
            ++i;
            continue;
        }
        size_t len = 0;
        unsigned char lo = 0x80;
        unsigned char hi = 0xBF;
        if (b >= 0xC2 && b <= 0xDF) {
            len = 2;
        } else if (b >= 0xE0 && b <= 0xEF) {
            len = 3;
            if (b == 0xE0) lo = 0xA0;
            if (b == 0xED) hi = 0x9F;
        } else if (b >= 0xF0 && b <= 0xF4) {
            len = 4;
            if (b == 0xF0) lo = 0x90;
            if (b == 0xF4) hi = 0x8F;
        }
        if (len == 0) {  // not a lead byte
            out += kReplacement;
            ++i;
            continue;
        }
        // The maximal subpart: stop at the first byte that cannot continue the sequence.
        size_t k = 1;
        for (; k < len && i + k < s.size(); ++k) {
            const unsigned char c = at(i + k);
            const unsigned char l = k == 1 ? lo : 0x80;
            const unsigned char h = k == 1 ? hi : 0xBF;
            if (c < l || c > h) break;
        }
        if (k == len) {
            out.append(s.substr(i, len));
        } else {
            out += kReplacement;
        }
        i += k;
    }
    return out;
}

// ---- BPE ----------------------------------------------------------------------------------------

void HfBpe::tokenize(std::string_view word, std::vector<int32_t>& out) const {
    if (word.empty()) return;
    if (ignore_merges) {
        if (const auto it = vocab.find(std::string(word)); it != vocab.end()) {
            out.push_back(it->second);
            return;
        }
    }
    struct Symbol {
        int32_t id;
        int prev;
        int next;
        size_t len;
    };
    std::vector<Symbol> symbols;
    symbols.reserve(word.size());
    const auto add = [&](int32_t id, size_t len) {
        const int index = static_cast<int>(symbols.size());
        if (index > 0) symbols.back().next = index;
        symbols.push_back(Symbol{id, index - 1, -1, len});
    };
    // merge_word: characters, else their byte tokens, else the unknown token (fused if asked).
    int32_t pending_unk = -1;
    size_t pending_unk_len = 0;
    std::string ch;
    for (size_t pos = 0; pos < word.size();) {
        const size_t n = std::min(utf8_len(word[pos]), word.size() - pos);
        ch.assign(word.substr(pos, n));
        pos += n;
        if (const auto it = vocab.find(ch); it != vocab.end()) {
            if (pending_unk >= 0) {
                add(pending_unk, pending_unk_len);
                pending_unk = -1;
            }
            add(it->second, n);
            continue;
        }
        if (byte_fallback &&
            std::all_of(ch.begin(), ch.end(), [&](char c) { return byte_ids[static_cast<unsigned char>(c)] >= 0; })) {
            // As tokenizers does, a pending unknown token is not flushed first.
            for (const char c : ch) add(byte_ids[static_cast<unsigned char>(c)], 1);
            continue;
        }
        if (unk < 0) continue;  // no unknown token: the character is dropped
        if (pending_unk >= 0 && fuse_unk) {
            pending_unk_len += n;
        } else {
            if (pending_unk >= 0) add(pending_unk, pending_unk_len);
            pending_unk = unk;
            pending_unk_len = n;
        }
    }
    if (pending_unk >= 0) add(pending_unk, pending_unk_len);

    // merge_all: the pair of lowest rank first, leftmost on ties.
    struct Merge {
        size_t pos;
        int32_t rank;
        int32_t new_id;
    };
    const auto later = [](const Merge& a, const Merge& b) {
        return a.rank != b.rank ? a.rank > b.rank : a.pos > b.pos;
    };
    std::priority_queue<Merge, std::vector<Merge>, decltype(later)> queue(later);
    const auto push_pair = [&](size_t pos, int32_t left, int32_t right) {
        if (const auto it = merges.find(pair_key(left, right)); it != merges.end()) {
            queue.push(Merge{pos, it->second.first, it->second.second});
        }
    };
    for (size_t i = 0; i + 1 < symbols.size(); ++i) push_pair(i, symbols[i].id, symbols[i + 1].id);
    while (!queue.empty()) {
        const Merge top = queue.top();
        queue.pop();
        Symbol& current = symbols[top.pos];
        if (current.len == 0 || current.next < 0) continue;
        const auto next_pos = static_cast<size_t>(current.next);
        const Symbol right = symbols[next_pos];
        // A queue entry made stale by an earlier merge no longer names this pair's result.
        const auto it = merges.find(pair_key(current.id, right.id));
        if (it == merges.end() || it->second.second != top.new_id) continue;
        current.id = top.new_id;
        current.len += right.len;
        current.next = right.next;
        symbols[next_pos].len = 0;
        if (right.next >= 0) symbols[static_cast<size_t>(right.next)].prev = static_cast<int>(top.pos);
        if (current.prev >= 0) {
            const auto prev = static_cast<size_t>(current.prev);
            push_pair(prev, symbols[prev].id, current.id);
        }
        if (current.next >= 0) push_pair(top.pos, current.id, symbols[static_cast<size_t>(current.next)].id);
    }
    for (const Symbol& s : symbols) {
        if (s.len != 0) out.push_back(s.id);
    }
}

// ---- the pipeline -------------------------------------------------------------------------------

struct HfPipeline::Piece {
    std::string text;
    int32_t token = -1;     // an added token, or -1 for text
    bool at_start = false;  // begins at offset 0 of the original text (Metaspace's "first")
};

void HfPipeline::index_added_tokens() {
    for (auto& set : added_by_byte_) {
        for (auto& list : set) list.clear();
    }
    for (size_t i = 0; i < added.size(); ++i) {
        HfAddedToken& t = added[i];
        t.match_text = t.normalized ? normalize(t.content) : t.content;
        if (t.match_text.empty()) continue;
        added_by_byte_[t.normalized ? 1 : 0][static_cast<unsigned char>(t.match_text[0])].push_back(i);
    }
    for (auto& set : added_by_byte_) {
        for (auto& list : set) {
            std::stable_sort(list.begin(), list.end(), [&](size_t a, size_t b) {
                return added[a].match_text.size() > added[b].match_text.size();
            });
        }
    }
}

std::vector<HfPipeline::Match> HfPipeline::find_added(std::string_view text, bool normalized_set,
                                                      bool parse_special) const {
    std::vector<Match> splits;
    const auto& by_byte = added_by_byte_[normalized_set ? 1 : 0];
    size_t start_offset = 0;
    for (size_t p = 0; p < text.size();) {
        // Aho-Corasick, leftmost-longest: the longest token starting at the first position where
        // any starts; the search goes on after it, whether or not it is kept below.
        const HfAddedToken* hit = nullptr;
        for (const size_t i : by_byte[static_cast<unsigned char>(text[p])]) {
            const std::string& m = added[i].match_text;
            if (text.compare(p, m.size(), m) == 0) {
                hit = &added[i];
                break;
            }
        }
        if (hit == nullptr) {
            ++p;
            continue;
        }
        size_t start = p;
        size_t stop = p + hit->match_text.size();
        p = stop;
        if (!parse_special && hit->special) continue;
        if (hit->single_word) {
            size_t before = 0;
            size_t len = 0;
            const bool start_space = start == 0 || !is_word_char(code_point_before(text, start, before));
            const bool stop_space = stop == text.size() || !is_word_char(code_point_at(text, stop, len));
            if (!start_space || !stop_space) continue;
        }
        if (hit->lstrip) {
            size_t new_start = start;
            while (new_start > 0) {
                size_t before = 0;
                if (!is_white_space(code_point_before(text, new_start, before))) break;
                new_start = before;
            }
            start = std::max(new_start, start_offset);
        }
        if (hit->rstrip) {
            while (stop < text.size()) {
                size_t len = 0;
                if (!is_white_space(code_point_at(text, stop, len))) break;
                stop += len;
            }
        }
        if (start_offset < start) splits.push_back({-1, start_offset, start});
        splits.push_back({hit->id, start, stop});
        start_offset = stop;
    }
    if (start_offset < text.size()) splits.push_back({-1, start_offset, text.size()});
    return splits;
}

std::string HfPipeline::normalize(std::string_view text) const {
    std::string s(text);
    RegexScratch scratch;
    for (const HfNormalizerStep& step : normalizer) {
        switch (step.kind) {
            case HfNormalizerStep::Kind::Nfc: s = unicode_normalize(s, UTF8PROC_COMPOSE); break;
            case HfNormalizerStep::Kind::Nfd: s = unicode_normalize(s, UTF8PROC_DECOMPOSE); break;
            case HfNormalizerStep::Kind::Nfkc: s = unicode_normalize(s, UTF8PROC_COMPOSE | UTF8PROC_COMPAT); break;
            case HfNormalizerStep::Kind::Nfkd: s = unicode_normalize(s, UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT); break;
            case HfNormalizerStep::Kind::Prepend:
                if (!s.empty()) s.insert(0, step.text);
                break;
            case HfNormalizerStep::Kind::Replace:
                s = replace_all(*step.regex, step.literal, s, step.text, scratch);
                break;
        }
    }
    return s;
}

void HfPipeline::pre_tokenize(std::vector<Piece>& pieces) const {
    RegexScratch scratch;
    std::vector<Piece> next;
    // Replaces every text piece by the non-empty spans `spans_of` gives for it.
    const auto resplit = [&](auto&& spans_of) {
        next.clear();
        next.reserve(pieces.size());
        for (Piece& piece : pieces) {
            if (piece.token >= 0) {
                next.push_back(std::move(piece));
                continue;
            }
            for (const auto& [b, e] : spans_of(piece.text)) {
                if (e > b) next.push_back(Piece{piece.text.substr(b, e - b), -1, piece.at_start && b == 0});
            }
        }
        pieces.swap(next);
    };
    for (const HfPreTokenizerStep& step : pre_tokenizer) {
        switch (step.kind) {
            case HfPreTokenizerStep::Kind::Split:
                resplit([&](const std::string& text) {
                    return split_spans(*step.regex, text, step.behavior, step.invert, scratch);
                });
                break;
            case HfPreTokenizerStep::Kind::ByteLevel:
                if (step.add_prefix_space) {
                    for (Piece& piece : pieces) {
                        if (piece.token < 0 && piece.text[0] != ' ') piece.text.insert(0, 1, ' ');
                    }
                }
                if (step.regex) {
                    resplit([&](const std::string& text) {
                        return split_spans(*step.regex, text, SplitBehavior::Isolated, false, scratch);
                    });
                }
                for (Piece& piece : pieces) {
                    if (piece.token < 0) piece.text = byte_encode(piece.text);
                }
                break;
            case HfPreTokenizerStep::Kind::Metaspace:
                for (Piece& piece : pieces) {
                    if (piece.token >= 0) continue;
                    std::string replaced;
                    replaced.reserve(piece.text.size() + step.replacement.size());
                    for (const char c : piece.text) {
                        if (c == ' ') {
                            replaced += step.replacement;
                        } else {
                            replaced += c;
                        }
                    }
                    const bool starts = replaced.compare(0, step.replacement.size(), step.replacement) == 0;
                    const bool prepend = step.prepend == HfPreTokenizerStep::Prepend::Always ||
                                         (step.prepend == HfPreTokenizerStep::Prepend::First && piece.at_start);
                    if (prepend && !starts) replaced.insert(0, step.replacement);
                    piece.text = std::move(replaced);
                }
                if (step.split) {
                    resplit([&](const std::string& text) {
                        return split_spans(*step.regex, text, SplitBehavior::MergedWithNext, false, scratch);
                    });
                }
                break;
        }
    }
}

void HfPipeline::encode(std::string_view raw, bool add_special, bool parse_special, std::vector<int32_t>& out) const {
    const std::string text = clean_utf8(raw);
    // Added tokens that match the raw text, then the normalizer on what is left, then the
    // added tokens that match normalized text.
    std::vector<Piece> pieces;
    for (const Match& m : find_added(text, false, parse_special)) {
        if (m.id >= 0) {
            pieces.push_back(Piece{{}, m.id, false});
            continue;
        }
        const std::string normalized = normalize(std::string_view(text).substr(m.begin, m.end - m.begin));
        for (const Match& n : find_added(normalized, true, parse_special)) {
            if (n.id >= 0) {
                pieces.push_back(Piece{{}, n.id, false});
            } else if (n.end > n.begin) {
                pieces.push_back(Piece{normalized.substr(n.begin, n.end - n.begin), -1, m.begin == 0 && n.begin == 0});
            }
        }
    }
    pre_tokenize(pieces);
    if (add_special) out.insert(out.end(), prefix.begin(), prefix.end());
    for (const Piece& piece : pieces) {
        if (piece.token >= 0) {
            out.push_back(piece.token);
        } else {
            model.tokenize(piece.text, out);
        }
    }
    if (add_special) out.insert(out.end(), suffix.begin(), suffix.end());
}

std::string HfPipeline::decode(std::span<const std::string_view> input, bool streaming) const {
    std::string joined;
    if (!decoder) {
        for (size_t i = 0; i < input.size(); ++i) {
            if (i > 0 && !streaming) joined += ' ';
            joined.append(input[i]);
        }
        return joined;
    }
    std::vector<std::string> tokens(input.begin(), input.end());
    RegexScratch scratch;
    for (const HfDecoderStep& step : *decoder) {
        switch (step.kind) {
            case HfDecoderStep::Kind::ByteLevel: {
                // Each token's characters as GPT-2's bytes when all of them are in the table,
                // else its own UTF-8; the whole as (lossy) UTF-8.
                std::string bytes;
                for (const std::string& t : tokens) {
                    std::string mapped;
                    bool all = true;
                    for (size_t pos = 0; pos < t.size();) {
                        size_t len = 0;
                        const int b = byte_of_code_point(code_point_at(t, pos, len));
                        if (b < 0) {
                            all = false;
                            break;
                        }
                        mapped += static_cast<char>(b);
                        pos += len;
                    }
                    bytes += all ? mapped : t;
                }
                tokens.assign(1, streaming ? bytes : utf8_lossy(bytes));
                break;
            }
            case HfDecoderStep::Kind::Replace:
                for (std::string& t : tokens) t = replace_all(*step.regex, step.literal, t, step.content, scratch);
                break;
            case HfDecoderStep::Kind::ByteFallback: {
                // Runs of <0xNN> tokens become their bytes when those are valid UTF-8, else one
                // U+FFFD per byte.
                std::vector<std::string> merged;
                std::string run;
                size_t run_tokens = 0;
                const auto flush = [&] {
                    if (run_tokens == 0) return;
                    if (streaming || valid_utf8(run)) {
                        merged.push_back(run);
                    } else {
                        for (size_t k = 0; k < run_tokens; ++k) merged.emplace_back("\xEF\xBF\xBD");
                    }
                    run.clear();
                    run_tokens = 0;
                };
                for (std::string& t : tokens) {
                    const int byte = spm_token_byte(t);  // <0xNN>, either case of hex digit
                    if (byte >= 0) {
                        run += static_cast<char>(byte);
                        ++run_tokens;
                    } else {
                        flush();
                        merged.push_back(std::move(t));
                    }
                }
                flush();
                tokens = std::move(merged);
                break;
            }
            case HfDecoderStep::Kind::Fuse: {
                std::string all;
                for (const std::string& t : tokens) all += t;
                tokens.assign(1, std::move(all));
                break;
            }
            case HfDecoderStep::Kind::Strip: {
                if (streaming) break;
                for (std::string& t : tokens) {
                    // Up to `start` leading and `stop` trailing `content` characters.
                    size_t begin = 0;
                    for (size_t k = 0;
                         k < step.start && begin < t.size() && t.compare(begin, step.content.size(), step.content) == 0;
                         ++k) {
                        begin += step.content.size();
                    }
                    size_t end = t.size();
                    for (size_t k = 0; k < step.stop && end >= begin + step.content.size() &&
                                       t.compare(end - step.content.size(), step.content.size(), step.content) == 0;
                         ++k) {
                        end -= step.content.size();
                    }
                    t = t.substr(begin, end - begin);
                }
                break;
            }
            case HfDecoderStep::Kind::Metaspace:
                for (size_t i = 0; i < tokens.size(); ++i) {
                    // The first token loses every replacement character (it stood for the space
                    // the pre-tokenizer added); the others become spaces.
                    const bool drop = i == 0 && step.prepend && !streaming;
                    std::string out;
                    const std::string& t = tokens[i];
                    for (size_t pos = 0; pos < t.size();) {
                        if (t.compare(pos, step.content.size(), step.content) == 0) {
                            if (!drop) out += ' ';
                            pos += step.content.size();
                        } else {
                            out += t[pos++];
                        }
                    }
                    tokens[i] = std::move(out);
                }
                break;
        }
    }
    for (const std::string& t : tokens) joined += t;
    return joined;
}

}  // namespace hymoe::tok
