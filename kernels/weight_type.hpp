// The weight types the GPU kernels read, by GGUF tensor-type id. No CUDA include: the block
// decoders (quant_decode.cuh) compile as plain C++ too, so the CPU tests check them.
#pragma once

#include <cstdint>

namespace hymoe::kernels {

// GGUF's tensor-type ids (ggml's enum ggml_type; hymoe::TensorType has the same numbers). The
// types the GPU kernels read: the float types and every block type the CPU kernels read.
enum class WeightType : int32_t {
    F32 = 0,
    F16 = 1,
    Q4_0 = 2,
    Q4_1 = 3,
    Q5_0 = 6,
    Q5_1 = 7,
    Q8_0 = 8,
    Q2_K = 10,
    Q3_K = 11,
    Q4_K = 12,
    Q5_K = 13,
    Q6_K = 14,
    IQ4_NL = 20,
    IQ4_XS = 23,
    BF16 = 30,
    MXFP4 = 39,
};

}  // namespace hymoe::kernels
