// `hymoe bench` on a tiny synthetic model: every output format has llama-bench's fields and
// ours, the limits follow from the tensor shapes (recomputed here from the file), and bad
// flags fail with one line. Timings are only checked to be positive.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cli_runner.hpp"
#include "format/model_file.hpp"
#include "model/config.hpp"
#include "test_support.hpp"

namespace hymoe::test {
namespace {

// Small probes, so a run takes well under a second.
constexpr const char* kFast = "--probe-mib 8 --probe-ms 5";

std::filesystem::path make_model() {
    const auto path = temp_dir_for_test() / "tiny.gguf";
    const RunResult r = run_cli(fmt::format("synth --shape tiny-qwen3moe -o '{}'", path.string()));
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return path;
}

bool is_expert(const std::string& name) {
    return name.find("_exps") != std::string::npos;
}

// What a decoded token reads and computes in a tg test of n_gen tokens from an empty cache,
// from the file's tensor list: every tensor but the routed experts and token_embd whole, one
// row of token_embd (all of it again when there is no output matrix), n_experts_used of
// n_experts of each expert tensor, and the f32 K and V of the mean number of keys a position
// sees, (n_gen + 1) / 2. Operations: 2 per weight of every matrix used, plus q·k and p·v.
struct Expected {
    double bytes = 0;
    double flops = 0;
};

Expected expected_decode(const std::filesystem::path& path, int64_t n_gen) {
    const ModelFile file = open_model_file(path.string());
    const ModelConfig c = load_model_config(file);
    const double used = static_cast<double>(c.n_experts_used) / static_cast<double>(c.n_experts);
    Expected e;
    for (const TensorView& t : file.tensors()) {
        const double bytes = static_cast<double>(t.nbytes);
        const double ops = t.shape.size() >= 2 ? 2.0 * static_cast<double>(t.n_elements()) : 0.0;
        if (t.name == "token_embd.weight") {
            e.bytes += bytes / static_cast<double>(t.shape[0]);
            if (file.find("output.weight") == nullptr) {
                e.bytes += bytes;
                e.flops += ops;
            }
        } else if (is_expert(t.name)) {
            e.bytes += bytes * used;
            e.flops += ops * used;
        } else {
            e.bytes += bytes;
            e.flops += ops;
        }
    }
    const double keys = (static_cast<double>(n_gen) + 1.0) / 2.0;
    const auto layers = static_cast<double>(c.n_layers);
    e.bytes += layers * keys * 4.0 * static_cast<double>(c.n_kv_heads * (c.head_dim + c.head_dim_v));
    e.flops += layers * keys * 2.0 * static_cast<double>(c.n_heads * (c.head_dim + c.head_dim_v));
    return e;
}

void expect_near_rel(double actual, double expected, const char* what) {
    EXPECT_NEAR(actual, expected, 1e-9 * std::abs(expected)) << what;
}

const char* const kFields[] = {
    "model_filename", "model_type", "model_size", "model_n_params", "n_threads",   "n_prompt",        "n_gen",
    "avg_ns",         "stddev_ns",  "avg_ts",     "stddev_ts",      "samples_ts",  "samples_ns",      "cpu_info",
    "build_commit",   "test_time",  "limit_ts",   "fraction",       "limit_kind",  "bytes_per_token", "flops_per_token",
    "mem_bw_gbs",     "peak_gops",  "cpu_model",  "cpu_cores",      "cpu_threads", "ram_bytes",       "cpu_isa"};

TEST(CliBench, JsonRowsHaveEveryFieldAndTheLimitsFollowFromTheShapes) {
    const auto model = make_model();
    const RunResult r = run_cli(fmt::format("bench -m '{}' -p 8 -n 4 -r 2 -t 1 -o json {}", model.string(), kFast));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const nlohmann::json rows = nlohmann::json::parse(r.out);
    ASSERT_TRUE(rows.is_array());
    ASSERT_EQ(rows.size(), 2u) << r.out;
    for (const auto& row : rows) {
        for (const char* field : kFields) EXPECT_TRUE(row.contains(field)) << field;
        EXPECT_EQ(row["model_filename"], model.string());
        EXPECT_EQ(row["n_threads"], 1);
        EXPECT_EQ(row["samples_ts"].size(), 2u);
        EXPECT_EQ(row["samples_ns"].size(), 2u);
        EXPECT_GT(row["avg_ts"].get<double>(), 0.0);
        EXPECT_GT(row["avg_ns"].get<double>(), 0.0);
        EXPECT_GT(row["limit_ts"].get<double>(), 0.0);
        EXPECT_GT(row["mem_bw_gbs"].get<double>(), 0.0);
        EXPECT_GT(row["peak_gops"].get<double>(), 0.0);
        EXPECT_GT(row["model_size"].get<double>(), 0.0);
        EXPECT_GT(row["model_n_params"].get<double>(), 0.0);
        expect_near_rel(row["fraction"].get<double>(), row["avg_ts"].get<double>() / row["limit_ts"].get<double>(),
                        "fraction = avg_ts / limit_ts");
        double mean_ts = 0;
        for (const auto& ts : row["samples_ts"]) mean_ts += ts.get<double>() / 2.0;
        expect_near_rel(row["avg_ts"].get<double>(), mean_ts, "avg_ts = mean of samples_ts");
    }
    EXPECT_EQ(rows[0]["n_prompt"], 8);
    EXPECT_EQ(rows[0]["n_gen"], 0);
    EXPECT_TRUE(rows[0]["limit_kind"] == "compute" || rows[0]["limit_kind"] == "memory") << rows[0]["limit_kind"];
    EXPECT_EQ(rows[1]["n_prompt"], 0);
    EXPECT_EQ(rows[1]["n_gen"], 4);
    EXPECT_EQ(rows[1]["limit_kind"], "memory");

    const Expected tg = expected_decode(model, 4);
    expect_near_rel(rows[1]["bytes_per_token"].get<double>(), tg.bytes, "tg bytes_per_token");
    expect_near_rel(rows[1]["flops_per_token"].get<double>(), tg.flops, "tg flops_per_token");
    expect_near_rel(rows[1]["limit_ts"].get<double>(), rows[1]["mem_bw_gbs"].get<double>() * 1e9 / tg.bytes,
                    "tg limit_ts = mem_bw / bytes_per_token");
}

// Splits one CSV line of quoted fields ("a","b,c","d""e").
std::vector<std::string> split_csv(const std::string& line) {
    std::vector<std::string> fields;
    std::string field;
    bool quoted = false;
    for (size_t i = 0; i < line.size(); ++i) {
        const char c = line[i];
        if (quoted) {
            if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
                field += '"';
                ++i;
            } else if (c == '"') {
                quoted = false;
            } else {
                field += c;
            }
        } else if (c == '"') {
            quoted = true;
        } else if (c == ',') {
            fields.push_back(field);
            field.clear();
        } else {
            field += c;
        }
    }
    fields.push_back(field);
    return fields;
}

TEST(CliBench, CsvHasAHeaderAndOneLinePerTest) {
    const auto model = make_model();
    const RunResult r = run_cli(fmt::format("bench -m '{}' -p 8 -n 4 -r 2 -t 1 -o csv {}", model.string(), kFast));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    std::vector<std::string> lines;
    for (size_t pos = 0; pos < r.out.size();) {
        const size_t end = r.out.find('\n', pos);
        lines.push_back(r.out.substr(pos, end - pos));
        pos = end == std::string::npos ? r.out.size() : end + 1;
    }
    ASSERT_EQ(lines.size(), 3u) << r.out;
    const std::vector<std::string> header = split_csv(lines[0]);
    for (const char* field : kFields) EXPECT_NE(std::find(header.begin(), header.end(), field), header.end()) << field;
    const auto column = [&](const std::vector<std::string>& row, const std::string& name) {
        const auto it = std::find(header.begin(), header.end(), name);
        return row.at(static_cast<size_t>(it - header.begin()));
    };
    for (size_t i = 1; i < lines.size(); ++i) {
        const std::vector<std::string> row = split_csv(lines[i]);
        ASSERT_EQ(row.size(), header.size()) << lines[i];
        const double avg = std::stod(column(row, "avg_ts")), limit = std::stod(column(row, "limit_ts"));
        EXPECT_GT(avg, 0.0);
        EXPECT_GT(limit, 0.0);
        expect_near_rel(std::stod(column(row, "fraction")), avg / limit, "fraction");
    }
    EXPECT_EQ(column(split_csv(lines[1]), "n_prompt"), "8");
    EXPECT_EQ(column(split_csv(lines[2]), "n_gen"), "4");
    const Expected tg = expected_decode(model, 4);
    expect_near_rel(std::stod(column(split_csv(lines[2]), "bytes_per_token")), tg.bytes, "tg bytes_per_token");
}

TEST(CliBench, MarkdownHasTheMachineAndATableRowPerTest) {
    const auto model = make_model();
    const RunResult r = run_cli(fmt::format("bench -m '{}' -p 8 -n 4 -r 2 -t 1 {}", model.string(), kFast));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out.rfind("machine: ", 0), 0u) << r.out;
    EXPECT_NE(r.out.find("threads 1: memory read "), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("| model "), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("% limit |"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("|      pp8 |"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("|      tg4 |"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find(" ± "), std::string::npos) << r.out;
    // Progress goes to stderr, as plain lines when it is not a terminal.
    EXPECT_NE(r.err.find("bench: pp8 t=1 rep 2/2\n"), std::string::npos) << r.err;
}

TEST(CliBench, ListsGiveEveryCombinationAndZeroSkipsAKind) {
    const auto model = make_model();
    const RunResult r =
        run_cli(fmt::format("bench -m '{}' -p 4,8 -n 0 -t 1,2 -r 1 -o json --no-progress {}", model.string(), kFast));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.err, "");
    const nlohmann::json rows = nlohmann::json::parse(r.out);
    ASSERT_EQ(rows.size(), 4u) << r.out;
    const int threads[] = {1, 1, 2, 2};
    const int prompts[] = {4, 8, 4, 8};
    for (size_t i = 0; i < 4; ++i) {
        EXPECT_EQ(rows[i]["n_threads"], threads[i]);
        EXPECT_EQ(rows[i]["n_prompt"], prompts[i]);
        EXPECT_EQ(rows[i]["n_gen"], 0);
    }
}

TEST(CliBench, GivenMachineNumbersReplaceTheProbes) {
    const auto model = make_model();
    const RunResult r =
        run_cli(fmt::format("bench -m '{}' -p 0 -n 4 -r 1 -t 1 -o json --mem-bw 50 --kernel-gops 100", model.string()));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const nlohmann::json rows = nlohmann::json::parse(r.out);
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_EQ(rows[0]["mem_bw_gbs"], 50.0);
    expect_near_rel(rows[0]["peak_gops"].get<double>(), 100.0, "peak_gops");
    expect_near_rel(rows[0]["limit_ts"].get<double>(), 50e9 / expected_decode(model, 4).bytes, "limit_ts");
}

// With the RAM tier, each row's experts object carries the cost model's bound: the predicted
// expert time plus the non-expert time at the limit's rates; no GPU fields. Values are checked
// for consistency, not for speed.
TEST(CliBench, RamTierRowsCarryTheCostModelsBound) {
    const auto model = make_model();
    const RunResult r = run_cli(
        fmt::format("bench -m '{}' -p 8 -n 4 -r 2 -t 1 -o json --ram-experts-gb 0 {}", model.string(), kFast));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const nlohmann::json rows = nlohmann::json::parse(r.out);
    ASSERT_EQ(rows.size(), 2u) << r.out;
    for (const auto& row : rows) {
        ASSERT_TRUE(row.contains("experts")) << row.dump();
        const auto& x = row["experts"];
        EXPECT_EQ(x["tier"], "ram");
        EXPECT_FALSE(x.contains("copy_bytes_per_token")) << "a GPU tier field";
        EXPECT_FALSE(x.contains("copy_wait_ms_per_token")) << "a GPU tier field";
        for (const char* field : {"file_read_gbs", "predicted_expert_ms_per_token", "non_expert_ms_per_token",
                                  "bound_ts", "fraction_of_bound"}) {
            ASSERT_TRUE(x.contains(field)) << field << " in " << x.dump();
            EXPECT_GT(x[field].get<double>(), 0.0) << field;
            EXPECT_TRUE(std::isfinite(x[field].get<double>())) << field;
        }
        const double bound = x["bound_ts"].get<double>();
        expect_near_rel(bound,
                        1e3 / (x["non_expert_ms_per_token"].get<double>() +
                               x["predicted_expert_ms_per_token"].get<double>()),
                        "bound_ts = 1 / (non-expert + predicted expert time)");
        expect_near_rel(x["fraction_of_bound"].get<double>(), row["avg_ts"].get<double>() / bound,
                        "fraction_of_bound = avg_ts / bound_ts");
    }
    // Decode: every expert a token uses is read in full from memory at least, as the limit
    // counts it, and here from the file too: the bound cannot beat the limit.
    EXPECT_LE(rows[1]["experts"]["bound_ts"].get<double>(), rows[1]["limit_ts"].get<double>() * (1 + 1e-9));

    const RunResult md =
        run_cli(fmt::format("bench -m '{}' -p 0 -n 4 -r 1 -t 1 --ram-experts-gb 0 {}", model.string(), kFast));
    ASSERT_EQ(md.exit_code, 0) << md.err;
    EXPECT_NE(md.out.find("| hit rate |  bound t/s | % bound |"), std::string::npos) << md.out;
}

TEST(CliBench, BadFlagsFailWithOneLine) {
    const auto model = make_model();
    const std::string m = fmt::format("bench -m '{}' {} ", model.string(), kFast);
    expect_one_line_error(run_cli(m + "-p abc"), "-p/--n-prompt: 'abc' is not a whole number");
    expect_one_line_error(run_cli(m + "-p 8,x"), "'x' is not a whole number");
    expect_one_line_error(run_cli(m + "-n -1"), "-n/--n-gen: -1 is below the minimum of 0");
    expect_one_line_error(run_cli(m + "-t 0"), "-t/--threads: 0 is below the minimum of 1");
    expect_one_line_error(run_cli(m + "-r 0"), "-r/--repetitions: 0 is below the minimum of 1");
    expect_one_line_error(run_cli(m + "-o xml"), "'xml' is not one of md, json, csv");
    expect_one_line_error(run_cli(m + "-p 0 -n 0"), "nothing to run");
    const auto missing = model.parent_path() / "missing.gguf";
    expect_one_line_error(run_cli(fmt::format("bench -m '{}' -p 8 -n 0 {}", missing.string(), kFast)), "missing.gguf");
    EXPECT_NE(run_cli("bench -p 8").exit_code, 0) << "-m is required";
}

}  // namespace
}  // namespace hymoe::test
