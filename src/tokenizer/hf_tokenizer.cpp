// Tokenizer::from_hf: tokenizer.json (+ tokenizer_config.json, generation_config.json) into an
// HfPipeline and the Tokenizer's tables; and the chat configuration of a model directory.
#include "tokenizer/hf_tokenizer.hpp"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <limits>
#include <sstream>
#include <unordered_set>
#include <utility>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "hymoe/error.hpp"
#include "tokenizer/hf_pipeline.hpp"
#include "tokenizer/pretokenize.hpp"
#include "tokenizer/tokenizer.hpp"
#include "tokenizer/vocab.hpp"

namespace hymoe {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// GPT-2's pre-tokenizer expression, which ByteLevel(use_regex) runs.
constexpr std::string_view kGpt2Regex =
    R"re('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)re";

// The Split expressions the families ship in tokenizer.json, to name the pre-tokenizer as the
// GGUF converter would (tokenizer.ggml.pre). The expression itself is always run as written.
constexpr std::string_view kQwen2Regex =
    R"re((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re";
constexpr std::string_view kLlama3Regex =
    R"re((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re";
constexpr std::string_view kO200kRegex =
    R"re([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|)re"
    R"re([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|)re"
    R"re(\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)re";
constexpr std::string_view kDeepseek3Regexes[] = {
    R"re(\p{N}{1,3})re",
    "[\u4e00-\u9fa5\u3040-\u309f\u30a0-\u30ff]+",
    R"re([!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+|)re"
    R"re( ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re",
};

std::string json_type(const json& v) {
    return v.type_name();
}

// One JSON file: parsing, and errors naming the file and the JSON path.
class JsonFile {
public:
    explicit JsonFile(fs::path path) : path_(std::move(path)) {
        std::ifstream in(path_, std::ios::binary);
        if (!in) throw Error(fmt::format("{}: cannot open", path_.string()));
        std::stringstream buf;
        buf << in.rdbuf();
        try {
            root_ = json::parse(buf.str());
        } catch (const json::parse_error& e) {
            throw Error(fmt::format("{}: malformed JSON at byte {}: {}", path_.string(), e.byte, e.what()));
        }
    }

    const json& root() const { return root_; }
    std::string name() const { return path_.string(); }

    [[noreturn]] void fail(const std::string& path, std::string_view what) const {
        throw Error(fmt::format("{}: {} {}", path_.string(), path.empty() ? std::string("the top level") : path, what));
    }

    // obj[key], or nullptr when absent or null. `obj` must be an object (checked by the caller).
    static const json* find(const json& obj, std::string_view key) {
        const auto it = obj.find(key);
        return it == obj.end() || it->is_null() ? nullptr : &*it;
    }
    const json& need(const json& obj, const std::string& path, std::string_view key) const {
        const json* v = find(obj, key);
        if (v == nullptr) fail(join(path, key), "is missing");
        return *v;
    }
    const json& object(const json& v, const std::string& path) const {
        if (!v.is_object()) fail(path, fmt::format("is not an object (got {})", json_type(v)));
        return v;
    }
    const json& array(const json& v, const std::string& path) const {
        if (!v.is_array()) fail(path, fmt::format("is not an array (got {})", json_type(v)));
        return v;
    }
    const std::string& string(const json& v, const std::string& path) const {
        if (!v.is_string()) fail(path, fmt::format("is not a string (got {})", json_type(v)));
        return v.get_ref<const std::string&>();
    }
    int64_t integer(const json& v, const std::string& path, int64_t lo, int64_t hi) const {
        if (!v.is_number_integer()) fail(path, fmt::format("is not an integer (got {})", json_type(v)));
        const bool too_big = v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(hi);
        if (too_big || v.get<int64_t>() < lo || v.get<int64_t>() > hi) {
            fail(path, fmt::format("{} is outside [{}, {}]", v.dump(), lo, hi));
        }
        return v.get<int64_t>();
    }
    // obj[key] as a bool; `fallback` when absent or null.
    bool flag(const json& obj, const std::string& path, std::string_view key, bool fallback) const {
        const json* v = find(obj, key);
        if (v == nullptr) return fallback;
        if (!v->is_boolean()) fail(join(path, key), fmt::format("is not a boolean (got {})", json_type(*v)));
        return v->get<bool>();
    }
    const std::string& type_of(const json& obj, const std::string& path) const {
        return string(need(object(obj, path), path, "type"), join(path, "type"));
    }
    [[noreturn]] void unsupported(const std::string& path, const std::string& type, std::string_view supported) const {
        fail(join(path, "type"), fmt::format("\"{}\" is not supported (hymoe supports {})", type, supported));
    }

