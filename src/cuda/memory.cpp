#include "cuda/memory.hpp"

#include <cstring>

#include <fmt/format.h>

namespace hymoe::cuda {

std::string describe(cudaError_t err, const char* what) {
    return fmt::format("{} failed: {} ({})", what, cudaGetErrorString(err), cudaGetErrorName(err));
}

void check(cudaError_t err, const char* what) {
    if (err == cudaSuccess) return;
    cudaGetLastError();  // clear a non-sticky error so the next call does not report it again
    throw Error(describe(err, what));
}

PinnedBuffer::PinnedBuffer(size_t bytes) : bytes_(bytes) {
    if (bytes > 0) check(cudaMallocHost(&ptr_, bytes), "cudaMallocHost");
}

void PinnedBuffer::reset() {
    if (ptr_ != nullptr) cudaFreeHost(ptr_);
    ptr_ = nullptr;
    bytes_ = 0;
}

MappedHostBuffer::MappedHostBuffer(size_t bytes) {
    if (bytes == 0) return;
    check(cudaHostAlloc(&host_, bytes, cudaHostAllocMapped | cudaHostAllocPortable), "cudaHostAlloc (mapped)");
    bytes_ = bytes;
    const cudaError_t err = cudaHostGetDevicePointer(&device_, host_, 0);
    if (err != cudaSuccess) {
        reset();
        check(err, "cudaHostGetDevicePointer");
    }
    std::memset(host_, 0, bytes);
}

void MappedHostBuffer::reset() {
    if (host_ != nullptr) cudaFreeHost(host_);
    host_ = nullptr;
    device_ = nullptr;
    bytes_ = 0;
}

Stream::Stream() {
    check(cudaStreamCreateWithFlags(&s_, cudaStreamNonBlocking), "cudaStreamCreateWithFlags");
}
Stream::~Stream() {
    if (s_ != nullptr) cudaStreamDestroy(s_);
}
Stream& Stream::operator=(Stream&& o) noexcept {
    if (this != &o) {
        if (s_ != nullptr) cudaStreamDestroy(s_);
        s_ = std::exchange(o.s_, nullptr);
    }
    return *this;
}
void Stream::synchronize() const {
    check(cudaStreamSynchronize(s_), "cudaStreamSynchronize");
}

Event::Event(bool timing) {
    check(cudaEventCreateWithFlags(&e_, timing ? cudaEventDefault : cudaEventDisableTiming), "cudaEventCreate");
}
Event::~Event() {
    if (e_ != nullptr) cudaEventDestroy(e_);
}
Event& Event::operator=(Event&& o) noexcept {
    if (this != &o) {
        if (e_ != nullptr) cudaEventDestroy(e_);
        e_ = std::exchange(o.e_, nullptr);
    }
    return *this;
}
void Event::record(cudaStream_t stream) {
    check(cudaEventRecord(e_, stream), "cudaEventRecord");
}
void Event::synchronize() const {
    check(cudaEventSynchronize(e_), "cudaEventSynchronize");
}
float Event::elapsed_ms_since(const Event& start) const {
    float ms = 0.0f;
    check(cudaEventElapsedTime(&ms, start.e_, e_), "cudaEventElapsedTime");
    return ms;
}

}  // namespace hymoe::cuda
