// RAII owners of CUDA handles: device and pinned host memory, streams, events. Host code only
// (src/cuda, src/runtime's CUDA backend, GPU tests and benchmarks); compiled only with CUDA.
//
// Every failing CUDA call throws hymoe::Error naming the call and CUDA's message; destructors
// never throw (a failure there is ignored: the context is being torn down anyway).
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "hymoe/error.hpp"

namespace hymoe::cuda {

// Throws hymoe::Error("<what> failed: <message> (<name>)") unless err is cudaSuccess.
void check(cudaError_t err, const char* what);
std::string describe(cudaError_t err, const char* what);

// n elements of T in device memory (cudaMalloc; not initialized).
template <typename T>
class DeviceBuffer {
public:
    DeviceBuffer() = default;
    explicit DeviceBuffer(size_t n) : n_(n) {
        if (n > 0) check(cudaMalloc(reinterpret_cast<void**>(&ptr_), n * sizeof(T)), "cudaMalloc");
    }
    ~DeviceBuffer() { reset(); }
    DeviceBuffer(DeviceBuffer&& o) noexcept : ptr_(std::exchange(o.ptr_, nullptr)), n_(std::exchange(o.n_, 0)) {}
    DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
        if (this != &o) {
            reset();
            ptr_ = std::exchange(o.ptr_, nullptr);
            n_ = std::exchange(o.n_, 0);
        }
        return *this;
    }
    DeviceBuffer(const DeviceBuffer&) = delete;
    DeviceBuffer& operator=(const DeviceBuffer&) = delete;

    T* get() const { return ptr_; }
    size_t size() const { return n_; }
    size_t bytes() const { return n_ * sizeof(T); }
    void reset() {
        if (ptr_ != nullptr) cudaFree(ptr_);
        ptr_ = nullptr;
        n_ = 0;
    }

    // Synchronous copies (tests, setup; never in the hot path).
    void upload(std::span<const T> host) {
        if (host.size() > n_) throw Error("DeviceBuffer::upload: more elements than the buffer holds");
        check(cudaMemcpy(ptr_, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice), "cudaMemcpy H2D");
    }
    std::vector<T> download() const {
        std::vector<T> out(n_);
        if (n_ > 0) check(cudaMemcpy(out.data(), ptr_, n_ * sizeof(T), cudaMemcpyDeviceToHost), "cudaMemcpy D2H");
        return out;
    }

private:
    T* ptr_ = nullptr;
    size_t n_ = 0;
};

// A device buffer holding a copy of `host`.
template <typename T>
DeviceBuffer<T> to_device(std::span<const T> host) {
    DeviceBuffer<T> d(host.size());
    if (!host.empty()) d.upload(host);
    return d;
}
template <typename T>
DeviceBuffer<T> to_device(const std::vector<T>& host) {
    return to_device(std::span<const T>(host));
}

// Page-locked host memory (cudaMallocHost): what async copies need to run at full PCIe speed.
class PinnedBuffer {
public:
    PinnedBuffer() = default;
    explicit PinnedBuffer(size_t bytes);
    ~PinnedBuffer() { reset(); }
    PinnedBuffer(PinnedBuffer&& o) noexcept : ptr_(std::exchange(o.ptr_, nullptr)), bytes_(std::exchange(o.bytes_, 0)) {}
    PinnedBuffer& operator=(PinnedBuffer&& o) noexcept {
        if (this != &o) {
            reset();
            ptr_ = std::exchange(o.ptr_, nullptr);
            bytes_ = std::exchange(o.bytes_, 0);
        }
        return *this;
    }
    PinnedBuffer(const PinnedBuffer&) = delete;
    PinnedBuffer& operator=(const PinnedBuffer&) = delete;

    void* get() const { return ptr_; }
    size_t bytes() const { return bytes_; }
    void reset();

private:
    void* ptr_ = nullptr;
    size_t bytes_ = 0;
};

// Page-locked host memory mapped into every device's address space (cudaHostAlloc with
// cudaHostAllocMapped | cudaHostAllocPortable), zeroed. Kernels read and write it over PCIe
// through device_ptr(); the host reads it through get() once the writing work is synchronized.
// With unified addressing (64-bit Linux) the two pointers are equal, but kernels take
// device_ptr() so nothing depends on it.
class MappedHostBuffer {
public:
    MappedHostBuffer() = default;
    explicit MappedHostBuffer(size_t bytes);
    ~MappedHostBuffer() { reset(); }
    MappedHostBuffer(MappedHostBuffer&& o) noexcept
        : host_(std::exchange(o.host_, nullptr)),
          device_(std::exchange(o.device_, nullptr)),
          bytes_(std::exchange(o.bytes_, 0)) {}
    MappedHostBuffer& operator=(MappedHostBuffer&& o) noexcept {
        if (this != &o) {
            reset();
            host_ = std::exchange(o.host_, nullptr);
            device_ = std::exchange(o.device_, nullptr);
            bytes_ = std::exchange(o.bytes_, 0);
        }
        return *this;
    }
    MappedHostBuffer(const MappedHostBuffer&) = delete;
    MappedHostBuffer& operator=(const MappedHostBuffer&) = delete;

    void* get() const { return host_; }
    void* device_ptr() const { return device_; }
    size_t bytes() const { return bytes_; }
    void reset();

private:
    void* host_ = nullptr;
    void* device_ = nullptr;
    size_t bytes_ = 0;
};

// A non-blocking stream (it does not synchronize with the legacy default stream).
class Stream {
public:
    Stream();
    ~Stream();
    Stream(Stream&& o) noexcept : s_(std::exchange(o.s_, nullptr)) {}
    Stream& operator=(Stream&& o) noexcept;
    Stream(const Stream&) = delete;
    Stream& operator=(const Stream&) = delete;

    cudaStream_t get() const { return s_; }
    void synchronize() const;

private:
    cudaStream_t s_ = nullptr;
};

// An event; timing-enabled when asked (for benchmarks), else the cheaper kind.
class Event {
public:
    explicit Event(bool timing = false);
    ~Event();
    Event(Event&& o) noexcept : e_(std::exchange(o.e_, nullptr)) {}
    Event& operator=(Event&& o) noexcept;
    Event(const Event&) = delete;
    Event& operator=(const Event&) = delete;

    cudaEvent_t get() const { return e_; }
    void record(cudaStream_t stream);
    void synchronize() const;
    // Milliseconds from `start` to this event (both recorded, both timing-enabled).
    float elapsed_ms_since(const Event& start) const;

private:
    cudaEvent_t e_ = nullptr;
};

}  // namespace hymoe::cuda
