// What an MoE layer's experts cost on each side of a CPU+GPU machine, and HybriMoE's split of
// one layer's experts between the two (docs/offload.md, "The cost model"); and what a layer
// costs the RAM tier, which reads missed experts from the model file while the CPU computes.
//
// Every time is bytes over a bandwidth or operations over a rate, whichever is larger: at batch
// 1 an expert is a matrix-vector product and reading its weights is the whole cost; with many
// tokens per expert the arithmetic takes over. The rates are measured (hymoe bench's probes,
// bench_gpu), never constants of this file.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace hymoe::offload {

struct MachineRates {
    double cpu_mem_gbs = 0;  // CPU streaming read of weights
    double cpu_gops = 0;     // CPU expert matmul rate when compute-bound
    double pcie_gbs = 0;     // pinned host -> device copy
    double gpu_mem_gbs = 0;  // device memory read
    double gpu_gops = 0;     // GPU expert matmul rate when compute-bound
    double file_read_gbs = 0;  // model file -> RAM, one expert per read (the RAM tier's loader)
};

// One expert of a layer: its bytes (gate + up + down) and operations per token (2 per multiply-add).
struct ExpertSize {
    double bytes = 0;
    double ops_per_token = 0;
};

// An expert a step needs: how many tokens were routed to it and whether the GPU holds it.
struct ExpertNeed {
    int32_t expert = 0;
    int64_t tokens = 0;
    bool cached = false;
};

enum class Side { Gpu, Cpu };
// Where a missed expert may run: "auto" = whichever side finishes the layer first (HybriMoE),
// "cpu" = always the CPU, "gpu" = always copy it and run it on the GPU (naive offloading).
enum class MissPolicy { Auto, Cpu, Gpu };
MissPolicy parse_miss_policy(std::string_view name);  // throws hymoe::Error naming --misses

struct LayerPlan {
    std::vector<Side> side;  // [needs.size()], in the order of the needs given
    double copy_seconds = 0;  // the copy queue, serial
    double gpu_seconds = 0;   // when the GPU finishes (copies it waited on included)
    double cpu_seconds = 0;   // when the CPU finishes
    double seconds = 0;       // the layer: max(gpu, cpu)
};

// The RAM tier's layer (RamTier::run): a read queue on the loader thread, the compute on the pool.
struct RamLayerPlan {
    double read_seconds = 0;     // the loader's reads of the loading experts, one after another
    double compute_seconds = 0;  // every expert's compute
    double seconds = 0;          // the layer
};

class CostModel {
public:
    // Needs the CPU's memory rate, and the PCIe and GPU memory rates (plan_layer) or the file
    // read rate (plan_ram_layer); throws hymoe::Error otherwise.
    explicit CostModel(const MachineRates& rates);

    double cpu_seconds(const ExpertSize& e, int64_t tokens) const;
    double gpu_seconds(const ExpertSize& e, int64_t tokens) const;
    double copy_seconds(const ExpertSize& e) const;
    double file_read_seconds(const ExpertSize& e) const;

    // Splits one layer's needs: cached experts, most tokens first, are taken from the front by
    // the GPU; then the uncached ones; the CPU takes from the back. Each next expert goes to the
    // side that would finish it sooner, where a GPU run of an uncached expert first waits for
    // its copy on the serial copy queue. MissPolicy::Cpu / ::Gpu fix the side of every miss.
    LayerPlan plan_layer(std::span<const ExpertNeed> needs, const ExpertSize& size, MissPolicy misses) const;

    // One layer of the RAM tier, given the tokens routed to each needed expert by where it is:
    // `ready` in RAM, computed while the loader thread reads `loading` one after another; then
    // `loading` computed together once the last has arrived; then `staged` (misses with no slot)
    // read and computed on the computing thread, nothing overlapped:
    //   seconds = max(C(ready), R(loading)) + C(loading) + R(staged) + C(staged)
    // with C the cpu_seconds and R the file_read_seconds of each expert.
    RamLayerPlan plan_ram_layer(std::span<const int64_t> ready, std::span<const int64_t> loading,
                                std::span<const int64_t> staged, const ExpertSize& size) const;

private:
    MachineRates r_;
};

}  // namespace hymoe::offload
