// The sampler chain (penalties -> top-k -> top-p -> min-p -> temperature -> draw) against
// llama.cpp's formulas and against softmax frequencies, and the stop-string matcher.
// Every random stream is seeded.
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "hymoe/error.hpp"
#include "runtime/sampler.hpp"

namespace hymoe {
namespace {

std::vector<float> random_logits(size_t n, uint32_t seed, float scale = 1.0f) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> dist(0.0f, scale);
    std::vector<float> v(n);
    for (float& x : v) x = dist(rng);
    return v;
}

std::vector<float> logits_of(const std::vector<double>& probs) {
    std::vector<float> l;
    for (double p : probs) l.push_back(static_cast<float>(std::log(p)));
    return l;
}

// Only the temperature and the draw: no filters, no penalties.
SamplingParams plain(float temperature, uint64_t seed) {
    SamplingParams p;
    p.temperature = temperature;
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    p.seed = seed;
    return p;
}

std::vector<int32_t> draws(Sampler& s, const std::vector<float>& logits, int n) {
    std::vector<int32_t> out;
    for (int i = 0; i < n; ++i) out.push_back(s.sample(logits));
    return out;
}

std::set<int32_t> distinct(const std::vector<int32_t>& v) {
    return {v.begin(), v.end()};
}

TEST(Sampler, GreedyPicksArgmaxWithLowestIdOnTies) {
    const std::vector<float> logits = {1.0f, 3.0f, 3.0f, 2.0f, -1.0f};
    for (const float t : {0.0f, -1.0f}) {
        Sampler s(plain(t, 1));
        EXPECT_EQ(draws(s, logits, 5), std::vector<int32_t>(5, 1));
    }
    SamplingParams p;  // the defaults with temperature 0: the filters do not change the argmax
    p.temperature = 0.0f;
    Sampler s(p);
    EXPECT_EQ(s.sample(logits), 1);
}

TEST(Sampler, SameSeedSameSequenceDifferentSeedDifferentSequence) {
    const auto logits = random_logits(100, 7);
    Sampler a(plain(1.0f, 42)), b(plain(1.0f, 42)), c(plain(1.0f, 43));
    const auto sa = draws(a, logits, 200);
    EXPECT_EQ(sa, draws(b, logits, 200));
    EXPECT_NE(sa, draws(c, logits, 200));
    EXPECT_GT(distinct(sa).size(), 20u);
}

TEST(Sampler, ResetReplaysTheSequence) {
    const auto logits = random_logits(100, 8);
    SamplingParams p = plain(1.0f, 5);
    p.repeat_penalty = 1.3f;
    Sampler s(p);
    const auto first = draws(s, logits, 50);
    s.reset();
    EXPECT_EQ(first, draws(s, logits, 50));
}

TEST(Sampler, RandomSeedIsReportedAndReproducible) {
    const auto logits = random_logits(100, 9);
    Sampler a(plain(1.0f, 0));
    Sampler b(plain(1.0f, a.seed()));
    EXPECT_EQ(draws(a, logits, 100), draws(b, logits, 100));
}

TEST(Sampler, TopK1IsGreedy) {
    SamplingParams p;
    p.top_k = 1;
    p.seed = 3;
    Sampler topk1(p);
    Sampler greedy(plain(0.0f, 3));
    for (uint32_t step = 0; step < 50; ++step) {
        const auto logits = random_logits(1000, 100 + step);
        EXPECT_EQ(topk1.sample(logits), greedy.sample(logits)) << "step " << step;
    }
}

TEST(Sampler, TopKKeepsTheKBestLowerIdsFirstOnTies) {
    // Ids 2, 5, 7 and 8 tie for the third place; top-3 keeps 2.
    const std::vector<float> logits = {0.0f, 2.0f, 1.0f, 0.5f, 3.0f, 1.0f, -1.0f, 1.0f, 1.0f};
    SamplingParams p = plain(5.0f, 11);
    p.top_k = 3;
    Sampler s(p);
    EXPECT_EQ(distinct(draws(s, logits, 2000)), (std::set<int32_t>{1, 2, 4}));
}

TEST(Sampler, TopPKeepsTheSmallestSetWithMassAtLeastP) {
    // Sorted: id 1 (0.5), id 3 (0.3), id 2 (0.15), id 0 (0.05).
    const auto logits = logits_of({0.05, 0.5, 0.15, 0.3});
    const struct {
        float top_p;
        std::set<int32_t> kept;
    } cases[] = {{0.4f, {1}}, {0.75f, {1, 3}}, {0.85f, {1, 2, 3}}, {0.99f, {0, 1, 2, 3}}};
    for (const auto& c : cases) {
        SamplingParams p = plain(1.0f, 13);
        p.top_p = c.top_p;
        Sampler s(p);
        const auto d = draws(s, logits, 4000);
        EXPECT_EQ(distinct(d), c.kept) << "top_p " << c.top_p;
        if (c.top_p == 0.75f) {  // renormalized over the kept set: 0.5 / 0.8
            const double f1 = static_cast<double>(std::count(d.begin(), d.end(), 1)) / static_cast<double>(d.size());
            EXPECT_NEAR(f1, 0.625, 0.03);
        }
    }
}

TEST(Sampler, TopPOnALargeVocabularyMatchesAFullSort) {
    // 150k tokens without top-k: top-p sorts its prefix in rounds; the set must equal the one a
    // full sort gives.
    const size_t n_vocab = 150000;
    const auto logits = random_logits(n_vocab, 21, 3.0f);
    const float top_p = 0.5f;

    std::vector<int32_t> order(n_vocab);
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(),
              [&](int32_t a, int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); });
    double z = 0.0;
    for (float l : logits) z += std::exp(static_cast<double>(l));
    std::set<int32_t> expected;
    double cum = 0.0;
    for (int32_t id : order) {
        expected.insert(id);
        cum += std::exp(static_cast<double>(logits[id])) / z;
        if (cum >= top_p) break;
    }
    ASSERT_GT(expected.size(), 64u);  // more than the first sorting round

    SamplingParams p = plain(1.0f, 17);
    p.top_p = top_p;
    Sampler s(p);
    const auto d = draws(s, logits, 300);
    for (int32_t t : d) ASSERT_TRUE(expected.count(t)) << "token " << t << " is outside the top-p set";
    EXPECT_GT(distinct(d).size(), 10u);
}

