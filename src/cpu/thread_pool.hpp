// A fixed pool of worker threads for data-parallel loops.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace hymoe::cpu {

class ThreadPool {
public:
    // n_threads counts the calling thread: ThreadPool(1) starts no workers. 0 = hardware threads.
    explicit ThreadPool(int n_threads);
    ~ThreadPool();
    ThreadPool(const ThreadPool&) = delete;
    ThreadPool& operator=(const ThreadPool&) = delete;

    int size() const;

    // Splits [0, n) into at most size() contiguous chunks and runs fn(begin, end) on each, the
    // caller taking one; returns when all are done. Calls from different threads are
    // serialized; a call made from inside fn runs inline on that thread.
    void parallel_for(int64_t n, const std::function<void(int64_t begin, int64_t end)>& fn);

private:
    using Fn = std::function<void(int64_t begin, int64_t end)>;

    void worker_loop(int index);
    void stop_workers() noexcept;
    // Runs chunk `index` of the current job, keeping the first exception for the caller.
    void run_chunk(int index) noexcept;
    // Waits until `done()` holds: spins briefly, so back-to-back calls (one per matmul) skip the
    // sleep and wake-up, then blocks on `cv`.
    template <class Pred>
    void wait_for(std::mutex& m, std::condition_variable& cv, const Pred& done);

    int n_threads_ = 1;
    std::vector<std::thread> workers_;  // [n_threads_ - 1]; worker i runs chunk i + 1

    std::mutex call_mutex_;  // serializes parallel_for calls from different threads

    // The current job. Written by the caller only while every worker is idle (all have finished
    // the previous generation), read by the workers after they see the new generation.
    const Fn* fn_ = nullptr;
    int64_t n_ = 0;
    int n_chunks_ = 0;

    std::mutex wake_mutex_;
    std::condition_variable wake_cv_;      // workers sleep here between jobs
    std::atomic<uint64_t> generation_{0};  // +1 per job (and once at shutdown)
    std::atomic<bool> stop_{false};

    std::atomic<int> pending_{0};  // workers that have not finished the current generation
    std::mutex done_mutex_;
    std::condition_variable done_cv_;  // the caller sleeps here until pending_ is 0

    std::mutex error_mutex_;
    std::exception_ptr error_;  // the first exception a chunk threw
};

}  // namespace hymoe::cpu
