// What bench_gpu measures and how: a figure beside its limit, the event timer (median of
// repetitions after a warm-up, a batch of calls captured in a CUDA graph when it can be), the
// JSON and table writers, and the MoE routings it feeds the kernels, built on the host. Host code
// only; used by bench_gpu.cpp.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <numeric>
#include <string>
#include <utility>
#include <vector>

#include "cuda/memory.hpp"
#include "hymoe/error.hpp"
#include "launch.hpp"

namespace hymoe::bench {

// One measured figure. `limit` is the rate the same work could reach at best on this GPU (for
// memory-bound work the device-to-device copy rate; for GEMMs cuBLAS's dense bf16 GEMM of the
// same size), 0 when there is none; `fraction` = value / limit.
struct Figure {
    std::string name;
    double value = 0;
    std::string unit;
    double limit = 0;
    std::string limit_name;  // which figure the limit is
    double us = 0;           // microseconds of one call
    double bytes = 0;        // bytes of weights one call reads
    double flops = 0;        // operations of one call (2 per multiply-add)
    bool graph = false;      // timed as replays of a CUDA graph
    std::string check;       // "ok", or what was wrong with the outputs
    std::string error;       // non-empty: not measured, and why
};

// Median milliseconds of one call of op(i). One timed repetition runs the `calls` calls
// op(0) .. op(calls - 1) back to back (each its own weights, so the batch streams more than the
// L2 cache holds); the batch is captured once in a CUDA graph when capture works (a decode step
// launches that way too), else launched directly. One untimed batch first.
class GraphExec {
public:
    GraphExec() = default;
    ~GraphExec() {
        if (exec_ != nullptr) cudaGraphExecDestroy(exec_);
    }
    GraphExec(const GraphExec&) = delete;
    GraphExec& operator=(const GraphExec&) = delete;
    cudaGraphExec_t* out() { return &exec_; }
    cudaGraphExec_t get() const { return exec_; }

private:
    cudaGraphExec_t exec_ = nullptr;
};

template <typename Op>
double time_ms(cudaStream_t stream, int calls, int reps, bool try_graph, bool* used_graph, Op&& op) {
    for (int i = 0; i < calls; ++i) op(i);
    cuda::check(cudaStreamSynchronize(stream), "warm-up batch");

    GraphExec exec;
    if (try_graph && cudaStreamBeginCapture(stream, cudaStreamCaptureModeRelaxed) == cudaSuccess) {
        bool captured = true;
        try {
            for (int i = 0; i < calls; ++i) op(i);
        } catch (const std::exception&) {
            captured = false;  // a launcher refused under capture: time direct launches instead
        }
        cudaGraph_t graph = nullptr;
        const cudaError_t end = cudaStreamEndCapture(stream, &graph);
        if (captured && end == cudaSuccess && graph != nullptr) {
            if (cudaGraphInstantiate(exec.out(), graph, 0) != cudaSuccess) *exec.out() = nullptr;
        }
        if (graph != nullptr) cudaGraphDestroy(graph);
        cudaGetLastError();  // a failed capture leaves a non-sticky error behind
        if (exec.get() != nullptr) {
            cuda::check(cudaGraphLaunch(exec.get(), stream), "cudaGraphLaunch");  // untimed: uploads the graph
            cuda::check(cudaStreamSynchronize(stream), "graph warm-up");
        }
    }
    *used_graph = exec.get() != nullptr;

    cuda::Event start(true), stop(true);
    std::vector<double> per_call;
    for (int r = 0; r < reps; ++r) {
        start.record(stream);
        if (exec.get() != nullptr) {
            cuda::check(cudaGraphLaunch(exec.get(), stream), "cudaGraphLaunch");
        } else {
            for (int i = 0; i < calls; ++i) op(i);
        }
        stop.record(stream);
        stop.synchronize();
        per_call.push_back(static_cast<double>(stop.elapsed_ms_since(start)) / calls);
    }
    std::sort(per_call.begin(), per_call.end());
    const size_t n = per_call.size();
    return n % 2 == 1 ? per_call[n / 2] : 0.5 * (per_call[n / 2 - 1] + per_call[n / 2]);
}

// ---- output ------------------------------------------------------------------------------------

inline std::string json_string(const std::string& s) {
    std::string out = "\"";
    for (const char c : s) {
        if (c == '"' || c == '\\') {
            out += '\\';
            out += c;
        } else if (static_cast<unsigned char>(c) < 0x20) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
            out += buf;
        } else {
            out += c;
        }
    }
    return out + "\"";
}