TEST(Sampler, MinPDropsTokensBelowMinPTimesPMax) {
    const auto logits = logits_of({0.5, 0.2, 0.04, 0.26});
    const struct {
        float min_p;
        std::set<int32_t> kept;
    } cases[] = {{0.1f, {0, 1, 3}}, {0.5f, {0, 3}}, {0.6f, {0}}, {0.05f, {0, 1, 2, 3}}};
    for (const auto& c : cases) {
        SamplingParams p = plain(1.0f, 19);
        p.min_p = c.min_p;
        Sampler s(p);
        EXPECT_EQ(distinct(draws(s, logits, 4000)), c.kept) << "min_p " << c.min_p;
    }
}

TEST(Sampler, TopPThenMinPKeepsTheShorterPrefix) {
    // Sorted: id 0 (0.5), id 3 (0.26), id 1 (0.2), id 2 (0.04). Min-p 0.1 drops id 2; top-p
    // measures mass over all four (0.5, 0.76, 0.96), not renormalized after min-p.
    const auto logits = logits_of({0.5, 0.2, 0.04, 0.26});
    const struct {
        float top_p, min_p;
        std::set<int32_t> kept;
    } cases[] = {{0.78f, 0.1f, {0, 1, 3}}, {0.7f, 0.1f, {0, 3}}, {0.99f, 0.5f, {0, 3}}, {0.4f, 0.01f, {0}}};
    for (const auto& c : cases) {
        SamplingParams p = plain(1.0f, 23);
        p.top_p = c.top_p;
        p.min_p = c.min_p;
        Sampler s(p);
        EXPECT_EQ(distinct(draws(s, logits, 4000)), c.kept) << "top_p " << c.top_p << ", min_p " << c.min_p;
    }
}

TEST(Sampler, RepeatPenaltyDividesPositiveAndMultipliesNegativeLogits) {
    SamplingParams p = plain(1.0f, 1);
    p.repeat_penalty = 1.5f;
    Sampler s(p);
    for (int32_t t : {1, 2, 2, 5, 0, 99}) s.accept(t);  // 99 is past the vocabulary: ignored
    std::vector<float> logits = {0.0f, 2.0f, -1.0f, 0.5f, 3.0f, -2.0f, 4.0f};
    s.apply_penalties(logits);
    const std::vector<float> expected = {0.0f * 1.5f, 2.0f / 1.5f, -1.0f * 1.5f, 0.5f, 3.0f, -2.0f * 1.5f, 4.0f};
    for (size_t i = 0; i < logits.size(); ++i) EXPECT_FLOAT_EQ(logits[i], expected[i]) << "token " << i;
}

