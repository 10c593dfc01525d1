#include "bench_report.hpp"

#include <unistd.h>

#include <cmath>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>
#include <utility>

#include <fmt/format.h>

#include "cpu/matmul.hpp"
#include "hymoe/build_info.hpp"

namespace hymoe::cli {

namespace {

std::string trim(std::string s) {
    const auto first = s.find_first_not_of(" \t");
    const auto last = s.find_last_not_of(" \t\r\n");
    return first == std::string::npos ? "" : s.substr(first, last - first + 1);
}

double mean(const std::vector<double>& v) {
    double sum = 0;
    for (double x : v) sum += x;
    return v.empty() ? 0.0 : sum / static_cast<double>(v.size());
}

// The sample standard deviation (n - 1), as llama-bench reports it; 0 for fewer than two.
double stddev(const std::vector<double>& v) {
    if (v.size() < 2) return 0.0;
    const double m = mean(v);
    double sq = 0;
    for (double x : v) sq += (x - m) * (x - m);
    return std::sqrt(sq / static_cast<double>(v.size() - 1));
}

std::vector<double> samples_ts(const BenchRow& row) {
    std::vector<double> ts;
    for (uint64_t ns : row.samples_ns)
        ts.push_back(ns > 0 ? 1e9 * static_cast<double>(row.n_tokens()) / static_cast<double>(ns) : 0.0);
    return ts;
}

std::vector<double> samples_ns(const BenchRow& row) {
    return {row.samples_ns.begin(), row.samples_ns.end()};
}

std::string human_bytes(uint64_t bytes) {
    const auto b = static_cast<double>(bytes);
    if (b >= 1024.0 * 1024 * 1024) return fmt::format("{:.2f} GiB", b / (1024.0 * 1024 * 1024));
    if (b >= 1024.0 * 1024) return fmt::format("{:.2f} MiB", b / (1024.0 * 1024));
    return fmt::format("{:.2f} KiB", b / 1024.0);
}

std::string human_count(double n) {
    if (n >= 1e9) return fmt::format("{:.2f} B", n / 1e9);
    if (n >= 1e6) return fmt::format("{:.2f} M", n / 1e6);
    return fmt::format("{:.2f} K", n / 1e3);
}

std::string cpu_info(const Machine& m) {
    return fmt::format("{} ({} cores, {} threads, {} RAM)", m.cpu_model, m.cores, m.threads, human_bytes(m.ram_bytes));
}

}  // namespace

Machine read_machine() {
    Machine m;
    std::ifstream cpuinfo("/proc/cpuinfo");
    std::set<std::pair<std::string, std::string>> cores;  // (physical id, core id)
    std::string line, physical_id;
    while (std::getline(cpuinfo, line)) {
        const auto colon = line.find(':');
        if (colon == std::string::npos) continue;
        const std::string key = trim(line.substr(0, colon)), value = trim(line.substr(colon + 1));
        if (key == "model name" && m.cpu_model.empty()) m.cpu_model = value;
        if (key == "physical id") physical_id = value;
        if (key == "core id") cores.emplace(physical_id, value);
    }
    if (m.cpu_model.empty()) m.cpu_model = "unknown CPU";
    m.threads = static_cast<int>(std::thread::hardware_concurrency());
    m.cores = cores.empty() ? m.threads : static_cast<int>(cores.size());
    std::ifstream meminfo("/proc/meminfo");
    while (std::getline(meminfo, line)) {
        if (line.rfind("MemTotal:", 0) == 0) {
            std::istringstream in(line.substr(9));
            uint64_t kib = 0;
            in >> kib;
            m.ram_bytes = kib * 1024;
            break;
        }
    }
    if (m.ram_bytes == 0) {
        const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGESIZE);
        if (pages > 0 && page > 0) m.ram_bytes = static_cast<uint64_t>(pages) * static_cast<uint64_t>(page);
    }
    m.isa = cpu::matmul_isa();
    return m;
}