inline std::string json_number(double v) {
    if (!std::isfinite(v)) return "null";
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.6g", v);
    return buf;
}

// {"device": ..., <extra fields>, "figures": [{name, value, unit, limit, fraction, ...}]}
inline std::string figures_json(const std::string& device, const std::vector<std::pair<std::string, std::string>>& extra,
                                const std::vector<Figure>& figures) {
    std::string j = "{\n  \"device\": " + json_string(device);
    for (const auto& [key, value] : extra) j += ",\n  " + json_string(key) + ": " + value;
    j += ",\n  \"figures\": [";
    for (size_t i = 0; i < figures.size(); ++i) {
        const Figure& f = figures[i];
        j += i == 0 ? "\n    {" : ",\n    {";
        j += "\"name\": " + json_string(f.name);
        if (!f.error.empty()) {
            j += ", \"error\": " + json_string(f.error) + "}";
            continue;
        }
        const bool has_limit = f.limit > 0;
        j += ", \"value\": " + json_number(f.value) + ", \"unit\": " + json_string(f.unit);
        j += ", \"limit\": " + (has_limit ? json_number(f.limit) : std::string("null"));
        j += ", \"fraction\": " + (has_limit ? json_number(f.value / f.limit) : std::string("null"));
        if (!f.limit_name.empty()) j += ", \"limit_name\": " + json_string(f.limit_name);
        j += ", \"us\": " + json_number(f.us);
        if (f.bytes > 0) j += ", \"bytes\": " + json_number(f.bytes);
        if (f.flops > 0) j += ", \"flops\": " + json_number(f.flops);
        j += std::string(", \"graph\": ") + (f.graph ? "true" : "false");
        if (!f.check.empty()) j += ", \"check\": " + json_string(f.check);
        j += "}";
    }
    return j + "\n  ]\n}\n";
}

inline void print_figure(const Figure& f) {
    if (!f.error.empty()) {
        std::printf("%-46s  error: %s\n", f.name.c_str(), f.error.c_str());
    } else if (f.limit > 0) {
        std::printf("%-46s %10.2f %-8s %10.2f %7.1f%% %10.2f  %s\n", f.name.c_str(), f.value, f.unit.c_str(), f.limit,
                    100.0 * f.value / f.limit, f.us, f.check.c_str());
    } else {
        std::printf("%-46s %10.2f %-8s %10s %8s %10.2f  %s\n", f.name.c_str(), f.value, f.unit.c_str(), "-", "-", f.us,
                    f.check.c_str());
    }
    std::fflush(stdout);
}

inline void print_header() {
    std::printf("%-46s %10s %-8s %10s %8s %10s  %s\n", "figure", "value", "unit", "limit", "of limit", "us/call",
                "outputs");
}

// A fast generator for bulk random bytes (std::mt19937 would take seconds for the tiles).
struct SplitMix {
    uint64_t s;
    uint64_t next() {
        uint64_t z = (s += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return z ^ (z >> 31);
    }
    float uniform() { return static_cast<float>(next() >> 40) * (2.0f / 16777216.0f) - 1.0f; }  // [-1, 1)
};

// ---- routings, built on the host -----------------------------------------------------------------

// One batch's routing with the outputs of route + group_by_expert, on the device.
struct Routing {
    int64_t n_tokens = 0, n_used = 0, n_pairs = 0;
    cuda::DeviceBuffer<int32_t> experts, pair_order, pair_pos, offsets, active, n_active, x_rows;
    cuda::DeviceBuffer<float> weights;

