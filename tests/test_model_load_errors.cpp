// A model that cannot run fails at load with one error naming what is wrong: the architecture,
// the missing tensor, or the tensor whose shape differs (with the expected shape).
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "format/model_file.hpp"
#include "gguf_rewrite.hpp"
#include "hymoe/engine.hpp"
#include "hymoe/error.hpp"
#include "hymoe/synth.hpp"
#include "test_support.hpp"

namespace hymoe {
namespace {

namespace fs = std::filesystem;

// The message of the hymoe::Error that loading `path` throws ("" if it loads).
std::string load_error(const std::string& path) {
    try {
        Model::load(path, {.n_threads = 1, .n_ctx = 16, .device = "cpu"});
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

fs::path synth_model(const fs::path& dir, const std::string& shape) {
    SynthOptions o;
    o.shape = shape;
    o.output = (dir / (shape + ".gguf")).string();
    write_synthetic_model(o);
    return o.output;
}

// Copies a GGUF, changing one metadata string and/or dropping or reshaping one tensor.
fs::path rewrite(const fs::path& src, const fs::path& dst, const std::string& key = "", const std::string& value = "",
                 const std::string& tensor = "", std::optional<std::vector<int64_t>> new_shape = std::nullopt) {
    test::GgufRewrite edit;
    edit.meta_key = key;
    edit.meta_value = value;
    edit.tensor = [&](const TensorView& t) -> std::optional<test::TensorRewrite> {
        if (t.name != tensor) return std::nullopt;
        test::TensorRewrite r;
        r.drop = !new_shape;
        r.shape = new_shape;
        return r;
    };
    return test::rewrite_gguf(src, dst, edit);
}

TEST(ModelLoad, SyntheticModelsLoadAndRun) {
    const fs::path dir = test::temp_dir_for_test();
    for (const std::string shape : {"tiny-qwen3moe", "tiny-mixtral"}) {
        auto model = Model::load(synth_model(dir, shape).string(), {.n_threads = 2, .n_ctx = 16, .device = "cpu"});
        Session s(model);
        s.prefill(std::vector<int32_t>{1, 2, 3});
        s.decode(4);
        EXPECT_EQ(s.n_past(), 4);
        ASSERT_EQ(s.logits().size(), static_cast<size_t>(model->n_vocab()));
        for (float v : s.logits()) ASSERT_TRUE(std::isfinite(v)) << shape;
    }
}

TEST(ModelLoad, UnsupportedArchitectureIsNamed) {
    const fs::path dir = test::temp_dir_for_test();
    const fs::path bad =
        rewrite(synth_model(dir, "tiny-qwen3moe"), dir / "mamba.gguf", "general.architecture", "mamba");
    const std::string err = load_error(bad.string());
    EXPECT_NE(err.find("architecture 'mamba' is not supported"), std::string::npos) << err;
    EXPECT_NE(err.find("qwen3moe"), std::string::npos) << err;  // lists what is supported
}

TEST(ModelLoad, MissingTensorIsNamedWithItsShape) {
    const fs::path dir = test::temp_dir_for_test();
    const fs::path src = synth_model(dir, "tiny-qwen3moe");
    const ModelFile in = open_model_file(src.string());
    const TensorView* up = in.find("blk.1.ffn_up_exps.weight");
    ASSERT_NE(up, nullptr);
    const fs::path bad = rewrite(src, dir / "missing.gguf", "", "", up->name);
    const std::string err = load_error(bad.string());
    EXPECT_NE(err.find("missing tensor 'blk.1.ffn_up_exps.weight'"), std::string::npos) << err;
    EXPECT_NE(err.find(fmt::format("expected shape [{}, {}, {}]", up->shape[0], up->shape[1], up->shape[2])),
              std::string::npos)
        << err;
}

TEST(ModelLoad, WrongShapeIsNamedWithBothShapes) {
    const fs::path dir = test::temp_dir_for_test();
    const fs::path src = synth_model(dir, "tiny-qwen3moe");
    const ModelFile in = open_model_file(src.string());
    const TensorView* q = in.find("blk.0.attn_q.weight");
    ASSERT_NE(q, nullptr);
    const std::vector<int64_t> wrong{q->shape[0] - 32, q->shape[1]};
    const fs::path bad = rewrite(src, dir / "shape.gguf", "", "", q->name, wrong);
    const std::string err = load_error(bad.string());
    EXPECT_NE(err.find(fmt::format("tensor 'blk.0.attn_q.weight' has shape [{}, {}]", wrong[0], wrong[1])),
              std::string::npos)
        << err;
    EXPECT_NE(err.find(fmt::format("expected [{}, {}]", q->shape[0], q->shape[1])), std::string::npos) << err;
}

TEST(ModelLoad, UnsupportedHfClassIsNamed) {
    const fs::path dir = test::temp_dir_for_test();
    const fs::path src = test::fixtures_dir() / "hf-models" / "qwen3moe";
    fs::copy(src, dir / "m");
    std::string config = test::read_text(dir / "m" / "config.json");
    config.replace(config.find("Qwen3MoeForCausalLM"), 19, "JambaForCausalLM");
    config.replace(config.find("\"qwen3_moe\""), 11, "\"jamba\"");
    std::ofstream(dir / "m" / "config.json") << config;
    const std::string err = load_error((dir / "m").string());
    EXPECT_NE(err.find("architecture 'JambaForCausalLM' is not supported"), std::string::npos) << err;
}

TEST(ModelLoad, ContextOverflowIsAnError) {
    const fs::path dir = test::temp_dir_for_test();
    auto model = Model::load(synth_model(dir, "tiny-qwen3moe").string(), {.n_threads = 1, .n_ctx = 4, .device = "cpu"});
    Session s(model);
    s.prefill(std::vector<int32_t>{1, 2, 3});
    s.decode(4);
    try {
        s.decode(5);
        FAIL() << "decoding past the context did not throw";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("context is full"), std::string::npos) << e.what();
    }
}

}  // namespace
}  // namespace hymoe
