// The subcommands of the `hymoe` program. Each registers itself on the app; its callback runs
// after parsing and throws hymoe::Error on user errors, which main() reports.
#pragma once

#include <CLI/CLI.hpp>

namespace hymoe::cli {

void add_inspect_command(CLI::App& app);
void add_info_command(CLI::App& app);
void add_synth_command(CLI::App& app);
void add_eval_command(CLI::App& app);
void add_run_command(CLI::App& app);
void add_tokenize_command(CLI::App& app);
void add_chat_command(CLI::App& app);
void add_bench_command(CLI::App& app);
void add_quantize_command(CLI::App& app);
void add_trace_command(CLI::App& app);
void add_simulate_command(CLI::App& app);

}  // namespace hymoe::cli
