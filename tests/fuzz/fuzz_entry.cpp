#include "fuzz/fuzz_entry.hpp"

#include <algorithm>
#include <cstdlib>
#include <functional>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "format/gguf.hpp"
#include "format/safetensors.hpp"
#include "hymoe/error.hpp"
#include "util/checked.hpp"

namespace {

std::span<const std::byte> as_bytes(const uint8_t* data, size_t size) {
    // libFuzzer passes nullptr with size 0 for the empty input.
    if (size == 0) return {};
    return {reinterpret_cast<const std::byte*>(data), size};
}

[[noreturn]] void fail(const hymoe::TensorView& t, std::string_view what) {
    fmt::print(stderr, "tensor '{}' ({} bytes): {}\n", t.name, t.nbytes, what);
    std::abort();
}

// The size a reader must have computed, or nullopt when it overflows (then it must have refused).
std::optional<uint64_t> expected_nbytes(const hymoe::TensorView& t) {
    if (std::find(t.shape.begin(), t.shape.end(), 0) != t.shape.end()) return 0;
    auto n = hymoe::row_bytes(t.type, static_cast<uint64_t>(t.ne(0)));
    for (size_t d = 1; d < t.shape.size() && n; ++d) n = hymoe::checked_mul(*n, static_cast<uint64_t>(t.ne(d)));
    return n;
}

// The invariants every accepted file must give. Checked explicitly so that test_corpus catches a
// bad view in a build without sanitizers too; then each view's first and last byte are read, so
// that under ASan a view these checks somehow miss is still an out-of-bounds read.
void check_views(std::span<const hymoe::TensorView> tensors, std::span<const std::byte> input) {
    const std::less<const std::byte*> lt;
    std::vector<const hymoe::TensorView*> by_start;
    for (const auto& t : tensors) {
        for (int64_t d : t.shape) {
            if (d < 0) fail(t, "negative dimension");
        }
        if (expected_nbytes(t) != t.nbytes) fail(t, "size does not match its type and shape");
        if (t.nbytes == 0) continue;
        const bool inside = t.data != nullptr && !lt(t.data, input.data()) && t.nbytes <= input.size() &&
                            !lt(input.data() + (input.size() - t.nbytes), t.data);
        if (!inside) fail(t, fmt::format("lies outside the {}-byte input", input.size()));
        by_start.push_back(&t);
    }
    std::sort(by_start.begin(), by_start.end(), [&](const auto* a, const auto* b) { return lt(a->data, b->data); });
    for (size_t i = 1; i < by_start.size(); ++i) {
        if (lt(by_start[i]->data, by_start[i - 1]->data + by_start[i - 1]->nbytes)) {
            fail(*by_start[i], fmt::format("overlaps tensor '{}'", by_start[i - 1]->name));
        }
    }
    volatile std::byte sink{};
    for (const auto* t : by_start) {
        sink = t->data[0];
        sink = t->data[t->nbytes - 1];
    }
    (void)sink;
}

}  // namespace

int hymoe_fuzz_gguf(const uint8_t* data, size_t size) {
    try {
        const auto input = as_bytes(data, size);
        const auto contents = hymoe::parse_gguf(input, "fuzz.gguf");
        check_views(contents.tensors, input);
    } catch (const hymoe::Error&) {
        // Rejecting a bad file is the expected outcome.
    }
    return 0;
}

int hymoe_fuzz_safetensors(const uint8_t* data, size_t size) {
    try {
        const auto input = as_bytes(data, size);
        const auto contents = hymoe::parse_safetensors(input, "fuzz.safetensors");
        check_views(contents.tensors, input);
    } catch (const hymoe::Error&) {
        // Rejecting a bad file is the expected outcome.
    }
    return 0;
}
