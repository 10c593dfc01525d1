// hymoe: Mixture-of-Experts inference with expert offloading.
#include <cstdio>
#include <exception>

#include <fmt/core.h>
#include <CLI/CLI.hpp>

#include "commands.hpp"
#include "hymoe/build_info.hpp"
#include "hymoe/error.hpp"

int main(int argc, char** argv) {
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
