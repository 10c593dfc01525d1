// Helpers shared by the tests: where the fixtures are, and temporary files.
#pragma once

#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>

#include <gtest/gtest.h>

namespace hymoe::test {

inline std::filesystem::path source_dir() {
    return HYMOE_SOURCE_DIR;
}
inline std::filesystem::path fixtures_dir() {
    return source_dir() / "tests" / "fixtures";
}

// The shared llama.cpp reference fixtures: $HYMOE_REFERENCE_DIR, else ../shared/reference beside
// the repository. nullopt when absent (a user's clone): tests then skip, saying why.
inline std::optional<std::filesystem::path> reference_dir() {
    std::filesystem::path dir;
    if (const char* env = std::getenv("HYMOE_REFERENCE_DIR"); env && *env) {
        dir = env;
    } else {
        dir = source_dir().parent_path() / "shared" / "reference";
    }
    std::error_code ec;
    if (!std::filesystem::is_directory(dir, ec)) return std::nullopt;
    return dir;
}

inline std::string reference_skip_reason() {
    return "reference fixtures not found (set HYMOE_REFERENCE_DIR or place them at ../shared/reference)";
}

#define HYMOE_REQUIRE_REFERENCE(var)                                        \
    const auto var##_opt = ::hymoe::test::reference_dir();                  \
    if (!var##_opt) GTEST_SKIP() << ::hymoe::test::reference_skip_reason(); \
    const std::filesystem::path var = *var##_opt

inline std::string read_text(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// A parameterized test's name suffix from a string parameter: "deepseek2-v2" -> "deepseek2_v2".
struct ParamName {
    template <class Info>
    std::string operator()(const Info& info) const {
        std::string name = info.param;
        for (char& ch : name)
            if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
        return name;
    }
};

// A fresh directory under the test temp dir, unique per test.
inline std::filesystem::path temp_dir_for_test() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string leaf = std::string("hymoe_") + info->test_suite_name() + "_" + info->name();
    for (char& c : leaf) {
        if (c == '/') c = '_';  // parameterized test names contain '/'
    }
    auto dir = std::filesystem::path(::testing::TempDir()) / leaf;
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    return dir;
}

}  // namespace hymoe::test