std::string BenchRow::test_name() const {
    return n_prompt > 0 ? fmt::format("pp{}", n_prompt) : fmt::format("tg{}", n_gen);
}

nlohmann::ordered_json row_json(const BenchRow& row, const Machine& machine) {
    const std::vector<double> ns = samples_ns(row), ts = samples_ts(row);
    const double avg_ts = mean(ts);
    nlohmann::ordered_json j;
    j["build_commit"] = build_info().version;
    j["build_number"] = 0;
    j["cpu_info"] = cpu_info(machine);
    const bool gpu = row.backend != "cpu";
    j["gpu_info"] = gpu ? row.backend : "";
    j["backends"] = gpu ? "CUDA" : "CPU";
    j["model_filename"] = row.model_filename;
    j["model_type"] = row.model_type;
    j["model_size"] = row.model_size;
    j["model_n_params"] = row.model_n_params;
    j["n_threads"] = row.n_threads;
    j["n_prompt"] = row.n_prompt;
    j["n_gen"] = row.n_gen;
    j["n_depth"] = 0;
    j["test_time"] = row.test_time;
    j["avg_ns"] = static_cast<uint64_t>(std::llround(mean(ns)));
    j["stddev_ns"] = static_cast<uint64_t>(std::llround(stddev(ns)));
    j["avg_ts"] = avg_ts;
    j["stddev_ts"] = stddev(ts);
    j["samples_ns"] = row.samples_ns;
    j["samples_ts"] = ts;
    // ours
    j["cpu_model"] = machine.cpu_model;
    j["cpu_cores"] = machine.cores;
    j["cpu_threads"] = machine.threads;
    j["ram_bytes"] = machine.ram_bytes;
    j["cpu_isa"] = machine.isa;
    j["limit_ts"] = row.limit_ts;
    j["fraction"] = row.limit_ts > 0 ? avg_ts / row.limit_ts : 0.0;
    j["limit_kind"] = row.limit_kind;
    j["bytes_per_token"] = row.bytes_per_token;
    j["flops_per_token"] = row.flops_per_token;
    j["mem_bw_gbs"] = row.probe.mem_bw_gbs;
    j["peak_gops"] = row.peak_gops;
    nlohmann::ordered_json kernels = nlohmann::ordered_json::object();
    for (const auto& [type, gops] : row.probe.kernel_gops) kernels[type] = gops;
    j["kernel_gops"] = kernels;
    if (!row.experts.tier.empty()) {
        const BenchRow::Experts& e = row.experts;
        const bool ram_tier = e.tier == "ram", gpu_tier = e.tier == "gpu";
        nlohmann::ordered_json x;
        x["tier"] = e.tier;
        x["policy"] = e.policy;
        x["ram_cache_bytes"] = e.cache_bytes;
        x["hit_rate"] = e.hit_rate;
        if (ram_tier) {
            x["read_bytes_per_token"] = e.read_bytes_per_token;
            x["read_gbs"] = e.read_gbs;
        }
        x["prediction_right"] = e.prediction_right;
        if (gpu_tier) {
            x["copy_bytes_per_token"] = e.copy_bytes_per_token;
            x["copy_wait_ms_per_token"] = e.copy_wait_ms_per_token;
        }
        if (e.bound_ts > 0) {
            if (ram_tier) x["file_read_gbs"] = e.file_read_gbs;
            x["predicted_expert_ms_per_token"] = e.predicted_expert_ms_per_token;
            x["non_expert_ms_per_token"] = e.non_expert_ms_per_token;
            x["bound_ts"] = e.bound_ts;
            x["fraction_of_bound"] = avg_ts / e.bound_ts;
        }
        j["experts"] = x;
    }
    return j;
}

std::string markdown_header(const Machine& m) {
    return fmt::format("machine: {}, {} cores / {} threads, {} RAM, matmul kernels: {}\n", m.cpu_model, m.cores,
                       m.threads, human_bytes(m.ram_bytes), m.isa);
}

