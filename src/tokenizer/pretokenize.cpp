#include "tokenizer/pretokenize.hpp"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <new>
#include <utility>

#include <fmt/format.h>

#include "hymoe/error.hpp"
#include "util/utf8.hpp"

namespace hymoe::tok {

namespace {

// The expressions are llama.cpp's (llama-vocab.cpp, llm_tokenizer_bpe), in the forms it runs:
// where it rewrote `(?i:'s|...)` or \p{Lu}-style classes for std::regex, the rewritten form is
// used, because that is what produced the reference tokenizations.
constexpr const char* kGpt2Words = R"re('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S))re";

std::vector<const char*> regexes_for(PreType type) {
    switch (type) {
        case PreType::Default:
            return {R"re([\p{P}\$\+<=>\^~\|]+)re", kGpt2Words, R"re(\p{N}+)re", R"re([0-9][0-9][0-9])re"};
        case PreType::Gpt2: return {kGpt2Words};
        case PreType::Llama3:
            return {R"re((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|)re"
                    R"re(\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re"};
        case PreType::Qwen2:
            return {R"re((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|)re"
                    R"re(\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re"};
        case PreType::DeepseekLlm:
            // Written with \x{} escapes: several of these code points (U+1F7D, U+2126, U+212A, ...)
            // have canonical equivalents that editors and tools silently normalise.
            return {
                R"re([\r\n])re",
                "\\s?[A-Za-z\\x{B5}\\x{C0}-\\x{D6}\\x{D8}-\\x{F6}\\x{F8}-\\x{1BA}\\x{1BC}-\\x{1BF}\\x{1C4}-\\x{293}"
                "\\x{295}-\\x{2AF}\\x{370}-\\x{373}\\x{376}\\x{377}\\x{37B}-\\x{37D}\\x{37F}\\x{386}\\x{388}-\\x{38A}"
                "\\x{38C}\\x{38E}-\\x{3A1}\\x{3A3}-\\x{3F5}\\x{3F7}-\\x{481}\\x{48A}-\\x{52F}\\x{531}-\\x{556}\\x"
                "{10A0}-\\x{10C5}\\x{13A0}-\\x{13F5}\\x{13F8}-\\x{13FD}\\x{1C90}-\\x{1CBA}\\x{1CBD}-\\x{1CBF}\\x{1D00}"
                "-\\x{1D2B}\\x{1D6B}-\\x{1D77}\\x{1D79}-\\x{1D9A}\\x{1E00}-\\x{1F15}\\x{1F18}-\\x{1F1D}\\x{1F20}-"
                "\\x{1F45}\\x{1F48}-\\x{1F4D}\\x{1F50}-\\x{1F57}\\x{1F59}\\x{1F5B}\\x{1F5D}\\x{1F5F}-\\x{1F7D}\\x"
                "{1F80}-\\x{1FB4}\\x{1FB6}-\\x{1FBC}\\x{1FBE}\\x{1FC2}-\\x{1FC4}\\x{1FC6}-\\x{1FCC}\\x{1FD0}-\\x{1FD3}"
                "\\x{1FD6}-\\x{1FDB}\\x{1FE0}-\\x{1FEC}\\x{1FF2}-\\x{1FF4}\\x{1FF6}-\\x{1FFC}\\x{2102}\\x{2107}\\x"
                "{210A}-\\x{2113}\\x{2115}\\x{2119}-\\x{211D}\\x{2124}\\x{2126}\\x{2128}\\x{212A}-\\x{212D}\\x{212F}"
                "-\\x{2134}\\x{2139}\\x{213C}-\\x{213F}\\x{2145}-\\x{2149}\\x{214E}\\x{2183}\\x{2184}\\x{2C00}-\\x"
                "{2C7B}\\x{2C7E}-\\x{2CE4}\\x{2CEB}-\\x{2CEE}\\x{2CF2}\\x{2CF3}\\x{A640}-\\x{A66D}\\x{A680}-\\x{A69B}"
                "\\x{A722}-\\x{A76F}\\x{A771}-\\x{A787}\\x{A78B}-\\x{A78E}\\x{AB70}-\\x{ABBF}\\x{FB00}-\\x{FB06}\\x"
                "{FB13}-\\x{FB17}\\x{FF21}-\\x{FF3A}\\x{FF41}-\\x{FF5A}\\x{10400}-\\x{1044F}\\x{104B0}-\\x{104D3}"
                "\\x{104D8}-\\x{104FB}\\x{10C80}-\\x{10CB2}\\x{10CC0}-\\x{10CF2}\\x{118A0}-\\x{118DF}\\x{1E900}-\\x"
                "{1E943}]+",
                "\\s?[!-/:-~！-／：-～‘-‟　-。]+",
                R"re(\s+$)re",
                "[一-龥ࠀ-一가-퟿]+",
                R"re(\p{N}+)re",
            };
        case PreType::Deepseek3:
            return {R"re(\p{N}{1,3})re", "[一-龥぀-ゟ゠-ヿ]+",
                    R"re([!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+|)re"
                    R"re( ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re"};
        case PreType::Gpt4o:
            return {R"re([^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+)re"
                    R"re((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|)re"
                    R"re([^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*)re"
                    R"re((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|)re"
                    R"re(\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)re"};
    }
    return {};
}

struct ByteTables {
    std::array<std::string, 256> encode;
    std::array<int, 0x144> decode{};  // code point -> byte; the table's code points are < 0x144
};

const ByteTables& byte_tables() {
    static const ByteTables tables = [] {
        ByteTables t;
        t.decode.fill(-1);
        uint32_t next = 256;
        for (uint32_t b = 0; b < 256; ++b) {
            const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            const uint32_t cpt = printable ? b : next++;
            append_utf8(t.encode[b], cpt);
            t.decode[cpt] = static_cast<int>(b);
        }
        return t;
    }();
    return tables;
}

// The 25 code points of Unicode's White_Space property, Oniguruma's \s, as a class body.
constexpr std::string_view kWhiteSpaceBody =
    R"re(\t-\r\x{20}\x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000})re";
// Oniguruma's \w: letters, marks, numbers and connector punctuation.
constexpr std::string_view kWordBody = R"re(\p{L}\p{M}\p{N}\p{Pc})re";

bool is_hex(char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

// An Oniguruma (Ruby syntax) pattern in PCRE2's spelling, for the escapes whose meaning differs.
std::string translate_oniguruma(std::string_view p) {
    std::string out;
    out.reserve(p.size() + 16);
    bool in_class = false;
    for (size_t i = 0; i < p.size(); ++i) {
        const char c = p[i];
        if (c == '\\' && i + 1 < p.size()) {
            const char e = p[++i];
            switch (e) {
                case 's': out += in_class ? std::string(kWhiteSpaceBody) : fmt::format("[{}]", kWhiteSpaceBody); break;
                case 'w': out += in_class ? std::string(kWordBody) : fmt::format("[{}]", kWordBody); break;
                // Inside a class a complement cannot be spelled as a union: PCRE2's own is kept.
                case 'S': out += in_class ? std::string("\\S") : fmt::format("[^{}]", kWhiteSpaceBody); break;
                case 'W': out += in_class ? std::string("\\W") : fmt::format("[^{}]", kWordBody); break;
                case 'h':
                case 'H':
                    throw Error(
                        fmt::format("regex '{}': \\{} (a hex digit class in Oniguruma) is not supported", p, e));
                case 'u':
                    if (i + 4 < p.size() && is_hex(p[i + 1]) && is_hex(p[i + 2]) && is_hex(p[i + 3]) &&
                        is_hex(p[i + 4])) {
                        out += fmt::format("\\x{{{}}}", p.substr(i + 1, 4));
                        i += 4;
                        break;
                    }
                    [[fallthrough]];
                default: out += c; out += e;
            }
            continue;
        }
        if (!in_class && c == '[') {
            in_class = true;
            out += c;
            if (i + 1 < p.size() && p[i + 1] == '^') out += p[++i];
            if (i + 1 < p.size() && p[i + 1] == ']') out += p[++i];  // a leading ] is literal
            continue;
        }
        if (in_class && c == '[' && i + 1 < p.size() && p[i + 1] == ':') {  // [:alpha:]
            const size_t end = p.find(":]", i + 2);
            if (end != std::string_view::npos) {
                out.append(p.substr(i, end + 2 - i));
                i = end + 1;
                continue;
            }
        }
        if (in_class && c == ']') in_class = false;
        out += c;
    }
    return out;
}

}  // namespace

// Decodes like llama.cpp's unicode_cpt_from_utf8 (lead byte and continuation bits only);
// a bad sequence yields U+FFFD and advances one byte. Surrogates and values past U+10FFFF
// also become U+FFFD so that PCRE2 gets valid UTF-8.
std::string clean_utf8(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    size_t i = 0;
    const auto cont = [&](size_t k) {
        return i + k < text.size() && (static_cast<unsigned char>(text[i + k]) & 0xC0) == 0x80;
    };
    while (i < text.size()) {
        const auto b = static_cast<unsigned char>(text[i]);
        uint32_t cpt = 0xFFFD;
        size_t n = 1;
        if (!(b & 0x80)) {
            cpt = b;
        } else if (!(b & 0x40)) {
            // continuation byte without a lead: invalid
        } else if (!(b & 0x20)) {
            if (cont(1)) cpt = ((b & 0x1Fu) << 6) | (static_cast<unsigned char>(text[i + 1]) & 0x3Fu), n = 2;
        } else if (!(b & 0x10)) {
            if (cont(1) && cont(2)) {
                cpt = ((b & 0x0Fu) << 12) | ((static_cast<unsigned char>(text[i + 1]) & 0x3Fu) << 6) |
                      (static_cast<unsigned char>(text[i + 2]) & 0x3Fu);
                n = 3;
            }
        } else if (!(b & 0x08)) {
            if (cont(1) && cont(2) && cont(3)) {
                cpt = ((b & 0x07u) << 18) | ((static_cast<unsigned char>(text[i + 1]) & 0x3Fu) << 12) |
                      ((static_cast<unsigned char>(text[i + 2]) & 0x3Fu) << 6) |
                      (static_cast<unsigned char>(text[i + 3]) & 0x3Fu);
                n = 4;
            }
        }
        if ((cpt >= 0xD800 && cpt <= 0xDFFF) || cpt > 0x10FFFF) cpt = 0xFFFD;
        append_utf8(out, cpt);
        i += n;
    }
    return out;
}

struct RegexScratch::State {
    std::unique_ptr<pcre2_match_data, decltype(&pcre2_match_data_free)> md{nullptr, &pcre2_match_data_free};
    std::unique_ptr<pcre2_match_context, decltype(&pcre2_match_context_free)> ctx{nullptr, &pcre2_match_context_free};
    std::unique_ptr<pcre2_jit_stack, decltype(&pcre2_jit_stack_free)> jit{nullptr, &pcre2_jit_stack_free};
};

RegexScratch::RegexScratch() = default;

RegexScratch::State& RegexScratch::state() {
    // Made on first use, so that a caller with no pattern to match pays nothing. One ovector
    // pair is enough: only the whole match is used. The JIT's default 32 KiB stack could run
    // out on long inputs, and a failed match must not pass for "no match".
    if (!state_) {
        auto s = std::make_unique<State>();
        s->md.reset(pcre2_match_data_create(1, nullptr));
        s->ctx.reset(pcre2_match_context_create(nullptr));
        s->jit.reset(pcre2_jit_stack_create(32 * 1024, 64 * 1024 * 1024, nullptr));
        if (!s->md || !s->ctx) throw std::bad_alloc();
        if (s->jit) pcre2_jit_stack_assign(s->ctx.get(), nullptr, s->jit.get());
        state_ = std::move(s);
    }
    return *state_;
}

RegexScratch::~RegexScratch() = default;

struct Regex::Code {
    pcre2_code* code = nullptr;
    ~Code() { pcre2_code_free(code); }
};

Regex::Regex(std::string_view pattern, Dialect dialect) : code_(std::make_unique<Code>()), dialect_(dialect) {
    std::string source;
    uint32_t options = PCRE2_UTF | PCRE2_UCP;
    std::unique_ptr<pcre2_compile_context, decltype(&pcre2_compile_context_free)> cc(
        pcre2_compile_context_create(nullptr), &pcre2_compile_context_free);
    if (!cc) throw std::bad_alloc();
    switch (dialect) {
        case Dialect::LlamaCpp:
            // DOLLAR_ENDONLY: "\s+$" must mean the end of the piece, as in std::regex, not "before
            // a final newline".
            source = pattern;
            options |= PCRE2_DOLLAR_ENDONLY;
            break;
        case Dialect::Oniguruma:
            source = translate_oniguruma(pattern);
            options |= PCRE2_MULTILINE;  // Ruby syntax: ^ and $ match at every line
            pcre2_set_newline(cc.get(), PCRE2_NEWLINE_LF);
            break;
    }
    int err = 0;
    PCRE2_SIZE err_offset = 0;
    code_->code =
        pcre2_compile(reinterpret_cast<PCRE2_SPTR>(source.data()), source.size(), options, &err, &err_offset, cc.get());
    if (code_->code == nullptr) {
        std::array<PCRE2_UCHAR, 256> msg{};
        pcre2_get_error_message(err, msg.data(), msg.size());
        throw Error(fmt::format("regex '{}' does not compile at offset {}: {}", pattern, err_offset,
                                reinterpret_cast<const char*>(msg.data())));
    }
    pcre2_jit_compile(code_->code, PCRE2_JIT_COMPLETE);  // without JIT support the interpreter runs
}

Regex::~Regex() = default;

void Regex::find_all(std::string_view text, RegexScratch& scratch, std::vector<Span>& out) const {
    out.clear();
    const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
    const size_t len = text.size();
    RegexScratch::State& state = scratch.state();
    pcre2_match_data* md = state.md.get();
    size_t pos = 0;
    size_t last_end = std::string_view::npos;  // end of the previous match
    while (pos < len || (pos == len && dialect_ == Dialect::Oniguruma)) {
        const int rc = pcre2_match(code_->code, subject, len, pos, PCRE2_NO_UTF_CHECK, md, state.ctx.get());
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) {
            std::array<PCRE2_UCHAR, 256> msg{};
            pcre2_get_error_message(rc, msg.data(), msg.size());
            throw Error(fmt::format("tokenizer: regex matching failed on a {}-byte piece: {}", len,
                                    reinterpret_cast<const char*>(msg.data())));
        }
        const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
        const size_t m0 = ov[0];
        const size_t m1 = ov[1];
        if (m1 == m0 && (dialect_ == Dialect::LlamaCpp || m0 == last_end)) {
            // An empty match: step one character, as regex iterators do.
            if (m0 >= len) break;
            pos = m0 + utf8_len(text[m0]);
            continue;
        }
        out.emplace_back(m0, m1);
        pos = last_end = m1;
    }
}

std::string_view pre_type_name(PreType type) {
    switch (type) {
        case PreType::Default: return "default";
        case PreType::Gpt2: return "gpt-2";
        case PreType::Llama3: return "llama-bpe";
        case PreType::Qwen2: return "qwen2";
        case PreType::DeepseekLlm: return "deepseek-llm";
        case PreType::Deepseek3: return "deepseek-v3";
        case PreType::Gpt4o: return "gpt-4o";
    }
    return "default";
}

bool pre_type_from_name(std::string_view name, PreType& type) {
    static constexpr std::pair<std::string_view, PreType> kNames[] = {
        {"default", PreType::Default},
        {"gpt-2", PreType::Gpt2},
        {"olmo", PreType::Gpt2},
        {"mpt", PreType::Gpt2},
        {"phi-2", PreType::Gpt2},
        {"llama3", PreType::Llama3},
        {"llama-v3", PreType::Llama3},
        {"llama-bpe", PreType::Llama3},
        {"dbrx", PreType::Llama3},
        {"smaug-bpe", PreType::Llama3},
        {"qwen2", PreType::Qwen2},
        {"deepseek-r1-qwen", PreType::Qwen2},
        {"stablelm2", PreType::Qwen2},
        {"megrez", PreType::Qwen2},
        {"deepseek-llm", PreType::DeepseekLlm},
        {"deepseek-v3", PreType::Deepseek3},
        {"gpt-4o", PreType::Gpt4o},
        {"llama4", PreType::Gpt4o},
    };
    for (const auto& [n, t] : kNames) {
        if (n == name) {
            type = t;
            return true;
        }
    }
    return false;
}

PreTokenizer::PreTokenizer(PreType type) {
    for (const char* pattern : regexes_for(type)) {
        regexes_.push_back(std::make_unique<Regex>(pattern, Regex::Dialect::LlamaCpp));
    }
}

PreTokenizer::PreTokenizer(const std::vector<std::string>& patterns) {
    for (const std::string& pattern : patterns) {
        regexes_.push_back(std::make_unique<Regex>(pattern, Regex::Dialect::LlamaCpp));
    }
}

PreTokenizer::~PreTokenizer() = default;

std::vector<std::string> PreTokenizer::split(std::string_view raw) const {
    const std::string text = clean_utf8(raw);
    // Offsets as (start, length); each regex splits every current piece into its matches and
    // the text between them, like llama.cpp's unicode_regex_split. A piece is matched on its
    // own, so lookaheads cannot see past its end.
    std::vector<std::pair<size_t, size_t>> pieces{{0, text.size()}};
    if (text.empty()) pieces.clear();
    RegexScratch scratch;
    std::vector<Regex::Span> matches;
    for (const auto& re : regexes_) {
        std::vector<std::pair<size_t, size_t>> next;
        next.reserve(pieces.size());
        for (const auto& [start, len] : pieces) {
            re->find_all(std::string_view(text).substr(start, len), scratch, matches);
            size_t emitted = 0;
            for (const auto& [m0, m1] : matches) {
                if (m0 > emitted) next.emplace_back(start + emitted, m0 - emitted);
                next.emplace_back(start + m0, m1 - m0);
                emitted = m1;
            }
            if (emitted < len) next.emplace_back(start + emitted, len - emitted);
        }
        pieces = std::move(next);
    }
    std::vector<std::string> words;
    words.reserve(pieces.size());
    for (const auto& [start, len] : pieces) words.push_back(byte_encode(std::string_view(text).substr(start, len)));
    return words;
}

std::string byte_encode(std::string_view bytes) {
    const auto& t = byte_tables();
    std::string out;
    out.reserve(bytes.size() * 2);
    for (const char c : bytes) out += t.encode[static_cast<unsigned char>(c)];
    return out;
}

int byte_of_code_point(uint32_t cpt) {
    const auto& t = byte_tables();
    return cpt < t.decode.size() ? t.decode[cpt] : -1;
}

std::string byte_decode(std::string_view text) {
    const auto& t = byte_tables();
    std::string out;
    out.reserve(text.size());
    size_t i = 0;
    while (i < text.size()) {
        const size_t n = std::min(utf8_len(text[i]), text.size() - i);
        uint32_t cpt = 0x110000;
        const auto b = [&](size_t k) { return static_cast<uint32_t>(static_cast<unsigned char>(text[i + k])); };
        if (n == 1) cpt = b(0);
        if (n == 2) cpt = ((b(0) & 0x1F) << 6) | (b(1) & 0x3F);
        if (cpt < t.decode.size() && t.decode[cpt] >= 0) {
            out += static_cast<char>(t.decode[cpt]);
        } else {
            out.append(text.substr(i, n));
        }
        i += n;
    }
    return out;
}

}  // namespace hymoe::tok
