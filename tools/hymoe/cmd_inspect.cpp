// `hymoe inspect MODEL`: architecture, hyper-parameters, tokenizer, tensors, and the split
// between resident (non-expert) and offloadable (routed-expert) bytes.
#include <memory>
#include <string>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "hymoe/inspect.hpp"

namespace hymoe::cli {

namespace {

struct InspectOptions {
    std::string model;
    bool tensors = false;
    bool json = false;
};

std::string human_bytes(uint64_t n) {
    constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = static_cast<double>(n);
    int u = 0;
    while (v >= 1024.0 && u < 4) {
        v /= 1024.0;
        ++u;
    }
    return u == 0 ? fmt::format("{} B", n) : fmt::format("{:.2f} {}", v, kUnits[u]);
}

std::string shape_string(const std::vector<int64_t>& shape) {
    std::string s = "[";
    for (size_t i = 0; i < shape.size(); ++i) s += fmt::format("{}{}", i ? ", " : "", shape[i]);
    return s + "]";
}

std::string by_type_string(const std::vector<TypeBytes>& types) {
    std::string s;
    for (const auto& t : types) {
        s += fmt::format("{}{} {} ({} tensors)", s.empty() ? "" : ", ", t.type, human_bytes(t.bytes), t.n_tensors);
    }
    return s.empty() ? "-" : s;
}

void print_text(const ModelInfo& m, bool with_tensors) {
    fmt::print("model:        {}\n", m.path);
    if (m.format == "gguf") {
        fmt::print("format:       GGUF v{}, alignment {}, {}\n", m.gguf_version, m.gguf_alignment,
                   human_bytes(m.file_bytes));
    } else {
        fmt::print("format:       safetensors, {} file{}, {}\n", m.files.size(), m.files.size() == 1 ? "" : "s",
                   human_bytes(m.file_bytes));
    }
    fmt::print("architecture: {}\n", m.architecture.empty() ? "(not given)" : m.architecture);
    if (!m.name.empty()) fmt::print("name:         {}\n", m.name);

    fmt::print("\nhyper-parameters:\n");
    size_t width = 0;
    for (const auto& h : m.hyperparameters) width = std::max(width, h.key.size());
    for (const auto& h : m.hyperparameters) fmt::print("  {:<{}}  {}\n", h.key, width, h.display);

    const TokenizerSummary& t = m.tokenizer;
    fmt::print("\ntokenizer:\n");
    if (!t.present) {
        fmt::print("  none\n");
    } else {
        fmt::print("  model {}{}, {} tokens, {} merges (from {})\n", t.model.empty() ? "?" : t.model,
                   t.pre.empty() ? "" : fmt::format(", pre-tokenizer {}", t.pre), t.vocab_size, t.n_merges, t.source);
        std::string special;
        for (const auto& s : t.special) {
            special +=
                fmt::format("{}{} {} {}", special.empty() ? "" : ", ", s.role, s.id,
                            nlohmann::json(s.text).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
        }
        fmt::print("  special: {}\n", special.empty() ? "none" : special);
        fmt::print("  add bos: {}, add eos: {}\n", t.add_bos ? "yes" : "no", t.add_eos ? "yes" : "no");
        fmt::print("  chat template: {}\n",
                   t.has_chat_template ? fmt::format("present ({} chars)", t.chat_template_chars) : "none");
    }

    const ExpertSplit& e = m.experts;
    fmt::print("\ntensors: {}, {}\n", m.tensors.size(), human_bytes(m.tensor_bytes));
    fmt::print("\noffload split:\n");
    fmt::print("  non-expert (resident): {:>12}  {}\n", human_bytes(e.non_expert_bytes),
               by_type_string(e.non_expert_by_type));
    fmt::print("  routed experts:        {:>12}  {}\n", human_bytes(e.expert_bytes), by_type_string(e.expert_by_type));
    if (!e.layers.empty()) {
        fmt::print("  layers with experts:   {}\n", e.layers.size());
        for (const auto& l : e.layers) {
            fmt::print("    layer {:>3}: {} experts x {} = {}\n", l.layer, l.n_experts, human_bytes(l.bytes_per_expert),
                       human_bytes(l.bytes));
        }
    }

    if (with_tensors) {
        size_t name_w = 4;
        for (const auto& x : m.tensors) name_w = std::max(name_w, x.name.size());
        fmt::print("\n{:>5}  {:<{}}  {:<8}  {:<22}  {:>12}  {:>12}  {}\n", "#", "name", name_w, "type", "shape",
                   "bytes", "offset", "role");
        for (size_t i = 0; i < m.tensors.size(); ++i) {
            const auto& x = m.tensors[i];
            fmt::print("{:>5}  {:<{}}  {:<8}  {:<22}  {:>12}  {:>12}  {}\n", i, x.name, name_w, x.type,
                       shape_string(x.shape), x.nbytes,
                       m.files.size() > 1 ? fmt::format("{}:{}", x.file_index, x.file_offset)
                                          : fmt::format("{}", x.file_offset),
                       x.is_expert ? "expert" : "resident");
        }
    }
}

nlohmann::json to_json(const ModelInfo& m, bool with_tensors) {
    using nlohmann::json;
    json j;
    j["path"] = m.path;
    j["format"] = m.format;
    j["files"] = m.files;
    j["file_bytes"] = m.file_bytes;
    if (m.format == "gguf") {
        j["gguf_version"] = m.gguf_version;
        j["gguf_alignment"] = m.gguf_alignment;
    }
    j["architecture"] = m.architecture;
    j["name"] = m.name;
    json hp = json::object();
    for (const auto& h : m.hyperparameters) hp[h.key] = json::parse(h.json);
    j["hyperparameters"] = hp;

    const TokenizerSummary& t = m.tokenizer;
    json tok = {{"present", t.present},
                {"source", t.source},
                {"model", t.model},
                {"pre", t.pre},
                {"vocab_size", t.vocab_size},
                {"n_merges", t.n_merges},
                {"add_bos", t.add_bos},
                {"add_eos", t.add_eos},
                {"has_chat_template", t.has_chat_template},
                {"chat_template_chars", t.chat_template_chars}};
    tok["special"] = json::array();
    for (const auto& s : t.special) tok["special"].push_back({{"role", s.role}, {"id", s.id}, {"text", s.text}});
    j["tokenizer"] = tok;

    auto types = [](const std::vector<TypeBytes>& v) {
        json a = json::array();
        for (const auto& x : v) a.push_back({{"type", x.type}, {"n_tensors", x.n_tensors}, {"bytes", x.bytes}});
        return a;
    };
    const ExpertSplit& e = m.experts;
    json split = {{"non_expert_bytes", e.non_expert_bytes},
                  {"expert_bytes", e.expert_bytes},
                  {"non_expert_by_type", types(e.non_expert_by_type)},
                  {"expert_by_type", types(e.expert_by_type)}};
    split["layers"] = json::array();
    for (const auto& l : e.layers) {
        split["layers"].push_back({{"layer", l.layer},
                                   {"n_experts", l.n_experts},
                                   {"bytes", l.bytes},
                                   {"bytes_per_expert", l.bytes_per_expert}});
    }
    j["offload_split"] = split;
    j["n_tensors"] = m.tensors.size();
    j["tensor_bytes"] = m.tensor_bytes;
    if (with_tensors) {
        j["tensors"] = json::array();
        for (const auto& x : m.tensors) {
            j["tensors"].push_back({{"name", x.name},
                                    {"type", x.type},
                                    {"shape", x.shape},
                                    {"nbytes", x.nbytes},
                                    {"file_index", x.file_index},
                                    {"file_offset", x.file_offset},
                                    {"layer", x.layer},
                                    {"is_expert", x.is_expert}});
        }
    }
    return j;
}

}  // namespace

void add_inspect_command(CLI::App& app) {
    auto* cmd = app.add_subcommand("inspect", "Describe a model: architecture, tokenizer, tensors, expert split");
    auto opts = std::make_shared<InspectOptions>();
    cmd->add_option("model", opts->model, "A .gguf file, a .safetensors file, or a model directory")->required();
    cmd->add_flag("--tensors", opts->tensors, "List every tensor");
    cmd->add_flag("--json", opts->json, "Print JSON (with --tensors: include the tensor list)");
    cmd->callback([opts] {
        const ModelInfo info = inspect_model(opts->model);
        if (opts->json) {
            fmt::print("{}\n",
                       to_json(info, opts->tensors).dump(1, ' ', false, nlohmann::json::error_handler_t::replace));
        } else {
            print_text(info, opts->tensors);
        }
    });
}

}  // namespace hymoe::cli
