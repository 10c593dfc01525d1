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

    // With the RAM expert tier (--ram-experts-gb), over the test's runs (warm-up included).
    struct Experts {
        std::string policy;  // "" without a RAM tier
        uint64_t cache_bytes = 0;
        double hit_rate = 0;
        double read_bytes_per_token = 0;  // expert bytes read from the model file
        double read_gbs = 0;              // their rate while reading
        double prediction_right = 0;      // fraction of the needed experts pre-gating predicted
    } experts;

    int64_t n_tokens() const { return n_prompt > 0 ? n_prompt : n_gen; }
    std::string test_name() const;  // "pp512", "tg128"
};

// llama-bench's fields first, then ours; used by both json and csv.
nlohmann::ordered_json row_json(const BenchRow& row, const Machine& machine);

std::string markdown_header(const Machine& machine);
std::string markdown_probe_line(const ProbeRecord& probe);
std::string markdown_table_head();
std::string markdown_row(const BenchRow& row, const Machine& machine);

std::string csv_header(const nlohmann::ordered_json& row);
std::string csv_line(const nlohmann::ordered_json& row);

}  // namespace hymoe::cli
