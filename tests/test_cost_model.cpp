// The cost model's layer split on cases worked out by hand (the arithmetic is in the comments).
#include <gtest/gtest.h>

#include "hymoe/error.hpp"
#include "offload/cost_model.hpp"

namespace hymoe::offload {
namespace {

// 1 GB experts: 0.1 s on the CPU (10 GB/s), 0.05 s to copy (20 GB/s), 0.001 s on the GPU
// (1000 GB/s); compute rates high enough never to bind at one token.
CostModel model() {
    return CostModel({.cpu_mem_gbs = 10, .cpu_gops = 1e6, .pcie_gbs = 20, .gpu_mem_gbs = 1000, .gpu_gops = 1e6});
}
constexpr ExpertSize kExpert{.bytes = 1e9, .ops_per_token = 1e9};

TEST(CostModel, TimesAreBytesOverBandwidthUntilComputeBinds) {
    const CostModel m = model();
    EXPECT_DOUBLE_EQ(m.cpu_seconds(kExpert, 1), 0.1);
    EXPECT_DOUBLE_EQ(m.copy_seconds(kExpert), 0.05);
    EXPECT_DOUBLE_EQ(m.gpu_seconds(kExpert, 1), 0.001);
    // 1e6 tokens x 1e9 ops at 1e6 GOP/s = 1 s > 0.1 s of reading.
    EXPECT_DOUBLE_EQ(m.cpu_seconds(kExpert, 1000000), 1.0);
}

// Two cached experts and two misses, one token each.
//   auto: c1 -> GPU (0.001 < 0.1), c2 -> GPU (0.002 < 0.1), u1 -> GPU after its copy
//   (max(0.002, 0.05) + 0.001 = 0.051 < 0.1), u2: GPU would end at 0.1 + 0.001 = 0.101, the CPU
//   at 0.1 -> CPU. Layer: max(0.051, 0.1) = 0.1.
TEST(CostModel, AutoSendsTheLastMissToTheCpu) {
    const ExpertNeed needs[] = {{7, 1, false}, {3, 1, true}, {9, 1, false}, {5, 1, true}};
    const LayerPlan p = model().plan_layer(needs, kExpert, MissPolicy::Auto);
    // needs order: u(7), c(3), u(9), c(5); sorted: c3, c5, u7, u9 -> u9 is taken last, by the CPU.
    EXPECT_EQ(p.side[0], Side::Gpu);
    EXPECT_EQ(p.side[1], Side::Gpu);
    EXPECT_EQ(p.side[2], Side::Cpu);
    EXPECT_EQ(p.side[3], Side::Gpu);
    EXPECT_NEAR(p.gpu_seconds, 0.051, 1e-12);
    EXPECT_NEAR(p.cpu_seconds, 0.1, 1e-12);
    EXPECT_NEAR(p.copy_seconds, 0.05, 1e-12);
    EXPECT_NEAR(p.seconds, 0.1, 1e-12);
}

// Naive offloading: both misses copied in turn (0.05, 0.1), each run after its copy: 0.101.
TEST(CostModel, MissesOnTheGpuWaitForTheSerialCopyQueue) {
    const ExpertNeed needs[] = {{7, 1, false}, {3, 1, true}, {9, 1, false}, {5, 1, true}};
    const LayerPlan p = model().plan_layer(needs, kExpert, MissPolicy::Gpu);
    for (Side s : p.side) EXPECT_EQ(s, Side::Gpu);
    EXPECT_NEAR(p.copy_seconds, 0.1, 1e-12);
    EXPECT_NEAR(p.seconds, 0.101, 1e-12);
}

// Misses on the CPU: 2 x 0.1 there, 0.002 on the GPU.
TEST(CostModel, MissesOnTheCpu) {
    const ExpertNeed needs[] = {{7, 1, false}, {3, 1, true}, {9, 1, false}, {5, 1, true}};
    const LayerPlan p = model().plan_layer(needs, kExpert, MissPolicy::Cpu);
    EXPECT_EQ(p.side[0], Side::Cpu);
    EXPECT_EQ(p.side[1], Side::Gpu);
    EXPECT_EQ(p.side[2], Side::Cpu);
    EXPECT_EQ(p.side[3], Side::Gpu);
    EXPECT_NEAR(p.cpu_seconds, 0.2, 1e-12);
    EXPECT_NEAR(p.gpu_seconds, 0.002, 1e-12);
    EXPECT_DOUBLE_EQ(p.copy_seconds, 0.0);
}

// Prefill: 1000 tokens per expert makes the CPU compute-bound: 1000 x 1e9 ops at 1000 GOP/s =
// 1 s per expert, against a 0.05 s copy and 1000 x 1e9 / 1e5 GOP/s = 0.01 s on the GPU. Both
// misses go to the GPU: copies end at 0.05 and 0.1, runs at 0.06 and 0.11.
TEST(CostModel, ManyTokensPerExpertCopyThenRunOnTheGpu) {
    const CostModel m({.cpu_mem_gbs = 10, .cpu_gops = 1000, .pcie_gbs = 20, .gpu_mem_gbs = 1000, .gpu_gops = 1e5});
    const ExpertNeed needs[] = {{1, 1000, false}, {2, 1000, false}};
    const LayerPlan p = m.plan_layer(needs, kExpert, MissPolicy::Auto);
    EXPECT_EQ(p.side[0], Side::Gpu);
    EXPECT_EQ(p.side[1], Side::Gpu);
    EXPECT_NEAR(p.seconds, 0.11, 1e-12);
}

TEST(CostModel, EmptyLayerAndBadInput) {
    const LayerPlan p = model().plan_layer({}, kExpert, MissPolicy::Auto);
    EXPECT_TRUE(p.side.empty());
    EXPECT_DOUBLE_EQ(p.seconds, 0.0);
    EXPECT_THROW(CostModel({.cpu_mem_gbs = 0, .pcie_gbs = 1, .gpu_mem_gbs = 1}), Error);
    EXPECT_EQ(parse_miss_policy("cpu"), MissPolicy::Cpu);
    EXPECT_THROW(parse_miss_policy("disk"), Error);
}

// The RAM tier's layer: 1 GB experts, 0.1 s to compute (10 GB/s), 0.5 s to read (2 GB/s); no GPU.
CostModel ram_model() {
    return CostModel({.cpu_mem_gbs = 10, .cpu_gops = 1000, .file_read_gbs = 2});
}

// Two ready, one loading, one staged: the ready ones (0.2 s) run while the loader reads (0.5 s);
// then the loaded one (0.1 s); then the staged one, read (0.5 s) and computed (0.1 s) in turn:
// 0.5 + 0.1 + 0.5 + 0.1 = 1.2 s.
TEST(CostModel, RamLayerComputesTheReadyExpertsWhileTheMissesLoad) {
    const int64_t ready[] = {1, 1}, loading[] = {1}, staged[] = {1};
    const RamLayerPlan p = ram_model().plan_ram_layer(ready, loading, staged, kExpert);
    EXPECT_NEAR(p.read_seconds, 0.5, 1e-12);
    EXPECT_NEAR(p.compute_seconds, 0.4, 1e-12);
    EXPECT_NEAR(p.seconds, 1.2, 1e-12);
    EXPECT_DOUBLE_EQ(ram_model().file_read_seconds(kExpert), 0.5);
}

// Six ready experts (0.6 s) hide the one read (0.5 s): 0.6 + 0.1 = 0.7 s. Every expert ready: its
// compute alone. None needed: 0.
TEST(CostModel, RamLayerReadsHiddenBehindCompute) {
    const int64_t six[] = {1, 1, 1, 1, 1, 1}, one[] = {1};
    EXPECT_NEAR(ram_model().plan_ram_layer(six, one, {}, kExpert).seconds, 0.7, 1e-12);
    EXPECT_NEAR(ram_model().plan_ram_layer(six, {}, {}, kExpert).seconds, 0.6, 1e-12);
    EXPECT_DOUBLE_EQ(ram_model().plan_ram_layer({}, {}, {}, kExpert).seconds, 0.0);
}

// Prefill: 1000 tokens of 1e9 ops at 1000 GOP/s = 1 s per expert, more than its 0.1 s of reading
// weights: one ready (1 s) hides one read (0.5 s), then the loaded one: 1 + 1 = 2 s.
TEST(CostModel, RamLayerComputeBoundWithManyTokens) {
    const int64_t ready[] = {1000}, loading[] = {1000};
    EXPECT_NEAR(ram_model().plan_ram_layer(ready, loading, {}, kExpert).seconds, 2.0, 1e-12);
}

// Each plan needs its own rates: the GPU split the PCIe and GPU ones, the RAM tier's the file's.
TEST(CostModel, EachPlanNeedsItsRates) {
    EXPECT_THROW(ram_model().plan_layer({}, kExpert, MissPolicy::Auto), Error);
    EXPECT_THROW(model().plan_ram_layer({}, {}, {}, kExpert), Error);
    EXPECT_THROW(CostModel({.cpu_mem_gbs = 10, .pcie_gbs = 20}), Error);
    EXPECT_THROW(CostModel({.cpu_mem_gbs = 0, .file_read_gbs = 2}), Error);
}

}  // namespace
}  // namespace hymoe::offload
