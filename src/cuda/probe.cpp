// The GPU limits hymoe bench reads its figures against: a device-to-device copy (memory) and a
// cuBLAS dense bf16 GEMM (tensor cores), both timed with events after a warm-up.
#include "cuda/probe.hpp"

#include <cublas_v2.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include <fmt/format.h>

#include "cuda/memory.hpp"

namespace hymoe::cuda {

namespace {

struct CublasOwner {
    cublasHandle_t h = nullptr;
    ~CublasOwner() {
        if (h != nullptr) cublasDestroy(h);
    }
};

void check_cublas(cublasStatus_t s, const char* what) {
    if (s != CUBLAS_STATUS_SUCCESS) throw Error(fmt::format("{} failed: cuBLAS status {}", what, static_cast<int>(s)));
}

// Median of `reps` timings (ms) of `body` on `stream`, after one warm-up.
template <typename F>
float median_ms(cudaStream_t stream, int reps, F&& body) {
    Event start(true), stop(true);
    body();
    std::vector<float> ms;
    for (int i = 0; i < reps; ++i) {
        start.record(stream);
        body();
        stop.record(stream);
        stop.synchronize();
        ms.push_back(stop.elapsed_ms_since(start));
    }
    std::sort(ms.begin(), ms.end());
    return ms[ms.size() / 2];
}

}  // namespace

DeviceLimits measure_device_limits(int device) {
    check(cudaSetDevice(device), "cudaSetDevice");
    Stream stream;
    DeviceLimits out;
    {
        constexpr size_t kBytes = size_t(1) << 30;  // far beyond any L2
        DeviceBuffer<uint8_t> a(kBytes), b(kBytes);
        check(cudaMemsetAsync(a.get(), 1, kBytes, stream.get()), "cudaMemsetAsync");
        const float ms = median_ms(stream.get(), 10, [&] {
            check(cudaMemcpyAsync(b.get(), a.get(), kBytes, cudaMemcpyDeviceToDevice, stream.get()), "cudaMemcpyAsync");
        });
        out.copy_gbs = 2.0 * static_cast<double>(kBytes) / (static_cast<double>(ms) * 1e6);
    }
    {
        constexpr int kN = 8192;  // large enough to saturate the tensor cores of any current GPU
        DeviceBuffer<uint16_t> a(size_t(kN) * kN), b(size_t(kN) * kN);
        DeviceBuffer<float> c(size_t(kN) * kN);
        // Every byte 0x3c: each bf16 is 0x3c3c, about 0.0115: finite and non-zero (zeros run faster).
        check(cudaMemsetAsync(a.get(), 0x3c, a.bytes(), stream.get()), "cudaMemsetAsync");
        check(cudaMemsetAsync(b.get(), 0x3c, b.bytes(), stream.get()), "cudaMemsetAsync");
        CublasOwner handle;
        check_cublas(cublasCreate(&handle.h), "cublasCreate");
        check_cublas(cublasSetStream(handle.h, stream.get()), "cublasSetStream");
        const float alpha = 1.0f, beta = 0.0f;
        const float ms = median_ms(stream.get(), 5, [&] {
            check_cublas(cublasGemmEx(handle.h, CUBLAS_OP_T, CUBLAS_OP_N, kN, kN, kN, &alpha, a.get(), CUDA_R_16BF, kN,
                                      b.get(), CUDA_R_16BF, kN, &beta, c.get(), CUDA_R_32F, kN, CUBLAS_COMPUTE_32F,
                                      CUBLAS_GEMM_DEFAULT),
                         "cublasGemmEx");
        });
        out.bf16_tflops = 2.0 * kN * double(kN) * kN / (static_cast<double>(ms) * 1e9);
    }
    return out;
}

TransferRates measure_transfer_rates(int device) {
    check(cudaSetDevice(device), "cudaSetDevice");
    Stream stream;
    TransferRates out;
    constexpr size_t kBytes = size_t(128) << 20;  // beyond the L2 of current GPUs (H100: 50 MB)
    DeviceBuffer<uint8_t> a(kBytes), b(kBytes);
    PinnedBuffer host(kBytes);
    std::memset(host.get(), 1, kBytes);
    check(cudaMemsetAsync(a.get(), 1, kBytes, stream.get()), "cudaMemsetAsync");
    float ms = median_ms(stream.get(), 3, [&] {
        check(cudaMemcpyAsync(b.get(), host.get(), kBytes, cudaMemcpyHostToDevice, stream.get()), "cudaMemcpyAsync");
    });
    out.h2d_gbs = static_cast<double>(kBytes) / (static_cast<double>(ms) * 1e6);
    ms = median_ms(stream.get(), 5, [&] {
        check(cudaMemcpyAsync(b.get(), a.get(), kBytes, cudaMemcpyDeviceToDevice, stream.get()), "cudaMemcpyAsync");
    });
    out.device_read_gbs = static_cast<double>(kBytes) / (static_cast<double>(ms) * 1e6);
    return out;
}

}  // namespace hymoe::cuda
