// A thread that runs expert reads in the order they were queued, so reading an expert from the
// model file overlaps with computing others.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

namespace hymoe::offload {

class ExpertLoader {
public:
    ExpertLoader();
    ~ExpertLoader();  // finishes the queued reads, then joins
    ExpertLoader(const ExpertLoader&) = delete;
    ExpertLoader& operator=(const ExpertLoader&) = delete;

    // Runs `job` on the loader thread after the jobs queued before it. A job reports its own
    // errors (it must not throw).
    void enqueue(std::function<void()> job);

private:
    void loop();

    std::mutex m_;
    std::condition_variable cv_;
    std::deque<std::function<void()>> jobs_;
    bool stop_ = false;
    std::thread thread_;
};

}  // namespace hymoe::offload
