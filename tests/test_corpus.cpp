// Replays the checked-in fuzz corpora (tests/corpus/gguf, tests/corpus/safetensors) through the
// fuzz targets' bodies, so every build, with or without clang and libFuzzer, re-checks the inputs
// that once crashed a reader (crash-*.bin) and those that reach its corners.
//
// A target lets every exception but hymoe::Error escape, and aborts on a tensor view outside the
// input. An escaped exception fails the test naming the file; a crash (signal, abort, sanitizer
// report) kills the process, so a handler prints the file being replayed first.
#include <gtest/gtest.h>

#include <algorithm>
#include <csignal>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <unistd.h>

#include "fuzz/fuzz_entry.hpp"

#if defined(__SANITIZE_ADDRESS__)
#define HYMOE_CORPUS_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HYMOE_CORPUS_ASAN 1
#endif
#endif
#ifdef HYMOE_CORPUS_ASAN
#include <sanitizer/common_interface_defs.h>
#endif

namespace {

namespace fs = std::filesystem;

// The file being replayed, in a fixed buffer because a signal handler may only read memory and
// call async-signal-safe functions (write), not touch a std::string.
char g_current[4096] = {};
constexpr int kCrashSignals[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
struct sigaction g_previous[std::size(kCrashSignals)] = {};

void print_current() {
    if (g_current[0] == '\0') return;
    constexpr char kPrefix[] = "\ntest_corpus: crashed while replaying ";
    (void)!write(STDERR_FILENO, kPrefix, sizeof(kPrefix) - 1);
    (void)!write(STDERR_FILENO, g_current, std::strlen(g_current));
    (void)!write(STDERR_FILENO, "\n", 1);
}

void on_crash_signal(int sig) {
    print_current();
    // Hand the signal back to whoever had it (the default action, or ASan's reporter): a fault
    // re-raises when the instruction re-executes, and abort() raises again after we return.
    for (size_t i = 0; i < std::size(kCrashSignals); ++i) {
        if (kCrashSignals[i] == sig) sigaction(sig, &g_previous[i], nullptr);
    }
}

// Installed for one directory's replay and removed after it, so other tests keep the default handling.
class CrashReporter {
public:
    CrashReporter() {
        struct sigaction sa = {};
        sa.sa_handler = on_crash_signal;
        sigemptyset(&sa.sa_mask);
        for (size_t i = 0; i < std::size(kCrashSignals); ++i) sigaction(kCrashSignals[i], &sa, &g_previous[i]);
#ifdef HYMOE_CORPUS_ASAN
        // A sanitizer report ends the process with _exit, not a signal.
        __sanitizer_set_death_callback(print_current);
#endif
    }
    ~CrashReporter() {
        for (size_t i = 0; i < std::size(kCrashSignals); ++i) sigaction(kCrashSignals[i], &g_previous[i], nullptr);
#ifdef HYMOE_CORPUS_ASAN
        __sanitizer_set_death_callback(nullptr);
#endif
        g_current[0] = '\0';
    }
    CrashReporter(const CrashReporter&) = delete;
    CrashReporter& operator=(const CrashReporter&) = delete;

    void set_current(const std::string& path) {
        const size_t n = std::min(path.size(), sizeof(g_current) - 1);
        std::memcpy(g_current, path.data(), n);
        g_current[n] = '\0';
    }
};

// Exactly sized, so that under ASan a read one past the input is reported.
std::vector<uint8_t> read_all(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::vector<uint8_t> bytes(fs::file_size(path));
    in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    EXPECT_TRUE(in.good() || bytes.empty()) << "cannot read " << path;
    return bytes;
}

void replay(const std::string& subdir, int (*target)(const uint8_t*, size_t)) {
    const fs::path dir = fs::path(HYMOE_SOURCE_DIR) / "tests" / "corpus" / subdir;
    ASSERT_TRUE(fs::is_directory(dir)) << dir << " is missing";
    std::vector<fs::path> files;
    for (const auto& entry : fs::directory_iterator(dir)) {
        if (entry.is_regular_file()) files.push_back(entry.path());
    }
    ASSERT_FALSE(files.empty()) << dir << " holds no inputs";
    std::sort(files.begin(), files.end());  // a stable order, so a crash reproduces on the same file

    CrashReporter reporter;
    for (const auto& file : files) {
        const auto bytes = read_all(file);
        reporter.set_current(file.string());
        try {
            target(bytes.data(), bytes.size());
        } catch (const std::exception& e) {
            ADD_FAILURE() << file.filename() << ": an exception other than hymoe::Error escaped: " << e.what();
        } catch (...) {
            ADD_FAILURE() << file.filename() << ": a non-std exception escaped";
        }
    }
    testing::Test::RecordProperty("inputs", static_cast<int>(files.size()));
}

TEST(Corpus, Gguf) {
    replay("gguf", hymoe_fuzz_gguf);
}

TEST(Corpus, Safetensors) {
    replay("safetensors", hymoe_fuzz_safetensors);
}

}  // namespace