    static std::string join(const std::string& path, std::string_view key) {
        return path.empty() ? std::string(key) : fmt::format("{}.{}", path, key);
    }
    static std::string index(const std::string& path, size_t i) { return fmt::format("{}[{}]", path, i); }

private:
    fs::path path_;
    json root_;
};

std::shared_ptr<const tok::Regex> compile(const JsonFile& f, const std::string& path, std::string_view pattern) {
    try {
        return std::make_shared<tok::Regex>(pattern, tok::Regex::Dialect::Oniguruma);
    } catch (const Error& e) {
        f.fail(path, e.what());
    }
}

// A literal as a pattern: ASCII punctuation escaped (tokenizers escapes String patterns).
std::string escape_literal(std::string_view text) {
    std::string out;
    for (const char c : text) {
        const auto u = static_cast<unsigned char>(c);
        if (u < 0x80 && !std::isalnum(u)) out += '\\';
        out += c;
    }
    return out;
}

// {"String": "..."} or {"Regex": "..."}; `literal` gets the text of a String pattern.
std::shared_ptr<const tok::Regex> pattern(const JsonFile& f, const json& obj, const std::string& path,
                                          std::optional<std::string>* literal = nullptr) {
    const std::string p = JsonFile::join(path, "pattern");
    const json& v = f.object(f.need(obj, path, "pattern"), p);
    if (const json* s = JsonFile::find(v, "String")) {
        const std::string& text = f.string(*s, p + ".String");
        if (literal != nullptr) *literal = text;
        return compile(f, p, escape_literal(text));
    }
    if (const json* r = JsonFile::find(v, "Regex")) return compile(f, p, f.string(*r, p + ".Regex"));
    f.fail(p, "has neither \"String\" nor \"Regex\"");
}

// ---- model ------------------------------------------------------------------------------------

void read_model(const JsonFile& f, tok::HfBpe& bpe) {
    const json& model = f.object(f.need(f.root(), "", "model"), "model");
    // Old files may leave the type out; tokenizers then reads a BPE.
    if (const json* type = JsonFile::find(model, "type")) {
        const std::string& t = f.string(*type, "model.type");
        if (t != "BPE") {
            f.fail("model.type", fmt::format("\"{}\" is not supported (hymoe reads BPE models; not WordPiece, "
                                             "Unigram or WordLevel)",
                                             t));
        }
    }
    for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
        const json* v = JsonFile::find(model, key);
        if (v != nullptr && !f.string(*v, std::string("model.") + key).empty()) {
            f.fail(std::string("model.") + key, fmt::format("{} is not supported", v->dump()));
        }
    }
    if (const json* d = JsonFile::find(model, "dropout"); d != nullptr && d->is_number() && d->get<double>() > 0.0) {
        spdlog::warn("{}: model.dropout {} is ignored (encoding is deterministic)", f.name(), d->dump());
    }
    const json& vocab = f.object(f.need(model, "model", "vocab"), "model.vocab");
    bpe.vocab.reserve(vocab.size());
    std::unordered_map<int32_t, const std::string*> texts;
    for (const auto& [text, id] : vocab.items()) {
        const std::string path = fmt::format("model.vocab[{}]", json(text).dump());
        const auto i = static_cast<int32_t>(f.integer(id, path, 0, std::numeric_limits<int32_t>::max() - 1));
        const auto it = bpe.vocab.emplace(text, i).first;
        if (!texts.emplace(i, &it->first).second) {
            f.fail("model.vocab",
                   fmt::format("gives id {} to both {} and {}", i, json(*texts[i]).dump(), json(text).dump()));
        }
    }
    const json& merges = f.array(f.need(model, "model", "merges"), "model.merges");
    bpe.merges.reserve(merges.size());
    int32_t rank = 0;
    for (size_t i = 0; i < merges.size(); ++i) {
        const std::string path = JsonFile::index("model.merges", i);
        std::string left;
        std::string right;
        if (merges[i].is_string()) {  // "left right", before tokenizers 0.20
            const std::string& m = merges[i].get_ref<const std::string&>();
            if (m.starts_with("#version")) continue;
            const size_t space = m.find(' ');
            if (space == std::string::npos || m.find(' ', space + 1) != std::string::npos) {
                f.fail(path, fmt::format("{} is not \"left right\"", json(m).dump()));
            }
            left = m.substr(0, space);
            right = m.substr(space + 1);
        } else if (merges[i].is_array() && merges[i].size() == 2 && merges[i][0].is_string() &&
                   merges[i][1].is_string()) {
            left = merges[i][0].get<std::string>();
            right = merges[i][1].get<std::string>();
        } else {
            f.fail(path, fmt::format("is not a \"left right\" string or a [left, right] pair (got {})",
                                     json_type(merges[i])));
        }
        const auto l = bpe.vocab.find(left);
        const auto r = bpe.vocab.find(right);
        const auto m = bpe.vocab.find(left + right);
        for (const auto& [it, text] : {std::pair{l, &left}, std::pair{r, &right}}) {
            if (it == bpe.vocab.end()) {
                f.fail(path, fmt::format("names {}, which is not in model.vocab", json(*text).dump()));
            }
        }
        if (m == bpe.vocab.end()) {
            f.fail(path, fmt::format("makes {}, which is not in model.vocab", json(left + right).dump()));
        }
        // A pair listed twice keeps the later rank, as in tokenizers.
        bpe.merges[tok::HfBpe::pair_key(l->second, r->second)] = {rank++, m->second};
    }
    bpe.fuse_unk = f.flag(model, "model", "fuse_unk", false);
    bpe.byte_fallback = f.flag(model, "model", "byte_fallback", false);
    bpe.ignore_merges = f.flag(model, "model", "ignore_merges", false);
    bpe.byte_ids.fill(-1);
    if (bpe.byte_fallback) {
        for (int b = 0; b < 256; ++b) {
            if (const auto it = bpe.vocab.find(fmt::format("<0x{:02X}>", b)); it != bpe.vocab.end()) {
                bpe.byte_ids[b] = it->second;
            }
        }
    }
    if (const json* unk = JsonFile::find(model, "unk_token")) {
        const std::string& text = f.string(*unk, "model.unk_token");
        if (const auto it = bpe.vocab.find(text); it != bpe.vocab.end()) {
            bpe.unk = it->second;
        } else {
            spdlog::warn("{}: model.unk_token {} is not in model.vocab; unknown characters are dropped", f.name(),
                         json(text).dump());
        }
    }
}

