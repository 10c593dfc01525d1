#include "offload/routing_trace.hpp"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <limits>
#include <memory>
#include <optional>
#include <system_error>

#include <fmt/format.h>

#include "hymoe/error.hpp"

namespace hymoe::offload {

namespace {

// Positions beyond this are refused, so that position arithmetic never overflows.
constexpr int64_t kMaxPosition = int64_t{1} << 62;

// A piece of the input for an error message: at most 24 characters, anything unprintable as \xNN.
std::string quoted(std::string_view s) {
    constexpr size_t kMax = 24;
    std::string out = "'";
    for (size_t i = 0; i < std::min(s.size(), kMax); ++i) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c >= 0x20 && c < 0x7f) {
            out += static_cast<char>(c);
        } else {
            out += fmt::format("\\x{:02x}", c);
        }
    }
    if (s.size() > kMax) out += "...";
    out += '\'';
    return out;
}

bool has_control_char(std::string_view s) {
    return std::any_of(s.begin(), s.end(), [](char ch) {
        const auto c = static_cast<unsigned char>(ch);
        return c < 0x20 || c == 0x7f;
    });
}

bool is_blank(char c) {
    return c == ' ' || c == '\t';
}

std::optional<int64_t> to_integer(std::string_view s) {
    int64_t v = 0;
    const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || ec != std::errc() || ptr != s.data() + s.size()) return std::nullopt;
    return v;
}

std::optional<float> to_float(std::string_view s) {
    float v = 0;
    const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || ec != std::errc() || ptr != s.data() + s.size()) return std::nullopt;
    return v;
}

// Walks the text line by line and each line token by token, and throws naming the line.
class TraceParser {
public:
    TraceParser(std::string_view text, std::string_view name) : text_(text), name_(name) {}

    [[noreturn]] void fail(std::string_view what) const {
        throw Error(fmt::format("{}: line {}: {}", name_, line_no_, what));
    }
    // For a line that is missing: names the line where it should have been.
    [[noreturn]] void fail_missing(std::string_view what) {
        ++line_no_;
        fail(what);
    }

    // The next line, comment lines ('#' first) skipped unless `comments` is false; false at the
    // end of the text.
    bool next_line(bool comments = true) {
        while (next_raw_line()) {
            if (!comments || line_.empty() || line_[0] != '#') return true;
        }
        return false;
    }

    // The next token of the current line (blank-separated); empty at the end of the line.
    std::string_view token() {
        size_t i = 0;
        while (i < rest_.size() && is_blank(rest_[i])) ++i;
        size_t j = i;
        while (j < rest_.size() && !is_blank(rest_[j])) ++j;
        const std::string_view t = rest_.substr(i, j - i);
        rest_ = rest_.substr(j);
        return t;
    }
    // What follows the current token, after one separating blank.
    std::string_view rest_of_line() {
        std::string_view r = rest_;
        if (!r.empty() && is_blank(r[0])) r.remove_prefix(1);
        rest_ = {};
        return r;
    }
    void expect_end_of_line() {
        const std::string_view t = token();
        if (!t.empty()) fail(fmt::format("unexpected {} at the end of the line", quoted(t)));
    }

    int64_t integer(std::string_view t, std::string_view what, int64_t lo, int64_t hi) const {
        const auto v = to_integer(t);
        if (!v) fail(fmt::format("{}: bad number {}", what, quoted(t)));
        if (*v < lo || *v > hi) fail(fmt::format("{} {} out of range [{}, {}]", what, *v, lo, hi));
        return *v;
    }
    float number(std::string_view t, std::string_view what) const {
        const auto v = to_float(t);
        if (!v) fail(fmt::format("{}: bad number {}", what, quoted(t)));
        return *v;
    }

    // A header line "key value": checks the key, leaves the value to be read.
    void header_line(std::string_view key) {
        if (!next_line()) fail_missing(fmt::format("truncated header: expected '{}'", key));
        const std::string_view t = token();
        if (t != key) fail(fmt::format("expected the header line '{} ...', found {}", key, quoted(line_)));
    }
    int64_t header_integer(std::string_view key, int64_t lo, int64_t hi) {
        header_line(key);
        const std::string_view t = token();
        if (t.empty()) fail(fmt::format("{}: no value", key));
        const int64_t v = integer(t, key, lo, hi);
        expect_end_of_line();
        return v;
    }

