// Reads what the user types in `hymoe chat`: with line editing and history (libedit) when
// stdin is a terminal, plain lines otherwise (pipes, tests). A message spans several lines when
// each but the last ends with a backslash, or when it is wrapped in lines holding only """.
#pragma once

#include <optional>
#include <string>

namespace hymoe::cli {

class LineReader {
public:
    LineReader();
    ~LineReader();
    LineReader(const LineReader&) = delete;
    LineReader& operator=(const LineReader&) = delete;

    // The next message, without its final newline; nullopt at end of input (Ctrl-D).
    std::optional<std::string> read_message();
    bool interactive() const { return interactive_; }

private:
    std::optional<std::string> read_line(const char* prompt);

    bool interactive_ = false;
};

}  // namespace hymoe::cli
