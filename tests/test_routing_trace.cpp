// The routing trace format (src/offload/routing_trace.hpp): written traces read back bit for
// bit; every kind of bad input is refused with hymoe::Error naming the file and the line; cut
// and mutated files never crash the reader. Also replays the fuzz corpus
// (tests/corpus/routing_trace) through the fuzz target's body.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "fuzz/routing_trace_entry.hpp"
#include "hymoe/error.hpp"
#include "offload/routing_trace.hpp"
#include "test_support.hpp"

namespace hymoe {
namespace {

namespace fs = std::filesystem;
using offload::parse_routing_trace;
using offload::RoutingTrace;
using offload::RoutingTraceHeader;
using offload::RoutingTraceWriter;

RoutingTraceHeader small_header(int64_t n_probs = 6) {
    RoutingTraceHeader h;
    h.model = "/models/some model.gguf";  // a space in the path survives
    h.architecture = "qwen3moe";
    h.n_layers = 5;
    h.n_experts = 16;
    h.n_experts_used = 3;
    h.n_probs = n_probs;
    h.moe_layers = {1, 2, 4};
    return h;
}

struct Record {
    int64_t position = 0, layer = 0;
    std::vector<int32_t> experts;
    std::vector<float> weights, probs;  // probs: [n_experts], the full softmax
};

// Softmax routing over random logits, with the corner values a float can take: an exact zero,
// a subnormal, ties, a probability of exactly 1.
std::vector<Record> random_records(const RoutingTraceHeader& h, int n_tokens, uint32_t seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> logit(0.0f, 3.0f);
    std::vector<Record> out;
    for (int t = 0; t < n_tokens; ++t) {
        for (int64_t layer : h.moe_layers) {
            Record r;
            r.position = t;
            r.layer = layer;
            std::vector<float> l(static_cast<size_t>(h.n_experts));
            for (float& x : l) x = logit(rng);
            if (t % 7 == 3) l[2] = l[5];  // a tie
            const float mx = *std::max_element(l.begin(), l.end());
            double sum = 0;
            for (float x : l) sum += std::exp(static_cast<double>(x - mx));
            for (float x : l) r.probs.push_back(static_cast<float>(std::exp(static_cast<double>(x - mx)) / sum));
            if (t % 5 == 1) r.probs[7] = 0.0f;
            if (t % 5 == 2) r.probs[9] = std::numeric_limits<float>::denorm_min();
            if (t == 4) {
                std::fill(r.probs.begin(), r.probs.end(), 0.0f);
                r.probs[11] = 1.0f;
            }
            std::vector<int32_t> order(r.probs.size());
            std::iota(order.begin(), order.end(), 0);
            std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
                return r.probs[static_cast<size_t>(a)] > r.probs[static_cast<size_t>(b)];
            });
            for (int64_t i = 0; i < h.n_experts_used; ++i) {
                r.experts.push_back(order[static_cast<size_t>(i)]);
                r.weights.push_back(r.probs[static_cast<size_t>(order[static_cast<size_t>(i)])] * 1.7f);
            }
            out.push_back(std::move(r));
        }
    }
    return out;
}

fs::path write_trace(const fs::path& path, const RoutingTraceHeader& h, const std::vector<Record>& records) {
    RoutingTraceWriter w(path.string(), h);
    for (const Record& r : records) w.write(r.position, r.layer, r.experts, r.weights, r.probs);
    w.finish();
    EXPECT_EQ(w.n_records(), static_cast<int64_t>(records.size()));
    return path;
}

uint32_t bits(float f) {
    uint32_t u = 0;
    std::memcpy(&u, &f, sizeof u);
    return u;
}