    std::string_view line() const { return line_; }

private:
    bool next_raw_line() {
        if (pos_ >= text_.size()) return false;
        ++line_no_;
        const size_t nl = text_.find('\n', pos_);
        if (nl == std::string_view::npos) {
            line_ = text_.substr(pos_);
            fail(fmt::format("truncated: the file ends inside this line ({})", quoted(line_)));
        }
        line_ = text_.substr(pos_, nl - pos_);
        pos_ = nl + 1;
        if (!line_.empty() && line_.back() == '\r') line_.remove_suffix(1);  // written on Windows
        rest_ = line_;
        return true;
    }

    std::string_view text_, name_;
    size_t pos_ = 0;
    int64_t line_no_ = 0;
    std::string_view line_, rest_;
};

RoutingTraceHeader parse_header(TraceParser& p) {
    RoutingTraceHeader h;
    if (!p.next_line(false)) p.fail_missing("truncated header: the file is empty");
    const std::string_view magic = p.token();
    if (magic != kRoutingTraceMagic)
        p.fail(fmt::format("not a hymoe routing trace: the first line must be '{} {}'", kRoutingTraceMagic,
                           kRoutingTraceVersion));
    const std::string_view version = p.token();
    if (p.integer(version, "version", 0, std::numeric_limits<int32_t>::max()) != kRoutingTraceVersion)
        p.fail(fmt::format("routing trace version {}; this build reads version {}", version, kRoutingTraceVersion));
    p.expect_end_of_line();

    p.header_line("model");
    h.model = std::string(p.rest_of_line());
    if (h.model.empty()) p.fail("model: no value");
    if (has_control_char(h.model)) p.fail("model: the path holds a control character");

    p.header_line("architecture");
    h.architecture = std::string(p.token());
    if (h.architecture.empty()) p.fail("architecture: no value");
    if (has_control_char(h.architecture)) p.fail("architecture: holds a control character");
    p.expect_end_of_line();

    h.n_layers = p.header_integer("n_layers", 1, kRoutingTraceMaxLayers);
    h.n_experts = p.header_integer("n_experts", 1, kRoutingTraceMaxExperts);
    h.n_experts_used = p.header_integer("n_experts_used", 1, h.n_experts);
    h.n_probs = p.header_integer("n_probs", 0, h.n_experts);

    p.header_line("moe_layers");
    const std::string_view list = p.token();
    if (list.empty()) p.fail("moe_layers: no value (expected layers such as 0,1,2)");
    p.expect_end_of_line();
    size_t start = 0;
    while (start <= list.size()) {
        const size_t comma = std::min(list.find(',', start), list.size());
        const int64_t l = p.integer(list.substr(start, comma - start), "moe_layers: layer", 0, h.n_layers - 1);
        if (!h.moe_layers.empty() && l <= h.moe_layers.back())
            p.fail(fmt::format("moe_layers: layer {} after layer {} (expected ascending layers, each once)", l,
                               h.moe_layers.back()));
        h.moe_layers.push_back(l);
        start = comma + 1;
    }
    return h;
}

}  // namespace

