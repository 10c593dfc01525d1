#include "hymoe/build_info.hpp"

#include <fmt/format.h>

#include "hymoe/error.hpp"
#ifdef HYMOE_WITH_CUDA
#include "cuda/device.hpp"
#include "cuda/probe.hpp"
#endif

namespace hymoe {

BuildInfo build_info() {
    BuildInfo info;
    info.version = HYMOE_VERSION;
#ifdef HYMOE_WITH_CUDA
    info.cuda = true;
#endif
#if defined(__clang__)
    info.compiler = fmt::format("clang {}.{}.{}", __clang_major__, __clang_minor__, __clang_patchlevel__);
#elif defined(__GNUC__)
    info.compiler = fmt::format("gcc {}.{}.{}", __GNUC__, __GNUC_MINOR__, __GNUC_PATCHLEVEL__);
#else
    info.compiler = "unknown";
#endif
    return info;
}

std::vector<GpuDevice> list_gpus(std::string* why_none) {
    std::vector<GpuDevice> out;
#ifdef HYMOE_WITH_CUDA
    for (const auto& d : cuda::list_devices(why_none)) {
        out.push_back({d.index, d.name, d.cc_major * 10 + d.cc_minor, d.total_memory});
    }
#else
    if (why_none) *why_none = "hymoe was built without CUDA (HYMOE_CUDA=OFF or no nvcc at build time)";
#endif
    return out;
}

std::string gpu_selftest() {
#ifdef HYMOE_WITH_CUDA
    std::string why;
    if (cuda::list_devices(&why).empty()) return why;
    return cuda::fill_selftest(1'000'003, 1.5f);  // not a multiple of the block size
#else
    return "hymoe was built without CUDA";
#endif
}

GpuProbe probe_gpu(int index) {
    GpuProbe out;
#ifdef HYMOE_WITH_CUDA
    try {
        const cuda::DeviceLimits l = cuda::measure_device_limits(index);
        out.copy_gbs = l.copy_gbs;
        out.bf16_tflops = l.bf16_tflops;
    } catch (const Error& e) {
        out.error = e.what();
    }
#else
    (void)index;
    out.error = "hymoe was built without CUDA";
#endif
    return out;
}

}  // namespace hymoe