void expect_round_trip(const RoutingTraceHeader& h, const std::vector<Record>& records, const RoutingTrace& t) {
    EXPECT_EQ(t.header.model, h.model);
    EXPECT_EQ(t.header.architecture, h.architecture);
    EXPECT_EQ(t.header.n_layers, h.n_layers);
    EXPECT_EQ(t.header.n_experts, h.n_experts);
    EXPECT_EQ(t.header.n_experts_used, h.n_experts_used);
    EXPECT_EQ(t.header.n_probs, h.n_probs);
    EXPECT_EQ(t.header.moe_layers, h.moe_layers);
    ASSERT_EQ(t.n_records(), records.size());
    for (size_t i = 0; i < records.size(); ++i) {
        const Record& r = records[i];
        SCOPED_TRACE(fmt::format("record {}", i));
        EXPECT_EQ(t.position[i], r.position);
        EXPECT_EQ(t.layer[i], r.layer);
        const auto e = t.experts_of(i);
        const auto w = t.weights_of(i);
        ASSERT_EQ(e.size(), r.experts.size());
        for (size_t j = 0; j < e.size(); ++j) {
            EXPECT_EQ(e[j], r.experts[j]);
            EXPECT_EQ(bits(w[j]), bits(r.weights[j])) << w[j] << " vs " << r.weights[j];
        }
        // The top n_probs by probability, ties to the lower id, with their exact values.
        std::vector<int32_t> order(r.probs.size());
        std::iota(order.begin(), order.end(), 0);
        std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
            return r.probs[static_cast<size_t>(a)] > r.probs[static_cast<size_t>(b)];
        });
        const auto pe = t.prob_experts_of(i);
        const auto pv = t.probs_of(i);
        ASSERT_EQ(pe.size(), static_cast<size_t>(h.n_probs));
        for (size_t j = 0; j < pe.size(); ++j) {
            EXPECT_EQ(pe[j], order[j]);
            EXPECT_EQ(bits(pv[j]), bits(r.probs[static_cast<size_t>(order[j])]));
        }
    }
}

TEST(RoutingTrace, WriteReadRoundTrip) {
    const fs::path dir = test::temp_dir_for_test();
    const RoutingTraceHeader h = small_header();
    const std::vector<Record> records = random_records(h, 40, 1);
    write_trace(dir / "a.trace", h, records);
    expect_round_trip(h, records, offload::read_routing_trace((dir / "a.trace").string()));
}

TEST(RoutingTrace, RoundTripWithoutProbabilities) {
    const fs::path dir = test::temp_dir_for_test();
    const RoutingTraceHeader h = small_header(0);
    std::vector<Record> records = random_records(h, 10, 2);
    for (Record& r : records) r.probs.clear();
    write_trace(dir / "a.trace", h, records);
    const RoutingTrace t = offload::read_routing_trace((dir / "a.trace").string());
    expect_round_trip(h, records, t);
    EXPECT_TRUE(t.prob.empty());
}

TEST(RoutingTrace, PrefillOrderAndCrlfRead) {
    // A prefill batch arrives layer by layer: every token of layer 1, then of layer 2. Only the
    // order within a layer matters.
    const std::string text =
        "hymoe-routing-trace 1\r\nmodel m\r\narchitecture x\r\nn_layers 3\r\nn_experts 4\r\nn_experts_used 1\r\n"
        "n_probs 2\r\nmoe_layers 1,2\r\n0 1 0:1 | 0:0.75 1:0.25\r\n1 1 1:1 | 1:0.5 0:0.5\r\n0 2 3:1 | 3:1 0:0\r\n"
        "1 2 2:1 | 2:0.5 3:0.5\r\nend 4\r\n";
    const RoutingTrace t = parse_routing_trace(text, "crlf.trace");
    ASSERT_EQ(t.n_records(), 4u);
    EXPECT_EQ(t.layer, (std::vector<int32_t>{1, 1, 2, 2}));
    EXPECT_EQ(t.position, (std::vector<int64_t>{0, 1, 0, 1}));
    EXPECT_EQ(t.prob_expert, (std::vector<int32_t>{0, 1, 1, 0, 3, 0, 2, 3}));
}

// A valid trace, line by line (line numbers 1..13), for the bad-input table.
const std::vector<std::string> kValid = {
    "hymoe-routing-trace 1",
    "model m.gguf",
    "architecture qwen3moe",
    "n_layers 3",
    "n_experts 4",
    "n_experts_used 2",
    "n_probs 3",
    "moe_layers 1,2",
    "# position layer expert:weight x2 | expert:prob x3",
    "0 1 2:0.6 0:0.4 | 2:0.5 0:0.3 1:0.1",
    "0 2 3:0.7 1:0.3 | 3:0.6 1:0.2 0:0.1",
    "1 1 0:0.5 1:0.5 | 0:0.4 1:0.4 2:0.1",
    "end 3",
};

std::string join(const std::vector<std::string>& lines) {
    std::string s;
    for (const std::string& l : lines) s += l + "\n";
    return s;
}