// Ids as tokenizers' AddedVocabulary gives them: a token in the model's vocabulary keeps that id;
// any other the next one after the vocabulary and the added tokens so far.
std::vector<tok::HfAddedToken> read_added_tokens(const JsonFile& f, const tok::HfBpe& bpe) {
    std::vector<tok::HfAddedToken> out;
    const json* list = JsonFile::find(f.root(), "added_tokens");
    if (list == nullptr) return out;
    f.array(*list, "added_tokens");
    std::unordered_set<std::string> seen;
    int32_t max_added = -1;
    for (size_t i = 0; i < list->size(); ++i) {
        const std::string path = JsonFile::index("added_tokens", i);
        const json& a = f.object((*list)[i], path);
        tok::HfAddedToken t;
        t.content = f.string(f.need(a, path, "content"), path + ".content");
        t.special = f.flag(a, path, "special", false);
        t.normalized = f.flag(a, path, "normalized", !t.special);
        t.lstrip = f.flag(a, path, "lstrip", false);
        t.rstrip = f.flag(a, path, "rstrip", false);
        t.single_word = f.flag(a, path, "single_word", false);
        const json* id_json = JsonFile::find(a, "id");
        const int64_t file_id =
            id_json ? f.integer(*id_json, path + ".id", 0, std::numeric_limits<int32_t>::max() - 1) : -1;
        if (t.content.empty()) f.fail(path + ".content", "is empty");
        if (!seen.insert(t.content).second) {
            spdlog::warn("{}: {} repeats {}; ignored", f.name(), path, json(t.content).dump());
            continue;
        }
        if (const auto it = bpe.vocab.find(t.content); it != bpe.vocab.end()) {
            t.id = it->second;
        } else {
            const auto vocab_size = static_cast<int32_t>(bpe.vocab.size());
            t.id = max_added >= vocab_size || vocab_size == 0 ? max_added + 1 : vocab_size;
            max_added = std::max(max_added, t.id);
        }
        if (t.id != file_id && file_id >= 0) {
            spdlog::warn("{}: {}.id is {} but tokenizers gives {} id {}; using {}", f.name(), path, file_id,
                         json(t.content).dump(), t.id, t.id);
        }
        out.push_back(std::move(t));
    }
    return out;
}

// ---- normalizer, pre-tokenizer, decoder ------------------------------------------------------------

