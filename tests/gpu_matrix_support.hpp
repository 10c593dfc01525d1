// Shared by the GPU product tests (test_cuda_matmul, test_cuda_gemm): weight matrices quantized
// on the host, the double-precision reference product, and comparisons held to a fraction of
// Σ|w·x| per element. Only compiled when hymoe is built with CUDA.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "format/tensor_type.hpp"
#include "gpu_test_support.hpp"
#include "quant/fp16.hpp"
#include "quant/quant.hpp"
#include "weight_type.hpp"

namespace hymoe::kernels {
// gtest prints parameters with this (found by ADL) instead of as raw bytes.
inline void PrintTo(WeightType type, std::ostream* os) {
    *os << type_name(static_cast<TensorType>(static_cast<uint32_t>(type)));
}
}  // namespace hymoe::kernels

namespace hymoe::test {

using kernels::WeightType;

inline constexpr WeightType kAllWeightTypes[] = {
    WeightType::F32,  WeightType::F16,    WeightType::BF16,   WeightType::Q4_0,  WeightType::Q4_1, WeightType::Q5_0,
    WeightType::Q5_1, WeightType::Q8_0,   WeightType::Q2_K,   WeightType::Q3_K,  WeightType::Q4_K, WeightType::Q5_K,
    WeightType::Q6_K, WeightType::IQ4_NL, WeightType::IQ4_XS, WeightType::MXFP4,
};

inline TensorType tensor_type(WeightType t) {
    return static_cast<TensorType>(static_cast<uint32_t>(t));
}
inline int64_t block_elems(WeightType t) {
    return type_traits(tensor_type(t)).block_size;
}

// A weight matrix quantized on the host: its bytes as stored (rows `row_bytes` apart, the padding
// filled with 0x5a) and the values a kernel multiplies by.
struct HostMatrix {
    int64_t rows = 0, cols = 0, row_bytes = 0;
    std::vector<std::byte> bytes;  // [rows][row_bytes]
    std::vector<float> w;          // [rows][cols] as quant::dequantize_row decodes them (bf16-rounded if asked)
};

// row_pad: bytes added to every row, as a matrix inside a wider buffer has; 2 keeps rows 2-byte
// aligned only, like a GGUF file's. round_to_bf16: the values the tensor-core GEMM multiplies.
inline HostMatrix make_matrix(WeightType type, int64_t rows, int64_t cols, uint32_t seed, int64_t row_pad = 0,
                              bool round_to_bf16 = false) {
    HostMatrix m;
    m.rows = rows;
    m.cols = cols;
    m.row_bytes = static_cast<int64_t>(row_bytes(tensor_type(type), static_cast<uint64_t>(cols)).value()) + row_pad;
    m.bytes.assign(static_cast<size_t>(rows * m.row_bytes), std::byte{0x5a});
    m.w.resize(static_cast<size_t>(rows * cols));
    const std::vector<float> src = random_floats(static_cast<size_t>(rows * cols), seed);
    for (int64_t r = 0; r < rows; ++r) {
        std::byte* row = m.bytes.data() + r * m.row_bytes;
        quant::quantize_row(tensor_type(type), src.data() + r * cols, cols, row);
        quant::dequantize_row(tensor_type(type), row, cols, m.w.data() + r * cols);
    }
    if (round_to_bf16)
        for (float& v : m.w) v = quant::round_to_bf16(v);
    return m;
}

// want[r] = Σ_c w[r][c] · x[c] in double; scale[r] = Σ_c |w[r][c] · x[c]|.
inline void reference_product(const HostMatrix& m, const float* x, double* want, double* scale) {
    for (int64_t r = 0; r < m.rows; ++r) {
        const float* w = m.w.data() + r * m.cols;
        double s = 0, a = 0;
        for (int64_t c = 0; c < m.cols; ++c) {
            const double p = double(w[c]) * double(x[c]);
            s += p;
            a += std::fabs(p);
        }
        want[r] = s;
        scale[r] = a;
    }
}

// got[i] within tol * scale[i] of want[i] (+ a tiny absolute floor for rows whose products all
// vanish), never NaN; prints at most ten mismatches.
inline ::testing::AssertionResult close_to_scale(const std::vector<float>& got, const std::vector<double>& want,
                                                 const std::vector<double>& scale, double tol) {
    size_t bad = 0;
    std::string msg;
    for (size_t i = 0; i < want.size(); ++i) {
        const double err = std::fabs(double(got[i]) - want[i]);
        if (!(std::isfinite(got[i]) && err <= tol * scale[i] + 1e-6)) {
            if (bad++ < 10) {
                msg += "\n  [" + std::to_string(i) + "] got " + std::to_string(got[i]) + " want " +
                       std::to_string(want[i]) + " (scale " + std::to_string(scale[i]) + ")";
            }
        }
    }
    if (bad == 0) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << bad << " of " << want.size() << " elements differ" << msg;
}

// The guard elements after the first `valid` floats of y are still the poison.
inline ::testing::AssertionResult guard_untouched(const std::vector<float>& y, size_t valid) {
    for (size_t i = valid; i < y.size(); ++i)
        if (!std::isnan(y[i])) return ::testing::AssertionFailure() << "guard element " << i << " was written";
    return ::testing::AssertionSuccess();
}

}  // namespace hymoe::test