// The message of the Error parsing `text` throws; a test failure when it does not throw.
std::string error_of(const std::string& text) {
    try {
        parse_routing_trace(text, "t.trace");
    } catch (const Error& e) {
        return e.what();
    }
    ADD_FAILURE() << "no error for:\n" << text;
    return {};
}

TEST(RoutingTrace, ValidTableTraceParses) {
    const RoutingTrace t = parse_routing_trace(join(kValid), "t.trace");
    EXPECT_EQ(t.n_records(), 3u);
    EXPECT_EQ(t.header.moe_layers, (std::vector<int64_t>{1, 2}));
}

struct BadLine {
    int line;  // 1-based line of kValid to replace
    std::string text;
    std::string message;
};

TEST(RoutingTrace, BadInputNamesFileLineAndProblem) {
    const std::vector<BadLine> cases = {
        {1, "hello", "not a hymoe routing trace"},
        {1, "hymoe-routing-trace 2", "routing trace version 2; this build reads version 1"},
        {1, "hymoe-routing-trace x", "version: bad number 'x'"},
        {1, "hymoe-routing-trace 1 extra", "unexpected 'extra'"},
        {2, "model", "model: no value"},
        {2, "modelx m", "expected the header line 'model ...'"},
        {3, "n_layers 3", "expected the header line 'architecture ...'"},
        {3, "architecture", "architecture: no value"},
        {4, "n_layers 0", "n_layers 0 out of range [1, 65536]"},
        {4, "n_layers abc", "n_layers: bad number 'abc'"},
        {4, "n_layers 99999999999999999999", "n_layers: bad number"},
        {4, "n_layers 3.0", "n_layers: bad number '3.0'"},
        {4, "n_layers", "n_layers: no value"},
        {5, "n_experts 4 5", "unexpected '5'"},
        {5, "n_experts 70000", "out of range"},
        {6, "n_experts_used 5", "n_experts_used 5 out of range [1, 4]"},
        {6, "n_experts_used 0", "out of range"},
        {7, "n_probs 5", "n_probs 5 out of range [0, 4]"},
        {7, "n_probs -1", "out of range"},
        {8, "moe_layers 1,3", "layer 3 out of range [0, 2]"},
        {8, "moe_layers 2,1", "layer 1 after layer 2"},
        {8, "moe_layers 1,1", "layer 1 after layer 1"},
        {8, "moe_layers 1,,2", "bad number ''"},
        {8, "moe_layers 1,", "bad number ''"},
        {8, "moe_layers", "moe_layers: no value"},
        {10, "0 0 2:0.6 0:0.4 | 2:0.5 0:0.3 1:0.1", "layer 0 has no routed experts"},
        {10, "0 3 2:0.6 0:0.4 | 2:0.5 0:0.3 1:0.1", "layer 3 out of range [0, 2]"},
        {10, "0 1 4:0.6 0:0.4 | 2:0.5 0:0.3 1:0.1", "expert 4 out of range [0, 3]"},
        {10, "0 1 -1:0.6 0:0.4 | 2:0.5 0:0.3 1:0.1", "expert -1 out of range"},
        {10, "0 1 2:0.6 2:0.4 | 2:0.5 0:0.3 1:0.1", "expert 2 appears twice among the experts"},
        {10, "0 1 2:0.6 | 2:0.5 0:0.3 1:0.1", "expected 2 experts (expert:weight), found 1"},
        {10, "0 1 2:0.6 0:0.4 1:0.1 | 2:0.5 0:0.3 1:0.1", "expected '|' after the 2 experts, found '1:0.1'"},
        {10, "0 1 2:0.6 0:0.4", "expected '|' after the 2 experts"},
        {10, "0 1 2:0.6 0:0.4 | 2:0.5 0:0.3", "expected 3 probabilities (expert:prob), found 2"},
        {10, "0 1 2:0.6 0:0.4 | 2:0.5 0:0.3 1:0.1 3:0.05", "more than 3 probabilities"},
        {10, "0 1 2:nan 0:0.4 | 2:0.5 0:0.3 1:0.1", "weight of expert 2 is nan"},
        {10, "0 1 2:inf 0:0.4 | 2:0.5 0:0.3 1:0.1", "weight of expert 2 is inf"},
        {10, "0 1 2:-0.5 0:0.4 | 2:0.5 0:0.3 1:0.1", "weight of expert 2 is -0.5, not >= 0"},
        {10, "0 1 2:1e50 0:0.4 | 2:0.5 0:0.3 1:0.1", "weight: bad number '1e50'"},
        {10, "0 1 2:0.6 0:0x | 2:0.5 0:0.3 1:0.1", "weight: bad number '0x'"},
        {10, "0 1 2:0.6 0: | 2:0.5 0:0.3 1:0.1", "weight: bad number ''"},
        {10, "0 1 2=0.6 0:0.4 | 2:0.5 0:0.3 1:0.1", "'2=0.6': expected expert:weight"},
        {10, "0 1 2:0.6 0:0.4 | 2:nan 0:0.3 1:0.1", "probability of expert 2 is nan, not in [0, 1]"},
        {10, "0 1 2:0.6 0:0.4 | 2:-0.1 0:0.3 1:0.1", "probability of expert 2 is -0.1"},
        {10, "0 1 2:0.6 0:0.4 | 2:1.5 0:0.3 1:0.1", "probability of expert 2 is 1.5"},
        {10, "0 1 2:0.6 0:0.4 | 2:0.3 0:0.5 1:0.1", "not in descending order"},
        {10, "0 1 2:0.6 0:0.4 | 2:0.5 2:0.3 1:0.1", "expert 2 appears twice among the probabilities"},
        {10, "0 1 2:0.6 0:0.4 | 2:0.5 9:0.3 1:0.1", "probability's expert 9 out of range"},
        {10, "0 1 2:0.6 0:0.4 | 2:0.5 0:0.3 1;0.1", "expected expert:prob"},
        {10, "x 1 2:0.6 0:0.4 | 2:0.5 0:0.3 1:0.1", "position: bad number 'x'"},
        {10, "-1 1 2:0.6 0:0.4 | 2:0.5 0:0.3 1:0.1", "position -1 out of range"},
        {10, "0", "expected: position layer experts | probabilities"},
        {10, "", "empty line"},
        {10, "0 1 2:0.6\x01 0:0.4 | 2:0.5 0:0.3 1:0.1", "weight: bad number '0.6\\x01'"},
        {12, "0 1 0:0.5 1:0.5 | 0:0.4 1:0.4 2:0.1", "position 0 at layer 1 does not follow position 0"},
        {13, "end 4", "the 'end' line counts 4 records, the trace holds 3"},
        {13, "end", "end: record count: bad number ''"},
        {13, "end 3 3", "unexpected '3'"},
    };
    for (const BadLine& c : cases) {
        std::vector<std::string> lines = kValid;
        lines[static_cast<size_t>(c.line - 1)] = c.text;
        const std::string msg = error_of(join(lines));
        EXPECT_NE(msg.find(fmt::format("t.trace: line {}: ", c.line)), std::string::npos) << c.text << "\n -> " << msg;
        EXPECT_NE(msg.find(c.message), std::string::npos) << c.text << "\n -> " << msg;
    }
}

