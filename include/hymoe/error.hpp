// The one error type of hymoe. User, file and configuration errors throw it; the CLI's main
// and the API boundary catch it and print what() on one line. Broken invariants assert instead.
#pragma once

#include <stdexcept>
#include <string>

namespace hymoe {

class Error : public std::runtime_error {
public:
    explicit Error(const std::string& message) : std::runtime_error(message) {}
};

}  // namespace hymoe
