#include "offload/cost_model.hpp"

#include <algorithm>
#include <numeric>

#include <fmt/format.h>

#include "hymoe/error.hpp"

namespace hymoe::offload {

namespace {

double over(double amount, double rate_g) {
    return rate_g > 0 ? amount / (rate_g * 1e9) : 0.0;
}

}  // namespace

MissPolicy parse_miss_policy(std::string_view name) {
    if (name == "auto") return MissPolicy::Auto;
    if (name == "cpu") return MissPolicy::Cpu;
    if (name == "gpu") return MissPolicy::Gpu;
    throw Error(fmt::format("--misses '{}': expected cpu or gpu", name));
}

CostModel::CostModel(const MachineRates& rates) : r_(rates) {
    const bool gpu = r_.pcie_gbs > 0 && r_.gpu_mem_gbs > 0;
    if (r_.cpu_mem_gbs <= 0 || (!gpu && r_.file_read_gbs <= 0))
        throw Error("cost model: the CPU memory rate, and the PCIe and GPU memory rates or the file read rate, "
                    "must be measured (> 0)");
}

double CostModel::cpu_seconds(const ExpertSize& e, int64_t tokens) const {
    return std::max(over(e.bytes, r_.cpu_mem_gbs), over(e.ops_per_token * static_cast<double>(tokens), r_.cpu_gops));
}

double CostModel::gpu_seconds(const ExpertSize& e, int64_t tokens) const {
    return std::max(over(e.bytes, r_.gpu_mem_gbs), over(e.ops_per_token * static_cast<double>(tokens), r_.gpu_gops));
}

double CostModel::copy_seconds(const ExpertSize& e) const {
    return over(e.bytes, r_.pcie_gbs);
}

double CostModel::file_read_seconds(const ExpertSize& e) const {
    return over(e.bytes, r_.file_read_gbs);
}

RamLayerPlan CostModel::plan_ram_layer(std::span<const int64_t> ready, std::span<const int64_t> loading,
                                       std::span<const int64_t> staged, const ExpertSize& size) const {
    if (r_.file_read_gbs <= 0) throw Error("cost model: the RAM tier's plan needs the file read rate");
    const auto compute = [&](std::span<const int64_t> tokens) {
        double s = 0;
        for (int64_t t : tokens) s += cpu_seconds(size, t);
        return s;
    };
    const double read_one = file_read_seconds(size);
    const double c_ready = compute(ready), c_loading = compute(loading), c_staged = compute(staged);
    RamLayerPlan p;
    p.read_seconds = read_one * static_cast<double>(loading.size());
    p.compute_seconds = c_ready + c_loading + c_staged;
    p.seconds = std::max(c_ready, p.read_seconds) + c_loading + read_one * static_cast<double>(staged.size()) +
                c_staged;
    return p;
}

LayerPlan CostModel::plan_layer(std::span<const ExpertNeed> needs, const ExpertSize& size, MissPolicy misses) const {
    if (r_.pcie_gbs <= 0 || r_.gpu_mem_gbs <= 0) throw Error("cost model: the GPU split needs the PCIe and GPU rates");
    LayerPlan p;
    p.side.assign(needs.size(), Side::Gpu);
    // Cached first, then uncached; within each, the most tokens first.
    std::vector<size_t> order(needs.size());
    std::iota(order.begin(), order.end(), size_t{0});
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
        if (needs[a].cached != needs[b].cached) return needs[a].cached;
        return needs[a].tokens > needs[b].tokens;
    });
    double gpu = 0, cpu = 0, copy = 0;
    const auto on_gpu = [&](const ExpertNeed& n, double& gpu_t, double& copy_t) {
        double start = gpu_t;
        if (!n.cached) {
            copy_t += copy_seconds(size);
            start = std::max(start, copy_t);
        }
        gpu_t = start + gpu_seconds(size, n.tokens);
    };
    size_t front = 0, back = order.size();
    while (front < back) {
        const ExpertNeed& f = needs[order[front]];
        const ExpertNeed& b = needs[order[back - 1]];
        // --misses cpu: cached experts on the GPU, the rest on the CPU; --misses gpu: all on the
        // GPU, misses after their copies.
        if (!f.cached && misses == MissPolicy::Cpu) {
            // Everything left is uncached (cached ones sort first): all of it to the CPU.
            for (size_t i = front; i < back; ++i) {
                p.side[order[i]] = Side::Cpu;
                cpu += cpu_seconds(size, needs[order[i]].tokens);
            }
            break;
        }
        if (misses == MissPolicy::Gpu || (misses == MissPolicy::Cpu && b.cached)) {
            on_gpu(f, gpu, copy);
            ++front;
            continue;
        }
        double gpu_if = gpu, copy_if = copy;
        on_gpu(f, gpu_if, copy_if);
        const double cpu_if = cpu + cpu_seconds(size, b.tokens);
        if (gpu_if <= cpu_if) {
            gpu = gpu_if;
            copy = copy_if;
            ++front;
        } else {
            cpu = cpu_if;
            p.side[order[back - 1]] = Side::Cpu;
            --back;
        }
    }
    p.copy_seconds = copy;
    p.gpu_seconds = gpu;
    p.cpu_seconds = cpu;
    p.seconds = std::max(gpu, cpu);
    return p;
}

}  // namespace hymoe::offload