TEST(RoutingTrace, MissingAndExtraLines) {
    {
        std::vector<std::string> lines = kValid;
        lines.pop_back();  // no 'end' line: the run was interrupted
        EXPECT_NE(error_of(join(lines)).find("t.trace: line 13: truncated: expected a record or the closing 'end'"),
                  std::string::npos);
    }
    {
        std::vector<std::string> lines = kValid;
        lines.push_back("0 2 3:0.7 1:0.3 | 3:0.6 1:0.2 0:0.1");
        EXPECT_NE(error_of(join(lines)).find("line 14: text after the closing 'end' line"), std::string::npos);
    }
    {
        std::vector<std::string> lines = kValid;
        lines.push_back("# a comment is text too");
        EXPECT_NE(error_of(join(lines)).find("line 14: text after"), std::string::npos);
    }
    {
        const std::vector<std::string> head(kValid.begin(), kValid.begin() + 5);
        EXPECT_NE(error_of(join(head)).find("t.trace: line 6: truncated header: expected 'n_experts_used'"),
                  std::string::npos);
    }
    EXPECT_NE(error_of("").find("t.trace: line 1: truncated header: the file is empty"), std::string::npos);
    {
        std::string text = join(kValid);
        text.pop_back();  // no newline after the last line
        EXPECT_NE(error_of(text).find("t.trace: line 13: truncated: the file ends inside this line ('end 3')"),
                  std::string::npos);
    }
    // A comment before the magic line is not a trace.
    EXPECT_NE(error_of("# hi\n" + join(kValid)).find("line 1: not a hymoe routing trace"), std::string::npos);
}

