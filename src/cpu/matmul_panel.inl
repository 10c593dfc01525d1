// The panel kernels' shared part (matmul_kernels.hpp describes panels): plain C++ that decodes a
// chunk of any block-quantized row into panel form, and the loop over a Tile. Each quant kernel
// file includes this inside its anonymous namespace after defining
//   constexpr int kPanelRows;                        rows per micro-kernel call
//   constexpr int panel_bias(TensorType type);       added to every stored weight value of `type`
//                                                    (128 for vpdpbusd; AVX2: see its file)
//   template <int R, int T, bool kMin, int kMode>    kMode: how the ISA multiplies (its choice)
//   void panel_kernel(const WeightPanel* w, const ActPanel* const* x, int kn,
//                     float (*out)[kPanelTokens]);
//       w: [R][kn] panels (row r's chunk k at w[r * kn + k]), x[t]: token t's [kn] panels,
//       out[r][t]: the R x T partial dot products of those chunks
// so every ISA gets its own internal copy (matmul_kernels.hpp says why). No #include here.

// Chunks unpacked per pass: 16 x 384 bytes per row keeps a 4-row block of panels in L1 (24 KiB)
// and reads a 4096-column row in one pass, so decode streams a row block's bytes in order. Two
// passes of 8 chunks over the same rows decoded a 4096 x 4096 Q8_0 at 7 GB/s instead of 10.
constexpr int kPanelChunks = 16;
// Tokens per micro-kernel call.
constexpr int kPanelTokens = 4;

template <int R, int T, bool kMin, int kMode>
void panel_kernel(const WeightPanel* w, const ActPanel* const* x, int kn, float (*out)[kPanelTokens]);

// A chunk decoded in natural element order: the values and each 16-element sub-block's scale
// and min term (see WeightPanel).
struct NaturalChunk {
    int8_t v[kChunk];
    float a[kChunkLanes];
    float m[kChunkLanes];
};

void store_panel(const NaturalChunk& c, int bias, WeightPanel& p) {
    uint8_t biased[kChunk];
    for (int e = 0; e < kChunk; ++e) biased[e] = static_cast<uint8_t>(c.v[e] + bias);  // vectorizes
    for (int lane = 0; lane < kChunkLanes; ++lane) {
        const int s = kPanelSubBlock[lane];
        for (int j = 0; j < 4; ++j) std::memcpy(p.q + 64 * j + 4 * lane, biased + 16 * s + 4 * j, 4);
        p.a[lane] = c.a[s];
        p.m[lane] = c.m[s];
    }
}

float f16_value(uint16_t h) {  // fp16.hpp's conversion may not be shared (inline code)
    const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
    const uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t mant = h & 0x3ffu;
    uint32_t bits = 0;
    if (exp == 0x1f) {
        bits = sign | 0x7f800000u | (mant << 13);
    } else if (exp != 0) {
        bits = sign | ((exp + 112) << 23) | (mant << 13);
    } else if (mant == 0) {
        bits = sign;
    } else {
        uint32_t e = 113;
        while ((mant & 0x400u) == 0) {
            mant <<= 1;
            --e;
        }
        bits = sign | (e << 23) | ((mant & 0x3ffu) << 13);
    }
    float f;
    std::memcpy(&f, &bits, sizeof f);
    return f;
}

float e8m0_half_value(uint8_t e) {
    const uint32_t bits = e < 2 ? (0x00200000u << e) : (static_cast<uint32_t>(e - 1) << 23);
    float f;
    std::memcpy(&f, &bits, sizeof f);
    return f;
}

// ---- natural decoders: chunk k of a row (8 blocks of the 32-element types, one super-block) ----
//
// The plain statement of every type's panel values: what the vector unpackers compute, a start
// for a new ISA's (so maybe unused).

