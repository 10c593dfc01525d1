// Logits against llama.cpp's, for every model in the shared reference fixtures: every prompt
// position, then every decode step teacher-forced with llama.cpp's greedy tokens.
#include <filesystem>
#include <fstream>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "hymoe/engine.hpp"
#include "logit_compare.hpp"
#include "test_support.hpp"

namespace hymoe {
namespace {

namespace fs = std::filesystem;

// Every fixture directory with a reference.json; the list is read when the tests are set up.
std::vector<std::string> reference_models() {
    std::vector<std::string> names;
    if (const auto dir = test::reference_dir()) {
        for (const auto& entry : fs::directory_iterator(*dir))
            if (fs::exists(entry.path() / "reference.json") && fs::exists(entry.path() / "model.gguf"))
                names.push_back(entry.path().filename().string());
    }
    std::sort(names.begin(), names.end());
    if (names.empty()) names.push_back("none");
    return names;
}

std::vector<float> read_f32(const fs::path& path, size_t count) {
    std::vector<float> v(count);
    std::ifstream in(path, std::ios::binary);
    in.read(reinterpret_cast<char*>(v.data()), static_cast<std::streamsize>(count * sizeof(float)));
    if (static_cast<size_t>(in.gcount()) != count * sizeof(float)) ADD_FAILURE() << path << " is short";
    return v;
}

class LlamaCppReference : public ::testing::TestWithParam<std::string> {};

TEST_P(LlamaCppReference, PromptAndTeacherForcedDecodeLogits) {
    HYMOE_REQUIRE_REFERENCE(ref_root);
    if (GetParam() == "none") GTEST_SKIP() << "no fixtures with reference.json under " << ref_root;
    const fs::path dir = ref_root / GetParam();
    const auto ref = nlohmann::json::parse(test::read_text(dir / "reference.json"));
    const auto prompt = ref.at("prompt_tokens").get<std::vector<int32_t>>();
    const auto greedy = ref.at("greedy_tokens").get<std::vector<int32_t>>();
    const auto n_vocab = ref.at("n_vocab").get<size_t>();
    const std::vector<float> prompt_logits = read_f32(dir / "reference.prompt_logits.bin", prompt.size() * n_vocab);

    const double tol = test::tolerance_for(open_model_file((dir / "model.gguf").string()));
    auto model = Model::load((dir / "model.gguf").string(), {.n_threads = 2, .n_ctx = 128});
    ASSERT_EQ(static_cast<size_t>(model->n_vocab()), n_vocab);
    Session session(model);
    session.prefill(prompt, true);
    const auto ours = session.all_logits();
    ASSERT_EQ(ours.size(), prompt.size() * n_vocab);

    double worst = 0;
    for (size_t p = 0; p < prompt.size(); ++p) {
        const auto d = test::compare_rows(ours.subspan(p * n_vocab, n_vocab),
                                          std::span(prompt_logits).subspan(p * n_vocab, n_vocab));
        worst = std::max(worst, d.rel_l2);
        EXPECT_LT(d.rel_l2, tol) << "prompt position " << p << ": max abs diff " << d.max_abs;
        EXPECT_TRUE(d.argmax_ok) << "prompt position " << p << ": " << d.detail;
    }

    // Step k's logits come from the token before greedy[k]; feed greedy[k-1] to get step k.
    const auto& steps = ref.at("steps");
    double worst_step = 0;
    for (size_t k = 0; k < steps.size(); ++k) {
        if (k > 0) session.decode(greedy[k - 1]);
        ASSERT_EQ(steps[k].at("logits_of_pos").get<int64_t>(), session.n_past() - 1);
        const auto logits = session.logits();
        std::vector<std::pair<int32_t, float>> top;
        std::vector<float> ours_top, ref_top;
        for (const auto& pair : steps[k].at("top")) {
            top.emplace_back(pair[0].get<int32_t>(), pair[1].get<float>());
            ours_top.push_back(logits[static_cast<size_t>(top.back().first)]);
            ref_top.push_back(top.back().second);
        }
        auto d = test::compare_values(ours_top, ref_top);
        test::check_argmax(d, test::argmax_of(logits), top);
        worst_step = std::max(worst_step, d.rel_l2);
        EXPECT_LT(d.rel_l2, tol) << "decode step " << k << ": max abs diff " << d.max_abs;
        EXPECT_TRUE(d.argmax_ok) << "decode step " << k << ": " << d.detail;
    }
    RecordProperty("worst_prompt_rel_l2", std::to_string(worst));
    RecordProperty("worst_decode_rel_l2", std::to_string(worst_step));
    std::printf("[ %s ] worst relative L2: prompt %.3g, decode top-20 %.3g (tolerance %.0e)\n", GetParam().c_str(),
                worst, worst_step, tol);
}

INSTANTIATE_TEST_SUITE_P(Shared, LlamaCppReference, ::testing::ValuesIn(reference_models()), [](const auto& info) {
    std::string name = info.param;
    for (char& ch : name)
        if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
    return name;
});

}  // namespace
}  // namespace hymoe
