#include "runtime/sampler.hpp"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <limits>

#include <fmt/format.h>

#include "hymoe/error.hpp"

namespace hymoe {

namespace {

void validate(const SamplingParams& p) {
    if (!std::isfinite(p.temperature)) throw Error(fmt::format("temperature must be finite, got {}", p.temperature));
    if (!(p.top_p > 0.0f && p.top_p <= 1.0f)) throw Error(fmt::format("top_p must be in (0, 1], got {}", p.top_p));
    if (!(p.min_p >= 0.0f && p.min_p <= 1.0f)) throw Error(fmt::format("min_p must be in [0, 1], got {}", p.min_p));
    if (!(std::isfinite(p.repeat_penalty) && p.repeat_penalty > 0.0f)) {
        throw Error(fmt::format("repeat_penalty must be finite and > 0, got {}", p.repeat_penalty));
    }
    if (!std::isfinite(p.presence_penalty)) {
        throw Error(fmt::format("presence_penalty must be finite, got {}", p.presence_penalty));
    }
    if (!std::isfinite(p.frequency_penalty)) {
        throw Error(fmt::format("frequency_penalty must be finite, got {}", p.frequency_penalty));
    }
    if (p.penalty_last_n < 0) throw Error(fmt::format("penalty_last_n must be >= 0, got {}", p.penalty_last_n));
}

uint64_t pick_seed(uint64_t requested) {
    if (requested != 0) return requested;
    std::random_device rd;
    return (static_cast<uint64_t>(rd()) << 32) ^ static_cast<uint64_t>(rd());
}

}  // namespace

Sampler::Sampler(SamplingParams params) : params_(params) {
    validate(params_);
    seed_ = pick_seed(params_.seed);
    rng_.seed(seed_);
    ring_.resize(static_cast<size_t>(params_.penalty_last_n));
    counts_.reserve(ring_.size());
}

void Sampler::reset() {
    ring_head_ = 0;
    ring_size_ = 0;
    counts_.clear();
    rng_.seed(seed_);
}

void Sampler::accept(int32_t token) {
    if (token < 0) throw Error(fmt::format("sampler: token id must be >= 0, got {}", token));
    if (ring_.empty()) return;
    auto by_id = [](const std::pair<int32_t, int32_t>& c, int32_t id) { return c.first < id; };
    if (ring_size_ == ring_.size()) {
        const int32_t evicted = ring_[ring_head_];
        const auto it = std::lower_bound(counts_.begin(), counts_.end(), evicted, by_id);
        assert(it != counts_.end() && it->first == evicted && it->second > 0);
        if (--it->second == 0) counts_.erase(it);
    } else {
        ++ring_size_;
    }
    ring_[ring_head_] = token;
    ring_head_ = (ring_head_ + 1) % ring_.size();
    const auto it = std::lower_bound(counts_.begin(), counts_.end(), token, by_id);
    if (it != counts_.end() && it->first == token) {
        ++it->second;
    } else {
        counts_.insert(it, {token, 1});  // within the reserved capacity: distinct ids <= window
    }
}

bool Sampler::penalties_on() const {
    return !counts_.empty() &&
           (params_.repeat_penalty != 1.0f || params_.presence_penalty != 0.0f || params_.frequency_penalty != 0.0f);
}

// llama.cpp's llama_sampler_penalties_apply, term for term.
float Sampler::penalized(float logit, int32_t count) const {
    if (logit <= 0.0f) {
        logit *= params_.repeat_penalty;
    } else {
        logit /= params_.repeat_penalty;
    }
    return logit - (static_cast<float>(count) * params_.frequency_penalty +
                    static_cast<float>(count > 0) * params_.presence_penalty);
}

void Sampler::apply_penalties(std::span<float> logits) const {
    if (!penalties_on()) return;
    for (const auto& [id, count] : counts_) {
        if (static_cast<size_t>(id) < logits.size()) logits[id] = penalized(logits[id], count);
    }
}

namespace {

// Descending logit, then ascending id: a total order, so ties resolve the same everywhere.
bool better(const auto& a, const auto& b) {
    return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
}

}  // namespace

void Sampler::sort_prefix(size_t n) {
    n = std::min(n, cand_.size());
    if (n <= sorted_) return;
    // Everything past sorted_ ranks below the sorted prefix, so sorting within the rest is enough.
    // A heap-based partial sort only pays off for a short prefix of a long rest.
    const auto cmp = [](const Candidate& a, const Candidate& b) { return better(a, b); };
    const auto first = cand_.begin() + static_cast<ptrdiff_t>(sorted_);
    if ((n - sorted_) * 8 >= cand_.size() - sorted_) {
        std::sort(first, cand_.end(), cmp);
        sorted_ = cand_.size();
    } else {
        std::partial_sort(first, cand_.begin() + static_cast<ptrdiff_t>(n), cand_.end(), cmp);
        sorted_ = n;
    }
}

float Sampler::max_logit() const {
    if (sorted_ > 0) return cand_[0].logit;
    float m = -std::numeric_limits<float>::infinity();
    for (const Candidate& c : cand_) m = std::max(m, c.logit);
    return m;
}

void Sampler::top_k() {
    if (params_.top_k <= 0 || static_cast<size_t>(params_.top_k) >= cand_.size()) return;
    const auto k = static_cast<size_t>(params_.top_k);
    sort_prefix(k);
    cand_.resize(k);
}

// Top-p keeps the smallest best-first prefix whose probability reaches top_p; min-p keeps the
// tokens with p >= min_p * p_max, i.e. logit >= max_logit + log(min_p) (llama.cpp's test).
// Both keep a best-first prefix, and min-p's threshold does not depend on what top-p dropped,
// so the result of llama.cpp's order (top-p, then min-p) is the shorter prefix. Min-p goes first
// here because it needs no sort and usually leaves few candidates for top-p to sort; top-p
// still measures probabilities against everything top-k left.
void Sampler::top_p_min_p() {
    if (cand_.size() <= 1) return;
    const bool use_top_p = params_.top_p < 1.0f;
    const double max = max_logit();
    double z = 0.0;
    if (use_top_p) {
        for (const Candidate& c : cand_) z += std::exp(static_cast<double>(c.logit) - max);
    }

    if (params_.min_p > 0.0f) {
        const float threshold = static_cast<float>(max) + std::log(params_.min_p);
        size_t kept_sorted = 0;
        while (kept_sorted < sorted_ && cand_[kept_sorted].logit >= threshold) ++kept_sorted;
        const auto end = std::remove_if(cand_.begin(), cand_.end(),
                                        [threshold](const Candidate& c) { return !(c.logit >= threshold); });
        cand_.erase(end, cand_.end());  // keeps the order, so cand_[0, kept_sorted) is still sorted
        sorted_ = kept_sorted;
    }

    if (!use_top_p) return;
    // Sorts only as much as it needs: 64 candidates first, eight times more each round.
    const double inv_z = 1.0 / z;
    double cum = 0.0;
    size_t i = 0;
    for (size_t n = 64;; n *= 8) {
        sort_prefix(n);
        for (; i < sorted_; ++i) {
            cum += std::exp(static_cast<double>(cand_[i].logit) - max) * inv_z;
            if (cum >= static_cast<double>(params_.top_p)) {
                cand_.resize(i + 1);
                sorted_ = i + 1;
                return;
            }
        }
        if (sorted_ == cand_.size()) return;
    }
}

// Inverse CDF over softmax(logit / temperature) of the candidates, with a 53-bit uniform double
// in [0, 1). (logit - max) / temperature <= 0, so a tiny temperature cannot overflow.
int32_t Sampler::draw() {
    const double max = max_logit();
    const double inv_t = 1.0 / static_cast<double>(params_.temperature);
    double z = 0.0;
    for (const Candidate& c : cand_) z += std::exp((static_cast<double>(c.logit) - max) * inv_t);
    const double u = static_cast<double>(rng_() >> 11) * 0x1.0p-53;
    const double target = u * z;
    double cum = 0.0;
    for (const Candidate& c : cand_) {
        cum += std::exp((static_cast<double>(c.logit) - max) * inv_t);
        if (cum > target) return c.id;
    }
    return cand_.back().id;  // u * z rounded up to z
}

int32_t Sampler::sample(std::span<const float> logits) {
    if (logits.empty()) throw Error("sampler: logits are empty");
    if (logits.size() > static_cast<size_t>(std::numeric_limits<int32_t>::max())) {
        throw Error(fmt::format("sampler: {} logits do not fit int32 token ids", logits.size()));
    }

    // [n_vocab]; NaN becomes -inf so the sort's order stays total.
    cand_.resize(logits.size());
    for (size_t i = 0; i < logits.size(); ++i) {
        const float l = logits[i];
        cand_[i] = {static_cast<int32_t>(i), std::isnan(l) ? -std::numeric_limits<float>::infinity() : l};
    }
    sorted_ = 0;
    if (penalties_on()) {
        for (const auto& [id, count] : counts_) {
            if (static_cast<size_t>(id) < cand_.size()) cand_[id].logit = penalized(cand_[id].logit, count);
        }
    }
    if (max_logit() == -std::numeric_limits<float>::infinity()) throw Error("sampler: every logit is -inf or NaN");

    int32_t token = 0;
    if (params_.temperature <= 0.0f) {
        // Every filter keeps the best token, so greedy is the argmax; strict > keeps the lowest id.
        size_t best = 0;
        for (size_t i = 1; i < cand_.size(); ++i) {
            if (cand_[i].logit > cand_[best].logit) best = i;
        }
        token = cand_[best].id;
    } else {
        top_k();
        top_p_min_p();
        token = draw();  // applies the temperature
    }
    accept(token);
    return token;
}

// ---- StopMatcher ------------------------------------------------------------------------

StopMatcher::StopMatcher(std::vector<std::string> stop_strings) : stops_(std::move(stop_strings)) {
    for (size_t i = 0; i < stops_.size(); ++i) {
        if (stops_[i].empty()) throw Error(fmt::format("stop string {} is empty", i));
    }
}

void StopMatcher::reset() {
    held_.clear();
    matched_.clear();
    stopped_ = false;
}

std::string StopMatcher::feed(std::string_view text) {
    if (stopped_) return {};
    held_.append(text);

    // The earliest match wins; at the same position, the stop string listed first.
    size_t best_pos = std::string::npos;
    const std::string* best = nullptr;
    for (const std::string& s : stops_) {
        const size_t pos = held_.find(s);
        if (pos < best_pos) {
            best_pos = pos;
            best = &s;
        }
    }
    if (best != nullptr) {
        std::string before = held_.substr(0, best_pos);
        matched_ = *best;
        stopped_ = true;
        held_.clear();
        return before;
    }

    // Hold back the longest tail that is a proper prefix of some stop string.
    size_t hold = 0;
    const std::string_view held(held_);
    for (const std::string& s : stops_) {
        for (size_t len = std::min(s.size() - 1, held.size()); len > hold; --len) {
            if (held.substr(held.size() - len) == std::string_view(s).substr(0, len)) {
                hold = len;
                break;
            }
        }
    }
    std::string out = held_.substr(0, held_.size() - hold);
    held_.erase(0, held_.size() - hold);
    return out;
}

std::string StopMatcher::flush() {
    std::string out = std::move(held_);
    held_.clear();
    return out;
}

}  // namespace hymoe