void validate_routing_trace_header(const RoutingTraceHeader& h, std::string_view what) {
    const auto bad = [&](const std::string& why) {
        return Error(fmt::format("{}: routing trace header: {}", what, why));
    };
    if (h.model.empty() || has_control_char(h.model)) throw bad(fmt::format("bad model path {}", quoted(h.model)));
    if (h.architecture.empty() || has_control_char(h.architecture) ||
        std::any_of(h.architecture.begin(), h.architecture.end(), is_blank))
        throw bad(fmt::format("bad architecture name {}", quoted(h.architecture)));
    if (h.n_layers < 1 || h.n_layers > kRoutingTraceMaxLayers)
        throw bad(fmt::format("n_layers {} out of range [1, {}]", h.n_layers, kRoutingTraceMaxLayers));
    if (h.n_experts < 1 || h.n_experts > kRoutingTraceMaxExperts)
        throw bad(fmt::format("n_experts {} out of range [1, {}]", h.n_experts, kRoutingTraceMaxExperts));
    if (h.n_experts_used < 1 || h.n_experts_used > h.n_experts)
        throw bad(fmt::format("n_experts_used {} out of range [1, {}]", h.n_experts_used, h.n_experts));
    if (h.n_probs < 0 || h.n_probs > h.n_experts)
        throw bad(fmt::format("n_probs {} out of range [0, {}]", h.n_probs, h.n_experts));
    if (h.moe_layers.empty()) throw bad("no MoE layers");
    for (size_t i = 0; i < h.moe_layers.size(); ++i) {
        const int64_t l = h.moe_layers[i];
        if (l < 0 || l >= h.n_layers) throw bad(fmt::format("MoE layer {} out of range [0, {})", l, h.n_layers));
        if (i > 0 && l <= h.moe_layers[i - 1]) throw bad("MoE layers not ascending");
    }
}

RoutingTrace parse_routing_trace(std::string_view text, std::string_view name) {
    TraceParser p(text, name);
    RoutingTrace trace;
    trace.header = parse_header(p);
    const RoutingTraceHeader& h = trace.header;
    validate_routing_trace_header(h, name);  // everything was checked above; this cannot throw

    const int64_t k = h.n_experts_used, np = h.n_probs, ne = h.n_experts;
    std::vector<uint8_t> is_moe(static_cast<size_t>(h.n_layers), 0);
    for (int64_t l : h.moe_layers) is_moe[static_cast<size_t>(l)] = 1;
    std::vector<int64_t> last_position(static_cast<size_t>(h.n_layers), -1);
    // Duplicate checks without clearing: stamp[e] == the current (record, list) number when seen.
    std::vector<uint64_t> stamp(static_cast<size_t>(ne), 0);
    uint64_t list_id = 0;

    // One list of `count` expert:value pairs, appended to the trace's arrays.
    const auto read_pairs = [&](int64_t count, bool probs) {
        ++list_id;
        const char* what = probs ? "probabilities (expert:prob)" : "experts (expert:weight)";
        float previous = std::numeric_limits<float>::infinity();
        for (int64_t i = 0; i < count; ++i) {
            const std::string_view t = p.token();
            if (t.empty() || t == "|") p.fail(fmt::format("expected {} {}, found {}", count, what, i));
            const size_t colon = t.find(':');
            if (colon == std::string_view::npos)
                p.fail(fmt::format("{}: expected expert:{}", quoted(t), probs ? "prob" : "weight"));
            const auto e = static_cast<int32_t>(
                p.integer(t.substr(0, colon), probs ? "probability's expert" : "expert", 0, ne - 1));
            const float v = p.number(t.substr(colon + 1), probs ? "probability" : "weight");
            if (stamp[static_cast<size_t>(e)] == list_id)
                p.fail(fmt::format("expert {} appears twice among the {}", e, probs ? "probabilities" : "experts"));
            stamp[static_cast<size_t>(e)] = list_id;
            if (probs) {
                if (!(v >= 0.0f && v <= 1.0f))
                    p.fail(fmt::format("probability of expert {} is {}, not in [0, 1]", e, v));
                if (v > previous)
                    p.fail(
                        fmt::format("probabilities not in descending order: {} (expert {}) after {}", v, e, previous));
                previous = v;
                trace.prob_expert.push_back(e);
                trace.prob.push_back(v);
            } else {
                if (!std::isfinite(v) || v < 0.0f) p.fail(fmt::format("weight of expert {} is {}, not >= 0", e, v));
                trace.experts.push_back(e);
                trace.weights.push_back(v);
            }
        }
    };

    while (true) {
        if (!p.next_line()) p.fail_missing("truncated: expected a record or the closing 'end' line");
        if (p.line().empty()) p.fail("empty line");
        const std::string_view first = p.token();
        if (first == "end") {
            const std::string_view n = p.token();
            const int64_t count = p.integer(n, "end: record count", 0, std::numeric_limits<int64_t>::max());
            p.expect_end_of_line();
            if (count != static_cast<int64_t>(trace.n_records()))
                p.fail(fmt::format("the 'end' line counts {} records, the trace holds {}", count, trace.n_records()));
            if (p.next_line(false)) p.fail("text after the closing 'end' line");
            break;
        }
        const int64_t pos = p.integer(first, "position", 0, kMaxPosition);
        const std::string_view lt = p.token();
        if (lt.empty()) p.fail("expected: position layer experts | probabilities");
        const auto l = p.integer(lt, "layer", 0, h.n_layers - 1);
        if (is_moe[static_cast<size_t>(l)] == 0) p.fail(fmt::format("layer {} has no routed experts (moe_layers)", l));
        int64_t& last = last_position[static_cast<size_t>(l)];
        if (pos <= last)
            p.fail(
                fmt::format("position {} at layer {} does not follow position {} (a layer's lines go in token order)",
                            pos, l, last));
        last = pos;
        read_pairs(k, false);
        const std::string_view bar = p.token();
        if (bar != "|")
            p.fail(bar.empty() ? fmt::format("expected '|' after the {} experts", k)
                               : fmt::format("expected '|' after the {} experts, found {}", k, quoted(bar)));
        read_pairs(np, true);
        const std::string_view extra = p.token();
        if (!extra.empty()) p.fail(fmt::format("more than {} probabilities: {}", np, quoted(extra)));
        trace.position.push_back(pos);
        trace.layer.push_back(static_cast<int32_t>(l));
    }
    return trace;
}