void read_normalizer(const JsonFile& f, const json& n, const std::string& path,
                     std::vector<tok::HfNormalizerStep>& steps) {
    using Kind = tok::HfNormalizerStep::Kind;
    const std::string& type = f.type_of(n, path);
    if (type == "Sequence") {
        const std::string list_path = JsonFile::join(path, "normalizers");
        const json& list = f.array(f.need(n, path, "normalizers"), list_path);
        for (size_t i = 0; i < list.size(); ++i) read_normalizer(f, list[i], JsonFile::index(list_path, i), steps);
        return;
    }
    tok::HfNormalizerStep step;
    if (type == "NFC") {
        step.kind = Kind::Nfc;
    } else if (type == "NFD") {
        step.kind = Kind::Nfd;
    } else if (type == "NFKC") {
        step.kind = Kind::Nfkc;
    } else if (type == "NFKD") {
        step.kind = Kind::Nfkd;
    } else if (type == "Prepend") {
        step.kind = Kind::Prepend;
        step.text = f.string(f.need(n, path, "prepend"), JsonFile::join(path, "prepend"));
    } else if (type == "Replace") {
        step.kind = Kind::Replace;
        step.regex = pattern(f, n, path, &step.literal);
        step.text = f.string(f.need(n, path, "content"), JsonFile::join(path, "content"));
    } else {
        f.unsupported(path, type, "Sequence, NFC, NFD, NFKC, NFKD, Prepend, Replace");
    }
    steps.push_back(std::move(step));
}

tok::SplitBehavior split_behavior(const JsonFile& f, const json& v, const std::string& path) {
    static constexpr std::pair<std::string_view, tok::SplitBehavior> kNames[] = {
        {"Removed", tok::SplitBehavior::Removed},
        {"Isolated", tok::SplitBehavior::Isolated},
        {"MergedWithPrevious", tok::SplitBehavior::MergedWithPrevious},
        {"MergedWithNext", tok::SplitBehavior::MergedWithNext},
        {"Contiguous", tok::SplitBehavior::Contiguous},
    };
    const std::string& name = f.string(v, path);
    for (const auto& [n, b] : kNames) {
        if (n == name) return b;
    }
    f.fail(path,
           fmt::format("\"{}\" is not Removed, Isolated, MergedWithPrevious, MergedWithNext or Contiguous", name));
}

// Metaspace's prepend_scheme, or its older add_prefix_space.
bool metaspace_prepend(const JsonFile& f, const json& n, const std::string& path,
                       tok::HfPreTokenizerStep::Prepend& prepend) {
    using Prepend = tok::HfPreTokenizerStep::Prepend;
    prepend = Prepend::Always;
    if (const json* s = JsonFile::find(n, "prepend_scheme")) {
        const std::string p = JsonFile::join(path, "prepend_scheme");
        const std::string& scheme = f.string(*s, p);
        if (scheme == "always") {
            prepend = Prepend::Always;
        } else if (scheme == "first") {
            prepend = Prepend::First;
        } else if (scheme == "never") {
            prepend = Prepend::Never;
        } else {
            f.fail(p, fmt::format("\"{}\" is not always, first or never", scheme));
        }
    } else if (!f.flag(n, path, "add_prefix_space", true)) {
        prepend = Prepend::Never;
    }
    return prepend != Prepend::Never;
}

std::string metaspace_replacement(const JsonFile& f, const json& n, const std::string& path) {
    const std::string p = JsonFile::join(path, "replacement");
    const std::string& r = f.string(f.need(n, path, "replacement"), p);
    if (r.empty() || tok::utf8_len(r[0]) != r.size()) f.fail(p, fmt::format("{} is not one character", json(r).dump()));
    return r;
}

// What the pre-tokenizer looks like, to name its family (tokenizer.ggml.pre).
struct PreShape {
    std::vector<std::string> splits;  // Split patterns (Regex), in order
    std::vector<std::string> steps;   // "Split", "ByteLevel", "ByteLevel+regex", "Digits", "Digits1", "Metaspace"
};

