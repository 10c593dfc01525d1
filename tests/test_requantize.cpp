// `hymoe quantize` against llama.cpp's quantizer, and quantized models against llama.cpp's logits.
//
// tests/fixtures/llama-quantize/<model>.json (written by make_llama_quantize_reference.py) holds,
// for the shared reference models in Q8_0, Q4_K_M, Q4_0 and Q5_K_M: the type llama.cpp's
// llama_model_quantize chose for every tensor with the sha256 of its bytes, and llama.cpp's top
// 20 logits for every prompt position of that quantized model. So:
//  - our quantizer must choose the same types and write the same bytes;
//  - our engine on our quantized file must give llama.cpp's logits (this exercises the matmul
//    kernels of every type the mixes produce);
//  - the quantized models' logits are compared with the F32 model's (llama.cpp's
//    reference.prompt_logits.bin): relative L2 error and the share of positions whose argmax agrees.
//
// The reference models' rows are 32 to 64 values long, shorter than a K-quant block (256), so
// llama.cpp's rules turn the "Q4_K_M" mix into Q5_0 / Q5_1 / Q8_0 there; Q4_K itself is measured
// on synthetic models with real row lengths (docs/performance.md).
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli_runner.hpp"
#include "format/model_file.hpp"
#include "hymoe/engine.hpp"
#include "hymoe/error.hpp"
#include "logit_compare.hpp"
#include "model/quant_mix.hpp"
#include "model/quantize_model.hpp"
#include "sha256.hpp"
#include "test_support.hpp"

