// Measured limits of one GPU (see probe.cpp). Throws hymoe::Error when a CUDA call fails.
#pragma once

namespace hymoe::cuda {

struct DeviceLimits {
    double copy_gbs = 0;     // device-to-device copy of 1 GiB: (read + written) bytes / s / 1e9
    double bf16_tflops = 0;  // cuBLAS bf16 GEMM 8192^3 with f32 accumulation
};

DeviceLimits measure_device_limits(int device);

// What moving experts costs, measured in a fraction of a second with 128 MiB buffers (the
// expert tier's cost model reads these): pinned host -> device copy, and device memory read
// (half a device-to-device copy's read + written bytes).
struct TransferRates {
    double h2d_gbs = 0;
    double device_read_gbs = 0;
};
TransferRates measure_transfer_rates(int device);

}  // namespace hymoe::cuda
