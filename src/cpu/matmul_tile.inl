// The loop over a Tile, shared by every ISA's kernels. Each kernel file includes this inside
// its anonymous namespace, so every ISA gets its own internal copy (matmul_kernels.hpp says why);
// hence no #include and no #pragma once here.
//
// A Kernel has
//   static constexpr int kRows;
//   template <int NT> void dot(const std::byte* w_row, const std::byte* const* xs, float* out) const;
// computing out[i] = <w_row, activations of token i> for i < NT, xs[i] being that token's row of
// converted activations; and, when kRows > 1,
//   template <int NT> void dot_rows(const std::byte* w, size_t w_stride, const std::byte* const* xs,
//                                   float (*out)[NT]) const;
// doing the same for kRows consecutive rows at once (out[row][token]).

// Tokens per pass over a weight row: prefill reads a row from cache once per 4 tokens instead of
// once per token, and 4 tokens' accumulators still fit in registers.
constexpr int64_t kTileTokens = 4;
// Weight bytes a row block spans: the block stays in L2 while every group of tokens passes over
// it, so with many tokens each weight byte still comes from memory about once.
constexpr size_t kTileBlockBytes = 128 * 1024;

template <int NT, class Kernel>
void tile_rows(const Tile& t, const Kernel& k, int64_t r_begin, int64_t r_end, int64_t tok) {
    const std::byte* xs[NT];
    for (int i = 0; i < NT; ++i) xs[i] = t.x + static_cast<size_t>(tok + i) * t.x_row_bytes;
    int64_t r = r_begin;
    if constexpr (Kernel::kRows > 1 && NT > 1) {
        // Several rows per pass over the tokens' activations: each activation load then feeds
        // kRows rows. With one row, 4 tokens' f32 activations (64 KiB at 4096 columns) come from
        // L2 for every row and bound prefill.
        constexpr int R = Kernel::kRows;
        for (; r + R <= r_end; r += R) {
            float out[R][NT];
            k.template dot_rows<NT>(t.w + static_cast<size_t>(r) * t.w_row_bytes, t.w_row_bytes, xs, out);
            for (int j = 0; j < R; ++j) {
                for (int i = 0; i < NT; ++i) t.y[(tok + i) * t.rows + r + j] = out[j][i];
            }
        }
    }
    for (; r < r_end; ++r) {
        float out[NT];
        k.template dot<NT>(t.w + static_cast<size_t>(r) * t.w_row_bytes, xs, out);
        for (int i = 0; i < NT; ++i) t.y[(tok + i) * t.rows + r] = out[i];
    }
}

template <class Kernel>
void run_tile(const Tile& t, const Kernel& k) {
    const size_t row_bytes = t.w_row_bytes > 0 ? t.w_row_bytes : 1;
    const int64_t block_rows = row_bytes >= kTileBlockBytes ? 1 : static_cast<int64_t>(kTileBlockBytes / row_bytes);
    for (int64_t rb = t.r0; rb < t.r1; rb += block_rows) {
        const int64_t re = t.r1 - rb < block_rows ? t.r1 : rb + block_rows;
        for (int64_t tok = t.t0; tok < t.t1; tok += kTileTokens) {
            // The token count becomes a template parameter here and only here.
            switch (t.t1 - tok) {
                case 1: tile_rows<1>(t, k, rb, re, tok); break;
                case 2: tile_rows<2>(t, k, rb, re, tok); break;
                case 3: tile_rows<3>(t, k, rb, re, tok); break;
                default: tile_rows<4>(t, k, rb, re, tok); break;
            }
        }
    }
}
