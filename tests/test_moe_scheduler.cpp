// The GPU tier's per-layer split (MoeScheduler): worked cases, and on random routings the
// properties any split must have (every pair computed once, GPU pairs only on resident experts,
// --misses respected, slots pinned while in use).
#include <algorithm>
#include <random>
#include <set>
#include <vector>

#include <gtest/gtest.h>

#include "offload/moe_scheduler.hpp"

namespace hymoe::offload {
namespace {

// As in test_cost_model: 1 GB experts, 0.1 s on the CPU, 0.05 s to copy, 0.001 s on the GPU.
const CostModel& cost() {
    static const CostModel m({.cpu_mem_gbs = 10, .cpu_gops = 1e6, .pcie_gbs = 20, .gpu_mem_gbs = 1000, .gpu_gops = 1e6});
    return m;
}
const std::vector<ExpertSize> kSizes{{.bytes = 1e9, .ops_per_token = 1e9}};

TEST(MoeScheduler, MissesFollowThePolicyAndCopiesBecomeHits) {
    const std::vector<int32_t> ids{3, 5};
    const std::vector<float> w{0.6f, 0.4f};
    {
        ExpertCache cache(8, 2, {2}, CachePolicyKind::Lru);
        MoeScheduler s(cache, cost(), kSizes, 2, MissPolicy::Cpu);
        const MoePlan p = s.plan(0, ids, w, {});
        EXPECT_TRUE(p.copies.empty());
        EXPECT_EQ(p.cpu_ids, ids);
        EXPECT_EQ(p.gpu_ids, (std::vector<int32_t>{-1, -1}));
    }
    {
        ExpertCache cache(8, 2, {2}, CachePolicyKind::Lru);
        MoeScheduler s(cache, cost(), kSizes, 2, MissPolicy::Gpu);
        MoePlan p = s.plan(0, ids, w, {});
        EXPECT_EQ(p.copies.size(), 2u);
        EXPECT_EQ(p.gpu_ids, ids);
        EXPECT_EQ(p.cpu_ids, (std::vector<int32_t>{-1, -1}));
        s.unpin(0, p);
        p = s.plan(0, ids, w, {});
        EXPECT_TRUE(p.copies.empty()) << "both are cached now";
        EXPECT_EQ(cache.counters(0).hits, 2u);
        EXPECT_EQ(cache.counters(0).misses, 2u);
        s.unpin(0, p);
    }
    {
        // Auto: expert 3 is copied and run on the GPU (done at 0.051 s); for expert 5 the GPU
        // would end at 0.101 s, the CPU at 0.1 s: the CPU takes it.
        ExpertCache cache(8, 2, {2}, CachePolicyKind::Lru);
        MoeScheduler s(cache, cost(), kSizes, 2, MissPolicy::Auto);
        const MoePlan p = s.plan(0, ids, w, {});
        ASSERT_EQ(p.copies.size(), 1u);
        EXPECT_EQ(p.copies[0].expert, 3);
        EXPECT_EQ(p.gpu_ids, (std::vector<int32_t>{3, -1}));
        EXPECT_EQ(p.cpu_ids, (std::vector<int32_t>{-1, 5}));
        EXPECT_NEAR(p.predicted.seconds, 0.1, 1e-12);
        // The plan's time is the layer's predicted time in the cache's counters.
        EXPECT_NEAR(cache.counters(0).predicted_seconds, 0.1, 1e-12);
    }
}

TEST(MoeScheduler, ZeroSlotsSendsEverythingToTheCpu) {
    ExpertCache cache(8, 2, {0}, CachePolicyKind::Score);
    MoeScheduler s(cache, cost(), kSizes, 2, MissPolicy::Gpu);
    const std::vector<int32_t> ids{1, 2, 2, 7};
    const std::vector<float> w(4, 0.5f);
    const MoePlan p = s.plan(0, ids, w, {});
    EXPECT_TRUE(p.copies.empty());
    EXPECT_EQ(p.cpu_ids, ids);
}

TEST(MoeScheduler, RandomRoutingsKeepTheInvariants) {
    std::mt19937 rng(7);
    for (MissPolicy misses : {MissPolicy::Auto, MissPolicy::Cpu, MissPolicy::Gpu}) {
        for (int64_t slots : {0, 1, 3, 8}) {
            const int64_t ne = 8, k = 2, layers = 2;
            ExpertCache cache(ne, k, {slots, slots}, CachePolicyKind::Score);
            MoeScheduler s(cache, cost(), {kSizes[0], kSizes[0]}, k, misses);
            for (int step = 0; step < 60; ++step) {
                const int64_t layer = step % layers;
                const int64_t n = 1 + static_cast<int64_t>(rng() % 5);
                std::vector<int32_t> ids;
                for (int64_t t = 0; t < n; ++t) {
                    std::vector<int32_t> all(static_cast<size_t>(ne));
                    for (int32_t e = 0; e < ne; ++e) all[static_cast<size_t>(e)] = e;
                    std::shuffle(all.begin(), all.end(), rng);
                    ids.insert(ids.end(), all.begin(), all.begin() + k);
                }
                const std::vector<float> w(ids.size(), 0.5f);
                std::set<int32_t> cached_before;
                for (int32_t e = 0; e < ne; ++e)
                    if (cache.lookup(layer, e) >= 0) cached_before.insert(e);
                const MoePlan p = s.plan(layer, ids, w, {});
                std::set<int32_t> gpu_experts;
                for (size_t j = 0; j < ids.size(); ++j) {
                    EXPECT_TRUE((p.gpu_ids[j] == ids[j]) != (p.cpu_ids[j] == ids[j])) << "pair " << j;
                    EXPECT_TRUE(p.gpu_ids[j] == -1 || p.cpu_ids[j] == -1);
                    if (p.gpu_ids[j] >= 0) {
                        gpu_experts.insert(ids[j]);
                        EXPECT_GE(cache.lookup(layer, ids[j]), 0) << "GPU pairs run on resident experts";
                    }
                }
                EXPECT_EQ(p.pinned.size(), gpu_experts.size());
                for (const MoePlan::Copy& c : p.copies) {
                    EXPECT_EQ(cached_before.count(c.expert), 0u) << "only misses are copied";
                    EXPECT_EQ(cache.expert_in(layer, c.slot), c.expert);
                }
                if (misses == MissPolicy::Cpu) {
                    EXPECT_TRUE(p.copies.empty());
                    for (int32_t e : gpu_experts) EXPECT_EQ(cached_before.count(e), 1u);
                }
                if (misses == MissPolicy::Gpu && slots >= 8) {
                    for (int32_t e : p.cpu_ids) EXPECT_EQ(e, -1) << "with room for every expert, all run on the GPU";
                }
                s.unpin(layer, p);
            }
        }
    }
}

}  // namespace
}  // namespace hymoe::offload