// Every cut of a valid file reads as truncated, naming a line, and never as a shorter valid trace.
TEST(RoutingTrace, EveryTruncationIsAnError) {
    const fs::path dir = test::temp_dir_for_test();
    const RoutingTraceHeader h = small_header();
    const fs::path path = write_trace(dir / "a.trace", h, random_records(h, 3, 3));
    const std::string text = test::read_text(path);
    ASSERT_NO_THROW(parse_routing_trace(text, "t.trace"));
    for (size_t n = 0; n < text.size(); ++n) {
        const std::string msg = error_of(text.substr(0, n));
        EXPECT_NE(msg.find("truncated"), std::string::npos) << n << ": " << msg;
        EXPECT_EQ(msg.rfind("t.trace: line ", 0), 0u) << msg;
    }
}

// Random byte edits of a valid trace: the reader accepts or throws hymoe::Error, nothing else,
// and what it accepts is consistent (the fuzz target's checks).
TEST(RoutingTrace, MutatedFilesNeverCrash) {
    const std::string text = join(kValid);
    std::mt19937 rng(7);
    const std::string alphabet = "0123456789:|.,-e \n#xnaif\r\t";
    int accepted = 0;
    for (int i = 0; i < 20000; ++i) {
        std::string s = text;
        const int edits = 1 + static_cast<int>(rng() % 4);
        for (int j = 0; j < edits; ++j) {
            const size_t at = rng() % s.size();
            switch (rng() % 4) {
                case 0: s[at] = alphabet[rng() % alphabet.size()]; break;
                case 1: s.erase(at, 1 + rng() % 3); break;
                case 2: s.insert(at, 1, alphabet[rng() % alphabet.size()]); break;
                default: s[at] = static_cast<char>(rng() % 256); break;
            }
            if (s.empty()) s.assign(1, 'x');
        }
        try {
            parse_routing_trace(s, "m.trace");
            ++accepted;
        } catch (const Error& e) {
            EXPECT_EQ(std::string(e.what()).rfind("m.trace: line ", 0), 0u) << e.what();
        }
        hymoe_fuzz_routing_trace(reinterpret_cast<const uint8_t*>(s.data()), s.size());
    }
    EXPECT_GT(accepted, 0);  // some edits keep it valid (a digit of a weight)
}

TEST(RoutingTrace, ReadErrorsNameTheFile) {
    const fs::path dir = test::temp_dir_for_test();
    try {
        offload::read_routing_trace((dir / "missing.trace").string());
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("missing.trace: cannot open the routing trace"), std::string::npos)
            << e.what();
    }
    try {
        offload::read_routing_trace(dir.string());
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find(dir.string()), std::string::npos) << e.what();
    }
}

TEST(RoutingTrace, UnfinishedWriterLeavesATruncatedTrace) {
    const fs::path dir = test::temp_dir_for_test();
    const RoutingTraceHeader h = small_header();
    const auto records = random_records(h, 2, 4);
    {
        RoutingTraceWriter w((dir / "a.trace").string(), h);
        for (const Record& r : records) w.write(r.position, r.layer, r.experts, r.weights, r.probs);
    }
    try {
        offload::read_routing_trace((dir / "a.trace").string());
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("truncated"), std::string::npos) << e.what();
    }
}