void read_pre_tokenizer(const JsonFile& f, const json& n, const std::string& path,
                        std::vector<tok::HfPreTokenizerStep>& steps, PreShape& shape) {
    using Kind = tok::HfPreTokenizerStep::Kind;
    const std::string& type = f.type_of(n, path);
    if (type == "Sequence") {
        const std::string list_path = JsonFile::join(path, "pretokenizers");
        const json& list = f.array(f.need(n, path, "pretokenizers"), list_path);
        for (size_t i = 0; i < list.size(); ++i) {
            read_pre_tokenizer(f, list[i], JsonFile::index(list_path, i), steps, shape);
        }
        return;
    }
    tok::HfPreTokenizerStep step;
    if (type == "Split") {
        step.kind = Kind::Split;
        step.regex = pattern(f, n, path);
        step.behavior = split_behavior(f, f.need(n, path, "behavior"), JsonFile::join(path, "behavior"));
        step.invert = f.flag(n, path, "invert", false);
        const json& p = n["pattern"];
        shape.splits.push_back(p.contains("Regex") && p["Regex"].is_string() ? p["Regex"].get<std::string>() : "");
        shape.steps.emplace_back("Split");
    } else if (type == "ByteLevel") {
        step.kind = Kind::ByteLevel;
        step.add_prefix_space = f.flag(n, path, "add_prefix_space", true);
        if (f.flag(n, path, "use_regex", true)) step.regex = compile(f, path, kGpt2Regex);
        shape.steps.emplace_back(step.regex ? "ByteLevel+regex" : "ByteLevel");
    } else if (type == "Digits") {
        // tokenizers splits on char::is_numeric, the same set as \p{N}.
        step.kind = Kind::Split;
        const bool individual = f.flag(n, path, "individual_digits", false);
        step.regex = compile(f, path, R"re(\p{N})re");
        step.behavior = individual ? tok::SplitBehavior::Isolated : tok::SplitBehavior::Contiguous;
        shape.steps.emplace_back(individual ? "Digits1" : "Digits");
    } else if (type == "Metaspace") {
        step.kind = Kind::Metaspace;
        step.replacement = metaspace_replacement(f, n, path);
        metaspace_prepend(f, n, path, step.prepend);
        step.split = f.flag(n, path, "split", true);
        step.regex = compile(f, path, escape_literal(step.replacement));
        shape.steps.emplace_back("Metaspace");
    } else {
        f.unsupported(path, type, "Sequence, Split, ByteLevel, Digits, Metaspace");
    }
    steps.push_back(std::move(step));
}

void read_decoder(const JsonFile& f, const json& n, const std::string& path, std::vector<tok::HfDecoderStep>& steps) {
    using Kind = tok::HfDecoderStep::Kind;
    const std::string& type = f.type_of(n, path);
    if (type == "Sequence") {
        const std::string list_path = JsonFile::join(path, "decoders");
        const json& list = f.array(f.need(n, path, "decoders"), list_path);
        for (size_t i = 0; i < list.size(); ++i) read_decoder(f, list[i], JsonFile::index(list_path, i), steps);
        return;
    }
    tok::HfDecoderStep step;
    if (type == "ByteLevel") {
        step.kind = Kind::ByteLevel;
    } else if (type == "Replace") {
        step.kind = Kind::Replace;
        step.regex = pattern(f, n, path, &step.literal);
        step.content = f.string(f.need(n, path, "content"), JsonFile::join(path, "content"));
    } else if (type == "ByteFallback") {
        step.kind = Kind::ByteFallback;
    } else if (type == "Fuse") {
        step.kind = Kind::Fuse;
    } else if (type == "Strip") {
        step.kind = Kind::Strip;
        const std::string cp = JsonFile::join(path, "content");
        step.content = f.string(f.need(n, path, "content"), cp);
        if (step.content.empty() || tok::utf8_len(step.content[0]) != step.content.size()) {
            f.fail(cp, fmt::format("{} is not one character", json(step.content).dump()));
        }
        constexpr int64_t kMax = 1 << 20;
        step.start = static_cast<size_t>(f.integer(f.need(n, path, "start"), JsonFile::join(path, "start"), 0, kMax));
        step.stop = static_cast<size_t>(f.integer(f.need(n, path, "stop"), JsonFile::join(path, "stop"), 0, kMax));
    } else if (type == "Metaspace") {
        step.kind = Kind::Metaspace;
        step.content = metaspace_replacement(f, n, path);
        tok::HfPreTokenizerStep::Prepend prepend{};
        step.prepend = metaspace_prepend(f, n, path, prepend);
    } else {
        f.unsupported(path, type, "Sequence, ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace");
    }
    steps.push_back(std::move(step));
}

// ---- post-processor ---------------------------------------------------------------------------

