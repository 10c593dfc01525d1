#include "offload/expert_loader.hpp"

namespace hymoe::offload {

ExpertLoader::ExpertLoader() : thread_([this] { loop(); }) {}

ExpertLoader::~ExpertLoader() {
    {
        std::lock_guard lk(m_);
        stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
}

void ExpertLoader::enqueue(std::function<void()> job) {
    {
        std::lock_guard lk(m_);
        jobs_.push_back(std::move(job));
    }
    cv_.notify_one();
}

void ExpertLoader::loop() {
    for (;;) {
        std::function<void()> job;
        {
            std::unique_lock lk(m_);
            cv_.wait(lk, [this] { return stop_ || !jobs_.empty(); });
            if (jobs_.empty()) return;  // stop_ and nothing left
            job = std::move(jobs_.front());
            jobs_.pop_front();
        }
        job();
    }
}

}  // namespace hymoe::offload
