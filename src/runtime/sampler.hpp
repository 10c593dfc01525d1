// Token sampling as llama.cpp's default common sampler chain does it:
//   penalties -> top-k -> top-p -> min-p -> temperature -> draw from the softmax
// Temperature <= 0 is greedy: the argmax after penalties (the filters always keep it), lowest
// id on ties. Top-p and min-p see the probabilities before temperature, as in llama.cpp.
// The draw uses mt19937_64 and a cumulative sum, so a seed gives the same tokens everywhere.
// One Sampler per generation stream; not thread-safe.
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace hymoe {

struct SamplingParams {
    float temperature = 0.8f;        // <= 0: greedy (argmax, lowest id on ties)
    int32_t top_k = 40;              // <= 0: off
    float top_p = 0.95f;             // in (0, 1]; 1: off
    float min_p = 0.05f;             // in [0, 1]; 0: off
    float repeat_penalty = 1.0f;     // > 0; 1: off. logit > 0 ? logit / p : logit * p
    float presence_penalty = 0.0f;   // subtracted once from every token in the window
    float frequency_penalty = 0.0f;  // subtracted once per occurrence in the window
    int32_t penalty_last_n = 64;     // >= 0; how many recent tokens the penalties see; 0: off
    uint64_t seed = 0;               // 0: a random seed from std::random_device (seed() tells it)
};

class Sampler {
public:
    // Throws hymoe::Error naming the first bad parameter, e.g. "top_p must be in (0, 1], got 1.5".
    explicit Sampler(SamplingParams params);

    // Picks the next token from logits [n_vocab] and records it in the penalty history.
    // NaN logits count as -inf. Throws hymoe::Error if logits is empty or all -inf.
    int32_t sample(std::span<const float> logits);

    // Records a prompt or forced token in the penalty history. Throws on a negative id.
    void accept(int32_t token);

    // Forgets the history and restarts the random sequence from seed().
    void reset();

    uint64_t seed() const { return seed_; }
    const SamplingParams& params() const { return params_; }

    // The first step of sample(): repeat, presence and frequency penalties applied in place to
    // logits [n_vocab] for each token in the window (ids >= n_vocab are ignored).
    void apply_penalties(std::span<float> logits) const;

private:
    struct Candidate {
        int32_t id;
        float logit;
    };

    bool penalties_on() const;
    float penalized(float logit, int32_t count) const;
    void sort_prefix(size_t n);
    float max_logit() const;
    void top_k();
    void top_p_min_p();
    int32_t draw();

    SamplingParams params_;
    uint64_t seed_ = 0;
    std::mt19937_64 rng_;

    // The penalty window: a ring of the last penalty_last_n tokens and, sorted by id, how
    // often each occurs in it. Both are sized once in the constructor.
    std::vector<int32_t> ring_;                        // [penalty_last_n]
    size_t ring_head_ = 0;                             // next slot to write
    size_t ring_size_ = 0;                             // filled slots
    std::vector<std::pair<int32_t, int32_t>> counts_;  // [<= penalty_last_n] (id, count)

    // Candidates of the current call; cand_[0, sorted_) is the best sorted_ in descending order.
    std::vector<Candidate> cand_;  // [<= n_vocab], capacity kept across calls
    size_t sorted_ = 0;
};

// Watches generated text for stop strings. feed() returns the text that is safe to print now:
// everything except a tail that could still grow into a stop string. When a stop string
// completes, feed() returns the not yet returned text before it, stopped() turns true and
// matched() names the string; later feeds return "". Matching is on bytes.
class StopMatcher {
public:
    // Throws hymoe::Error on an empty stop string.
    explicit StopMatcher(std::vector<std::string> stop_strings);

    std::string feed(std::string_view text);

    // At the end of generation without a stop: the held-back tail.
    std::string flush();

    bool stopped() const { return stopped_; }
    const std::string& matched() const { return matched_; }  // empty until stopped()
    void reset();

private:
    std::vector<std::string> stops_;
    std::string held_;  // text fed but not yet returned
    std::string matched_;
    bool stopped_ = false;
};

}  // namespace hymoe
