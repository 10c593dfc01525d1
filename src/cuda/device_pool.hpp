// A GPU memory budget (--gpu-mem) on one device, and the allocations charged to it.
//
// Every device allocation of the CUDA backend (weights, KV caches, scratch) goes through a
// DevicePool, so the engine can say ahead of time whether a model fits and report where the
// memory went. The pool checks the budget before calling cudaMalloc; an allocation gives its
// bytes back when destroyed. Counters are thread-safe (sessions may allocate from several threads).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>

namespace hymoe::cuda {

// What an allocation holds, for the per-category tally.
enum class MemoryUse : int { Weights = 0, KvCache = 1, Scratch = 2, Count = 3 };
std::string_view memory_use_name(MemoryUse use);  // "weights", "kv cache", "scratch"

// "1.20 GiB" (below 10 MiB: "1.0 MiB")
std::string format_gib(uint64_t bytes);

inline constexpr uint64_t kAllocationAlignment = 256;  // what cudaMalloc guarantees; cuBLAS wants it too
inline constexpr uint64_t align_up(uint64_t bytes, uint64_t alignment = kAllocationAlignment) {
    return (bytes + alignment - 1) / alignment * alignment;
}

// Makes `device` current for the calling thread for the guard's lifetime (restoring the previous
// one after), so code that runs on any thread allocates and launches on the right GPU.
class ScopedDevice {
public:
    explicit ScopedDevice(int device);
    ~ScopedDevice();
    ScopedDevice(const ScopedDevice&) = delete;
    ScopedDevice& operator=(const ScopedDevice&) = delete;

private:
    int previous_ = -1;
    bool changed_ = false;
};

namespace detail {
// The counters, shared by the pool and its allocations (an allocation may outlive the pool
// object that made it without leaving a dangling pointer behind).
struct PoolState {
    int device = 0;
    uint64_t budget = 0;
    mutable std::mutex mutex;
    uint64_t held = 0;
    std::array<uint64_t, static_cast<size_t>(MemoryUse::Count)> by_use{};
};
}  // namespace detail

// Device memory charged to a pool; freed and given back when destroyed. Move-only.
class DeviceAllocation {
public:
    DeviceAllocation() = default;
    ~DeviceAllocation() { reset(); }
    DeviceAllocation(DeviceAllocation&& o) noexcept
        : state_(std::move(o.state_)),
          ptr_(std::exchange(o.ptr_, nullptr)),
          bytes_(std::exchange(o.bytes_, 0)),
          use_(o.use_) {}
    DeviceAllocation& operator=(DeviceAllocation&& o) noexcept {
        if (this != &o) {
            reset();
            state_ = std::move(o.state_);
            ptr_ = std::exchange(o.ptr_, nullptr);
            bytes_ = std::exchange(o.bytes_, 0);
            use_ = o.use_;
        }
        return *this;
    }
    DeviceAllocation(const DeviceAllocation&) = delete;
    DeviceAllocation& operator=(const DeviceAllocation&) = delete;

    void* get() const { return ptr_; }
    template <typename T>
    T* as() const {
        return static_cast<T*>(ptr_);
    }
    uint64_t bytes() const { return bytes_; }  // charged bytes (rounded up to the alignment)
    explicit operator bool() const { return ptr_ != nullptr; }
    void reset() noexcept;

private:
    friend class DevicePool;
    std::shared_ptr<detail::PoolState> state_;
    void* ptr_ = nullptr;
    uint64_t bytes_ = 0;
    MemoryUse use_ = MemoryUse::Scratch;
};

class DevicePool {
public:
    // A budget of `budget_bytes` on `device`; 0 = the device's free memory now, less a 512 MiB
    // margin (for the CUDA context, cuBLAS and other processes). An explicit budget touches no
    // CUDA API here (so the budget checks run without a GPU).
    DevicePool(int device, uint64_t budget_bytes);

    static constexpr uint64_t kFreeMargin = 512ull << 20;

    // `bytes` (rounded up to 256) of device memory for `what` ("the KV cache", "blk.3 experts").
    // Throws hymoe::Error "GPU memory budget exceeded: <what> needs 1.20 GiB, 0.35 GiB of the
    // 8.00 GiB budget is left (--gpu-mem)" when it does not fit, or naming the CUDA failure.
    // bytes == 0 gives an empty allocation.
    DeviceAllocation allocate(uint64_t bytes, MemoryUse use, std::string_view what);

    // Throws the budget error above unless `bytes` more would fit now (a check before a group of
    // allocations, so a model that cannot fit fails before anything is uploaded).
    void require(uint64_t bytes, std::string_view what) const;

    int device() const { return state_->device; }
    uint64_t budget_bytes() const { return state_->budget; }
    uint64_t held_bytes() const;
    uint64_t held_bytes(MemoryUse use) const;
    uint64_t free_bytes() const;  // budget - held

    // "weights 3.10 GiB, kv cache 0.25 GiB, scratch 0.05 GiB of 8.00 GiB"
    std::string summary() const;

private:
    std::string budget_error(uint64_t bytes, uint64_t left, std::string_view what) const;
    std::shared_ptr<detail::PoolState> state_;
};

}  // namespace hymoe::cuda
