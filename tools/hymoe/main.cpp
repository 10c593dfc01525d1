// hymoe: Mixture-of-Experts inference with expert offloading.
#include <cstdio>
#include <exception>

#include <fmt/core.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include "commands.hpp"
#include "hymoe/build_info.hpp"
#include "hymoe/error.hpp"

int main(int argc, char** argv) {
    // Library warnings go to stderr, never into the generated text on stdout.
    spdlog::set_default_logger(spdlog::stderr_logger_mt("hymoe"));
    spdlog::set_pattern("hymoe: %l: %v");
    CLI::App app{"hymoe: Mixture-of-Experts inference with expert offloading"};
    app.name("hymoe");
    app.set_version_flag("--version", hymoe::build_info().version);
    app.require_subcommand(1);
    hymoe::cli::add_inspect_command(app);
    hymoe::cli::add_info_command(app);
    hymoe::cli::add_synth_command(app);
    hymoe::cli::add_eval_command(app);
    hymoe::cli::add_run_command(app);
    hymoe::cli::add_tokenize_command(app);
    hymoe::cli::add_chat_command(app);
    hymoe::cli::add_bench_command(app);
    hymoe::cli::add_quantize_command(app);
    hymoe::cli::add_trace_command(app);
    hymoe::cli::add_simulate_command(app);

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e);
    } catch (const hymoe::Error& e) {
        std::fflush(stdout);
        fmt::print(stderr, "hymoe: error: {}\n", e.what());
        return 1;
    } catch (const std::exception& e) {
        std::fflush(stdout);
        fmt::print(stderr, "hymoe: internal error: {}\n", e.what());
        return 2;
    }
    return 0;
}
