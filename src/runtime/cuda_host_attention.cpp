// Attention on the CPU beside a GPU (runtime/cuda_host_attention.hpp).
#include "runtime/cuda_host_attention.hpp"

#include <algorithm>
#include <cassert>

#include <fmt/format.h>

#include "cuda/device_pool.hpp"
#include "hymoe/error.hpp"
#include "runtime/cpu_backend.hpp"

namespace hymoe::cuda_backend {

HostSinks::HostSinks(const ModelWeights& host, const ModelWeights& device, int64_t n_heads) {
    for (size_t l = 0; l < host.layers.size() && l < device.layers.size(); ++l) {
        const float* h = host.layers[l].sinks;
        if (h == nullptr) continue;
        device_.push_back(device.layers[l].sinks);
        host_.emplace_back(h, h + n_heads);
    }
}

const float* HostSinks::find(const float* device) const {
    if (device == nullptr) return nullptr;
    // A model has a few dozen layers; a linear search per attention op costs nothing beside it.
    const auto it = std::find(device_.begin(), device_.end(), device);
    if (it == device_.end()) throw Error("attention on the CPU: the sinks are not one of the model's layers'");
    return host_[static_cast<size_t>(it - device_.begin())].data();
}

namespace {

// The cache's memory, with a failure that says what it was for (a long context asks for a lot).
cuda::MappedHostBuffer page_locked_kv(uint64_t bytes) {
    try {
        return cuda::MappedHostBuffer(bytes);
    } catch (const Error& e) {
        throw Error(fmt::format("--attn cpu: the KV cache needs {} of page-locked host RAM: {}",
                                cuda::format_gib(bytes), e.what()));
    }
}

}  // namespace

HostAttention::HostAttention(uint64_t kv_bytes, cpu::ThreadPool& pool) : kv_(page_locked_kv(kv_bytes)), pool_(pool) {}

const float* HostAttention::host_view(const float* device, const char* what) const {
    if (device == nullptr) return nullptr;
    const auto* p = reinterpret_cast<const std::byte*>(device);
    const std::byte* base = kv_device();
    if (p < base || p >= base + kv_.bytes())
        throw Error(fmt::format("attention on the CPU: {} is not in the KV cache's host memory", what));
    return reinterpret_cast<const float*>(static_cast<const std::byte*>(kv_.get()) + (p - base));
}

void HostAttention::run(const AttentionArgs& a, const float* host_sinks, cudaStream_t stream) {
    if (a.n_tokens <= 0 || a.n_heads <= 0) return;
    assert(a.q_token_stride >= 0 && a.q_head_stride >= 0 && a.out_head_stride >= a.dim_v);
    // q's region as laid out on the device, gaps included: one copy, the same strides on the host.
    const int64_t q_floats = (a.n_tokens - 1) * a.q_token_stride + (a.n_heads - 1) * a.q_head_stride + a.dim_k;
    const uint64_t q_bytes = static_cast<uint64_t>(q_floats) * sizeof(float);
    // The previous op's copy out of q_ finished at its synchronization: q_ may be replaced.
    if (q_bytes > q_.bytes()) q_ = cuda::PinnedBuffer(std::max<uint64_t>(q_bytes, 4096));
    cuda::check(cudaMemcpyAsync(q_.get(), a.q, q_bytes, cudaMemcpyDeviceToHost, stream), "cudaMemcpyAsync (q to host)");
    // The CPU must wait for every GPU op before it: q's projections and rotation, and the
    // copy_rows / rope / rms_norm writing this step's K/V rows into the mapped cache. Waiting
    // here also ends the previous op's upload out of out_.
    cuda::check(cudaStreamSynchronize(stream), "cudaStreamSynchronize (attention on the CPU)");

    const int64_t rows = a.n_tokens * a.n_heads;  // one output row of dim_v per (token, head)
    const uint64_t out_bytes = static_cast<uint64_t>(rows * a.dim_v) * sizeof(float);
    if (out_bytes > out_.bytes()) out_ = cuda::PinnedBuffer(std::max<uint64_t>(out_bytes, 4096));

    AttentionArgs h = a;
    h.q = static_cast<const float*>(q_.get());
    h.k = host_view(a.k, "k");
    h.v = host_view(a.v, "v");
    h.sinks = host_sinks;
    h.out = static_cast<float*>(out_.get());  // [n_tokens][n_heads][dim_v]
    h.out_token_stride = a.n_heads * a.dim_v;
    h.out_head_stride = a.dim_v;
    cpu_attention(h, pool_);

    // Each (token, head) row of dim_v floats to its place on the device: one 2D copy when the
    // rows are evenly spaced there (every layout the forward pass makes), else one per token.
    const size_t width = static_cast<size_t>(a.dim_v) * sizeof(float);
    const size_t pitch = static_cast<size_t>(a.out_head_stride) * sizeof(float);
    const bool even = a.out_token_stride == a.n_heads * a.out_head_stride;
    for (int64_t t = 0; t < (even ? 1 : a.n_tokens); ++t) {
        cuda::check(
            cudaMemcpy2DAsync(a.out + t * a.out_token_stride, pitch, h.out + t * h.out_token_stride, width, width,
                              static_cast<size_t>(even ? rows : a.n_heads), cudaMemcpyHostToDevice, stream),
            "cudaMemcpy2DAsync (attention output to the device)");
    }
}

}  // namespace hymoe::cuda_backend