    kernels::ExpertRouting view() const {
        return {experts.get(), weights.get(), pair_order.get(), pair_pos.get(), offsets.get(),
                active.get(),  n_active.get(), n_tokens, n_used};
    }
};

// chosen: [n_tokens][n_used] distinct experts per token.
inline Routing make_routing(const std::vector<int32_t>& chosen, int64_t n_tokens, int64_t n_used, int64_t n_experts,
                            SplitMix& rng) {
    const int64_t n_pairs = n_tokens * n_used;
    std::vector<float> weights(static_cast<size_t>(n_pairs));
    for (int64_t t = 0; t < n_tokens; ++t) {
        float sum = 0;
        for (int64_t j = 0; j < n_used; ++j) sum += weights[static_cast<size_t>(t * n_used + j)] = 1.5f + rng.uniform();
        for (int64_t j = 0; j < n_used; ++j) weights[static_cast<size_t>(t * n_used + j)] /= sum;
    }
    // A stable counting sort of the pairs by expert, as group_by_expert sorts them.
    std::vector<int32_t> offsets(static_cast<size_t>(n_experts + 1), 0);
    for (const int32_t e : chosen) ++offsets[static_cast<size_t>(e) + 1];
    std::partial_sum(offsets.begin(), offsets.end(), offsets.begin());
    std::vector<int32_t> next(offsets.begin(), offsets.end() - 1);
    std::vector<int32_t> pair_order(static_cast<size_t>(n_pairs)), pair_pos(static_cast<size_t>(n_pairs)),
        x_rows(static_cast<size_t>(n_pairs));
    for (int64_t i = 0; i < n_pairs; ++i) {
        const int32_t p = next[static_cast<size_t>(chosen[static_cast<size_t>(i)])]++;
        pair_order[static_cast<size_t>(p)] = static_cast<int32_t>(i);
        pair_pos[static_cast<size_t>(i)] = p;
        x_rows[static_cast<size_t>(p)] = static_cast<int32_t>(i / n_used);
    }
    std::vector<int32_t> active;
    for (int64_t e = 0; e < n_experts; ++e) {
        if (offsets[static_cast<size_t>(e) + 1] > offsets[static_cast<size_t>(e)]) active.push_back(static_cast<int32_t>(e));
    }
    const std::vector<int32_t> n_active{static_cast<int32_t>(active.size())};
    active.resize(static_cast<size_t>(n_experts), 0);

    Routing r;
    r.n_tokens = n_tokens;
    r.n_used = n_used;
    r.n_pairs = n_pairs;
    r.experts = cuda::to_device(chosen);
    r.weights = cuda::to_device(weights);
    r.pair_order = cuda::to_device(pair_order);
    r.pair_pos = cuda::to_device(pair_pos);
    r.offsets = cuda::to_device(offsets);
    r.active = cuda::to_device(active);
    r.n_active = cuda::to_device(n_active);
    r.x_rows = cuda::to_device(x_rows);
    return r;
}

// Decode: one token per routing, the routings using disjoint expert sets (a random partition of
// the experts into groups of n_used), so consecutive calls never share a weight in L2.
inline std::vector<Routing> decode_routings(int64_t n_experts, int64_t n_used, SplitMix& rng) {
    std::vector<int32_t> perm(static_cast<size_t>(n_experts));
    std::iota(perm.begin(), perm.end(), 0);
    for (size_t i = perm.size() - 1; i > 0; --i) std::swap(perm[i], perm[rng.next() % (i + 1)]);
    std::vector<Routing> out;
    for (int64_t g = 0; g + n_used <= n_experts; g += n_used) {
        const std::vector<int32_t> chosen(perm.begin() + g, perm.begin() + g + n_used);
        out.push_back(make_routing(chosen, 1, n_used, n_experts, rng));
    }
    return out;
}

// Prefill: each of n_tokens tokens picks n_used distinct experts uniformly.
inline Routing prefill_routing(int64_t n_experts, int64_t n_used, int64_t n_tokens, SplitMix& rng) {
    std::vector<int32_t> chosen;
    std::vector<int32_t> pool(static_cast<size_t>(n_experts));
    for (int64_t t = 0; t < n_tokens; ++t) {
        std::iota(pool.begin(), pool.end(), 0);
        for (int64_t j = 0; j < n_used; ++j) {
            const size_t pick = static_cast<size_t>(j) + rng.next() % static_cast<size_t>(n_experts - j);
            std::swap(pool[static_cast<size_t>(j)], pool[pick]);
            chosen.push_back(pool[static_cast<size_t>(j)]);
        }
    }
    return make_routing(chosen, n_tokens, n_used, n_experts, rng);
}

}  // namespace hymoe::bench
