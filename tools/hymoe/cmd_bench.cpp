// `hymoe bench`: llama-bench's tests (pp N: one prefill of N random tokens into an empty cache;
// tg N: N decode steps from an empty cache), each reported beside the limit the hardware puts
// on it: memory bandwidth for tg, the kernels' in-cache compute rate for pp. The machine is
// measured at start (a streaming read, a matmul on in-cache weights). docs/benchmarking.md
// explains every field and how the limits are computed.
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <functional>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "bench_cost.hpp"
#include "bench_report.hpp"
#include "commands.hpp"
#include "device_flags.hpp"
#include "cpu/matmul.hpp"
#include "cpu/probe.hpp"
#include "cpu/thread_pool.hpp"
#include "hymoe/build_info.hpp"
#include "hymoe/engine.hpp"
#include "hymoe/error.hpp"

namespace hymoe::cli {

namespace {

struct BenchArgs {
    std::string model;
    std::vector<std::string> n_prompt{"512"};
    std::vector<std::string> n_gen{"128"};
    std::vector<std::string> threads;  // empty: the physical cores
    std::string repetitions = "5";
    std::string output = "md";
    bool progress = true;
    bool warmup = true;
    uint64_t seed = 1234;
    std::string probe_mib;   // empty: min(1024, RAM / 8 in MiB)
    int probe_ms = 200;      // per matmul type
    double mem_bw = 0;       // > 0: use instead of the bandwidth probe
    double kernel_gops = 0;  // > 0: use for every type instead of the matmul probe
    DeviceFlags device;
};

// "128,512" (or repeated flags) -> numbers >= min_value.
std::vector<int64_t> parse_counts(const std::vector<std::string>& items, const char* flag, int64_t min_value) {
    std::vector<int64_t> out;
    for (const std::string& item : items) {
        int64_t v = 0;
        const auto [end, ec] = std::from_chars(item.data(), item.data() + item.size(), v);
        if (item.empty() || ec != std::errc() || end != item.data() + item.size())
            throw Error(fmt::format("{}: '{}' is not a whole number", flag, item));
        if (v < min_value) throw Error(fmt::format("{}: {} is below the minimum of {}", flag, v, min_value));
        out.push_back(v);
    }
    if (out.empty()) throw Error(fmt::format("{}: no value given", flag));
    return out;
}

std::string utc_now() {
    const std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
    std::tm tm{};
    gmtime_r(&now, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

std::string short_count(double n) {
    if (n >= 1e9) return fmt::format("{:.1f}B", n / 1e9);
    if (n >= 1e6) return fmt::format("{:.1f}M", n / 1e6);
    return fmt::format("{:.1f}K", n / 1e3);
}

// Progress on stderr: one line rewritten in place on a terminal, plain lines otherwise.
class Progress {
public:
    explicit Progress(bool enabled) : enabled_(enabled), tty_(::isatty(::fileno(stderr)) != 0) {}
    void show(const std::string& text) {
        if (!enabled_) return;
        if (tty_) {
            fmt::print(stderr, "\r\033[Kbench: {}", text);
        } else {
            fmt::print(stderr, "bench: {}\n", text);
        }
        std::fflush(stderr);
    }
    // Before anything goes to stdout: a terminal's progress line is wiped.
    void clear() {
        if (!enabled_ || !tty_) return;
        fmt::print(stderr, "\r\033[K");
        std::fflush(stderr);
    }

private:
    bool enabled_;
    bool tty_;
};

struct ProbeResult {
    Probes probes;
    ProbeRecord record;
};

ProbeResult run_probes(const BenchArgs& args, int n_threads, uint64_t probe_bytes, const std::set<TensorType>& types,
                       Progress& progress) {
    ProbeResult r;
    r.record.n_threads = n_threads;
    cpu::ThreadPool pool(n_threads);
    if (args.mem_bw > 0) {
        r.probes.mem_bw_gbs = args.mem_bw;
        r.record.mem_bw_source = "given by --mem-bw";
    } else {
        constexpr int kRuns = 3;
        progress.show(fmt::format("t={} memory bandwidth probe ({} MiB)", n_threads, probe_bytes >> 20));
        r.probes.mem_bw_gbs = cpu::probe_read_bandwidth(pool, probe_bytes, kRuns);
        r.record.mem_bw_source = fmt::format("read of {} MiB, best of {}", probe_bytes >> 20, kRuns);
    }
    for (TensorType type : types) {
        if (!cpu::supports_matmul(type)) continue;
        double gops = args.kernel_gops;
        if (gops <= 0) {
            progress.show(fmt::format("t={} matmul probe ({})", n_threads, type_name(type)));
            gops =
                cpu::probe_matmul_rate(type, cpu::in_cache_matmul_shape(type, n_threads), pool, args.probe_ms / 1000.0);
        }
        r.probes.gops[type] = gops;
        r.record.kernel_gops.emplace_back(std::string(type_name(type)), gops);
    }
    r.record.mem_bw_gbs = r.probes.mem_bw_gbs;
    return r;
}

// On a GPU the limits are the GPU's: a device-to-device copy for memory (the weights are read
// from device memory) and cuBLAS's dense bf16 GEMM for compute, whatever the weight type.
ProbeResult run_gpu_probes(const BenchArgs& args, int n_threads, const std::string& backend,
                           const std::set<TensorType>& types, Progress& progress) {
    ProbeResult r;
    r.record.n_threads = n_threads;
    const std::string::size_type colon = backend.find(':');
    const int device = colon == std::string::npos ? 0 : std::atoi(backend.c_str() + colon + 1);
    GpuProbe gpu;
    if (args.mem_bw <= 0 || args.kernel_gops <= 0) {
        progress.show(fmt::format("{}: copy bandwidth and bf16 GEMM probes", backend));
        gpu = probe_gpu(device);
        if (!gpu.error.empty()) throw Error("GPU probe: " + gpu.error);
    }
    r.probes.mem_bw_gbs = args.mem_bw > 0 ? args.mem_bw : gpu.copy_gbs;
    r.record.mem_bw_source = args.mem_bw > 0 ? "given by --mem-bw" : "GPU device-to-device copy of 1 GiB, read + written";
    const double gops = args.kernel_gops > 0 ? args.kernel_gops : gpu.bf16_tflops * 1000.0;
    for (TensorType type : types) r.probes.gops[type] = gops;
    r.record.kernel_gops.emplace_back(args.kernel_gops > 0 ? "given" : "cublas bf16 gemm", gops);
    r.record.mem_bw_gbs = r.probes.mem_bw_gbs;
    return r;
}

// One test's timed repetitions (after one untimed warm-up), in nanoseconds. before_timed runs
// once, after the warm-up and before the first timed run.
std::vector<uint64_t> time_test(Session& session, const std::vector<int32_t>& tokens, bool is_prefill,
                                const BenchArgs& args, int repetitions, const std::string& label, Progress& progress,
                                const std::function<void()>& before_timed) {
    auto run_once = [&] {
        session.reset();
        const auto t0 = std::chrono::steady_clock::now();
        if (is_prefill) {
            session.prefill(tokens);
        } else {
            for (int32_t t : tokens) session.decode(t);
        }
        return static_cast<uint64_t>(
            std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0).count());
    };
    if (args.warmup) {
        progress.show(fmt::format("{} warm-up", label));
        run_once();
    }
    before_timed();
    std::vector<uint64_t> ns;
    for (int rep = 0; rep < repetitions; ++rep) {
        progress.show(fmt::format("{} rep {}/{}", label, rep + 1, repetitions));
        ns.push_back(std::max<uint64_t>(run_once(), 1));
    }
    return ns;
}

// An expert tier's part of a test. a: before the warm-up, t: before the timed runs, b: after
// them. Over all runs (a to b, `tokens` in all): the hit rate, the RAM tier's reads from the
// model file, how well pre-gating predicted the next layer's experts. Over the timed runs (t to
// b, `timed_tokens`), as avg_ts: the GPU tier's copies and its wait for them, and the cost
// model's bound, its predicted expert time plus `non_expert_s` (seconds per token).
void note_expert_traffic(BenchRow& row, const ExpertCacheStats& a, const ExpertCacheStats& t,
                         const ExpertCacheStats& b, int64_t tokens, int64_t timed_tokens, double non_expert_s) {
    const auto& x = a.total;
    const auto& y = b.total;
    BenchRow::Experts& e = row.experts;
    e.tier = b.tier;
    e.policy = b.policy;
    e.cache_bytes = b.cache_bytes;
    const double needs = static_cast<double>((y.hits + y.misses) - (x.hits + x.misses));
    e.hit_rate = needs > 0 ? static_cast<double>(y.hits - x.hits) / needs : 0.0;
    const double bytes = static_cast<double>(y.bytes_loaded - x.bytes_loaded);
    const double seconds = b.read_seconds - a.read_seconds;
    e.read_bytes_per_token = bytes / static_cast<double>(std::max<int64_t>(tokens, 1));
    e.read_gbs = seconds > 0 ? bytes / seconds / 1e9 : 0.0;
    const double used = static_cast<double>(y.used - x.used);
    e.prediction_right = used > 0 ? static_cast<double>(y.predicted_right - x.predicted_right) / used : 0.0;
    // No limit is derived from the reads: their rate is measured per read while other reads and
    // the compute run beside them, so it is not a ceiling (docs/offload.md).
    e.file_read_gbs = b.file_read_gbs;

    const double n = static_cast<double>(std::max<int64_t>(timed_tokens, 1));
    if (b.tier == "gpu") {
        e.copy_bytes_per_token = static_cast<double>(y.bytes_loaded - t.total.bytes_loaded) / n;
        e.copy_wait_ms_per_token = 1e3 * (b.copy_wait_seconds - t.copy_wait_seconds) / n;
    }
    const double predicted_s = (y.predicted_seconds - t.total.predicted_seconds) / n;
    if (predicted_s > 0) {
        e.predicted_expert_ms_per_token = 1e3 * predicted_s;
        e.non_expert_ms_per_token = 1e3 * non_expert_s;
        e.bound_ts = 1.0 / (non_expert_s + predicted_s);
    }
}

void run_bench(const BenchArgs& args) {
    const std::vector<int64_t> n_prompt = parse_counts(args.n_prompt, "-p/--n-prompt", 0);
    const std::vector<int64_t> n_gen = parse_counts(args.n_gen, "-n/--n-gen", 0);
    const int repetitions = static_cast<int>(parse_counts({args.repetitions}, "-r/--repetitions", 1).front());
    if (args.output != "md" && args.output != "json" && args.output != "csv")
        throw Error(fmt::format("-o/--output: '{}' is not one of md, json, csv", args.output));
    if (args.probe_ms < 1) throw Error(fmt::format("--probe-ms: {} is below the minimum of 1", args.probe_ms));
    if (args.mem_bw < 0 || args.kernel_gops < 0) throw Error("--mem-bw and --kernel-gops must be positive");
    const Machine machine = read_machine();
    std::vector<int64_t> threads;
    if (args.threads.empty()) {
        threads.push_back(std::max(machine.cores, 1));
    } else {
        threads = parse_counts(args.threads, "-t/--threads", 1);
    }
    for (int64_t t : threads) {
        if (t > 4096) throw Error(fmt::format("-t/--threads: {} is above the maximum of 4096", t));
    }
    const int64_t max_p = *std::max_element(n_prompt.begin(), n_prompt.end());
    const int64_t max_n = *std::max_element(n_gen.begin(), n_gen.end());
    if (max_p == 0 && max_n == 0) throw Error("nothing to run: -p and -n are both 0");
    uint64_t probe_bytes = std::min<uint64_t>(1ull << 30, machine.ram_bytes / 8);
    if (!args.probe_mib.empty())
        probe_bytes = static_cast<uint64_t>(parse_counts({args.probe_mib}, "--probe-mib", 1).front()) << 20;
    probe_bytes = std::max<uint64_t>(probe_bytes, 1u << 20);

    Progress progress(args.progress);
    LoadOptions load{.n_threads = static_cast<int>(threads.front()), .n_ctx = std::max<int64_t>({max_p, max_n, 1})};
    apply_device_flags(args.device, load);
    auto model = Model::load(args.model, load);
    const bool on_gpu = model->backend_name() != "cpu";
    const bool ram_tier = load.offload.ram_experts >= 0;
    const bool expert_tier = !model->expert_cache_stats().tier.empty();
    const ModelCost cost = model_cost(*model);
    const std::string model_type =
        fmt::format("{} {}.A{} {}", model->architecture(), short_count(static_cast<double>(cost.file_params)),
                    short_count(cost.active_params), cost.main_type);

    // The weight types whose kernels the tests run, and F32 for attention.
    std::set<TensorType> types{TensorType::F32};
    for (const auto& [type, ops] : decode_cost(cost, 1).ops) types.insert(type);
    std::vector<ProbeResult> probes;
    for (int64_t t : threads)
        probes.push_back(on_gpu ? run_gpu_probes(args, static_cast<int>(t), model->backend_name(), types, progress)
                                : run_probes(args, static_cast<int>(t), probe_bytes, types, progress));

    progress.clear();
    if (args.output == "md") {
        std::string head = markdown_header(machine);
        for (const ProbeResult& p : probes) head += markdown_probe_line(p.record);
        fmt::print("{}\n{}", head, markdown_table_head(expert_tier));
        std::fflush(stdout);
    }

    std::mt19937_64 rng(args.seed);
    std::uniform_int_distribution<int32_t> pick(0, static_cast<int32_t>(model->n_vocab() - 1));
    nlohmann::ordered_json rows = nlohmann::ordered_json::array();
    for (size_t ti = 0; ti < threads.size(); ++ti) {
        const int n_threads = static_cast<int>(threads[ti]);
        // The RAM tier's cost model takes the CPU's rates from this thread count's probes (the
        // ones the limits use), given at load: the model is loaded again with them.
        if (model->n_threads() != n_threads || ram_tier) {
            model.reset();
            LoadOptions again = load;
            again.n_threads = n_threads;
            if (ram_tier) {
                again.offload.cpu_read_gbs = probes[ti].probes.mem_bw_gbs;
                again.offload.cpu_gops = expert_gops(cost, probes[ti].probes);
            }
            model = Model::load(args.model, again);
        }
        Session session(model);
        struct Test {
            int64_t n_prompt, n_gen;
        };
        std::vector<Test> tests;
        for (int64_t p : n_prompt)
            if (p > 0) tests.push_back({p, 0});
        for (int64_t n : n_gen)
            if (n > 0) tests.push_back({0, n});
        for (const Test& test : tests) {
            BenchRow row;
            row.model_filename = args.model;
            row.model_type = model_type;
            row.model_size = cost.file_tensor_bytes;
            row.model_n_params = cost.file_params;
            row.n_threads = model->n_threads();
            row.n_prompt = test.n_prompt;
            row.n_gen = test.n_gen;
            row.probe = probes[ti].record;
            row.backend = model->backend_name();
            const bool is_prefill = test.n_prompt > 0;
            const TestCost tc = is_prefill ? prefill_cost(cost, test.n_prompt) : decode_cost(cost, test.n_gen);
            const Limit limit = test_limit(tc, is_prefill, probes[ti].probes);
            row.bytes_per_token = tc.bytes_per_token;
            row.flops_per_token = tc.flops_per_token;
            row.limit_ts = limit.limit_ts;
            row.limit_kind = limit.kind;
            row.peak_gops = limit.peak_gops;

            std::vector<int32_t> tokens(static_cast<size_t>(row.n_tokens()));
            for (int32_t& t : tokens) t = pick(rng);
            row.test_time = utc_now();
            const std::string label = fmt::format("{} t={}", row.test_name(), n_threads);
            const ExpertCacheStats before = model->expert_cache_stats();
            ExpertCacheStats timed;
            row.samples_ns = time_test(session, tokens, is_prefill, args, repetitions, label, progress,
                                       [&] { timed = model->expert_cache_stats(); });
            if (expert_tier) {
                const int runs = repetitions + (args.warmup ? 1 : 0);
                note_expert_traffic(row, before, timed, model->expert_cache_stats(), runs * row.n_tokens(),
                                    repetitions * row.n_tokens(),
                                    non_expert_seconds(cost, row.n_tokens(), is_prefill, probes[ti].probes));
            }

            progress.clear();
            const nlohmann::ordered_json j = row_json(row, machine);
            if (args.output == "md") {
                fmt::print("{}", markdown_row(row, machine, expert_tier));
            } else if (args.output == "csv") {
                if (rows.empty()) fmt::print("{}", csv_header(j));
                fmt::print("{}", csv_line(j));
            }
            std::fflush(stdout);
            rows.push_back(j);
        }
    }
    progress.clear();
    if (args.output == "json") fmt::print("{}\n", rows.dump(2));
}

}  // namespace

void add_bench_command(CLI::App& app) {
    auto args = std::make_shared<BenchArgs>();
    auto* cmd = app.add_subcommand("bench", "Measure prefill and decode speed against the hardware's limits");
    cmd->add_option("-m,--model", args->model, "GGUF model file, or HF model directory")->required();
    cmd->add_option("-p,--n-prompt", args->n_prompt, "prompt lengths to prefill, comma-separated (0: no pp test)")
        ->delimiter(',')
        ->capture_default_str();
    cmd->add_option("-n,--n-gen", args->n_gen, "tokens to decode, comma-separated (0: no tg test)")
        ->delimiter(',')
        ->capture_default_str();
    cmd->add_option("-t,--threads", args->threads, "thread counts, comma-separated (default: the physical cores)")
        ->delimiter(',');
    cmd->add_option("-r,--repetitions", args->repetitions, "timed runs of each test")->capture_default_str();
    cmd->add_option("-o,--output", args->output, "output format: md, json or csv")->capture_default_str();
    cmd->add_flag("--progress,!--no-progress", args->progress, "progress on stderr (default: on)");
    cmd->add_flag("--warmup,!--no-warmup", args->warmup, "one untimed run before each test (default: on)");
    cmd->add_option("--seed", args->seed, "seed of the random token ids")->capture_default_str();
    cmd->add_option("--probe-mib", args->probe_mib, "buffer of the bandwidth probe in MiB (default: min(1024, RAM/8))");
    cmd->add_option("--probe-ms", args->probe_ms, "time of the matmul probe per weight type, ms")
        ->capture_default_str();
    cmd->add_option("--mem-bw", args->mem_bw, "memory bandwidth in GB/s to use instead of probing it");
    cmd->add_option("--kernel-gops", args->kernel_gops,
                    "matmul rate in GOP/s to use for every type instead of probing");
    add_device_flags(cmd, args->device);
    cmd->callback([args] { run_bench(*args); });
}

}  // namespace hymoe::cli
