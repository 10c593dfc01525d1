// Logits of tiny random-initialised HF models (tests/fixtures/make_hf_models.py) loaded from
// their safetensors directories, against the logits transformers computed for them.
#include <filesystem>
#include <fstream>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "hymoe/engine.hpp"
#include "hymoe/error.hpp"
#include "logit_compare.hpp"
#include "test_support.hpp"

namespace hymoe {
namespace {

namespace fs = std::filesystem;

fs::path hf_dir() {
    return test::fixtures_dir() / "hf-models";
}

std::vector<std::string> hf_models() {
    std::vector<std::string> names;
    for (const auto& entry : fs::directory_iterator(hf_dir()))
        if (entry.path().extension() == ".json") names.push_back(entry.path().stem().string());
    std::sort(names.begin(), names.end());
    return names;
}

class HfReference : public ::testing::TestWithParam<std::string> {};

TEST_P(HfReference, PromptAndTeacherForcedDecodeLogits) {
    const auto ref = nlohmann::json::parse(test::read_text(hf_dir() / (GetParam() + ".json")));
    const auto prompt = ref.at("prompt_tokens").get<std::vector<int32_t>>();
    const auto greedy = ref.at("greedy_tokens").get<std::vector<int32_t>>();
    const auto n_vocab = ref.at("n_vocab").get<size_t>();
    const auto n_tokens = ref.at("n_tokens").get<size_t>();
    ASSERT_EQ(n_tokens, prompt.size() + greedy.size());
    std::vector<float> expected(n_tokens * n_vocab);
    {
        std::ifstream in(hf_dir() / ref.at("logits_file").get<std::string>(), std::ios::binary);
        in.read(reinterpret_cast<char*>(expected.data()), static_cast<std::streamsize>(expected.size() * 4));
        ASSERT_EQ(static_cast<size_t>(in.gcount()), expected.size() * 4);
    }
    const std::string model_dir = (hf_dir() / GetParam()).string();
    const double tol = test::tolerance_for(open_model_file(model_dir));
    auto model = Model::load(model_dir, {.n_threads = 2, .n_ctx = 64, .device = "cpu"});
    ASSERT_EQ(static_cast<size_t>(model->n_vocab()), n_vocab);
    Session session(model);

    const auto row = [&](size_t p) { return std::span<const float>(expected).subspan(p * n_vocab, n_vocab); };
    double worst = 0;
    session.prefill(prompt, true);
    for (size_t p = 0; p < prompt.size(); ++p) {
        const auto d = test::compare_rows(session.all_logits().subspan(p * n_vocab, n_vocab), row(p));
        worst = std::max(worst, d.rel_l2);
        EXPECT_LT(d.rel_l2, tol) << "prompt position " << p << ": max abs diff " << d.max_abs;
        EXPECT_TRUE(d.argmax_ok) << "prompt position " << p << ": " << d.detail;
    }
    for (size_t k = 0; k < greedy.size(); ++k) {
        session.decode(greedy[k]);
        const size_t p = prompt.size() + k;
        const auto d = test::compare_rows(session.logits(), row(p));
        worst = std::max(worst, d.rel_l2);
        EXPECT_LT(d.rel_l2, tol) << "decode position " << p << ": max abs diff " << d.max_abs;
        EXPECT_TRUE(d.argmax_ok) << "decode position " << p << ": " << d.detail;
    }
    std::printf("[ %s ] worst relative L2 over %zu positions: %.3g (tolerance %.0e)\n", GetParam().c_str(), n_tokens,
                worst, tol);
}

// The KV cache across calls: the prompt prefilled in three pieces by one session, interleaved
// with a second session on the same model, on 3 threads, gives transformers' logits in both.
TEST_P(HfReference, ChunkedPrefillAndInterleavedSessions) {
    const auto ref = nlohmann::json::parse(test::read_text(hf_dir() / (GetParam() + ".json")));
    auto tokens = ref.at("prompt_tokens").get<std::vector<int32_t>>();
    for (int32_t t : ref.at("greedy_tokens").get<std::vector<int32_t>>()) tokens.push_back(t);
    const auto n_vocab = ref.at("n_vocab").get<size_t>();
    std::vector<float> expected(tokens.size() * n_vocab);
    std::ifstream(hf_dir() / ref.at("logits_file").get<std::string>(), std::ios::binary)
        .read(reinterpret_cast<char*>(expected.data()), static_cast<std::streamsize>(expected.size() * 4));
    const std::string model_dir = (hf_dir() / GetParam()).string();
    const double tol = test::tolerance_for(open_model_file(model_dir));
    auto model = Model::load(model_dir, {.n_threads = 3, .n_ctx = 32, .device = "cpu"});
    Session a(model), b(model);
    const size_t cuts[] = {0, 5, 6, tokens.size()};  // pieces of 5, 1 and the rest
    for (size_t i = 0; i + 1 < std::size(cuts); ++i) {
        const std::span<const int32_t> piece(tokens.data() + cuts[i], cuts[i + 1] - cuts[i]);
        a.prefill(piece, true);
        b.prefill(std::span<const int32_t>(tokens.data() + cuts[i], 1));  // b runs a token at a time, interleaved
        for (size_t j = cuts[i] + 1; j < cuts[i + 1]; ++j) b.decode(tokens[j]);
        for (size_t p = cuts[i]; p < cuts[i + 1]; ++p) {
            const auto want = std::span<const float>(expected).subspan(p * n_vocab, n_vocab);
            const auto d = test::compare_rows(a.all_logits().subspan((p - cuts[i]) * n_vocab, n_vocab), want);
            EXPECT_LT(d.rel_l2, tol) << "session a, position " << p;
            EXPECT_TRUE(d.argmax_ok) << "session a, position " << p << ": " << d.detail;
        }
        const auto last = std::span<const float>(expected).subspan((cuts[i + 1] - 1) * n_vocab, n_vocab);
        EXPECT_LT(test::compare_rows(b.logits(), last).rel_l2, tol) << "session b, position " << cuts[i + 1] - 1;
    }
    EXPECT_EQ(a.n_past(), static_cast<int64_t>(tokens.size()));
    a.reset();
    a.prefill(std::span<const int32_t>(tokens.data(), 3), true);
    const auto d = test::compare_rows(a.logits(), std::span<const float>(expected).subspan(2 * n_vocab, n_vocab));
    EXPECT_LT(d.rel_l2, tol) << "after reset";

    // A conversation that diverges after a shared prefix: keep 2 tokens, evaluate a different
    // third (as if the chat history changed there), then truncate back and evaluate the true one.
    a.truncate(2);
    EXPECT_EQ(a.n_past(), 2);
    EXPECT_TRUE(a.logits().empty());
    const int32_t other = tokens[2] == 0 ? 1 : 0;
    a.decode(other);
    a.truncate(2);
    a.prefill(std::span<const int32_t>(tokens.data() + 2, 2));
    const auto t = test::compare_rows(a.logits(), std::span<const float>(expected).subspan(3 * n_vocab, n_vocab));
    EXPECT_LT(t.rel_l2, tol) << "after truncate";
    EXPECT_THROW(a.truncate(5), Error);
    EXPECT_THROW(a.truncate(-1), Error);
}

INSTANTIATE_TEST_SUITE_P(Transformers, HfReference, ::testing::ValuesIn(hf_models()), test::ParamName());

}  // namespace
}  // namespace hymoe