std::string markdown_probe_line(const ProbeRecord& p) {
    std::string kernels;
    for (const auto& [type, gops] : p.kernel_gops)
        kernels += fmt::format("{}{} {:.1f}", kernels.empty() ? "" : ", ", type, gops);
    return fmt::format("threads {}: memory read {:.2f} GB/s ({}); matmul in cache, GOP/s: {}\n", p.n_threads,
                       p.mem_bw_gbs, p.mem_bw_source, kernels.empty() ? "-" : kernels);
}

std::string markdown_table_head(bool experts) {
    std::string head =
        fmt::format("| {:<30} | {:>10} | {:>10} | {:<12} | {:>7} | {:>8} | {:>20} | {:>10} | {:>7} | {:>7} |",
                    "model", "size", "params", "backend", "threads", "test", "t/s", "limit t/s", "bound", "% limit");
    std::string rule = fmt::format(
        "| {:-<30} | {:->9}: | {:->9}: | {:-<12} | {:->6}: | {:->7}: | {:->19}: | {:->9}: | {:->6}: | {:->6}: |", "",
        "", "", "", "", "", "", "", "", "");
    if (experts) {
        head += fmt::format(" {:>8} | {:>10} | {:>7} |", "hit rate", "bound t/s", "% bound");
        rule += fmt::format(" {:->7}: | {:->9}: | {:->6}: |", "", "", "");
    }
    return head + "\n" + rule + "\n";
}

std::string markdown_row(const BenchRow& row, const Machine& machine, bool experts) {
    const std::vector<double> ts = samples_ts(row);
    const double avg = mean(ts);
    std::string line = fmt::format(
        "| {:<30} | {:>10} | {:>10} | {:<12} | {:>7} | {:>8} | {:>20} | {:>10.2f} | {:>7} | {:>7} |", row.model_type,
        human_bytes(row.model_size), human_count(static_cast<double>(row.model_n_params)),
        row.backend == "cpu" ? fmt::format("CPU {}", machine.isa) : row.backend.substr(0, row.backend.find(' ')),
        row.n_threads, row.test_name(), fmt::format("{:.2f} ± {:.2f}", avg, stddev(ts)), row.limit_ts,
        row.limit_kind == "memory" ? "mem" : "compute",
        row.limit_ts > 0 ? fmt::format("{:.1f}%", 100.0 * avg / row.limit_ts) : "-");
    if (experts) {
        const BenchRow::Experts& e = row.experts;
        const bool bound = e.bound_ts > 0;
        line += fmt::format(" {:>8} | {:>10} | {:>7} |",
                            e.tier.empty() ? "-" : fmt::format("{:.1f}%", 100.0 * e.hit_rate),
                            bound ? fmt::format("{:.2f}", e.bound_ts) : "-",
                            bound ? fmt::format("{:.1f}%", 100.0 * avg / e.bound_ts) : "-");
    }
    return line + "\n";
}

std::string csv_header(const nlohmann::ordered_json& row) {
    std::string out;
    for (const auto& [key, value] : row.items()) out += fmt::format("{}{}", out.empty() ? "" : ",", key);
    return out + "\n";
}

// Every field quoted, as llama-bench writes them; arrays as "a,b,c", objects as JSON text.
std::string csv_line(const nlohmann::ordered_json& row) {
    std::string out;
    bool first = true;
    for (const auto& [key, value] : row.items()) {
        std::string text;
        if (value.is_string()) {
            text = value.get<std::string>();
        } else if (value.is_array()) {
            for (const auto& v : value) text += fmt::format("{}{}", text.empty() ? "" : ",", v.dump());
        } else {
            text = value.dump();
        }
        std::string quoted = "\"";
        for (char c : text) quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
        out += fmt::format("{}{}\"", first ? "" : ",", quoted);
        first = false;
    }
    return out + "\n";
}

}  // namespace hymoe::cli