// The 32-element types: blocks 8k .. 8k + 7 (zero past the row's nb blocks).
template <class Block, class Fn>
void decode_blocks(const std::byte* row, int64_t k, int64_t nb, NaturalChunk& c, const Fn& fn) {
    const auto* blocks = reinterpret_cast<const Block*>(row);
    for (int lb = 0; lb < 8; ++lb) {
        const int64_t b = 8 * k + lb;
        if (b >= nb) {
            std::memset(c.v + 32 * lb, 0, 32);
            c.a[2 * lb] = c.a[2 * lb + 1] = c.m[2 * lb] = c.m[2 * lb + 1] = 0.0f;
            continue;
        }
        float a = 0.0f, m = 0.0f;
        fn(blocks[b], c.v + 32 * lb, a, m);
        c.a[2 * lb] = c.a[2 * lb + 1] = a;
        c.m[2 * lb] = c.m[2 * lb + 1] = m;
    }
}

// Element j in the low nibble of qs[j], element j + 16 in the high one, through `table`.
template <class Table>
void nibbles(const uint8_t* qs, int8_t* v, const Table& table) {
    for (int j = 0; j < 16; ++j) {
        v[j] = table(qs[j] & 0x0f, j);
        v[j + 16] = table(qs[j] >> 4, j + 16);
    }
}

[[maybe_unused]] void decode_q4_0(const std::byte* row, int64_t k, int64_t nb, NaturalChunk& c) {
    decode_blocks<quant::BlockQ4_0>(row, k, nb, c, [](const quant::BlockQ4_0& b, int8_t* v, float& a, float&) {
        nibbles(b.qs, v, [](int q, int) { return static_cast<int8_t>(q - 8); });
        a = f16_value(b.d);
    });
}
[[maybe_unused]] void decode_q4_1(const std::byte* row, int64_t k, int64_t nb, NaturalChunk& c) {
    decode_blocks<quant::BlockQ4_1>(row, k, nb, c, [](const quant::BlockQ4_1& b, int8_t* v, float& a, float& m) {
        nibbles(b.qs, v, [](int q, int) { return static_cast<int8_t>(q); });
        a = f16_value(b.d);
        m = f16_value(b.m);  // times ActPanel::bsf = s / 2 in both of the block's lanes
    });
}
template <class Block>
void decode_q5(const Block& b, int8_t* v, int offset) {
    uint32_t qh;
    std::memcpy(&qh, b.qh, sizeof qh);
    nibbles(b.qs, v,
            [&](int q, int j) { return static_cast<int8_t>((q | static_cast<int>(((qh >> j) & 1u) << 4)) - offset); });
}
[[maybe_unused]] void decode_q5_0(const std::byte* row, int64_t k, int64_t nb, NaturalChunk& c) {
    decode_blocks<quant::BlockQ5_0>(row, k, nb, c, [](const quant::BlockQ5_0& b, int8_t* v, float& a, float&) {
        decode_q5(b, v, 16);
        a = f16_value(b.d);
    });
}
[[maybe_unused]] void decode_q5_1(const std::byte* row, int64_t k, int64_t nb, NaturalChunk& c) {
    decode_blocks<quant::BlockQ5_1>(row, k, nb, c, [](const quant::BlockQ5_1& b, int8_t* v, float& a, float& m) {
        decode_q5(b, v, 0);
        a = f16_value(b.d);
        m = f16_value(b.m);
    });
}
[[maybe_unused]] void decode_q8_0(const std::byte* row, int64_t k, int64_t nb, NaturalChunk& c) {
    decode_blocks<quant::BlockQ8_0>(row, k, nb, c, [](const quant::BlockQ8_0& b, int8_t* v, float& a, float&) {
        std::memcpy(v, b.qs, 32);
        a = f16_value(b.d);
    });
}
[[maybe_unused]] void decode_iq4_nl(const std::byte* row, int64_t k, int64_t nb, NaturalChunk& c) {
    decode_blocks<quant::BlockIq4Nl>(row, k, nb, c, [](const quant::BlockIq4Nl& b, int8_t* v, float& a, float&) {
        nibbles(b.qs, v, [](int q, int) { return quant::kValuesIq4nl[q]; });
        a = f16_value(b.d);
    });
}
[[maybe_unused]] void decode_mxfp4(const std::byte* row, int64_t k, int64_t nb, NaturalChunk& c) {
    decode_blocks<quant::BlockMxfp4>(row, k, nb, c, [](const quant::BlockMxfp4& b, int8_t* v, float& a, float&) {
        nibbles(b.qs, v, [](int q, int) { return quant::kValuesMxfp4[q]; });
        a = e8m0_half_value(b.e);
    });
}

