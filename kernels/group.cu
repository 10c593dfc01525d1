// Grouping the (token, slot) pairs of a routed batch by expert: a stable radix sort of the pair
// indices keyed by expert (CUB), then the inverse permutation, each expert's range, and the
// ascending list of experts that got any pair. Every step reads its sizes on the device, so the
// whole of it can be captured in a CUDA graph with only host-known bounds.
#include <cub/block/block_scan.cuh>
#include <cub/device/device_radix_sort.cuh>

#include <algorithm>
#include <cstdint>
#include <limits>

#include "launch.hpp"

namespace hymoe::kernels {
namespace {

constexpr int kThreads = 256;
constexpr size_t kAlign = 256;  // the caller's scratch is carved into 256-byte aligned arrays

size_t align_up(size_t x) {
    return (x + kAlign - 1) / kAlign * kAlign;
}

// Key bits the sort must look at: enough for n_experts - 1 (at least one; CUB wants a range).
int key_bits(int64_t n_experts) {
    int b = 1;
    while ((int64_t(1) << b) < n_experts) ++b;
    return b;
}

// CUB's scratch for sorting n_pairs (key, value) pairs on `bits` key bits, or SIZE_MAX when CUB
// refuses the size.
size_t cub_sort_bytes(int n_pairs, int bits) {
    size_t bytes = 0;
    const cudaError_t err = cub::DeviceRadixSort::SortPairs(
        nullptr, bytes, static_cast<const uint32_t*>(nullptr), static_cast<uint32_t*>(nullptr),
        static_cast<const int32_t*>(nullptr), static_cast<int32_t*>(nullptr), n_pairs, 0, bits);
    return err == cudaSuccess ? bytes : std::numeric_limits<size_t>::max();
}

// Our arrays ahead of CUB's scratch: keys [n_pairs], sorted keys [n_pairs] and the identity
// values [n_pairs].
size_t own_bytes(int64_t n_pairs) {
    return 3 * align_up(sizeof(int32_t) * static_cast<size_t>(n_pairs));
}

// A pair with a negative expert (one the GPU skips) gets key n_experts, so it sorts after every
// expert's pairs and outside every expert's range.
__global__ void keys_kernel(const int32_t* __restrict__ experts, int n, int n_experts, uint32_t* __restrict__ keys) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x)
        keys[i] = experts[i] < 0 ? static_cast<uint32_t>(n_experts) : static_cast<uint32_t>(experts[i]);
}

__global__ void iota_kernel(int32_t* __restrict__ v, int n) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) v[i] = i;
}

// Sorted position p: pair_pos is the inverse of pair_order; p is where every expert in
// (key[p-1], key[p]] starts (those with no pairs start where the next one does), and the last
// position closes the experts after its own. Keys past n_experts (a broken routing) are clamped,
// so no write leaves offsets.
__global__ void boundaries_kernel(const uint32_t* __restrict__ keys, const int32_t* __restrict__ pair_order,
                                  int n_pairs, int n_experts, int32_t* __restrict__ pair_pos,
                                  int32_t* __restrict__ offsets) {
    for (int p = blockIdx.x * blockDim.x + threadIdx.x; p < n_pairs; p += gridDim.x * blockDim.x) {
        pair_pos[pair_order[p]] = p;
        const int e = static_cast<int>(min(keys[p], static_cast<uint32_t>(n_experts)));
        const int prev = p > 0 ? static_cast<int>(min(keys[p - 1], static_cast<uint32_t>(n_experts))) : -1;
        for (int x = prev + 1; x <= e; ++x) offsets[x] = p;
        if (p == n_pairs - 1)
            for (int x = e + 1; x <= n_experts; ++x) offsets[x] = n_pairs;
    }
}

__global__ void zero_offsets_kernel(int32_t* __restrict__ offsets, int n_experts) {
    for (int x = blockIdx.x * blockDim.x + threadIdx.x; x <= n_experts; x += gridDim.x * blockDim.x) offsets[x] = 0;
}

