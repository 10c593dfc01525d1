// Logits against llama.cpp's, for every model in the shared reference fixtures: every prompt
// position, then every decode step teacher-forced with llama.cpp's greedy tokens.
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "gguf_rewrite.hpp"
#include "hymoe/engine.hpp"
#include "logit_compare.hpp"
#include "quant/fp16.hpp"
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
    auto model = Model::load((dir / "model.gguf").string(), {.n_threads = 2, .n_ctx = 128, .device = "cpu"});
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

// Q8_0 weights. The shared fixtures have none, so this test writes a Q8_0 copy of each all-f32
// fixture (every f32 matrix but the router, quantized as ggml's quantize_row_q8_0_ref does) and
// compares its logits with llama.cpp's for that same file, recorded by
// tests/fixtures/make_llama_q8_0_reference.py (top 20 per prompt position).
void encode_q8_0(const TensorView& src, TensorType, std::span<std::byte> out) {
    const auto* x = reinterpret_cast<const float*>(src.data);
    const size_t n = src.nbytes / sizeof(float);
    for (size_t b = 0; b < n / 32; ++b) {  // 34-byte blocks: f16 d, int8 q[32]
        float amax = 0;
        for (size_t j = 0; j < 32; ++j) amax = std::max(amax, std::abs(x[b * 32 + j]));
        const float d = amax / 127.0f, id = d != 0 ? 1.0f / d : 0.0f;
        const uint16_t d16 = cpu::f32_to_fp16(d);
        std::memcpy(out.data() + b * 34, &d16, 2);
        for (size_t j = 0; j < 32; ++j) {
            const auto q = static_cast<int8_t>(std::round(x[b * 32 + j] * id));  // roundf: half away from 0
            std::memcpy(out.data() + b * 34 + 2 + j, &q, 1);
        }
    }
}

fs::path q8_0_copy(const fs::path& src, const fs::path& dst) {
    test::GgufRewrite edit;
    edit.tensor = [](const TensorView& t) -> std::optional<test::TensorRewrite> {
        const bool router = t.name.find("ffn_gate_inp") != std::string::npos;  // llama.cpp keeps it f32
        if (t.type != TensorType::F32 || t.shape.size() < 2 || t.shape.back() % 32 != 0 || router) return std::nullopt;
        test::TensorRewrite r;
        r.type = TensorType::Q8_0;
        return r;
    };
    edit.encode = encode_q8_0;
    return test::rewrite_gguf(src, dst, edit);
}

TEST_P(LlamaCppReference, Q8_0WeightsMatchLlamaCpp) {
    HYMOE_REQUIRE_REFERENCE(ref_root);
    if (GetParam() == "none") GTEST_SKIP() << "no fixtures with reference.json under " << ref_root;
    const fs::path dir = ref_root / GetParam();
    if (test::tolerance_for(open_model_file((dir / "model.gguf").string())) != 1e-3)
        GTEST_SKIP() << GetParam() << " already has non-f32 matrices";
    const fs::path q8 = q8_0_copy(dir / "model.gguf", test::temp_dir_for_test() / (GetParam() + ".gguf"));
    const auto prompt =
        nlohmann::json::parse(test::read_text(dir / "reference.json")).at("prompt_tokens").get<std::vector<int32_t>>();
    if (const char* keep = std::getenv("HYMOE_KEEP_Q8_0_DIR"); keep && *keep) {  // for the script
        fs::create_directories(keep);
        fs::copy_file(q8, fs::path(keep) / q8.filename(), fs::copy_options::overwrite_existing);
        std::ofstream(fs::path(keep) / (GetParam() + ".tokens.json")) << nlohmann::json(prompt).dump();
    }
    const fs::path ref_file = test::fixtures_dir() / "llama-cpp-q8_0" / (GetParam() + ".json");
    if (!fs::exists(ref_file)) GTEST_SKIP() << "no llama.cpp Q8_0 reference recorded for " << GetParam();
    const auto ref = nlohmann::json::parse(test::read_text(ref_file));
    ASSERT_EQ(ref.at("prompt_tokens").get<std::vector<int32_t>>(), prompt);

    Session session(Model::load(q8.string(), {.n_threads = 2, .n_ctx = 64, .device = "cpu"}));
    session.prefill(prompt, true);
    const auto n_vocab = static_cast<size_t>(session.model().n_vocab());
    double worst = 0;
    const auto& tops = ref.at("top");
    ASSERT_EQ(tops.size(), prompt.size());
    for (size_t p = 0; p < prompt.size(); ++p) {
        const auto logits = session.all_logits().subspan(p * n_vocab, n_vocab);
        const test::LogitDiff d = test::compare_with_top(logits, tops[p]);
        worst = std::max(worst, d.rel_l2);
        EXPECT_LT(d.rel_l2, 1e-2) << "prompt position " << p << ": max abs diff " << d.max_abs;
        EXPECT_TRUE(d.argmax_ok) << "prompt position " << p << ": " << d.detail;
    }
    std::printf("[ %s q8_0 ] worst relative L2 of the top 20 against llama.cpp: %.3g\n", GetParam().c_str(), worst);
}

INSTANTIATE_TEST_SUITE_P(Shared, LlamaCppReference, ::testing::ValuesIn(reference_models()), test::ParamName());

}  // namespace
}  // namespace hymoe
