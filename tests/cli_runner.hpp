// Runs the `hymoe` program as a user would, capturing its exit code, stdout and stderr.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "test_support.hpp"

namespace hymoe::test {

struct RunResult {
    int exit_code = -1;
    std::string out;
    std::string err;
};

// `input` is what the program reads on stdin (empty: /dev/null).
inline RunResult run_cli(const std::string& args, const std::string& input = {}) {
    static int n_runs = 0;  // each run captures into its own files; the test's own files are left alone
    const std::filesystem::path dir =
        std::filesystem::path(::testing::TempDir()) / fmt::format("hymoe_cli_{}_{}", ::getpid(), n_runs++);
    std::filesystem::create_directories(dir);
    const auto out = dir / "stdout.txt";
    const auto err = dir / "stderr.txt";
    std::string in = "/dev/null";
    if (!input.empty()) {
        in = (dir / "stdin.txt").string();
        std::ofstream(in, std::ios::binary) << input;
    }
    const std::string cmd =
        fmt::format("'{}' {} > '{}' 2> '{}' < '{}'", HYMOE_CLI_PATH, args, out.string(), err.string(), in);
    const int status = std::system(cmd.c_str());
    RunResult r;
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    r.out = read_text(out);
    r.err = read_text(err);
    std::filesystem::remove_all(dir);
    return r;
}

inline size_t count_lines(const std::string& s) {
    return static_cast<size_t>(std::count(s.begin(), s.end(), '\n'));
}

// Exit code 1 and exactly one line "hymoe: error: ..." containing must_contain.
inline void expect_one_line_error(const RunResult& r, const std::string& must_contain) {
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_EQ(count_lines(r.err), 1u) << r.err;
    EXPECT_EQ(r.err.rfind("hymoe: error: ", 0), 0u) << r.err;
    EXPECT_NE(r.err.find(must_contain), std::string::npos) << r.err;
}

}  // namespace hymoe::test
