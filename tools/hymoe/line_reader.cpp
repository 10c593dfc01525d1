#include "line_reader.hpp"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>

// libedit's readline-compatible interface (Debian libedit-dev).
#include <editline/readline.h>

namespace hymoe::cli {

namespace {

constexpr const char* kPrompt = "> ";
constexpr const char* kContinuation = "... ";
constexpr const char* kBlockFence = "\"\"\"";

}  // namespace

LineReader::LineReader() : interactive_(::isatty(STDIN_FILENO) != 0 && ::isatty(STDOUT_FILENO) != 0) {
    if (interactive_) using_history();
}

LineReader::~LineReader() = default;

std::optional<std::string> LineReader::read_line(const char* prompt) {
    if (interactive_) {
        // readline() returns a malloc'ed line without its newline, or null at end of input.
        const std::unique_ptr<char, decltype(&std::free)> line(readline(prompt), &std::free);
        if (!line) return std::nullopt;
        return std::string(line.get());
    }
    std::string line;
    if (!std::getline(std::cin, line)) return std::nullopt;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    return line;
}

std::optional<std::string> LineReader::read_message() {
    std::optional<std::string> first = read_line(kPrompt);
    if (!first) return std::nullopt;
    std::string message;
    if (*first == kBlockFence) {
        // """ ... """: everything between the fences, newlines kept.
        bool first_line = true;
        while (true) {
            std::optional<std::string> line = read_line(kContinuation);
            if (!line || *line == kBlockFence) break;
            if (!first_line) message += '\n';
            message += *line;
            first_line = false;
        }
    } else {
        std::string line = std::move(*first);
        while (!line.empty() && line.back() == '\\') {
            line.pop_back();
            message += line;
            message += '\n';
            std::optional<std::string> next = read_line(kContinuation);
            line = next ? std::move(*next) : std::string();
        }
        message += line;
    }
    if (interactive_ && !message.empty()) add_history(message.c_str());
    return message;
}

}  // namespace hymoe::cli
