// What `hymoe bench` prints: the machine record, and one row per test as a markdown table,
// a JSON array or CSV, with llama-bench's field names plus the hardware limit.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace hymoe::cli {

// The machine, read once.
struct Machine {
    std::string cpu_model;  // /proc/cpuinfo "model name"
    int cores = 0;          // physical cores
    int threads = 0;        // hardware threads
    uint64_t ram_bytes = 0;
    std::string isa;  // the matmul kernels in use: "avx512", "avx2", "scalar"
};

Machine read_machine();

// The probes' results for one thread count, as reported.
struct ProbeRecord {
    int n_threads = 0;
    double mem_bw_gbs = 0;
    std::string mem_bw_source;                                // "probe: 1024 MiB, best of 3" or "--mem-bw"
    std::vector<std::pair<std::string, double>> kernel_gops;  // (type, in-cache GOP/s)
};

// One finished test.
struct BenchRow {
    std::string model_filename;
    std::string model_type;
    uint64_t model_size = 0;
    uint64_t model_n_params = 0;
    int n_threads = 0;
    int64_t n_prompt = 0;
    int64_t n_gen = 0;
    std::string test_time;             // ISO 8601, UTC, when the test started
    std::vector<uint64_t> samples_ns;  // one per repetition
    double bytes_per_token = 0;
    double flops_per_token = 0;
    double limit_ts = 0;
    std::string limit_kind;
    double peak_gops = 0;  // the kernels' in-cache rate over this test's mix of types
    std::string backend = "cpu";  // Model::backend_name(): "cpu" or "cuda:0 (NVIDIA H100 ...)"
    ProbeRecord probe;     // the machine at this thread count

    // With an expert tier (--ram-experts-gb, --expert-cache-gb). The first group is over the
    // test's runs, warm-up included; the second over the timed runs only, as avg_ts.
    struct Experts {
        std::string tier;    // "ram" or "gpu"; "" without a tier
        std::string policy;
        uint64_t cache_bytes = 0;
        double hit_rate = 0;
        double read_bytes_per_token = 0;  // RAM tier: expert bytes read from the model file
        double read_gbs = 0;              // RAM tier: their rate while reading
        double prediction_right = 0;      // fraction of the needed experts pre-gating predicted
        double file_read_gbs = 0;         // RAM tier: the file read rate its cost model uses
        // timed runs only
        double copy_bytes_per_token = 0;    // GPU tier: expert bytes copied host -> device
        double copy_wait_ms_per_token = 0;  // GPU tier: GPU time waiting for those copies
        double predicted_expert_ms_per_token = 0;  // the tier's cost model, routed experts only
        double non_expert_ms_per_token = 0;        // everything else at the hardware limit
        double bound_ts = 0;  // 1 / (non-expert + predicted expert time per token); 0: no prediction
    } experts;

    int64_t n_tokens() const { return n_prompt > 0 ? n_prompt : n_gen; }
    std::string test_name() const;  // "pp512", "tg128"
};

// llama-bench's fields first, then ours; used by both json and csv.
nlohmann::ordered_json row_json(const BenchRow& row, const Machine& machine);

std::string markdown_header(const Machine& machine);
std::string markdown_probe_line(const ProbeRecord& probe);
// experts: with an expert tier, three more columns: hit rate, the cost model's bound, % of it.
std::string markdown_table_head(bool experts);
std::string markdown_row(const BenchRow& row, const Machine& machine, bool experts);

std::string csv_header(const nlohmann::ordered_json& row);
std::string csv_line(const nlohmann::ordered_json& row);

}  // namespace hymoe::cli