[[maybe_unused]] void decode_q2_K(const std::byte* row, int64_t k, int64_t, NaturalChunk& c) {
    const auto& b = reinterpret_cast<const quant::BlockQ2_K*>(row)[k];
    for (int h = 0; h < 2; ++h) {
        for (int j = 0; j < 4; ++j) {
            for (int l = 0; l < 32; ++l)
                c.v[128 * h + 32 * j + l] = static_cast<int8_t>((b.qs[32 * h + l] >> (2 * j)) & 3);
        }
    }
    const float d = f16_value(b.d), dmin = f16_value(b.dmin);
    for (int s = 0; s < 16; ++s) {
        c.a[s] = d * static_cast<float>(b.scales[s] & 0x0f);
        c.m[s] = -dmin * static_cast<float>(b.scales[s] >> 4);
    }
}

// Q3_K's 16 six-bit scales (ggml's kmask shuffle of the 12 scale bytes), each + 32.
void q3_K_scales(const uint8_t* scales, uint8_t out[16]) {
    uint32_t aux[4];
    std::memcpy(aux, scales, 12);
    const uint32_t tmp = aux[2];
    constexpr uint32_t kmask1 = 0x03030303, kmask2 = 0x0f0f0f0f;
    aux[2] = ((aux[0] >> 4) & kmask2) | (((tmp >> 4) & kmask1) << 4);
    aux[3] = ((aux[1] >> 4) & kmask2) | (((tmp >> 6) & kmask1) << 4);
    aux[0] = (aux[0] & kmask2) | (((tmp >> 0) & kmask1) << 4);
    aux[1] = (aux[1] & kmask2) | (((tmp >> 2) & kmask1) << 4);
    std::memcpy(out, aux, 16);
}

// IQ4_XS's six-bit scale of block ib (0..7), + 32.
int iq4_xs_scale(const quant::BlockIq4Xs& b, int ib) {
    return ((b.scales_l[ib / 2] >> (4 * (ib % 2))) & 0x0f) | (((b.scales_h >> (2 * ib)) & 3) << 4);
}

[[maybe_unused]] void decode_q3_K(const std::byte* row, int64_t k, int64_t, NaturalChunk& c) {
    const auto& b = reinterpret_cast<const quant::BlockQ3_K*>(row)[k];
    for (int h = 0; h < 2; ++h) {
        for (int j = 0; j < 4; ++j) {
            const int bit = 4 * h + j;
            for (int l = 0; l < 32; ++l) {
                const int q = (b.qs[32 * h + l] >> (2 * j)) & 3;
                c.v[128 * h + 32 * j + l] = static_cast<int8_t>(q - (((b.hmask[l] >> bit) & 1) != 0 ? 0 : 4));
            }
        }
    }
    uint8_t sc[16];
    q3_K_scales(b.scales, sc);
    const float d = f16_value(b.d);
    for (int s = 0; s < 16; ++s) {
        c.a[s] = d * static_cast<float>(sc[s] - 32);
        c.m[s] = 0.0f;
    }
}

// Q4_K / Q5_K scales and mins (get_scale_min_k4) for group g.
[[maybe_unused]] void scale_min_k4(int g, const uint8_t* q, int& sc, int& mn) {
    if (g < 4) {
        sc = q[g] & 63;
        mn = q[g + 4] & 63;
    } else {
        sc = (q[g + 4] & 0x0f) | ((q[g - 4] >> 6) << 4);
        mn = (q[g + 4] >> 4) | ((q[g] >> 6) << 4);
    }
}

