// The CPU backend: every BackendContext op on the host, with the thread pool and the kernels of
// src/cpu. Its numerics are the reference the GPU backend is checked against, and they follow
// ggml's CPU backend so logits match llama.cpp.
#pragma once

#include <memory>

#include "cpu/thread_pool.hpp"
#include "runtime/backend.hpp"

namespace hymoe {

// weights and pool must outlive the backend (both belong to the Model).
std::unique_ptr<Backend> make_cpu_backend(const ModelConfig& config, const ModelWeights& weights,
                                          cpu::ThreadPool& pool);

// Attention as the CPU computes it: cpu::attention_head for every (token, head) of `a`, on the
// pool; every pointer of `a` is host memory. The CPU backend's attention op, and the CUDA
// backend's with --attn cpu (so both run the one reference).
void cpu_attention(const AttentionArgs& a, cpu::ThreadPool& pool);

}  // namespace hymoe