namespace hymoe {
namespace {

namespace fs = std::filesystem;

// The comparisons with llama.cpp run the scalar reference kernels (set before any matmul picks its
// ISA): the SIMD kernels differ from them only in the order of f32 sums (test_cpu_matmul), but on
// these random models such differences can flip a near-tied expert choice, which the reference
// path does not do (a flip shows up as a ~1e-2 jump at one position). The default kernels run the
// same files in test_forward_reference / test_cli.
[[maybe_unused]] const int kScalarKernels = ::setenv("HYMOE_CPU_ISA", "scalar", 1);

TEST(Sha256, MatchesHashlib) {
    const auto hash = [](const std::string& s) {
        return test::sha256_hex(std::as_bytes(std::span(s.data(), s.size())));
    };
    // Digests from Python's hashlib.sha256, across the one- and two-block padding cases.
    EXPECT_EQ(hash(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    EXPECT_EQ(hash("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    EXPECT_EQ(hash(std::string(55, 'a')), "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318");
    EXPECT_EQ(hash(std::string(56, 'a')), "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a");
    EXPECT_EQ(hash(std::string(64, 'a')), "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb");
    EXPECT_EQ(hash(std::string(119, 'a')), "31eba51c313a5c08226adf18d4a359cfdfd8d2e816b13f4af952f7ea6584dcfb");
}

TEST(FileTypes, NamesAndAliases) {
    EXPECT_EQ(file_type_from_name("Q4_K_M"), FileType::MostlyQ4_K_M);
    EXPECT_EQ(file_type_from_name("q4_k"), FileType::MostlyQ4_K_M);
    EXPECT_EQ(file_type_from_name("q5_k"), FileType::MostlyQ5_K_M);
    EXPECT_EQ(file_type_from_name("mxfp4"), FileType::MostlyMXFP4Moe);
    EXPECT_EQ(file_type_from_name("q8_0"), FileType::MostlyQ8_0);
    EXPECT_EQ(file_type_from_name("q3_k_m"), std::nullopt);
    EXPECT_EQ(file_type_info(FileType::MostlyQ4_K_M).default_type, TensorType::Q4_K);
}

// llama.cpp's Q4_K_M rules on a 48-layer, 128-expert model with real row lengths (Qwen3-30B-A3B's
// shapes): output Q6_K, token_embd Q4_K, attn_v and ffn_down Q6_K on the use_more_bits layers
// (the first and last eighth and every third between), routers and norms untouched.
TEST(FileTypes, Q4KMMixOnRealShapes) {
    const int64_t L = 48, d = 2048, E = 128, ff = 768;
    std::vector<MixTensor> tensors = {
        {"token_embd.weight", {151936, d}}, {"output.weight", {151936, d}}, {"output_norm.weight", {d}}};
    for (int64_t l = 0; l < L; ++l) {
        const auto blk = [l](const char* n) { return fmt::format("blk.{}.{}.weight", l, n); };
        tensors.push_back({blk("attn_q"), {4096, d}});
        tensors.push_back({blk("attn_k"), {512, d}});
        tensors.push_back({blk("attn_v"), {512, d}});
        tensors.push_back({blk("attn_output"), {d, 4096}});
        tensors.push_back({blk("attn_norm"), {d}});
        tensors.push_back({blk("ffn_gate_inp"), {E, d}});
        tensors.push_back({blk("ffn_gate_exps"), {E, ff, d}});
        tensors.push_back({blk("ffn_up_exps"), {E, ff, d}});
        tensors.push_back({blk("ffn_down_exps"), {E, d, ff}});
    }
    const auto types = plan_tensor_types(FileType::MostlyQ4_K_M, {L, E}, tensors);
    const auto type_of = [&](const std::string& name) {
        for (size_t i = 0; i < tensors.size(); ++i)
            if (tensors[i].name == name) return types[i];
        ADD_FAILURE() << name;
        return TensorType::F32;
    };
    EXPECT_EQ(type_of("token_embd.weight"), TensorType::Q4_K);
    EXPECT_EQ(type_of("output.weight"), TensorType::Q6_K);
    EXPECT_EQ(type_of("output_norm.weight"), TensorType::F32);
    int more_bits = 0;
    for (int64_t l = 0; l < L; ++l) {
        const bool more = l < L / 8 || l >= 7 * L / 8 || (l - L / 8) % 3 == 2;
        more_bits += more ? 1 : 0;
        const auto blk = [l](const char* n) { return fmt::format("blk.{}.{}.weight", l, n); };
        const TensorType rich = more ? TensorType::Q6_K : TensorType::Q4_K;
        EXPECT_EQ(type_of(blk("attn_v")), rich) << l;
        EXPECT_EQ(type_of(blk("ffn_down_exps")), rich) << l;
        EXPECT_EQ(type_of(blk("attn_q")), TensorType::Q4_K) << l;
        EXPECT_EQ(type_of(blk("attn_k")), TensorType::Q4_K) << l;
        EXPECT_EQ(type_of(blk("attn_output")), TensorType::Q4_K) << l;
        EXPECT_EQ(type_of(blk("ffn_gate_exps")), TensorType::Q4_K) << l;
        EXPECT_EQ(type_of(blk("ffn_gate_inp")), TensorType::F32) << l;
    }
    EXPECT_EQ(more_bits, 24);  // 6 + 6 + every third of the 36 in between
}

// ---- against the shared reference models ----

std::vector<std::string> models_with_fixtures() {
    std::vector<std::string> names;
    for (const auto& entry : fs::directory_iterator(test::fixtures_dir() / "llama-quantize"))
        if (entry.path().extension() == ".json") names.push_back(entry.path().stem().string());
    std::sort(names.begin(), names.end());
    return names;
}

std::string upper(std::string_view s) {
    std::string out(s);
    for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return out;
}

std::vector<float> read_f32(const fs::path& path, size_t count) {
    std::vector<float> v(count);
    std::ifstream in(path, std::ios::binary);
    in.read(reinterpret_cast<char*>(v.data()), static_cast<std::streamsize>(count * sizeof(float)));
    if (static_cast<size_t>(in.gcount()) != count * sizeof(float)) ADD_FAILURE() << path << " is short";
    return v;
}

class Requantize : public ::testing::TestWithParam<std::string> {
protected:
    // Quantizes the shared model to `ftype` (once per test) and returns the file.
    fs::path quantized(const fs::path& ref_root, const std::string& ftype) {
        const fs::path out = test::temp_dir_for_test() / (GetParam() + "-" + ftype + ".gguf");
        QuantizeOptions o;
        o.input = (ref_root / GetParam() / "model.gguf").string();
        o.output = out.string();
        o.ftype = *file_type_from_name(ftype);
        o.allow_requantize = true;  // gpt-oss's experts are MXFP4 already, as llama.cpp's run allowed
        o.n_threads = 2;
        quantize_model(o);
        return out;
    }
    nlohmann::json fixture() const {
        return nlohmann::json::parse(test::read_text(test::fixtures_dir() / "llama-quantize" / (GetParam() + ".json")));
    }
};

TEST_P(Requantize, TypesAndBytesEqualLlamaQuantize) {
    HYMOE_REQUIRE_REFERENCE(ref_root);
    const auto fx = fixture();
    for (const auto& [ftype, entry] : fx.at("ftypes").items()) {
        if (!entry.contains("tensors")) continue;
        const fs::path file = quantized(ref_root, ftype);
        const ModelFile ours = open_model_file(file.string());
        const auto& want = entry.at("tensors");
        EXPECT_EQ(ours.tensors().size(), want.size()) << ftype;
        int mismatches = 0;
        for (const TensorView& t : ours.tensors()) {
            if (!want.contains(t.name)) {
                ADD_FAILURE() << ftype << ": llama.cpp wrote no tensor " << t.name;
                continue;
            }
            const std::string type = want.at(t.name).at(0).get<std::string>();
            const std::string hash = want.at(t.name).at(1).get<std::string>();
            if (upper(type_name(t.type)) != type) {
                if (mismatches++ < 10)
                    ADD_FAILURE() << ftype << " " << t.name << ": ours " << type_name(t.type) << ", llama.cpp " << type;
                continue;
            }
            const std::string got = test::sha256_hex(std::span(t.data, t.nbytes));
            if (got != hash && mismatches++ < 10)
                ADD_FAILURE() << ftype << " " << t.name << " (" << type << "): bytes differ from llama.cpp's";
        }
        EXPECT_EQ(mismatches, 0) << GetParam() << " " << ftype;
        fs::remove(file);
    }
}

TEST_P(Requantize, LogitsMatchLlamaCppOnTheQuantizedModel) {
    HYMOE_REQUIRE_REFERENCE(ref_root);
    const auto fx = fixture();
    const auto prompt = fx.at("prompt_tokens").get<std::vector<int32_t>>();
    for (const auto& [ftype, entry] : fx.at("ftypes").items()) {
        if (!entry.contains("top_logits")) continue;
        const fs::path file = quantized(ref_root, ftype);
        Session session(Model::load(file.string(), {.n_threads = 2, .n_ctx = 64, .device = "cpu"}));
        session.prefill(prompt, true);
        const auto n_vocab = static_cast<size_t>(session.model().n_vocab());
        const auto& tops = entry.at("top_logits");
        ASSERT_EQ(tops.size(), prompt.size());
        // Every file agrees with llama.cpp to ~1e-7 (deepseek2, whose 48-wide rows stay F16, to
        // 2e-3), with the activations quantized as llama.cpp's x86 code does (ties to even: the
        // Q4_0 / Q5_0 token_embd of these mixes puts many layer-0 activations exactly on ties).
        double worst = 0;
        size_t agree = 0;
        for (size_t p = 0; p < prompt.size(); ++p) {
            const auto logits = session.all_logits().subspan(p * n_vocab, n_vocab);
            const test::LogitDiff d = test::compare_with_top(logits, tops[p]);
            worst = std::max(worst, d.rel_l2);
            agree += d.argmax_ok ? 1 : 0;
            EXPECT_LT(d.rel_l2, 1e-2) << ftype << " prompt position " << p << ": max abs diff " << d.max_abs;
            EXPECT_TRUE(d.argmax_ok) << ftype << " prompt position " << p << ": " << d.detail;
        }
        std::printf("[ %s %s ] against llama.cpp: worst relative L2 of the top 20 %.3g, argmax agrees at %zu/%zu\n",
                    GetParam().c_str(), ftype.c_str(), worst, agree, prompt.size());
        fs::remove(file);
    }
}

// The quantized models against the F32 ones (llama.cpp's logits of the original files): relative
// L2 error over all logits and the share of prompt positions whose argmax agrees, per model and
// over all of them. These random models have flat distributions (top-2 margins down to 0.004), so
// the argmax is fragile; the issue expects >= 90% of positions to agree for Q8_0.
TEST(RequantizeAll, QuantizedLogitsStayCloseToF32) {
    HYMOE_REQUIRE_REFERENCE(ref_root);
    for (const std::string ftype : {"Q8_0", "Q4_K_M"}) {
        size_t agree_all = 0, positions_all = 0;
        for (const std::string& name : models_with_fixtures()) {
            const fs::path dir = ref_root / name;
            if (!fs::exists(dir / "reference.json")) continue;
            const auto ref = nlohmann::json::parse(test::read_text(dir / "reference.json"));
            const auto prompt = ref.at("prompt_tokens").get<std::vector<int32_t>>();
            const fs::path file = test::temp_dir_for_test() / (name + "-" + ftype + ".gguf");
            QuantizeOptions o;
            o.input = (dir / "model.gguf").string();
            o.output = file.string();
            o.ftype = *file_type_from_name(ftype);
            o.allow_requantize = true;
            o.n_threads = 2;
            quantize_model(o);
            Session session(Model::load(file.string(), {.n_threads = 2, .n_ctx = 64, .device = "cpu"}));
            session.prefill(prompt, true);
            const auto n_vocab = static_cast<size_t>(session.model().n_vocab());
            const std::vector<float> f32 = read_f32(dir / "reference.prompt_logits.bin", prompt.size() * n_vocab);
            const auto all = session.all_logits();
            const test::LogitDiff d = test::compare_values(all.subspan(0, f32.size()), f32);
            size_t agree = 0;
            for (size_t p = 0; p < prompt.size(); ++p) {
                const auto ours = all.subspan(p * n_vocab, n_vocab);
                const auto theirs = std::span<const float>(f32).subspan(p * n_vocab, n_vocab);
                agree += test::argmax_of(ours) == test::argmax_of(theirs) ? 1 : 0;
            }
            agree_all += agree;
            positions_all += prompt.size();
            std::printf("[ %s %s ] against F32: relative L2 %.4f, argmax agrees at %zu/%zu positions\n", name.c_str(),
                        ftype.c_str(), d.rel_l2, agree, prompt.size());
            // Q8_0: 1/254 of a block's range per step; Q5_0/Q5_1 (what Q4_K_M becomes here): 1/31.
            EXPECT_LT(d.rel_l2, ftype == "Q8_0" ? 0.05 : 0.4) << name << " " << ftype;
            fs::remove(file);
        }
        if (positions_all == 0) GTEST_SKIP() << "no reference models with logits under " << ref_root;
        const double share = static_cast<double>(agree_all) / static_cast<double>(positions_all);
        std::printf("[ all %s ] argmax agrees at %zu/%zu positions (%.1f%%)\n", ftype.c_str(), agree_all, positions_all,
                    100.0 * share);
        if (ftype == "Q8_0") {
            EXPECT_GE(share, 0.9);
        }
    }
}

INSTANTIATE_TEST_SUITE_P(Shared, Requantize, ::testing::ValuesIn(models_with_fixtures()), test::ParamName());

// ---- the command line ----

TEST(QuantizeCli, BadTypeAndBadInput) {
    const auto dir = test::temp_dir_for_test();
    test::expect_one_line_error(test::run_cli(fmt::format("quantize '{}' '{}' q3_k_m", (dir / "none.gguf").string(),
                                                          (dir / "out.gguf").string())),
                                "unknown type 'q3_k_m'");
    test::expect_one_line_error(test::run_cli(fmt::format("quantize '{}' '{}' q8_0", (dir / "none.gguf").string(),
                                                          (dir / "out.gguf").string())),
                                "none.gguf");
    EXPECT_FALSE(fs::exists(dir / "out.gguf"));
}

TEST(QuantizeCli, SyntheticModelRoundTrip) {
    const auto dir = test::temp_dir_for_test();
    const fs::path f32 = dir / "f32.gguf", q8 = dir / "q8.gguf";
    ASSERT_EQ(test::run_cli(fmt::format("synth --shape tiny-qwen3moe -o '{}'", f32.string())).exit_code, 0);
    const auto r = test::run_cli(fmt::format("quantize '{}' '{}' q8_0 1", f32.string(), q8.string()));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.err.find("Q8_0"), std::string::npos) << r.err;
    const ModelFile file = open_model_file(q8.string());
    EXPECT_EQ(file.metadata().get_u64("general.file_type"), 7u);
    EXPECT_EQ(file.find("blk.0.ffn_gate_exps.weight")->type, TensorType::Q8_0);
    EXPECT_EQ(file.find("blk.0.ffn_gate_inp.weight")->type, TensorType::F32);
    EXPECT_EQ(file.find("blk.0.attn_norm.weight")->type, TensorType::F32);
    // Requantizing needs the flag.
    test::expect_one_line_error(
        test::run_cli(fmt::format("quantize '{}' '{}' q4_0", q8.string(), (dir / "q4.gguf").string())),
        "--allow-requantize");
    const auto run = test::run_cli(fmt::format("eval -m '{}' --tokens 1,2,3 --top 1", q8.string()));
    EXPECT_EQ(run.exit_code, 0) << run.err;
}

}  // namespace
}  // namespace hymoe
