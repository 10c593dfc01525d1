// Shared by the GPU tests: skip, with the reason, where there is no GPU; seeded random inputs;
// comparison against a CPU reference with tolerances and at most ten mismatches printed.
// Only compiled when hymoe is built with CUDA.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "hymoe/build_info.hpp"

namespace hymoe::test {

// Skips the calling test when no GPU can be used, saying why.
#define HYMOE_REQUIRE_GPU()                                                     \
    do {                                                                        \
        std::string why_no_gpu_;                                                \
        if (::hymoe::list_gpus(&why_no_gpu_).empty())                           \
            GTEST_SKIP() << "no usable GPU: " << why_no_gpu_;                   \
    } while (0)

inline std::vector<float> random_floats(size_t n, uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> dist(lo, hi);
    std::vector<float> v(n);
    for (float& x : v) x = dist(rng);
    return v;
}

// A value no correct kernel writes: outputs are filled with it before a launch, so an element
// the kernel forgot shows up (NaN never compares equal, and never passes a tolerance).
inline constexpr float kPoison = std::numeric_limits<float>::quiet_NaN();

// Every got[i] within atol + rtol*|want[i]| of want[i], neither NaN nor inf; prints at most ten
// mismatches and the worst relative error.
inline ::testing::AssertionResult all_close(const std::vector<float>& got, const std::vector<float>& want, float atol,
                                            float rtol) {
    if (got.size() != want.size())
        return ::testing::AssertionFailure() << "size " << got.size() << " != " << want.size();
    size_t bad = 0;
    std::string msg;
    for (size_t i = 0; i < got.size(); ++i) {
        const float g = got[i], w = want[i];
        const bool ok = std::isfinite(g) && std::fabs(g - w) <= atol + rtol * std::fabs(w);
        if (!ok) {
            if (bad < 10) msg += "\n  [" + std::to_string(i) + "] got " + std::to_string(g) + " want " + std::to_string(w);
            ++bad;
        }
    }
    if (bad == 0) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << bad << " of " << got.size() << " elements differ" << msg;
}

// Relative L2 error ||got - want|| / ||want||; inf when got holds a NaN.
inline double relative_l2(const std::vector<float>& got, const std::vector<float>& want) {
    double num = 0, den = 0;
    for (size_t i = 0; i < got.size() && i < want.size(); ++i) {
        if (!std::isfinite(got[i])) return INFINITY;
        num += (double(got[i]) - want[i]) * (double(got[i]) - want[i]);
        den += double(want[i]) * want[i];
    }
    return std::sqrt(num / (den > 0 ? den : 1));
}

}  // namespace hymoe::test