TEST(Sampler, PresenceAndFrequencyPenaltiesSubtract) {
    SamplingParams p = plain(1.0f, 1);
    p.presence_penalty = 0.7f;
    p.frequency_penalty = 0.3f;
    p.repeat_penalty = 1.25f;
    Sampler s(p);
    for (int32_t t : {1, 2, 2, 2, 4}) s.accept(t);
    std::vector<float> logits = {1.0f, 1.0f, -1.0f, 2.0f, 0.5f};
    s.apply_penalties(logits);
    // llama.cpp: repeat first, then logit -= count * frequency + (count > 0) * presence.
    const std::vector<float> expected = {1.0f, 1.0f / 1.25f - (1.0f * 0.3f + 0.7f),
                                         -1.0f * 1.25f - (3.0f * 0.3f + 0.7f), 2.0f,
                                         0.5f / 1.25f - (1.0f * 0.3f + 0.7f)};
    for (size_t i = 0; i < logits.size(); ++i) EXPECT_FLOAT_EQ(logits[i], expected[i]) << "token " << i;
}

TEST(Sampler, PenaltiesSeeOnlyTheLastNTokens) {
    SamplingParams p = plain(1.0f, 1);
    p.frequency_penalty = 1.0f;
    p.penalty_last_n = 3;
    Sampler s(p);
    for (int32_t t : {0, 1, 1, 2, 1}) s.accept(t);  // window: 1, 2, 1
    std::vector<float> logits(4, 0.0f);
    s.apply_penalties(logits);
    EXPECT_EQ(logits, (std::vector<float>{0.0f, -2.0f, -1.0f, 0.0f}));

    s.reset();
    std::fill(logits.begin(), logits.end(), 0.0f);
    s.apply_penalties(logits);
    EXPECT_EQ(logits, std::vector<float>(4, 0.0f));

    p.penalty_last_n = 0;  // off
    Sampler off(p);
    off.accept(1);
    off.apply_penalties(logits);
    EXPECT_EQ(logits, std::vector<float>(4, 0.0f));
}

TEST(Sampler, SampleRecordsItsTokensForThePenalties) {
    // Greedy: 0 first; then 2.0 / 1.1 = 1.82 < 1.9 gives 1; then 1.82 > 1.73 gives 0 again.
    SamplingParams p = plain(0.0f, 1);
    p.repeat_penalty = 1.1f;
    Sampler s(p);
    const std::vector<float> logits = {2.0f, 1.9f};
    EXPECT_EQ(draws(s, logits, 3), (std::vector<int32_t>{0, 1, 0}));
}

TEST(Sampler, FrequenciesMatchTheSoftmax) {
    const std::vector<float> logits = {0.0f, 1.0f, -0.5f, 0.7f};
    for (const float t : {1.0f, 0.5f}) {
        std::vector<double> expected(logits.size());
        double z = 0.0;
        for (size_t i = 0; i < logits.size(); ++i) z += expected[i] = std::exp(logits[i] / static_cast<double>(t));
        Sampler s(plain(t, 1234));
        std::vector<int> counts(logits.size(), 0);
        const int n = 20000;
        for (int i = 0; i < n; ++i) ++counts[static_cast<size_t>(s.sample(logits))];
        for (size_t i = 0; i < logits.size(); ++i) {
            EXPECT_NEAR(counts[i] / static_cast<double>(n), expected[i] / z, 0.02) << "token " << i << ", T " << t;
        }
    }
}

TEST(Sampler, MaskedTokensAreNeverDrawn) {
    const float inf = std::numeric_limits<float>::infinity();
    const std::vector<float> logits = {-inf, 0.0f, std::nanf(""), 0.0f};
    Sampler s(plain(1.0f, 2));
    EXPECT_EQ(distinct(draws(s, logits, 1000)), (std::set<int32_t>{1, 3}));
}

