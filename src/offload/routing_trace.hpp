// Routing traces: which experts every token used at every MoE layer, recorded from a real run
// (`hymoe trace`) and replayed through the expert cache offline (`hymoe simulate`).
//
// A text file, one line per (token, layer) after a short header; docs/offload.md ("Routing
// traces") describes it. The writer streams; the reader checks every field and throws
// hymoe::Error naming the file, the line and what is wrong, so a trace it returns can be
// indexed without further checks.
#pragma once

#include <cstdint>
#include <fstream>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace hymoe::offload {

inline constexpr std::string_view kRoutingTraceMagic = "hymoe-routing-trace";
inline constexpr int kRoutingTraceVersion = 1;
// Bounds the reader accepts, far above any released model (DeepSeek-V3: 61 layers, 256 experts).
inline constexpr int64_t kRoutingTraceMaxLayers = 1 << 16;
inline constexpr int64_t kRoutingTraceMaxExperts = 1 << 16;

struct RoutingTraceHeader {
    std::string model;         // the model file the trace was recorded from (informational)
    std::string architecture;  // GGUF architecture name, "qwen3moe", ...
    int64_t n_layers = 0;
    int64_t n_experts = 0;
    int64_t n_experts_used = 0;       // k: experts per token
    int64_t n_probs = 0;              // router probabilities kept per line: the top n_probs (2·k)
    std::vector<int64_t> moe_layers;  // layers with routed experts, ascending
};

// Throws hymoe::Error naming `what` (the file) and the first field out of range.
void validate_routing_trace_header(const RoutingTraceHeader& h, std::string_view what);

// A whole trace in memory. Records are in file order, which is time order within every layer.
struct RoutingTrace {
    RoutingTraceHeader header;
    std::vector<int64_t> position;     // [n_records] token position
    std::vector<int32_t> layer;        // [n_records]
    std::vector<int32_t> experts;      // [n_records][n_experts_used] routed experts, best first
    std::vector<float> weights;        // [n_records][n_experts_used] their routing weights
    std::vector<int32_t> prob_expert;  // [n_records][n_probs] the router's top experts, descending
    std::vector<float> prob;           // [n_records][n_probs] their softmax probabilities

    size_t n_records() const { return position.size(); }
    std::span<const int32_t> experts_of(size_t r) const { return row(experts, r, header.n_experts_used); }
    std::span<const float> weights_of(size_t r) const { return row(weights, r, header.n_experts_used); }
    std::span<const int32_t> prob_experts_of(size_t r) const { return row(prob_expert, r, header.n_probs); }
    std::span<const float> probs_of(size_t r) const { return row(prob, r, header.n_probs); }

private:
    template <class T>
    static std::span<const T> row(const std::vector<T>& v, size_t r, int64_t n) {
        const auto w = static_cast<size_t>(n);
        return std::span<const T>(v).subspan(r * w, w);
    }
};

// Parses a trace held in memory; `name` (the file) is what errors name.
RoutingTrace parse_routing_trace(std::string_view text, std::string_view name);
// Reads and parses a trace file.
RoutingTrace read_routing_trace(const std::string& path);

// Writes a trace line by line as a run produces it. finish() writes the closing line; a trace
// without it (the run was interrupted) reads as truncated.
class RoutingTraceWriter {
public:
    // Creates `path` and writes the header; throws hymoe::Error if it cannot or the header is invalid.
    RoutingTraceWriter(const std::string& path, RoutingTraceHeader header);
    ~RoutingTraceWriter();
    RoutingTraceWriter(const RoutingTraceWriter&) = delete;
    RoutingTraceWriter& operator=(const RoutingTraceWriter&) = delete;

    // One token at one MoE layer. experts, weights: [n_experts_used]; probs: [n_experts], the
    // softmax of the router logits, of which the top n_probs are kept (empty when n_probs is 0).
    // Positions must increase within a layer. Throws hymoe::Error for input the reader would
    // refuse, so every written trace reads back.
    void write(int64_t position, int64_t layer, std::span<const int32_t> experts, std::span<const float> weights,
               std::span<const float> probs);
    // Writes the closing line and closes the file; throws on a write error (a full disk).
    void finish();

    int64_t n_records() const { return n_records_; }
    const RoutingTraceHeader& header() const { return header_; }

private:
    std::string path_;
    RoutingTraceHeader header_;
    std::ofstream file_;                  // closed once finished
    std::vector<uint8_t> is_moe_;         // [n_layers]
    std::vector<int64_t> last_position_;  // [n_layers] -1 = none yet
    std::vector<int32_t> order_;          // [n_experts] scratch for the top n_probs
    std::vector<uint8_t> seen_;           // [n_experts] scratch for duplicate checks
    std::string line_;
    int64_t n_records_ = 0;
};

}  // namespace hymoe::offload
