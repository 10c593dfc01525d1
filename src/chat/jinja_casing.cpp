// Python's case mapping for str.upper, lower, title, capitalize and swapcase. utf8proc gives
// the one-code-point mappings, which agree with Python's (checked over all of Unicode); the
// table holds the longer mappings Python takes from SpecialCasing.txt (ß -> SS, ﬁ -> FI,
// İ -> i̇), and lower() writes a word-final capital sigma as ς, as Python does.
#include <algorithm>
#include <vector>

#include <utf8proc.h>

#include "chat/jinja_pystr.hpp"

namespace hymoe::jinja::pystr {

namespace {

struct SpecialCase {
    char32_t cp;
    const char* upper;  // UTF-8; null where the one-code-point mapping applies
    const char* lower;
    const char* title;
};

// Generated from Python 3.11's str methods (Unicode 14): every code point whose upper, lower or
// title case is longer than one code point. Sorted by code point.
constexpr SpecialCase kSpecial[] = {
    {0x00DF, "\x53\x53", nullptr, "\x53\x73"},
    {0x0130, nullptr, "\x69\xCC\x87", nullptr},
    {0x0149, "\xCA\xBC\x4E", nullptr, "\xCA\xBC\x4E"},
    {0x01F0, "\x4A\xCC\x8C", nullptr, "\x4A\xCC\x8C"},
    {0x0390, "\xCE\x99\xCC\x88\xCC\x81", nullptr, "\xCE\x99\xCC\x88\xCC\x81"},
    {0x03B0, "\xCE\xA5\xCC\x88\xCC\x81", nullptr, "\xCE\xA5\xCC\x88\xCC\x81"},
    {0x0587, "\xD4\xB5\xD5\x92", nullptr, "\xD4\xB5\xD6\x82"},
    {0x1E96, "\x48\xCC\xB1", nullptr, "\x48\xCC\xB1"},
    {0x1E97, "\x54\xCC\x88", nullptr, "\x54\xCC\x88"},
    {0x1E98, "\x57\xCC\x8A", nullptr, "\x57\xCC\x8A"},
    {0x1E99, "\x59\xCC\x8A", nullptr, "\x59\xCC\x8A"},
    {0x1E9A, "\x41\xCA\xBE", nullptr, "\x41\xCA\xBE"},
    {0x1F50, "\xCE\xA5\xCC\x93", nullptr, "\xCE\xA5\xCC\x93"},
    {0x1F52, "\xCE\xA5\xCC\x93\xCC\x80", nullptr, "\xCE\xA5\xCC\x93\xCC\x80"},
    {0x1F54, "\xCE\xA5\xCC\x93\xCC\x81", nullptr, "\xCE\xA5\xCC\x93\xCC\x81"},
    {0x1F56, "\xCE\xA5\xCC\x93\xCD\x82", nullptr, "\xCE\xA5\xCC\x93\xCD\x82"},
    {0x1F80, "\xE1\xBC\x88\xCE\x99", nullptr, nullptr},
    {0x1F81, "\xE1\xBC\x89\xCE\x99", nullptr, nullptr},
    {0x1F82, "\xE1\xBC\x8A\xCE\x99", nullptr, nullptr},
    {0x1F83, "\xE1\xBC\x8B\xCE\x99", nullptr, nullptr},
    {0x1F84, "\xE1\xBC\x8C\xCE\x99", nullptr, nullptr},
    {0x1F85, "\xE1\xBC\x8D\xCE\x99", nullptr, nullptr},
    {0x1F86, "\xE1\xBC\x8E\xCE\x99", nullptr, nullptr},
    {0x1F87, "\xE1\xBC\x8F\xCE\x99", nullptr, nullptr},
    {0x1F88, "\xE1\xBC\x88\xCE\x99", nullptr, nullptr},
    {0x1F89, "\xE1\xBC\x89\xCE\x99", nullptr, nullptr},
    {0x1F8A, "\xE1\xBC\x8A\xCE\x99", nullptr, nullptr},
    {0x1F8B, "\xE1\xBC\x8B\xCE\x99", nullptr, nullptr},
    {0x1F8C, "\xE1\xBC\x8C\xCE\x99", nullptr, nullptr},
    {0x1F8D, "\xE1\xBC\x8D\xCE\x99", nullptr, nullptr},
    {0x1F8E, "\xE1\xBC\x8E\xCE\x99", nullptr, nullptr},
    {0x1F8F, "\xE1\xBC\x8F\xCE\x99", nullptr, nullptr},
    {0x1F90, "\xE1\xBC\xA8\xCE\x99", nullptr, nullptr},
    {0x1F91, "\xE1\xBC\xA9\xCE\x99", nullptr, nullptr},
    {0x1F92, "\xE1\xBC\xAA\xCE\x99", nullptr, nullptr},
    {0x1F93, "\xE1\xBC\xAB\xCE\x99", nullptr, nullptr},
    {0x1F94, "\xE1\xBC\xAC\xCE\x99", nullptr, nullptr},
    {0x1F95, "\xE1\xBC\xAD\xCE\x99", nullptr, nullptr},
    {0x1F96, "\xE1\xBC\xAE\xCE\x99", nullptr, nullptr},
    {0x1F97, "\xE1\xBC\xAF\xCE\x99", nullptr, nullptr},
    {0x1F98, "\xE1\xBC\xA8\xCE\x99", nullptr, nullptr},
    {0x1F99, "\xE1\xBC\xA9\xCE\x99", nullptr, nullptr},
    {0x1F9A, "\xE1\xBC\xAA\xCE\x99", nullptr, nullptr},
    {0x1F9B, "\xE1\xBC\xAB\xCE\x99", nullptr, nullptr},
    {0x1F9C, "\xE1\xBC\xAC\xCE\x99", nullptr, nullptr},
    {0x1F9D, "\xE1\xBC\xAD\xCE\x99", nullptr, nullptr},
    {0x1F9E, "\xE1\xBC\xAE\xCE\x99", nullptr, nullptr},
    {0x1F9F, "\xE1\xBC\xAF\xCE\x99", nullptr, nullptr},
    {0x1FA0, "\xE1\xBD\xA8\xCE\x99", nullptr, nullptr},
    {0x1FA1, "\xE1\xBD\xA9\xCE\x99", nullptr, nullptr},
    {0x1FA2, "\xE1\xBD\xAA\xCE\x99", nullptr, nullptr},
    {0x1FA3, "\xE1\xBD\xAB\xCE\x99", nullptr, nullptr},
    {0x1FA4, "\xE1\xBD\xAC\xCE\x99", nullptr, nullptr},
    {0x1FA5, "\xE1\xBD\xAD\xCE\x99", nullptr, nullptr},
    {0x1FA6, "\xE1\xBD\xAE\xCE\x99", nullptr, nullptr},
    {0x1FA7, "\xE1\xBD\xAF\xCE\x99", nullptr, nullptr},
    {0x1FA8, "\xE1\xBD\xA8\xCE\x99", nullptr, nullptr},
    {0x1FA9, "\xE1\xBD\xA9\xCE\x99", nullptr, nullptr},
    {0x1FAA, "\xE1\xBD\xAA\xCE\x99", nullptr, nullptr},
    {0x1FAB, "\xE1\xBD\xAB\xCE\x99", nullptr, nullptr},
    {0x1FAC, "\xE1\xBD\xAC\xCE\x99", nullptr, nullptr},
    {0x1FAD, "\xE1\xBD\xAD\xCE\x99", nullptr, nullptr},
    {0x1FAE, "\xE1\xBD\xAE\xCE\x99", nullptr, nullptr},
    {0x1FAF, "\xE1\xBD\xAF\xCE\x99", nullptr, nullptr},
    {0x1FB2, "\xE1\xBE\xBA\xCE\x99", nullptr, "\xE1\xBE\xBA\xCD\x85"},
    {0x1FB3, "\xCE\x91\xCE\x99", nullptr, nullptr},
    {0x1FB4, "\xCE\x86\xCE\x99", nullptr, "\xCE\x86\xCD\x85"},
    {0x1FB6, "\xCE\x91\xCD\x82", nullptr, "\xCE\x91\xCD\x82"},
    {0x1FB7, "\xCE\x91\xCD\x82\xCE\x99", nullptr, "\xCE\x91\xCD\x82\xCD\x85"},
    {0x1FBC, "\xCE\x91\xCE\x99", nullptr, nullptr},
    {0x1FC2, "\xE1\xBF\x8A\xCE\x99", nullptr, "\xE1\xBF\x8A\xCD\x85"},
    {0x1FC3, "\xCE\x97\xCE\x99", nullptr, nullptr},
    {0x1FC4, "\xCE\x89\xCE\x99", nullptr, "\xCE\x89\xCD\x85"},
    {0x1FC6, "\xCE\x97\xCD\x82", nullptr, "\xCE\x97\xCD\x82"},
    {0x1FC7, "\xCE\x97\xCD\x82\xCE\x99", nullptr, "\xCE\x97\xCD\x82\xCD\x85"},
    {0x1FCC, "\xCE\x97\xCE\x99", nullptr, nullptr},
    {0x1FD2, "\xCE\x99\xCC\x88\xCC\x80", nullptr, "\xCE\x99\xCC\x88\xCC\x80"},
    {0x1FD3, "\xCE\x99\xCC\x88\xCC\x81", nullptr, "\xCE\x99\xCC\x88\xCC\x81"},
    {0x1FD6, "\xCE\x99\xCD\x82", nullptr, "\xCE\x99\xCD\x82"},
    {0x1FD7, "\xCE\x99\xCC\x88\xCD\x82", nullptr, "\xCE\x99\xCC\x88\xCD\x82"},
    {0x1FE2, "\xCE\xA5\xCC\x88\xCC\x80", nullptr, "\xCE\xA5\xCC\x88\xCC\x80"},
    {0x1FE3, "\xCE\xA5\xCC\x88\xCC\x81", nullptr, "\xCE\xA5\xCC\x88\xCC\x81"},
    {0x1FE4, "\xCE\xA1\xCC\x93", nullptr, "\xCE\xA1\xCC\x93"},
    {0x1FE6, "\xCE\xA5\xCD\x82", nullptr, "\xCE\xA5\xCD\x82"},
    {0x1FE7, "\xCE\xA5\xCC\x88\xCD\x82", nullptr, "\xCE\xA5\xCC\x88\xCD\x82"},
    {0x1FF2, "\xE1\xBF\xBA\xCE\x99", nullptr, "\xE1\xBF\xBA\xCD\x85"},
    {0x1FF3, "\xCE\xA9\xCE\x99", nullptr, nullptr},
    {0x1FF4, "\xCE\x8F\xCE\x99", nullptr, "\xCE\x8F\xCD\x85"},
    {0x1FF6, "\xCE\xA9\xCD\x82", nullptr, "\xCE\xA9\xCD\x82"},
    {0x1FF7, "\xCE\xA9\xCD\x82\xCE\x99", nullptr, "\xCE\xA9\xCD\x82\xCD\x85"},
    {0x1FFC, "\xCE\xA9\xCE\x99", nullptr, nullptr},
    {0xFB00, "\x46\x46", nullptr, "\x46\x66"},
    {0xFB01, "\x46\x49", nullptr, "\x46\x69"},
    {0xFB02, "\x46\x4C", nullptr, "\x46\x6C"},
    {0xFB03, "\x46\x46\x49", nullptr, "\x46\x66\x69"},
    {0xFB04, "\x46\x46\x4C", nullptr, "\x46\x66\x6C"},
    {0xFB05, "\x53\x54", nullptr, "\x53\x74"},
    {0xFB06, "\x53\x54", nullptr, "\x53\x74"},
    {0xFB13, "\xD5\x84\xD5\x86", nullptr, "\xD5\x84\xD5\xB6"},
    {0xFB14, "\xD5\x84\xD4\xB5", nullptr, "\xD5\x84\xD5\xA5"},
    {0xFB15, "\xD5\x84\xD4\xBB", nullptr, "\xD5\x84\xD5\xAB"},
    {0xFB16, "\xD5\x8E\xD5\x86", nullptr, "\xD5\x8E\xD5\xB6"},
    {0xFB17, "\xD5\x84\xD4\xBD", nullptr, "\xD5\x84\xD5\xAD"},
};

// Letters outside Ll and Lu that Unicode still counts as lowercase or uppercase (Other_Lowercase,
// Other_Uppercase: ª, ᵃ, U+0345, Ⓐ, ...), which Python's islower/isupper and title() honour.
struct Range {
    char32_t first, last;
};
constexpr Range kOtherLower[] = {
    {0x00AA, 0x00AA}, {0x00BA, 0x00BA}, {0x02B0, 0x02B8},   {0x02C0, 0x02C1},   {0x02E0, 0x02E4},   {0x0345, 0x0345},
    {0x037A, 0x037A}, {0x1D2C, 0x1D6A}, {0x1D78, 0x1D78},   {0x1D9B, 0x1DBF},   {0x2071, 0x2071},   {0x207F, 0x207F},
    {0x2090, 0x209C}, {0x2170, 0x217F}, {0x24D0, 0x24E9},   {0x2C7C, 0x2C7D},   {0xA69C, 0xA69D},   {0xA770, 0xA770},
    {0xA7F8, 0xA7F9}, {0xAB5C, 0xAB5F}, {0x10780, 0x10780}, {0x10783, 0x10785}, {0x10787, 0x107B0}, {0x107B2, 0x107BA},
};
constexpr Range kOtherUpper[] = {
    {0x2160, 0x216F}, {0x24B6, 0x24CF}, {0x1F130, 0x1F149}, {0x1F150, 0x1F169}, {0x1F170, 0x1F189},
};

template <size_t N>
bool in_ranges(const Range (&ranges)[N], char32_t cp) {
    const auto* it = std::lower_bound(std::begin(ranges), std::end(ranges), cp,
                                      [](const Range& r, char32_t v) { return r.last < v; });
    return it != std::end(ranges) && it->first <= cp;
}

enum class Case { Upper, Lower, Title };

utf8proc_category_t category(char32_t cp) {
    return utf8proc_category(static_cast<utf8proc_int32_t>(cp));
}

// Unicode's Case_Ignorable, near enough: marks, format characters, modifiers, and the
// apostrophes and dots that may sit inside a word.
bool is_case_ignorable(char32_t cp) {
    switch (category(cp)) {
        case UTF8PROC_CATEGORY_MN:
        case UTF8PROC_CATEGORY_ME:
        case UTF8PROC_CATEGORY_CF:
        case UTF8PROC_CATEGORY_LM:
        case UTF8PROC_CATEGORY_SK: return true;
        default:
            return cp == 0x27 || cp == 0x2E || cp == 0x3A || cp == 0xB7 || cp == 0x2018 || cp == 0x2019 ||
                   cp == 0x2024 || cp == 0xFE52 || cp == 0xFF07 || cp == 0xFF0E;
    }
}

void append_case(std::string& out, char32_t cp, Case c) {
    if (cp >= 0xDF) {
        const auto* it = std::lower_bound(std::begin(kSpecial), std::end(kSpecial), cp,
                                          [](const SpecialCase& s, char32_t v) { return s.cp < v; });
        if (it != std::end(kSpecial) && it->cp == cp) {
            const char* m = c == Case::Upper ? it->upper : c == Case::Lower ? it->lower : it->title;
            if (m != nullptr) {
                out += m;
                return;
            }
        }
    }
    const auto v = static_cast<utf8proc_int32_t>(cp);
    const auto mapped = c == Case::Upper   ? utf8proc_toupper(v)
                        : c == Case::Lower ? utf8proc_tolower(v)
                                           : utf8proc_totitle(v);
    encode(out, static_cast<char32_t>(mapped));
}

// Python's Final_Sigma rule: a capital sigma after a cased letter and not before one (case-
// ignorable characters between do not count) lowers to the final form.
bool final_sigma(const std::vector<char32_t>& cps, size_t i) {
    size_t j = i;
    while (j > 0 && is_case_ignorable(cps[j - 1])) --j;
    if (j == 0 || !is_cased(cps[j - 1])) return false;
    size_t k = i + 1;
    while (k < cps.size() && is_case_ignorable(cps[k])) ++k;
    return k == cps.size() || !is_cased(cps[k]);
}

void append_lower(std::string& out, const std::vector<char32_t>& cps, size_t i) {
    if (cps[i] == 0x3A3 && final_sigma(cps, i)) {
        encode(out, 0x3C2);
    } else {
        append_case(out, cps[i], Case::Lower);
    }
}

}  // namespace

bool is_lowercase(char32_t cp) {
    return category(cp) == UTF8PROC_CATEGORY_LL || in_ranges(kOtherLower, cp);
}
bool is_uppercase(char32_t cp) {
    return category(cp) == UTF8PROC_CATEGORY_LU || in_ranges(kOtherUpper, cp);
}
bool is_cased(char32_t cp) {
    return is_lowercase(cp) || is_uppercase(cp) || category(cp) == UTF8PROC_CATEGORY_LT;
}

std::string upper(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    size_t pos = 0;
    while (pos < s.size()) append_case(out, decode(s, pos), Case::Upper);
    return out;
}

std::string lower(std::string_view s) {
    const std::vector<char32_t> cps = decode_all(s);
    std::string out;
    out.reserve(s.size());
    for (size_t i = 0; i < cps.size(); ++i) append_lower(out, cps, i);
    return out;
}

std::string title(std::string_view s) {
    const std::vector<char32_t> cps = decode_all(s);
    std::string out;
    bool prev_cased = false;
    for (size_t i = 0; i < cps.size(); ++i) {
        if (prev_cased) {
            append_lower(out, cps, i);
        } else {
            append_case(out, cps[i], Case::Title);
        }
        prev_cased = is_cased(cps[i]);
    }
    return out;
}

std::string capitalize(std::string_view s) {
    const std::vector<char32_t> cps = decode_all(s);
    std::string out;
    for (size_t i = 0; i < cps.size(); ++i) {
        if (i == 0) {
            append_case(out, cps[i], Case::Title);
        } else {
            append_lower(out, cps, i);
        }
    }
    return out;
}

std::string swapcase(std::string_view s) {
    const std::vector<char32_t> cps = decode_all(s);
    std::string out;
    for (size_t i = 0; i < cps.size(); ++i) {
        if (is_uppercase(cps[i])) {
            append_lower(out, cps, i);
        } else if (is_lowercase(cps[i])) {
            append_case(out, cps[i], Case::Upper);
        } else {
            encode(out, cps[i]);
        }
    }
    return out;
}

}  // namespace hymoe::jinja::pystr
