// `hymoe tokenize`: text to token ids (or ids to text with --detok) with the model's own
// tokenizer, so tokenization can be compared with llama-tokenize from outside the test suite.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <fmt/core.h>
#include <fmt/ranges.h>

#include "commands.hpp"
#include "format/model_file.hpp"
#include "generate.hpp"
#include "hymoe/error.hpp"
#include "token_ids.hpp"
#include "tokenizer/tokenizer.hpp"

namespace hymoe::cli {

namespace {

struct TokenizeArgs {
    std::string model;
    std::string prompt;
    bool no_bos = false;
    bool no_special = false;
    bool detok = false;
};

void run_tokenize(const TokenizeArgs& args) {
    const Tokenizer tokenizer = load_tokenizer(args.model);
    if (args.detok) {
        const std::vector<int32_t> ids = parse_token_ids(args.prompt, "-p", tokenizer.n_vocab());
        fmt::print("{}\n", tokenizer.decode(ids));
        return;
    }
    // --no-bos drops BOS only; EOS still follows tokenizer.ggml.add_eos_token.
    std::vector<int32_t> ids = tokenizer.encode(args.prompt, true, !args.no_special);
    if (args.no_bos && tokenizer.add_bos() && !ids.empty() && ids.front() == tokenizer.bos()) ids.erase(ids.begin());
    fmt::print("[{}]\n", fmt::join(ids, ", "));
}

}  // namespace

void add_tokenize_command(CLI::App& app) {
    auto args = std::make_shared<TokenizeArgs>();
    auto* cmd = app.add_subcommand("tokenize", "Tokenize text with the model's tokenizer; print the ids as JSON");
    cmd->add_option("-m,--model", args->model,
                    "GGUF file (a vocabulary-only GGUF is enough), or HF directory with tokenizer.json")
        ->required();
    cmd->add_option("-p,--prompt", args->prompt, "text to tokenize (with --detok: ids, \"1,2,3\" or \"[1,2,3]\")")
        ->required();
    cmd->add_flag("--no-bos", args->no_bos, "do not add the BOS token");
    cmd->add_flag("--no-special", args->no_special, "treat the text of control tokens as plain text");
    cmd->add_flag("--detok", args->detok, "decode the ids given with -p and print the text");
    cmd->callback([args] { run_tokenize(*args); });
}

}  // namespace hymoe::cli
