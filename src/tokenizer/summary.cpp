#include "tokenizer/summary.hpp"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <unordered_map>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "hymoe/error.hpp"

namespace hymoe {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// GGUF keys of the special-token ids (llama.cpp's spelling, "seperator" included).
constexpr std::pair<std::string_view, std::string_view> kGgufSpecialKeys[] = {
    {"bos", "tokenizer.ggml.bos_token_id"},         {"eos", "tokenizer.ggml.eos_token_id"},
    {"eot", "tokenizer.ggml.eot_token_id"},         {"eom", "tokenizer.ggml.eom_token_id"},
    {"unk", "tokenizer.ggml.unknown_token_id"},     {"sep", "tokenizer.ggml.seperator_token_id"},
    {"pad", "tokenizer.ggml.padding_token_id"},     {"mask", "tokenizer.ggml.mask_token_id"},
    {"fim_pre", "tokenizer.ggml.fim_pre_token_id"}, {"fim_suf", "tokenizer.ggml.fim_suf_token_id"},
    {"fim_mid", "tokenizer.ggml.fim_mid_token_id"},
};

TokenizerSummary from_gguf(const Metadata& meta) {
    TokenizerSummary s;
    const MetaArray* tokens = meta.get_array("tokenizer.ggml.tokens");
    const auto model = meta.get_string("tokenizer.ggml.model");
    if (tokens == nullptr && !model) return s;
    s.present = true;
    s.source = "gguf metadata";
    s.model = model ? std::string(*model) : "";
    s.pre = std::string(meta.get_string("tokenizer.ggml.pre").value_or(""));
    s.vocab_size = tokens ? tokens->items.size() : 0;
    if (const MetaArray* merges = meta.get_array("tokenizer.ggml.merges")) s.n_merges = merges->items.size();
    for (const auto& [role, key] : kGgufSpecialKeys) {
        const auto id = meta.get_i64(key);
        if (!id) continue;
        SpecialToken st{std::string(role), *id, ""};
        if (tokens && *id >= 0 && static_cast<uint64_t>(*id) < tokens->items.size()) {
            if (const std::string* text = tokens->items[static_cast<size_t>(*id)].as_string()) st.text = *text;
        }
        s.special.push_back(std::move(st));
    }
    s.add_bos = meta.get_bool("tokenizer.ggml.add_bos_token").value_or(false);
    s.add_eos = meta.get_bool("tokenizer.ggml.add_eos_token").value_or(false);
    if (const auto tmpl = meta.get_string("tokenizer.chat_template")) {
        s.has_chat_template = true;
        s.chat_template_chars = tmpl->size();
    }
    return s;
}

std::optional<json> read_json_file(const fs::path& path) {
    std::error_code ec;
    if (!fs::is_regular_file(path, ec)) return std::nullopt;
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error(fmt::format("{}: cannot open", path.string()));
    std::stringstream buf;
    buf << in.rdbuf();
    try {
        return json::parse(buf.str());
    } catch (const json::parse_error& e) {
        throw Error(fmt::format("{}: malformed JSON at byte {}: {}", path.string(), e.byte, e.what()));
    }
}

// tokenizer_config.json writes special tokens as "text" or {"content": "text", ...}.
std::optional<std::string> token_text(const json& v) {
    if (v.is_string()) return v.get<std::string>();
    if (v.is_object() && v.contains("content") && v["content"].is_string()) return v["content"].get<std::string>();
    return std::nullopt;
}

TokenizerSummary from_hf(const fs::path& dir) {
    TokenizerSummary s;
    const auto tok = read_json_file(dir / "tokenizer.json");
    const auto cfg = read_json_file(dir / "tokenizer_config.json");
    if (!tok && !cfg) return s;
    s.present = true;
    s.source = tok ? "tokenizer.json" : "tokenizer_config.json";

    std::unordered_map<std::string, int64_t> ids;  // token text -> id, for the special tokens
    int64_t max_id = -1;
    if (tok && tok->is_object()) {
        const json& model = tok->value("model", json::object());
        s.model = model.value("type", "");
        if (const auto pre = tok->find("pre_tokenizer"); pre != tok->end() && pre->is_object()) {
            s.pre = pre->value("type", "");
        }
        if (const auto vocab = model.find("vocab"); vocab != model.end()) {
            if (vocab->is_object()) {  // BPE, WordPiece: {"text": id}
                for (const auto& [text, id] : vocab->items()) {
                    if (!id.is_number_integer()) continue;
                    ids[text] = id.get<int64_t>();
                    max_id = std::max(max_id, id.get<int64_t>());
                }
            } else if (vocab->is_array()) {  // Unigram: [["text", score], ...], id = position
                int64_t i = 0;
                for (const auto& entry : *vocab) {
                    if (entry.is_array() && !entry.empty() && entry[0].is_string())
                        ids[entry[0].get<std::string>()] = i;
                    ++i;
                }
                max_id = std::max(max_id, i - 1);
            }
        }
        if (const auto merges = model.find("merges"); merges != model.end() && merges->is_array()) {
            s.n_merges = merges->size();
        }
        if (const auto added = tok->find("added_tokens"); added != tok->end() && added->is_array()) {
            for (const auto& a : *added) {
                if (!a.is_object() || !a.contains("id") || !a["id"].is_number_integer()) continue;
                const auto id = a["id"].get<int64_t>();
                max_id = std::max(max_id, id);
                if (a.contains("content") && a["content"].is_string()) ids[a["content"].get<std::string>()] = id;
            }
        }
        s.vocab_size = static_cast<uint64_t>(max_id + 1);
    }
    if (cfg && cfg->is_object()) {
        for (std::string_view role : {"bos", "eos", "unk", "pad"}) {
            const auto it = cfg->find(fmt::format("{}_token", role));
            if (it == cfg->end()) continue;
            const auto text = token_text(*it);
            if (!text) continue;
            const auto id = ids.find(*text);
            s.special.push_back({std::string(role), id == ids.end() ? -1 : id->second, *text});
        }
        s.add_bos = cfg->value("add_bos_token", false);
        s.add_eos = cfg->value("add_eos_token", false);
        if (const auto t = cfg->find("chat_template"); t != cfg->end()) {
            s.has_chat_template = true;
            s.chat_template_chars = t->is_string() ? t->get_ref<const std::string&>().size() : t->dump().size();
        }
    }
    std::error_code ec;
    if (const fs::path jinja = dir / "chat_template.jinja"; fs::is_regular_file(jinja, ec)) {
        s.has_chat_template = true;
        s.chat_template_chars = static_cast<uint64_t>(fs::file_size(jinja, ec));
    }
    return s;
}

}  // namespace

TokenizerSummary summarize_tokenizer(const ModelFile& model) {
    switch (model.format()) {
        case FileFormat::Gguf: return from_gguf(model.metadata());
        case FileFormat::Safetensors: return from_hf(model.directory());
    }
    return {};
}

}  // namespace hymoe
