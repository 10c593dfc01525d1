// cpu::ThreadPool: every index visited once, contiguous chunks, exceptions reach the caller,
// nested and concurrent calls, many calls in a row, size 1.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "cpu/thread_pool.hpp"
#include "hymoe/error.hpp"

namespace hymoe::cpu {
namespace {

// Runs parallel_for(n) and checks each index was visited exactly once, by at most size() chunks.
void expect_covers(ThreadPool& pool, int64_t n) {
    std::vector<std::atomic<int>> visits(static_cast<size_t>(n));
    std::mutex m;
    std::vector<std::pair<int64_t, int64_t>> chunks;
    pool.parallel_for(n, [&](int64_t begin, int64_t end) {
        {
            std::lock_guard lock(m);
            chunks.emplace_back(begin, end);
        }
        for (int64_t i = begin; i < end; ++i) visits[static_cast<size_t>(i)].fetch_add(1);
    });
    int bad = 0;
    for (int64_t i = 0; i < n; ++i) {
        const int v = visits[static_cast<size_t>(i)].load();
        if (v != 1 && ++bad <= 10) ADD_FAILURE() << "n " << n << ": index " << i << " visited " << v << " times";
    }
    EXPECT_LE(chunks.size(), static_cast<size_t>(pool.size())) << "n " << n;
    for (const auto& [b, e] : chunks) EXPECT_LT(b, e) << "n " << n << ": empty chunk";
}

TEST(ThreadPool, VisitsEveryIndexOnce) {
    for (int size : {1, 2, 3, 8}) {
        ThreadPool pool(size);
        EXPECT_EQ(pool.size(), size);
        for (int64_t n : {1, 2, 3, 7, 8, 9, 1000, 100003}) expect_covers(pool, n);
    }
}

TEST(ThreadPool, Sums) {
    ThreadPool pool(4);
    const int64_t n = 1'000'003;
    std::atomic<int64_t> sum{0};
    pool.parallel_for(n, [&](int64_t begin, int64_t end) {
        int64_t s = 0;
        for (int64_t i = begin; i < end; ++i) s += i;
        sum += s;
    });
    EXPECT_EQ(sum.load(), n * (n - 1) / 2);
}

TEST(ThreadPool, ZeroOrNegativeCountRunsNothing) {
    ThreadPool pool(3);
    int calls = 0;
    pool.parallel_for(0, [&](int64_t, int64_t) { ++calls; });
    pool.parallel_for(-5, [&](int64_t, int64_t) { ++calls; });
    EXPECT_EQ(calls, 0);
}

TEST(ThreadPool, SizeOneRunsOnTheCaller) {
    ThreadPool pool(1);
    EXPECT_EQ(pool.size(), 1);
    std::thread::id ran_on;
    int64_t b = -1, e = -1;
    pool.parallel_for(17, [&](int64_t begin, int64_t end) {
        ran_on = std::this_thread::get_id();
        b = begin;
        e = end;
    });
    EXPECT_EQ(ran_on, std::this_thread::get_id());
    EXPECT_EQ(b, 0);
    EXPECT_EQ(e, 17);
}

TEST(ThreadPool, ZeroMeansHardwareThreadsAndNegativeThrows) {
    ThreadPool pool(0);
    EXPECT_GE(pool.size(), 1);
    EXPECT_THROW(ThreadPool(-1), Error);
}

TEST(ThreadPool, UsesWorkerThreads) {
    ThreadPool pool(4);
    std::mutex m;
    std::set<std::thread::id> ids;
    pool.parallel_for(4, [&](int64_t, int64_t) {
        std::lock_guard lock(m);
        ids.insert(std::this_thread::get_id());
    });
    EXPECT_EQ(ids.size(), 4u);
    EXPECT_TRUE(ids.count(std::this_thread::get_id()) == 1) << "the caller takes a chunk";
}

TEST(ThreadPool, ExceptionFromAWorkerReachesTheCaller) {
    ThreadPool pool(4);
    const int64_t n = 400;
    try {
        pool.parallel_for(n, [&](int64_t, int64_t end) {
            if (end == n) throw std::runtime_error("last chunk failed");  // a worker's chunk
        });
        ADD_FAILURE() << "no exception";
    } catch (const std::runtime_error& e) {
        EXPECT_EQ(std::string(e.what()), "last chunk failed");
    }
    // The pool still works afterwards.
    expect_covers(pool, 1000);
}

TEST(ThreadPool, ExceptionFromTheCallersChunkWaitsForWorkers) {
    ThreadPool pool(3);
    std::atomic<int> finished{0};
    EXPECT_THROW(pool.parallel_for(3,
                                   [&](int64_t begin, int64_t) {
                                       if (begin == 0) throw Error("first chunk failed");
                                       std::this_thread::sleep_for(std::chrono::milliseconds(20));
                                       ++finished;
                                   }),
                 Error);
    EXPECT_EQ(finished.load(), 2) << "parallel_for returned before the workers were done";
}

TEST(ThreadPool, EveryChunkThrowingGivesOneException) {
    ThreadPool pool(4);
    for (int rep = 0; rep < 50; ++rep) {
        EXPECT_THROW(pool.parallel_for(64, [](int64_t, int64_t) { throw std::logic_error("boom"); }), std::logic_error);
    }
    expect_covers(pool, 64);
}

TEST(ThreadPool, NestedCallsRunInline) {
    ThreadPool pool(4);
    std::atomic<int> inner_ok{0};
    std::atomic<int64_t> inner_sum{0};
    pool.parallel_for(8, [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) {
            const auto outer_thread = std::this_thread::get_id();
            int inner_chunks = 0;
            pool.parallel_for(10, [&](int64_t b, int64_t e) {
                ++inner_chunks;
                if (std::this_thread::get_id() == outer_thread && b == 0 && e == 10) ++inner_ok;
                for (int64_t j = b; j < e; ++j) inner_sum += j;
            });
            EXPECT_EQ(inner_chunks, 1);
        }
    });
    EXPECT_EQ(inner_ok.load(), 8);
    EXPECT_EQ(inner_sum.load(), 8 * 45);
    // Nesting two levels deep, through another pool.
    ThreadPool other(2);
    std::atomic<int> deepest{0};
    pool.parallel_for(4, [&](int64_t, int64_t) {
        other.parallel_for(3, [&](int64_t, int64_t) { pool.parallel_for(2, [&](int64_t, int64_t) { ++deepest; }); });
    });
    EXPECT_EQ(deepest.load(), 4);
}

TEST(ThreadPool, ManySequentialCalls) {
    ThreadPool pool(3);
    int64_t total = 0;
    for (int call = 0; call < 20000; ++call) {
        std::atomic<int64_t> sum{0};
        const int64_t n = 1 + call % 7;
        pool.parallel_for(n, [&](int64_t begin, int64_t end) {
            for (int64_t i = begin; i < end; ++i) sum += i + 1;
        });
        ASSERT_EQ(sum.load(), n * (n + 1) / 2) << "call " << call;
        total += sum.load();
    }
    EXPECT_GT(total, 0);
}

TEST(ThreadPool, CallsFromSeveralThreadsAreSerialized) {
    ThreadPool pool(3);
    std::atomic<int> inside{0};
    std::atomic<int> max_inside{0};
    std::atomic<int> errors{0};
    std::vector<std::thread> callers;
    for (int c = 0; c < 4; ++c) {
        callers.emplace_back([&] {
            for (int call = 0; call < 300; ++call) {
                std::atomic<int64_t> sum{0};
                pool.parallel_for(3, [&](int64_t begin, int64_t end) {
                    const int now = ++inside;
                    int seen = max_inside.load();
                    while (now > seen && !max_inside.compare_exchange_weak(seen, now)) {
                    }
                    for (int64_t i = begin; i < end; ++i) sum += i;
                    --inside;
                });
                if (sum.load() != 3) ++errors;
            }
        });
    }
    for (auto& t : callers) t.join();
    EXPECT_EQ(errors.load(), 0);
    // One call at a time: never more chunks in flight than the pool has threads.
    EXPECT_LE(max_inside.load(), pool.size());
}

TEST(ThreadPool, DestroysWhileIdleAndAfterUse) {
    for (int rep = 0; rep < 20; ++rep) {
        ThreadPool pool(4);
        if (rep % 2 == 0) expect_covers(pool, 100);
    }
}

}  // namespace
}  // namespace hymoe::cpu