RoutingTrace read_routing_trace(const std::string& path) {
    std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
    if (!f) throw Error(fmt::format("{}: cannot open the routing trace: {}", path, std::strerror(errno)));
    std::string text;
    char buf[1 << 16];
    size_t n = 0;
    while ((n = std::fread(buf, 1, sizeof(buf), f.get())) > 0) text.append(buf, n);
    if (std::ferror(f.get()) != 0)
        throw Error(fmt::format("{}: cannot read the routing trace: {}", path, std::strerror(errno)));
    return parse_routing_trace(text, path);
}

RoutingTraceWriter::RoutingTraceWriter(const std::string& path, RoutingTraceHeader header)
    : path_(path), header_(std::move(header)) {
    validate_routing_trace_header(header_, path_);
    const RoutingTraceHeader& h = header_;
    is_moe_.assign(static_cast<size_t>(h.n_layers), 0);
    for (int64_t l : h.moe_layers) is_moe_[static_cast<size_t>(l)] = 1;
    last_position_.assign(static_cast<size_t>(h.n_layers), -1);
    order_.resize(static_cast<size_t>(h.n_experts));
    seen_.assign(static_cast<size_t>(h.n_experts), 0);

    file_.open(path_, std::ios::binary | std::ios::trunc);
    if (!file_) throw Error(fmt::format("{}: cannot create the routing trace: {}", path_, std::strerror(errno)));
    std::string layers;
    for (int64_t l : h.moe_layers) fmt::format_to(std::back_inserter(layers), "{}{}", layers.empty() ? "" : ",", l);
    const std::string head = fmt::format(
        "{} {}\nmodel {}\narchitecture {}\nn_layers {}\nn_experts {}\nn_experts_used {}\nn_probs {}\nmoe_layers {}\n"
        "# position layer expert:weight x{} | expert:prob x{} (the router's top {} by softmax, descending)\n",
        kRoutingTraceMagic, kRoutingTraceVersion, h.model, h.architecture, h.n_layers, h.n_experts, h.n_experts_used,
        h.n_probs, layers, h.n_experts_used, h.n_probs, h.n_probs);
    if (!file_.write(head.data(), static_cast<std::streamsize>(head.size())))
        throw Error(fmt::format("{}: writing the routing trace failed: {}", path_, std::strerror(errno)));
}

RoutingTraceWriter::~RoutingTraceWriter() = default;

