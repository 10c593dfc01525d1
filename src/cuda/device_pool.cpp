#include "cuda/device_pool.hpp"

#include <cuda_runtime.h>

#include <algorithm>

#include <fmt/format.h>

#include "cuda/memory.hpp"
#include "hymoe/error.hpp"

namespace hymoe::cuda {

std::string_view memory_use_name(MemoryUse use) {
    switch (use) {
        case MemoryUse::Weights: return "weights";
        case MemoryUse::KvCache: return "kv cache";
        case MemoryUse::Scratch: return "scratch";
        case MemoryUse::Count: break;
    }
    return "?";
}

std::string format_gib(uint64_t bytes) {
    // A budget of a few MiB (a test, a typo in --gpu-mem) would read "0.00 GiB": say MiB there.
    if (bytes < (10ull << 20)) return fmt::format("{:.1f} MiB", static_cast<double>(bytes) / (1ull << 20));
    return fmt::format("{:.2f} GiB", static_cast<double>(bytes) / static_cast<double>(1ull << 30));
}

ScopedDevice::ScopedDevice(int device) {
    if (cudaGetDevice(&previous_) != cudaSuccess) {
        cudaGetLastError();
        previous_ = -1;
    }
    if (previous_ != device) {
        check(cudaSetDevice(device), "cudaSetDevice");
        changed_ = true;
    }
}

ScopedDevice::~ScopedDevice() {
    if (changed_ && previous_ >= 0) cudaSetDevice(previous_);
}

void DeviceAllocation::reset() noexcept {
    if (ptr_ != nullptr) {
        // cudaFree of memory another device owns works under unified addressing, but make the
        // owner current anyway: it is cheap and keeps the CUDA context choice explicit.
        int previous = -1;
        const bool have_previous = cudaGetDevice(&previous) == cudaSuccess;
        if (have_previous && previous != state_->device) cudaSetDevice(state_->device);
        cudaFree(ptr_);
        if (have_previous && previous != state_->device) cudaSetDevice(previous);
        cudaGetLastError();  // a failure here is not the next call's error
    }
    if (state_ && bytes_ > 0) {
        std::lock_guard lock(state_->mutex);
        state_->held -= bytes_;
        state_->by_use[static_cast<size_t>(use_)] -= bytes_;
    }
    ptr_ = nullptr;
    bytes_ = 0;
    state_.reset();
}

DevicePool::DevicePool(int device, uint64_t budget_bytes) : state_(std::make_shared<detail::PoolState>()) {
    state_->device = device;
    if (budget_bytes == 0) {
        ScopedDevice on(device);
        size_t free = 0, total = 0;
        check(cudaMemGetInfo(&free, &total), "cudaMemGetInfo");
        budget_bytes = free > kFreeMargin ? free - kFreeMargin : 0;
    }
    state_->budget = budget_bytes;
}

std::string DevicePool::budget_error(uint64_t bytes, uint64_t left, std::string_view what) const {
    return fmt::format("GPU memory budget exceeded: {} needs {}, {} of the {} budget is left (--gpu-mem)", what,
                       format_gib(bytes), format_gib(left), format_gib(state_->budget));
}

void DevicePool::require(uint64_t bytes, std::string_view what) const {
    const uint64_t left = free_bytes();
    if (bytes > left) throw Error(budget_error(bytes, left, what));
}

DeviceAllocation DevicePool::allocate(uint64_t bytes, MemoryUse use, std::string_view what) {
    DeviceAllocation a;
    if (bytes == 0) return a;
    const uint64_t charged = align_up(bytes);
    {
        // Reserve first, so two threads cannot both pass the check with one budget's room.
        std::lock_guard lock(state_->mutex);
        const uint64_t left = state_->budget - std::min(state_->held, state_->budget);
        if (charged > left) throw Error(budget_error(charged, left, what));
        state_->held += charged;
        state_->by_use[static_cast<size_t>(use)] += charged;
    }
    a.state_ = state_;
    a.bytes_ = charged;
    a.use_ = use;
    ScopedDevice on(state_->device);
    const cudaError_t err = cudaMalloc(&a.ptr_, charged);
    if (err != cudaSuccess) {
        a.ptr_ = nullptr;
        a.reset();  // gives the reservation back
        cudaGetLastError();
        throw Error(
            fmt::format("cudaMalloc of {} for {} on cuda:{} failed: {} ({}); the budget had room, so the "
                        "device has less free memory than --gpu-mem says",
                        format_gib(charged), what, state_->device, cudaGetErrorString(err), cudaGetErrorName(err)));
    }
    return a;
}

uint64_t DevicePool::held_bytes() const {
    std::lock_guard lock(state_->mutex);
    return state_->held;
}

uint64_t DevicePool::held_bytes(MemoryUse use) const {
    std::lock_guard lock(state_->mutex);
    return state_->by_use[static_cast<size_t>(use)];
}

uint64_t DevicePool::free_bytes() const {
    std::lock_guard lock(state_->mutex);
    return state_->budget - std::min(state_->held, state_->budget);
}

std::string DevicePool::summary() const {
    std::lock_guard lock(state_->mutex);
    std::string s;
    for (size_t i = 0; i < state_->by_use.size(); ++i) {
        if (!s.empty()) s += ", ";
        s += fmt::format("{} {}", memory_use_name(static_cast<MemoryUse>(i)), format_gib(state_->by_use[i]));
    }
    return s + fmt::format(" of {}", format_gib(state_->budget));
}

}  // namespace hymoe::cuda
