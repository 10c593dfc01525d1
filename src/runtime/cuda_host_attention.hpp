// Internal to the CUDA backend: attention on the CPU beside a GPU (--attn cpu).
//
// The KV cache lives in page-locked host memory mapped into the device's address space
// (cuda::MappedHostBuffer), not in GPU memory, so a long context does not take GPU memory. The
// forward pass's own GPU ops (copy_rows, rope, and MLA's rms_norm) write each new position's rows
// into it through its device view, over PCIe: a few KB per token and layer. Each attention op:
//   1. queues a copy of q to pinned staging and synchronizes the stream: the CPU is about to read
//      q and the new K/V rows, which GPU work queued before it writes (one stream sync per
//      attention layer; the GPU idles while the CPU works, which is the price of the layout);
//   2. runs cpu_attention (the CPU backend's attention, the reference) on the host view of the
//      cache, with the layer's sinks from a host copy, on the model's CPU thread pool;
//   3. copies the output rows back to the device buffer from pinned staging on the stream; the
//      ops after it are queued behind the copy.
// A pass with host work in its middle cannot be captured, so the backend runs without graphs.
// NOT YET RUN ON A GPU: see docs/gpu-status.md.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "cpu/thread_pool.hpp"
#include "cuda/memory.hpp"
#include "model/weights.hpp"
#include "runtime/backend.hpp"

namespace hymoe::cuda_backend {

// Host copies of every layer's attention sinks, found by the device pointer the forward pass hands
// to attention() (AttentionArgs carries no layer index). Copied once, when the backend is built.
class HostSinks {
public:
    HostSinks() = default;
    // host: the model's weights; device: the same weights on the GPU (the backend's mirror).
    HostSinks(const ModelWeights& host, const ModelWeights& device, int64_t n_heads);
    // The host copy of the sinks at `device` ([n_heads]); null for null.
    const float* find(const float* device) const;

private:
    std::vector<const float*> device_;      // [layers with sinks]
    std::vector<std::vector<float>> host_;  // [layers with sinks][n_heads]
};

// One session's KV cache in mapped host memory, and the staging of its attention ops.
class HostAttention {
public:
    // kv_bytes of zeroed mapped host memory (positions past n_past are never read, but zeros make
    // a stray read harmless, as on the GPU).
    HostAttention(uint64_t kv_bytes, cpu::ThreadPool& pool);

    // The cache as kernels address it: what the backend's KvLayer pointers are carved from.
    std::byte* kv_device() const { return static_cast<std::byte*>(kv_.device_ptr()); }
    uint64_t kv_bytes() const { return kv_.bytes(); }

    // `a` as the forward pass made it: q and out are device buffers, k and v point into
    // kv_device(); `host_sinks` is null or the layer's sinks in host memory.
    void run(const AttentionArgs& a, const float* host_sinks, cudaStream_t stream);

private:
    // The host address of a pointer into the device view of the cache.
    const float* host_view(const float* device, const char* what) const;

    cuda::MappedHostBuffer kv_;
    cuda::PinnedBuffer q_;    // the q region of one op, strides as on the device
    cuda::PinnedBuffer out_;  // [n_tokens][n_heads][dim_v] one op's output before its upload
    cpu::ThreadPool& pool_;
};

}  // namespace hymoe::cuda_backend