TEST(RoutingTrace, WriterRefusesWhatTheReaderWouldRefuse) {
    const fs::path dir = test::temp_dir_for_test();
    const RoutingTraceHeader h = small_header();
    const std::vector<int32_t> e = {1, 2, 3};
    const std::vector<float> w = {0.5f, 0.3f, 0.2f};
    const std::vector<float> p(16, 1.0f / 16);
    const auto expect_error = [](auto&& f, const std::string& message) {
        try {
            f();
            ADD_FAILURE() << "no error, expected " << message;
        } catch (const Error& err) {
            EXPECT_NE(std::string(err.what()).find(message), std::string::npos) << err.what();
        }
    };
    RoutingTraceWriter wr((dir / "a.trace").string(), h);
    expect_error([&] { wr.write(0, 0, e, w, p); }, "layer 0: not a layer with routed experts");
    expect_error([&] { wr.write(0, 5, e, w, p); }, "not a layer with routed experts");
    expect_error([&] { wr.write(0, 1, std::vector<int32_t>{1, 2}, w, p); }, "2 experts and 3 weights, expected 3");
    expect_error([&] { wr.write(0, 1, std::vector<int32_t>{1, 2, 16}, w, p); }, "expert 16 out of range");
    expect_error([&] { wr.write(0, 1, std::vector<int32_t>{1, 2, 1}, w, p); }, "expert 1 routed twice");
    expect_error([&] { wr.write(0, 1, e, std::vector<float>{0.5f, -1.0f, 0.2f}, p); }, "is not >= 0");
    expect_error([&] { wr.write(0, 1, e, w, std::vector<float>(15, 0.0f)); }, "15 router probabilities, expected 16");
    std::vector<float> nan_p = p;
    nan_p[3] = std::nanf("");
    expect_error([&] { wr.write(0, 1, e, w, nan_p); }, "router probability nan of expert 3");
    expect_error([&] { wr.write(-1, 1, e, w, p); }, "position out of range");
    wr.write(0, 1, e, w, p);  // the failed writes left nothing behind
    wr.write(0, 2, e, w, p);
    expect_error([&] { wr.write(0, 1, e, w, p); }, "positions must increase within a layer (the last was 0)");
    wr.write(1, 1, e, w, p);
    wr.finish();
    expect_error([&] { wr.write(2, 1, e, w, p); }, "already finished");
    EXPECT_EQ(offload::read_routing_trace((dir / "a.trace").string()).n_records(), 3u);

    RoutingTraceHeader bad = h;
    bad.moe_layers = {1, 5};
    expect_error([&] { RoutingTraceWriter((dir / "b.trace").string(), bad); }, "MoE layer 5 out of range");
    bad = h;
    bad.model = "two\nlines";
    expect_error([&] { RoutingTraceWriter((dir / "b.trace").string(), bad); }, "bad model path 'two\\x0alines'");
    bad = h;
    bad.n_probs = 17;
    expect_error([&] { RoutingTraceWriter((dir / "b.trace").string(), bad); }, "n_probs 17 out of range [0, 16]");
    expect_error([&] { RoutingTraceWriter((dir / "no" / "such" / "dir.trace").string(), h); },
                 "cannot create the routing trace");
}

TEST(RoutingTrace, FullDiskIsAnError) {
    if (!fs::exists("/dev/full")) GTEST_SKIP() << "no /dev/full";
    const RoutingTraceHeader h = small_header();
    const auto records = random_records(h, 200, 5);
    try {
        RoutingTraceWriter w("/dev/full", h);
        for (const Record& r : records) w.write(r.position, r.layer, r.experts, r.weights, r.probs);
        w.finish();
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("/dev/full: writing the routing trace failed"), std::string::npos)
            << e.what();
    }
}

// The checked-in fuzz corpus, replayed through the fuzz target's body in every build: an input
// that once crashed the reader stays fixed without clang or libFuzzer.
TEST(RoutingTraceCorpus, ReplaysWithoutCrash) {
    const fs::path dir = test::source_dir() / "tests" / "corpus" / "routing_trace";
    ASSERT_TRUE(fs::is_directory(dir)) << dir << " is missing";
    std::vector<fs::path> files;
    for (const auto& entry : fs::directory_iterator(dir))
        if (entry.is_regular_file()) files.push_back(entry.path());
    ASSERT_FALSE(files.empty()) << dir << " holds no inputs";
    std::sort(files.begin(), files.end());
    int valid = 0;
    for (const fs::path& f : files) {
        SCOPED_TRACE(f.filename().string());
        const std::string bytes = test::read_text(f);
        try {
            hymoe_fuzz_routing_trace(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
        } catch (const std::exception& e) {
            ADD_FAILURE() << "an exception other than hymoe::Error escaped: " << e.what();
        }
        try {
            parse_routing_trace(bytes, f.string());
            ++valid;
        } catch (const Error&) {
        }
    }
    EXPECT_GT(valid, 0) << "the corpus should hold valid traces too (seed-*.trace)";
    RecordProperty("inputs", static_cast<int>(files.size()));
}

}  // namespace
}  // namespace hymoe