// The ids the post-processor puts before and after a single sequence.
void read_post_processor(const JsonFile& f, const json& n, const std::string& path, std::vector<int32_t>& prefix,
                         std::vector<int32_t>& suffix) {
    const std::string& type = f.type_of(n, path);
    constexpr int64_t kMaxId = std::numeric_limits<int32_t>::max() - 1;
    if (type == "Sequence") {
        const std::string list_path = JsonFile::join(path, "processors");
        const json& list = f.array(f.need(n, path, "processors"), list_path);
        for (size_t i = 0; i < list.size(); ++i) {
            // Each processor wraps what the ones before it produced.
            std::vector<int32_t> pre;
            std::vector<int32_t> post;
            read_post_processor(f, list[i], JsonFile::index(list_path, i), pre, post);
            prefix.insert(prefix.begin(), pre.begin(), pre.end());
            suffix.insert(suffix.end(), post.begin(), post.end());
        }
    } else if (type == "ByteLevel") {
        // Offsets only.
    } else if (type == "TemplateProcessing") {
        const std::string single_path = JsonFile::join(path, "single");
        const json& single = f.array(f.need(n, path, "single"), single_path);
        const std::string specials_path = JsonFile::join(path, "special_tokens");
        const json* specials = JsonFile::find(n, "special_tokens");
        if (specials != nullptr) f.object(*specials, specials_path);
        bool seen_a = false;
        for (size_t i = 0; i < single.size(); ++i) {
            const std::string item_path = JsonFile::index(single_path, i);
            const json& item = f.object(single[i], item_path);
            if (const json* seq = JsonFile::find(item, "Sequence")) {
                const std::string id =
                    f.string(f.need(f.object(*seq, item_path + ".Sequence"), item_path + ".Sequence", "id"),
                             item_path + ".Sequence.id");
                if (id != "A" || seen_a) f.fail(item_path, fmt::format("Sequence {} in a single template", id));
                seen_a = true;
            } else if (const json* st = JsonFile::find(item, "SpecialToken")) {
                const std::string sp = item_path + ".SpecialToken";
                const std::string& name = f.string(f.need(f.object(*st, sp), sp, "id"), sp + ".id");
                const json* entry = specials ? JsonFile::find(*specials, name) : nullptr;
                if (entry == nullptr) f.fail(sp + ".id", fmt::format("\"{}\" is not in {}", name, specials_path));
                const std::string entry_path = fmt::format("{}[{}]", specials_path, json(name).dump());
                const json& ids = f.array(f.need(f.object(*entry, entry_path), entry_path, "ids"), entry_path + ".ids");
                for (size_t k = 0; k < ids.size(); ++k) {
                    const auto id =
                        static_cast<int32_t>(f.integer(ids[k], JsonFile::index(entry_path + ".ids", k), 0, kMaxId));
                    (seen_a ? suffix : prefix).push_back(id);
                }
            } else {
                f.fail(item_path, "is neither a Sequence nor a SpecialToken");
            }
        }
        if (!seen_a) f.fail(single_path, "has no Sequence A");
    } else if (type == "RobertaProcessing" || type == "BertProcessing") {
        for (const char* key : {"cls", "sep"}) {
            const std::string p = JsonFile::join(path, key);
            const json& v = f.array(f.need(n, path, key), p);
            if (v.size() != 2) f.fail(p, "is not a [text, id] pair");
            const auto id = static_cast<int32_t>(f.integer(v[1], p + "[1]", 0, kMaxId));
            (std::string_view(key) == "cls" ? prefix : suffix).push_back(id);
        }
    } else {
        f.unsupported(path, type, "TemplateProcessing, ByteLevel, RobertaProcessing, BertProcessing, Sequence");
    }
}

tok::PreType family(const PreShape& shape, bool& known) {
    known = true;
    const auto& st = shape.steps;
    const auto& sp = shape.splits;
    using V = std::vector<std::string>;
    if (st == V{"ByteLevel+regex"}) return tok::PreType::Gpt2;
    if (st == V{"Split", "ByteLevel"} && sp[0] == kQwen2Regex) return tok::PreType::Qwen2;
    if (st == V{"Split", "ByteLevel"} && sp[0] == kLlama3Regex) return tok::PreType::Llama3;
    if (st == V{"Split", "ByteLevel"} && sp[0] == kO200kRegex) return tok::PreType::Gpt4o;
    if (st == V{"Split", "Split", "Split", "ByteLevel"} &&
        std::equal(sp.begin(), sp.end(), std::begin(kDeepseek3Regexes))) {
        return tok::PreType::Deepseek3;
    }
    if (st == V{"Split", "Split", "Split", "Split", "Split", "Digits1", "ByteLevel"} && sp[0] == "[\r\n]" &&
        sp[3] == R"re(\s+$)re") {
        return tok::PreType::DeepseekLlm;
    }
    known = false;
    return tok::PreType::Default;
}

// tokenizer_config.json's "text" or {"content": "text", ...}; nullopt when absent or null.
std::optional<std::string> token_text(const JsonFile& f, std::string_view key) {
    const json* v = JsonFile::find(f.root(), key);
    if (v == nullptr) return std::nullopt;
    if (v->is_string()) return v->get<std::string>();
    if (v->is_object()) return f.string(f.need(*v, std::string(key), "content"), fmt::format("{}.content", key));
    f.fail(std::string(key), fmt::format("is not a string or {{\"content\": ...}} (got {})", json_type(*v)));
}

std::optional<bool> optional_flag(const JsonFile& f, std::string_view key) {
    const json* v = JsonFile::find(f.root(), key);
    if (v == nullptr) return std::nullopt;
    if (!v->is_boolean()) f.fail(std::string(key), fmt::format("is not a boolean (got {})", json_type(*v)));
    return v->get<bool>();
}