template <class Block>
void decode_q45_K(const std::byte* row, int64_t k, int64_t, NaturalChunk& c) {
    const auto& b = reinterpret_cast<const Block*>(row)[k];
    for (int g = 0; g < 4; ++g) {
        for (int l = 0; l < 32; ++l) {
            int lo = b.qs[32 * g + l] & 0x0f, hi = b.qs[32 * g + l] >> 4;
            if constexpr (sizeof(Block) == sizeof(quant::BlockQ5_K)) {
                lo |= ((b.qh[l] >> (2 * g)) & 1) << 4;
                hi |= ((b.qh[l] >> (2 * g + 1)) & 1) << 4;
            }
            c.v[64 * g + l] = static_cast<int8_t>(lo);
            c.v[64 * g + 32 + l] = static_cast<int8_t>(hi);
        }
    }
    const float d = f16_value(b.d), dmin = f16_value(b.dmin);
    for (int g = 0; g < 8; ++g) {
        int sc = 0, mn = 0;
        scale_min_k4(g, b.scales, sc, mn);
        c.a[2 * g] = c.a[2 * g + 1] = d * static_cast<float>(sc);
        c.m[2 * g] = c.m[2 * g + 1] = -dmin * static_cast<float>(mn);
    }
}

[[maybe_unused]] void decode_q6_K(const std::byte* row, int64_t k, int64_t, NaturalChunk& c) {
    const auto& b = reinterpret_cast<const quant::BlockQ6_K*>(row)[k];
    for (int h = 0; h < 2; ++h) {
        const uint8_t* ql = b.ql + 64 * h;
        const uint8_t* qh = b.qh + 32 * h;
        int8_t* v = c.v + 128 * h;
        for (int l = 0; l < 32; ++l) {
            v[l] = static_cast<int8_t>(((ql[l] & 0x0f) | (((qh[l] >> 0) & 3) << 4)) - 32);
            v[l + 32] = static_cast<int8_t>(((ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4)) - 32);
            v[l + 64] = static_cast<int8_t>(((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
            v[l + 96] = static_cast<int8_t>(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
        }
    }
    const float d = f16_value(b.d);
    for (int s = 0; s < 16; ++s) {
        c.a[s] = d * static_cast<float>(b.scales[s]);
        c.m[s] = 0.0f;
    }
}

[[maybe_unused]] void decode_iq4_xs(const std::byte* row, int64_t k, int64_t, NaturalChunk& c) {
    const auto& b = reinterpret_cast<const quant::BlockIq4Xs*>(row)[k];
    const float d = f16_value(b.d);
    for (int ib = 0; ib < 8; ++ib) {
        nibbles(b.qs + 16 * ib, c.v + 32 * ib, [](int q, int) { return quant::kValuesIq4nl[q]; });
        const int ls = iq4_xs_scale(b, ib);
        c.a[2 * ib] = c.a[2 * ib + 1] = d * static_cast<float>(ls - 32);
        c.m[2 * ib] = c.m[2 * ib + 1] = 0.0f;
    }
}

// ---- pieces of the vector unpackers ----

// What a nibble stands for in the 4-bit types, + panel_bias: the table of a byte shuffle. Q5_0 and
// Q5_1 take the low four bits here and add 16 where the fifth is set.
struct NibbleTable {
    uint8_t v[16];
};
constexpr NibbleTable nibble_table(TensorType type) {
    NibbleTable t{};
    for (int i = 0; i < 16; ++i) {
        int v = i;
        switch (type) {
            case TensorType::Q4_0: v = i - 8; break;
            case TensorType::Q5_0: v = i - 16; break;
            case TensorType::IQ4_NL:
            case TensorType::IQ4_XS: v = quant::kValuesIq4nl[i]; break;
            case TensorType::MXFP4: v = quant::kValuesMxfp4[i]; break;
            default: break;  // Q4_1, Q5_1: the nibble itself
        }
        t.v[i] = static_cast<uint8_t>(v + panel_bias(type));
    }
    return t;
}

// A type's unpacker through its natural decoder.
template <TensorType kType, void (*Decode)(const std::byte*, int64_t, int64_t, NaturalChunk&)>
void unpack_natural(const std::byte* row, int64_t k, int64_t nb, WeightPanel& p) {
    NaturalChunk c;
    Decode(row, k, nb, c);
    store_panel(c, panel_bias(kType), p);
}

// ---- the loop over a Tile ----

template <int R, bool kMin, int kMode>
void panel_call(int tn, const WeightPanel* w, const ActPanel* const* x, int kn, float (*out)[kPanelTokens]) {
    switch (tn) {
        case 1: panel_kernel<R, 1, kMin, kMode>(w, x, kn, out); break;
        case 2: panel_kernel<R, 2, kMin, kMode>(w, x, kn, out); break;
        case 3: panel_kernel<R, 3, kMin, kMode>(w, x, kn, out); break;
        default: panel_kernel<R, kPanelTokens, kMin, kMode>(w, x, kn, out); break;
    }
}

template <bool kMin, int kMode, int R = kPanelRows>
void panel_rows(int rn, int tn, const WeightPanel* w, const ActPanel* const* x, int kn, float (*out)[kPanelTokens]) {
    if constexpr (R > 1) {
        if (rn < R) return panel_rows<kMin, kMode, R - 1>(rn, tn, w, x, kn, out);
    }
    panel_call<R, kMin, kMode>(tn, w, x, kn, out);
}

// block: elements per block of the type (32 or 256); kMin: whether WeightPanel::m is used;
// Unpack(row, k, nb, panel): the type's unpacker, a template parameter so it inlines here.
template <bool kMin, int kMode, auto Unpack>
void run_panels(const Tile& t, int64_t block) {
    const int64_t nb = t.cols / block;
    const int64_t n_chunks = (t.cols + kChunk - 1) / kChunk;
    WeightPanel w[kPanelRows * kPanelChunks];  // row r's chunk k at w[r * kn + k]: the pass's panels contiguous
    // Decode (one token) uses each panel once and streams the weights past them: a row block's
    // panels stay within 12 KiB of L1 (4 rows of 4096 columns, 24 KiB, decoded a 4096 x 4096
    // MXFP4 at 7 GB/s instead of 11 with 2 rows), but no fewer rows than needed (2 instead of 4
    // rows of 2048 columns computed 18% slower). More tokens reuse the panels: all rows.
    const int64_t pass_chunks = n_chunks < kPanelChunks ? n_chunks : kPanelChunks;
    int block_rows = kPanelRows;
    while (t.t1 - t.t0 == 1 && block_rows > 1 &&
           static_cast<size_t>(block_rows * pass_chunks) * sizeof(WeightPanel) > size_t{12} << 10) {
        block_rows /= 2;
    }
    for (int64_t rb = t.r0; rb < t.r1; rb += block_rows) {
        const int rn = static_cast<int>(t.r1 - rb < block_rows ? t.r1 - rb : block_rows);
        for (int64_t kc = 0; kc < n_chunks; kc += kPanelChunks) {
            const int kn = static_cast<int>(n_chunks - kc < kPanelChunks ? n_chunks - kc : kPanelChunks);
            for (int r = 0; r < rn; ++r) {
                const std::byte* row = t.w + static_cast<size_t>(rb + r) * t.w_row_bytes;
                for (int k = 0; k < kn; ++k) Unpack(row, kc + k, nb, w[r * kn + k]);
            }
            for (int64_t tok = t.t0; tok < t.t1; tok += kPanelTokens) {
                const int tn = static_cast<int>(t.t1 - tok < kPanelTokens ? t.t1 - tok : kPanelTokens);
                const ActPanel* xs[kPanelTokens];
                for (int i = 0; i < tn; ++i) {
                    xs[i] = reinterpret_cast<const ActPanel*>(t.x + static_cast<size_t>(tok + i) * t.x_row_bytes) + kc;
                }
                float out[kPanelRows][kPanelTokens];
                panel_rows<kMin, kMode>(rn, tn, w, xs, kn, out);
                for (int r = 0; r < rn; ++r) {
                    for (int i = 0; i < tn; ++i) {
                        float& y = t.y[(tok + i) * t.rows + rb + r];
                        y = kc == 0 ? out[r][i] : y + out[r][i];
                    }
                }
            }
        }
    }
}