TEST(Sampler, InvalidParametersAreRejectedByName) {
    const auto rejects = [](auto change, const char* message) {
        SamplingParams p;
        change(p);
        try {
            Sampler s(p);
            ADD_FAILURE() << "accepted; expected: " << message;
        } catch (const Error& e) {
            EXPECT_NE(std::string(e.what()).find(message), std::string::npos) << e.what();
        }
    };
    rejects([](SamplingParams& p) { p.top_p = 1.5f; }, "top_p must be in (0, 1], got 1.5");
    rejects([](SamplingParams& p) { p.top_p = 0.0f; }, "top_p must be in (0, 1], got 0");
    rejects([](SamplingParams& p) { p.min_p = -0.1f; }, "min_p must be in [0, 1]");
    rejects([](SamplingParams& p) { p.min_p = 2.0f; }, "min_p must be in [0, 1], got 2");
    rejects([](SamplingParams& p) { p.temperature = std::nanf(""); }, "temperature must be finite");
    rejects([](SamplingParams& p) { p.repeat_penalty = 0.0f; }, "repeat_penalty must be finite and > 0, got 0");
    rejects([](SamplingParams& p) { p.presence_penalty = INFINITY; }, "presence_penalty must be finite");
    rejects([](SamplingParams& p) { p.frequency_penalty = -INFINITY; }, "frequency_penalty must be finite");
    rejects([](SamplingParams& p) { p.penalty_last_n = -1; }, "penalty_last_n must be >= 0, got -1");

    Sampler s(plain(1.0f, 1));
    EXPECT_THROW(s.sample({}), Error);
    const float inf = std::numeric_limits<float>::infinity();
    EXPECT_THROW(s.sample(std::vector<float>{-inf, -inf}), Error);
    EXPECT_THROW(s.accept(-1), Error);
}

// ---- StopMatcher -------------------------------------------------------------------------

TEST(StopMatcher, PassesTextThroughWithoutStopStrings) {
    StopMatcher m({});
    EXPECT_EQ(m.feed("hello </s>"), "hello </s>");
    EXPECT_FALSE(m.stopped());
    EXPECT_EQ(m.flush(), "");
}

TEST(StopMatcher, HoldsBackAPartialMatchAcrossChunks) {
    StopMatcher m({"</s>"});
    EXPECT_EQ(m.feed("Hello <"), "Hello ");
    EXPECT_EQ(m.feed("/"), "");
    EXPECT_EQ(m.feed("x>"), "</x>");  // not a stop after all: released
    EXPECT_EQ(m.feed("and </"), "and ");
    EXPECT_EQ(m.feed("s> more"), "");
    EXPECT_TRUE(m.stopped());
    EXPECT_EQ(m.matched(), "</s>");
    EXPECT_EQ(m.feed("after"), "");
    EXPECT_EQ(m.flush(), "");
}

TEST(StopMatcher, ReportsTheTextBeforeTheMatch) {
    StopMatcher m({"User:", "\n\n"});
    EXPECT_EQ(m.feed("The answer is 4."), "The answer is 4.");
    EXPECT_EQ(m.feed(" Us"), " ");
    EXPECT_EQ(m.feed("ually yes.\nUser: hi"), "Usually yes.\n");
    EXPECT_TRUE(m.stopped());
    EXPECT_EQ(m.matched(), "User:");

    m.reset();
    EXPECT_FALSE(m.stopped());
    EXPECT_EQ(m.feed("a\n"), "a");
    EXPECT_EQ(m.feed("\nb"), "");
    EXPECT_EQ(m.matched(), "\n\n");
}

TEST(StopMatcher, EarliestMatchWins) {
    StopMatcher m({"world", "lo"});
    EXPECT_EQ(m.feed("hello world"), "hel");
    EXPECT_EQ(m.matched(), "lo");
}

TEST(StopMatcher, OverlappingPrefixes) {
    StopMatcher m({"aab"});
    std::string out;
    for (const char c : std::string("aaab")) out += m.feed(std::string(1, c));
    EXPECT_EQ(out, "a");
    EXPECT_TRUE(m.stopped());
}

TEST(StopMatcher, FlushReturnsTheHeldBackTail) {
    StopMatcher m({"</s>"});
    EXPECT_EQ(m.feed("abc</"), "abc");
    EXPECT_EQ(m.flush(), "</");
    EXPECT_FALSE(m.stopped());
}

TEST(StopMatcher, RejectsAnEmptyStopString) {
    try {
        StopMatcher m({"ok", ""});
        ADD_FAILURE() << "accepted an empty stop string";
    } catch (const Error& e) {
        EXPECT_STREQ(e.what(), "stop string 1 is empty");
    }
}

}  // namespace
}  // namespace hymoe
