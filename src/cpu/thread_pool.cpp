// Workers wait for a job generation: a short spin, then a condition variable. The caller runs
// chunk 0 itself and waits the same way for the workers to finish.
#include "cpu/thread_pool.hpp"

#include <algorithm>
#include <chrono>
#include <utility>

#include <fmt/format.h>

#include "hymoe/error.hpp"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>  // _mm_pause (SSE2, part of the x86-64 baseline)
#endif

namespace hymoe::cpu {

namespace {

// True on pool workers for their whole life and on a caller while its parallel_for runs. A
// parallel_for issued from inside fn then runs inline: queuing it would wait on workers that are
// busy with (or waiting for) the very call that issued it.
thread_local bool t_in_parallel_for = false;

class InParallelFor {
public:
    InParallelFor() : saved_(std::exchange(t_in_parallel_for, true)) {}
    ~InParallelFor() { t_in_parallel_for = saved_; }
    InParallelFor(const InParallelFor&) = delete;
    InParallelFor& operator=(const InParallelFor&) = delete;

private:
    bool saved_;
};

// How long a waiting thread polls before it sleeps. A decode step issues parallel_for calls a
// few microseconds apart (one per matmul); polling catches the next one without a futex
// round trip, and sleeping after 50 us keeps an idle pool off the CPU.
constexpr auto kSpinTime = std::chrono::microseconds(50);

void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
    _mm_pause();
#elif defined(__aarch64__)
    asm volatile("yield" ::: "memory");
#endif
}

}  // namespace

ThreadPool::ThreadPool(int n_threads) {
    if (n_threads < 0) throw Error(fmt::format("ThreadPool: n_threads must be >= 0 (got {})", n_threads));
    if (n_threads == 0) n_threads = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
    n_threads_ = n_threads;
    workers_.reserve(static_cast<size_t>(n_threads - 1));
    try {
        for (int i = 1; i < n_threads; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
    } catch (...) {  // a thread could not start: stop the ones that did
        stop_workers();
        throw;
    }
}

ThreadPool::~ThreadPool() {
    stop_workers();
}

void ThreadPool::stop_workers() noexcept {
    {
        std::lock_guard lock(wake_mutex_);
        stop_.store(true, std::memory_order_relaxed);
        generation_.fetch_add(1, std::memory_order_release);
    }
    wake_cv_.notify_all();
    for (std::thread& t : workers_) t.join();
    workers_.clear();
}

int ThreadPool::size() const {
    return n_threads_;
}

template <class Pred>
void ThreadPool::wait_for(std::mutex& m, std::condition_variable& cv, const Pred& done) {
    if (done()) return;
    const auto deadline = std::chrono::steady_clock::now() + kSpinTime;
    for (unsigned i = 1;; ++i) {
        cpu_relax();
        if (done()) return;
        if (i % 64 == 0) {
            if (std::chrono::steady_clock::now() >= deadline) break;
            // With more threads than free cores, the thread being waited for may need this
            // core: let it run.
            std::this_thread::yield();
        }
    }
    // The notifier changes the state (or notifies) under `m`, so checking `done` under `m` and
    // then sleeping cannot miss the wake-up.
    std::unique_lock lock(m);
    cv.wait(lock, done);
}

void ThreadPool::run_chunk(int index) noexcept {
    // Balanced contiguous chunks: the first n % chunks get one extra element.
    const int64_t base = n_ / n_chunks_;
    const int64_t extra = n_ % n_chunks_;
    const int64_t begin = base * index + std::min<int64_t>(index, extra);
    const int64_t end = begin + base + (index < extra ? 1 : 0);
    try {
        (*fn_)(begin, end);
    } catch (...) {
        std::lock_guard lock(error_mutex_);
        if (!error_) error_ = std::current_exception();
    }
}

void ThreadPool::worker_loop(int index) {
    t_in_parallel_for = true;
    uint64_t seen = 0;
    for (;;) {
        wait_for(wake_mutex_, wake_cv_, [&] { return generation_.load(std::memory_order_acquire) != seen; });
        // The caller starts no new job until every worker has finished this one, so no
        // generation is skipped and the job fields stay put while this worker reads them.
        seen = generation_.load(std::memory_order_acquire);
        if (stop_.load(std::memory_order_relaxed)) return;
        if (index < n_chunks_) run_chunk(index);
        if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
            std::lock_guard lock(done_mutex_);
            done_cv_.notify_one();
        }
    }
}

void ThreadPool::parallel_for(int64_t n, const Fn& fn) {
    if (n <= 0) return;
    if (t_in_parallel_for || n_threads_ == 1 || n == 1) {  // nested, or a single chunk anyway
        InParallelFor in_call;
        fn(0, n);
        return;
    }
    std::lock_guard call_lock(call_mutex_);
    InParallelFor in_call;

    fn_ = &fn;
    n_ = n;
    n_chunks_ = static_cast<int>(std::min<int64_t>(n, n_threads_));
    error_ = nullptr;
    // Every worker acknowledges every generation, even those without a chunk: then a job's
    // fields are never rewritten while a slow worker may still be reading them.
    pending_.store(n_threads_ - 1, std::memory_order_relaxed);
    {
        std::lock_guard lock(wake_mutex_);
        generation_.fetch_add(1, std::memory_order_release);
    }
    wake_cv_.notify_all();

    run_chunk(0);
    wait_for(done_mutex_, done_cv_, [&] { return pending_.load(std::memory_order_acquire) == 0; });
    fn_ = nullptr;
    if (std::exception_ptr error = std::exchange(error_, nullptr)) std::rethrow_exception(error);
}

}  // namespace hymoe::cpu
