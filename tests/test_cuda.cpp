// The CUDA toolchain path: the fill kernel runs on a GPU and writes what it was asked to.
// Skipped, with the reason, when hymoe was built without CUDA or no GPU is present.
#include <gtest/gtest.h>

#include "hymoe/build_info.hpp"

namespace hymoe {
namespace {

TEST(Cuda, FillKernelWritesEveryElement) {
    if (!build_info().cuda) GTEST_SKIP() << "hymoe was built without CUDA (HYMOE_CUDA=OFF or no nvcc)";
    std::string why;
    if (list_gpus(&why).empty()) GTEST_SKIP() << "no usable GPU: " << why;
    EXPECT_EQ(gpu_selftest(), "");
}

TEST(Cuda, ReportsWhyThereIsNoGpu) {
    std::string why;
    const auto gpus = list_gpus(&why);
    if (!gpus.empty()) GTEST_SKIP() << "a GPU is present";
    EXPECT_FALSE(why.empty()) << "an empty GPU list must come with a reason";
}

}  // namespace
}  // namespace hymoe