std::optional<JsonFile> open_if_present(const fs::path& path) {
    std::error_code ec;
    if (!fs::is_regular_file(path, ec)) return std::nullopt;
    std::optional<JsonFile> f;
    f.emplace(path);
    if (!f->root().is_object()) f->fail("", fmt::format("is not an object (got {})", json_type(f->root())));
    return f;
}

fs::path model_dir(const fs::path& dir_or_file) {
    std::error_code ec;
    return fs::is_directory(dir_or_file, ec) ? dir_or_file : dir_or_file.parent_path();
}

}  // namespace

Tokenizer Tokenizer::from_hf(const fs::path& dir_or_file) {
    std::error_code ec;
    const bool is_dir = fs::is_directory(dir_or_file, ec);
    const fs::path dir = model_dir(dir_or_file);
    const fs::path tok_path = is_dir ? dir / "tokenizer.json" : dir_or_file;
    if (!fs::is_regular_file(tok_path, ec)) {
        throw Error(
            fmt::format("{}: not found{}", tok_path.string(),
                        is_dir && fs::exists(dir / "tokenizer.model", ec)
                            ? " (only tokenizer.model, SentencePiece's file, is there: hymoe reads tokenizer.json)"
                            : ""));
    }
    const JsonFile file(tok_path);
    try {
        if (!file.root().is_object()) file.fail("", fmt::format("is not an object (got {})", json_type(file.root())));
        auto hf = std::make_shared<tok::HfPipeline>();
        read_model(file, hf->model);
        hf->added = read_added_tokens(file, hf->model);
        PreShape shape;
        if (const json* n = JsonFile::find(file.root(), "normalizer")) {
            read_normalizer(file, *n, "normalizer", hf->normalizer);
        }
        if (const json* p = JsonFile::find(file.root(), "pre_tokenizer")) {
            read_pre_tokenizer(file, *p, "pre_tokenizer", hf->pre_tokenizer, shape);
        }
        if (const json* d = JsonFile::find(file.root(), "decoder")) {
            hf->decoder.emplace();
            read_decoder(file, *d, "decoder", *hf->decoder);
        }
        if (const json* p = JsonFile::find(file.root(), "post_processor")) {
            read_post_processor(file, *p, "post_processor", hf->prefix, hf->suffix);
        }
        hf->index_added_tokens();

        // The vocabulary: the model's tokens, then the added ones (which may share ids with them).
        Tokenizer t;
        auto vocab = std::make_shared<tok::Vocab>();
        int64_t n = 0;
        for (const auto& [text, id] : hf->model.vocab) n = std::max<int64_t>(n, id + 1);
        for (const tok::HfAddedToken& a : hf->added) n = std::max<int64_t>(n, a.id + 1);
        if (n == 0) file.fail("model.vocab", "is empty");
        vocab->tokens.resize(static_cast<size_t>(n), tok::TokenData{"", 0.0f, tok::kAttrUnused});
        for (const auto& [text, id] : hf->model.vocab) {
            tok::TokenData& td = vocab->tokens[static_cast<size_t>(id)];
            td.text = text;
            td.attr = hf->model.byte_fallback && tok::spm_token_byte(text) >= 0 ? tok::kAttrByte : tok::kAttrNormal;
            vocab->token_to_id.emplace(text, id);
        }
        for (const tok::HfAddedToken& a : hf->added) {
            tok::TokenData& td = vocab->tokens[static_cast<size_t>(a.id)];
            td.text = a.content;
            td.attr = a.special ? tok::kAttrControl : tok::kAttrUserDefined;
            vocab->token_to_id[a.content] = a.id;
        }
        for (const auto& ids : {hf->prefix, hf->suffix}) {
            for (const int32_t id : ids) {
                if (id >= n) {
                    file.fail("post_processor", fmt::format("adds id {}, outside the vocabulary of {}", id, n));
                }
            }
        }

        bool byte_level = false;
        for (const auto& s : hf->pre_tokenizer) byte_level |= s.kind == tok::HfPreTokenizerStep::Kind::ByteLevel;
        if (hf->decoder) {
            for (const auto& s : *hf->decoder) byte_level |= s.kind == tok::HfDecoderStep::Kind::ByteLevel;
        }
        t.kind_ = byte_level ? Kind::Bpe : Kind::Spm;
        bool known = false;
        const tok::PreType pre = family(shape, known);
        t.pre_ = known ? std::string(tok::pre_type_name(pre)) : byte_level ? "custom" : "";
        t.ignore_merges_ = hf->model.ignore_merges;

        // tokenizer_config.json: the special tokens' texts, and whether BOS/EOS are added.
        const auto id_of = [&](const JsonFile& f, std::string_view key, const std::string& text) {
            const auto it = vocab->token_to_id.find(text);
            if (it == vocab->token_to_id.end()) {
                spdlog::warn("{}: {} {} is not a token", f.name(), key, json(text).dump());
                return -1;
            }
            return it->second;
        };
        if (const auto cfg = open_if_present(dir / "tokenizer_config.json")) {
            if (const auto text = token_text(*cfg, "bos_token")) t.bos_ = id_of(*cfg, "bos_token", *text);
            if (const auto text = token_text(*cfg, "eos_token")) t.eos_ = id_of(*cfg, "eos_token", *text);
            // As llama.cpp's converter: a boolean overrides what the post-processor says.
            if (const auto add = optional_flag(*cfg, "add_bos_token")) {
                if (!*add) hf->prefix.clear();
                if (*add && hf->prefix.empty() && t.bos_ >= 0) hf->prefix.push_back(t.bos_);
            }
            if (const auto add = optional_flag(*cfg, "add_eos_token")) {
                if (!*add) hf->suffix.clear();
                if (*add && hf->suffix.empty() && t.eos_ >= 0) hf->suffix.push_back(t.eos_);
            }
        }
        if (t.bos_ < 0 && !hf->prefix.empty()) t.bos_ = hf->prefix.front();
        if (t.eos_ < 0 && !hf->suffix.empty()) t.eos_ = hf->suffix.back();
        t.add_bos_ = !hf->prefix.empty();
        t.add_eos_ = !hf->suffix.empty();

        // generation_config.json's eos_token_id (one id or a list) ends generation too.
        std::vector<int32_t> extra_eog;
        if (const auto gen = open_if_present(dir / "generation_config.json")) {
            if (const json* e = JsonFile::find(gen->root(), "eos_token_id")) {
                const auto add = [&](const json& v, const std::string& path) {
                    const int64_t id = gen->integer(v, path, 0, std::numeric_limits<int32_t>::max() - 1);
                    if (id < n) extra_eog.push_back(static_cast<int32_t>(id));
                };
                if (e->is_array()) {
                    for (size_t i = 0; i < e->size(); ++i) add((*e)[i], JsonFile::index("eos_token_id", i));
                } else {
                    add(*e, "eos_token_id");
                }
            }
        }
        t.find_end_of_generation(*vocab, false, extra_eog);
        t.vocab_ = std::move(vocab);
        t.hf_ = std::move(hf);
        return t;
    } catch (const json::exception& e) {
        // The checks above come first; this only keeps a type surprise from escaping unnamed.
        throw Error(fmt::format("{}: {}", file.name(), e.what()));
    }
}

