// Comparing our logits with a reference's: relative L2 error, max abs difference, and the argmax
// (a reference whose top two logits are closer than `tie` counts as a tie: either passes).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "format/model_file.hpp"

namespace hymoe::test {

struct LogitDiff {
    double rel_l2 = 0;
    double max_abs = 0;
    bool argmax_ok = true;
    std::string detail;  // argmaxes, for failure messages
};

inline int32_t argmax_of(std::span<const float> v) {
    return static_cast<int32_t>(std::max_element(v.begin(), v.end()) - v.begin());
}

// ours and ref: the same values (ids need not be sorted). ref_top: the reference's ids in
// descending order with their logits (at least 2) for the argmax check.
inline LogitDiff compare_values(std::span<const float> ours, std::span<const float> ref) {
    LogitDiff d;
    double num = 0, den = 0;
    for (size_t i = 0; i < ref.size(); ++i) {
        const double diff = static_cast<double>(ours[i]) - static_cast<double>(ref[i]);
        num += diff * diff;
        den += static_cast<double>(ref[i]) * static_cast<double>(ref[i]);
        d.max_abs = std::max(d.max_abs, std::abs(diff));
    }
    d.rel_l2 = den > 0 ? std::sqrt(num / den) : std::sqrt(num);
    return d;
}

inline void check_argmax(LogitDiff& d, int32_t ours_best, std::span<const std::pair<int32_t, float>> ref_top,
                         double tie = 1e-3) {
    const bool tied = ref_top.size() > 1 && ref_top[0].second - ref_top[1].second < tie;
    d.argmax_ok = ours_best == ref_top[0].first || (tied && ours_best == ref_top[1].first);
    d.detail = fmt::format("our argmax {}, reference top {} ({:.5f}) then {} ({:.5f})", ours_best, ref_top[0].first,
                           ref_top[0].second, ref_top.size() > 1 ? ref_top[1].first : -1,
                           ref_top.size() > 1 ? ref_top[1].second : 0.0f);
}

// Our full-vocabulary row against a reference's top entries, a JSON list of [id, logit] pairs in
// descending order (as the llama.cpp fixtures record them): the values at those ids, and the argmax.
inline LogitDiff compare_with_top(std::span<const float> logits, const nlohmann::json& top_pairs) {
    std::vector<std::pair<int32_t, float>> top;
    std::vector<float> ours, theirs;
    for (const auto& pair : top_pairs) {
        top.emplace_back(pair[0].get<int32_t>(), pair[1].get<float>());
        ours.push_back(logits[static_cast<size_t>(top.back().first)]);
        theirs.push_back(top.back().second);
    }
    LogitDiff d = compare_values(ours, theirs);
    check_argmax(d, argmax_of(logits), top);
    return d;
}

// Full-vocabulary rows.
inline LogitDiff compare_rows(std::span<const float> ours, std::span<const float> ref) {
    LogitDiff d = compare_values(ours, ref);
    std::vector<std::pair<int32_t, float>> top;
    for (size_t i = 0; i < ref.size(); ++i) top.emplace_back(static_cast<int32_t>(i), ref[i]);
    std::partial_sort(top.begin(), top.begin() + 2, top.end(), [](auto& a, auto& b) {
        return a.second > b.second || (a.second == b.second && a.first < b.first);
    });
    top.resize(2);
    check_argmax(d, argmax_of(ours), top);
    return d;
}

// The tolerance: 1e-3 relative L2 when every matmul weight is f32, else 1e-2.
inline double tolerance_for(const ModelFile& file) {
    const bool tied = file.find("output.weight") == nullptr && file.find("lm_head.weight") == nullptr;
    for (const TensorView& t : file.tensors()) {
        const bool lookup_only = (t.name == "token_embd.weight" || t.name == "model.embed_tokens.weight") && !tied;
        if (t.shape.size() >= 2 && !lookup_only && t.type != TensorType::F32) return 1e-2;
    }
    return 1e-3;
}

}  // namespace hymoe::test