// One block: a running exclusive scan of "expert has a pair" over the experts, chunk by chunk.
__global__ void __launch_bounds__(kThreads)
    active_kernel(const int32_t* __restrict__ offsets, int n_experts, int32_t* __restrict__ active,
                  int32_t* __restrict__ n_active) {
    using Scan = cub::BlockScan<int, kThreads>;
    __shared__ typename Scan::TempStorage scan_storage;
    int running = 0;
    for (int base = 0; base < n_experts; base += kThreads) {
        const int e = base + static_cast<int>(threadIdx.x);
        const int flag = e < n_experts && offsets[e + 1] > offsets[e] ? 1 : 0;
        int before = 0, total = 0;
        Scan(scan_storage).ExclusiveSum(flag, before, total);
        if (flag) active[running + before] = e;
        running += total;
        __syncthreads();  // scan_storage is reused by the next chunk
    }
    if (threadIdx.x == 0) *n_active = running;
}

}  // namespace

size_t group_by_expert_temp_bytes(int64_t n_pairs, int64_t n_experts) {
    if (n_pairs < 0 || n_pairs > std::numeric_limits<int32_t>::max() || n_experts < 1 ||
        n_experts >= std::numeric_limits<int32_t>::max())
        return 0;
    const size_t cub = cub_sort_bytes(static_cast<int>(n_pairs), key_bits(n_experts + 1));
    if (cub == std::numeric_limits<size_t>::max()) return 0;
    return kAlign + own_bytes(n_pairs) + cub;  // kAlign: room to align the caller's pointer
}

cudaError_t group_by_expert(const int32_t* experts, int64_t n_pairs, int64_t n_experts, int32_t* pair_order,
                            int32_t* pair_pos, int32_t* offsets, int32_t* active, int32_t* n_active, void* temp,
                            size_t temp_bytes, cudaStream_t stream) {
    if (n_pairs < 0 || n_pairs > std::numeric_limits<int32_t>::max() || n_experts < 1 ||
        n_experts >= std::numeric_limits<int32_t>::max())
        return cudaErrorInvalidValue;
    if (offsets == nullptr || active == nullptr || n_active == nullptr) return cudaErrorInvalidValue;
    const int n = static_cast<int>(n_pairs);
    const int ne = static_cast<int>(n_experts);
    if (n == 0) {
        zero_offsets_kernel<<<(ne + kThreads) / kThreads, kThreads, 0, stream>>>(offsets, ne);
        active_kernel<<<1, kThreads, 0, stream>>>(offsets, ne, active, n_active);
        return cudaGetLastError();
    }
    if (experts == nullptr || pair_order == nullptr || pair_pos == nullptr || temp == nullptr)
        return cudaErrorInvalidValue;
    const int bits = key_bits(n_experts + 1);  // keys run to n_experts (skipped pairs)
    const size_t cub = cub_sort_bytes(n, bits);
    if (cub == std::numeric_limits<size_t>::max()) return cudaErrorInvalidValue;

    // Carve the scratch: [align][keys][sorted keys][identity values][CUB's scratch].
    auto* base = static_cast<uint8_t*>(temp);
    const size_t skip = align_up(reinterpret_cast<uintptr_t>(base)) - reinterpret_cast<uintptr_t>(base);
    if (temp_bytes < skip + own_bytes(n) + cub) return cudaErrorInvalidValue;
    const size_t array = align_up(sizeof(int32_t) * size_t(n));
    auto* keys = reinterpret_cast<uint32_t*>(base + skip);                   // [n_pairs]
    auto* sorted_keys = reinterpret_cast<uint32_t*>(base + skip + array);    // [n_pairs]
    auto* identity = reinterpret_cast<int32_t*>(base + skip + 2 * array);    // [n_pairs]
    void* cub_temp = base + skip + own_bytes(n);
    size_t cub_temp_bytes = cub;

    const unsigned blocks = static_cast<unsigned>(std::min((n + kThreads - 1) / kThreads, 4096));
    iota_kernel<<<blocks, kThreads, 0, stream>>>(identity, n);
    keys_kernel<<<blocks, kThreads, 0, stream>>>(experts, n, ne, keys);
    // LSD radix sort is stable, so pairs of one expert keep their (token, slot) order.
    cudaError_t err = cub::DeviceRadixSort::SortPairs(cub_temp, cub_temp_bytes, keys, sorted_keys, identity,
                                                      pair_order, n, 0, bits, stream);
    if (err != cudaSuccess) return err;
    boundaries_kernel<<<blocks, kThreads, 0, stream>>>(sorted_keys, pair_order, n, ne, pair_pos, offsets);
    active_kernel<<<1, kThreads, 0, stream>>>(offsets, ne, active, n_active);
    return cudaGetLastError();
}

}  // namespace hymoe::kernels