namespace tok {

HfChatConfig read_hf_chat_config(const fs::path& dir_or_file) {
    const fs::path dir = model_dir(dir_or_file);
    HfChatConfig out;
    std::error_code ec;
    try {
        if (const auto cfg = open_if_present(dir / "tokenizer_config.json")) {
            out.bos_token = token_text(*cfg, "bos_token");
            out.eos_token = token_text(*cfg, "eos_token");
            if (const json* t = JsonFile::find(cfg->root(), "chat_template")) {
                if (t->is_string()) {
                    out.chat_template = t->get<std::string>();
                } else if (t->is_array()) {  // [{"name": ..., "template": ...}, ...]
                    for (size_t i = 0; i < t->size(); ++i) {
                        const std::string path = JsonFile::index("chat_template", i);
                        const json& entry = cfg->object((*t)[i], path);
                        const std::string& name = cfg->string(cfg->need(entry, path, "name"), path + ".name");
                        const std::string& text = cfg->string(cfg->need(entry, path, "template"), path + ".template");
                        if (name == "default") out.chat_template = text;
                    }
                    if (!out.chat_template) {
                        spdlog::warn("{}: chat_template has no entry named \"default\"; no template is used",
                                     cfg->name());
                    }
                } else {
                    cfg->fail("chat_template",
                              fmt::format("is not a string or a list of {{name, template}} (got {})", json_type(*t)));
                }
            }
        }
    } catch (const json::exception& e) {
        throw Error(fmt::format("{}: {}", (dir / "tokenizer_config.json").string(), e.what()));
    }
    if (const fs::path jinja = dir / "chat_template.jinja"; fs::is_regular_file(jinja, ec)) {
        std::ifstream in(jinja, std::ios::binary);
        if (!in) throw Error(fmt::format("{}: cannot open", jinja.string()));
        std::stringstream buf;
        buf << in.rdbuf();
        out.chat_template = buf.str();
    }
    return out;
}

std::optional<std::string> hf_chat_template(const fs::path& dir_or_file) {
    return read_hf_chat_config(dir_or_file).chat_template;
}

}  // namespace tok

}  // namespace hymoe