void RoutingTraceWriter::write(int64_t position, int64_t layer, std::span<const int32_t> experts,
                               std::span<const float> weights, std::span<const float> probs) {
    const RoutingTraceHeader& h = header_;
    const auto bad = [&](const std::string& why) {
        return Error(fmt::format("{}: position {}, layer {}: {}", path_, position, layer, why));
    };
    if (!file_.is_open()) throw bad("the trace was already finished");
    if (layer < 0 || layer >= h.n_layers || is_moe_[static_cast<size_t>(layer)] == 0)
        throw bad("not a layer with routed experts");
    if (position < 0 || position > kMaxPosition) throw bad("position out of range");
    if (position <= last_position_[static_cast<size_t>(layer)])
        throw bad(fmt::format("positions must increase within a layer (the last was {})",
                              last_position_[static_cast<size_t>(layer)]));
    const auto k = static_cast<size_t>(h.n_experts_used);
    if (experts.size() != k || weights.size() != k)
        throw bad(fmt::format("{} experts and {} weights, expected {}", experts.size(), weights.size(), k));
    if (h.n_probs > 0 && probs.size() != static_cast<size_t>(h.n_experts))
        throw bad(fmt::format("{} router probabilities, expected {}", probs.size(), h.n_experts));
    for (size_t i = 0; i < k; ++i) {
        if (experts[i] < 0 || experts[i] >= h.n_experts) throw bad(fmt::format("expert {} out of range", experts[i]));
        if (!std::isfinite(weights[i]) || weights[i] < 0.0f)
            throw bad(fmt::format("weight {} of expert {} is not >= 0", weights[i], experts[i]));
    }
    int32_t twice = -1;
    for (int32_t e : experts) {
        if (seen_[static_cast<size_t>(e)] != 0) twice = e;
        seen_[static_cast<size_t>(e)] = 1;
    }
    for (int32_t e : experts) seen_[static_cast<size_t>(e)] = 0;
    if (twice >= 0) throw bad(fmt::format("expert {} routed twice", twice));

    line_.clear();
    auto out = std::back_inserter(line_);
    fmt::format_to(out, "{} {}", position, layer);
    // Floats print in their shortest exact form, so the reader gets back the same bits.
    for (size_t i = 0; i < k; ++i) fmt::format_to(out, " {}:{}", experts[i], weights[i]);
    line_ += " |";
    if (h.n_probs > 0) {
        for (size_t e = 0; e < probs.size(); ++e)
            if (!(probs[e] >= 0.0f && probs[e] <= 1.0f))
                throw bad(fmt::format("router probability {} of expert {} is not in [0, 1]", probs[e], e));
        // The top n_probs, ties to the lower id: the order the score policy ranks them in.
        for (size_t e = 0; e < order_.size(); ++e) order_[e] = static_cast<int32_t>(e);
        const auto top = static_cast<ptrdiff_t>(h.n_probs);
        std::partial_sort(order_.begin(), order_.begin() + top, order_.end(), [&](int32_t x, int32_t y) {
            const float px = probs[static_cast<size_t>(x)], py = probs[static_cast<size_t>(y)];
            return px > py || (px == py && x < y);
        });
        for (ptrdiff_t i = 0; i < top; ++i) {
            const int32_t e = order_[static_cast<size_t>(i)];
            fmt::format_to(out, " {}:{}", e, probs[static_cast<size_t>(e)]);
        }
    }
    line_ += '\n';
    if (!file_.write(line_.data(), static_cast<std::streamsize>(line_.size())))
        throw Error(fmt::format("{}: writing the routing trace failed: {}", path_, std::strerror(errno)));
    last_position_[static_cast<size_t>(layer)] = position;
    ++n_records_;
}

void RoutingTraceWriter::finish() {
    if (!file_.is_open()) throw Error(fmt::format("{}: the routing trace was already finished", path_));
    file_ << "end " << n_records_ << '\n';
    file_.close();  // flushes; a failure sets failbit
    if (!file_) throw Error(fmt::format("{}: writing the routing trace failed: {}", path_, std::strerror(errno)));
}

}  // namespace hymoe::offload
