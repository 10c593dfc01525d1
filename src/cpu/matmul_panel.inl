// The panel kernels' shared part (matmul_kernels.hpp describes panels): plain C++ that decodes a
// chunk of any block-quantized row into panel form, and the loop over a Tile. Each quant kernel
// file includes this inside its anonymous namespace after defining
//   constexpr int kPanelRows;       rows per micro-kernel call
//   constexpr int kPanelBias;       added to every stored weight value (128 for vpdpbusd, or 0)
//   template <int R, int T, bool kMin>
//   void panel_kernel(const WeightPanel (*w)[kPanelChunks], const ActPanel* const* x, int kn,
//                     float (*out)[kPanelTokens]);
// so every ISA gets its own internal copy (matmul_kernels.hpp says why). No #include here.

// Chunks unpacked per pass: 8 x 384 bytes per row keeps a 4-row block of panels in L1.
constexpr int kPanelChunks = 8;
// Tokens per micro-kernel call.
constexpr int kPanelTokens = 4;

template <int R, int T, bool kMin>
void panel_kernel(const WeightPanel (*w)[kPanelChunks], const ActPanel* const* x, int kn, float (*out)[kPanelTokens]);

// A chunk decoded in natural element order: the values and each 16-element sub-block's scale
// and min term (see WeightPanel).
struct NaturalChunk {
    int8_t v[kChunk];
    float a[kChunkLanes];
    float m[kChunkLanes];
};

void store_panel(const NaturalChunk& c, WeightPanel& p) {
    uint8_t biased[kChunk];
    for (int e = 0; e < kChunk; ++e) biased[e] = static_cast<uint8_t>(c.v[e] + kPanelBias);  // vectorizes
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

void decode_q4_0(const std::byte* row, int64_t k, int64_t nb, NaturalChunk& c) {
    decode_blocks<quant::BlockQ4_0>(row, k, nb, c, [](const quant::BlockQ4_0& b, int8_t* v, float& a, float&) {
        nibbles(b.qs, v, [](int q, int) { return static_cast<int8_t>(q - 8); });
        a = f16_value(b.d);
    });
}
void decode_q4_1(const std::byte* row, int64_t k, int64_t nb, NaturalChunk& c) {
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
void decode_q5_0(const std::byte* row, int64_t k, int64_t nb, NaturalChunk& c) {
    decode_blocks<quant::BlockQ5_0>(row, k, nb, c, [](const quant::BlockQ5_0& b, int8_t* v, float& a, float&) {
        decode_q5(b, v, 16);
        a = f16_value(b.d);
    });
}
void decode_q5_1(const std::byte* row, int64_t k, int64_t nb, NaturalChunk& c) {
    decode_blocks<quant::BlockQ5_1>(row, k, nb, c, [](const quant::BlockQ5_1& b, int8_t* v, float& a, float& m) {
        decode_q5(b, v, 0);
        a = f16_value(b.d);
        m = f16_value(b.m);
    });
}
void decode_q8_0(const std::byte* row, int64_t k, int64_t nb, NaturalChunk& c) {
    decode_blocks<quant::BlockQ8_0>(row, k, nb, c, [](const quant::BlockQ8_0& b, int8_t* v, float& a, float&) {
        std::memcpy(v, b.qs, 32);
        a = f16_value(b.d);
    });
}
void decode_iq4_nl(const std::byte* row, int64_t k, int64_t nb, NaturalChunk& c) {
    decode_blocks<quant::BlockIq4Nl>(row, k, nb, c, [](const quant::BlockIq4Nl& b, int8_t* v, float& a, float&) {
        nibbles(b.qs, v, [](int q, int) { return quant::kValuesIq4nl[q]; });
        a = f16_value(b.d);
    });
}
void decode_mxfp4(const std::byte* row, int64_t k, int64_t nb, NaturalChunk& c) {
    decode_blocks<quant::BlockMxfp4>(row, k, nb, c, [](const quant::BlockMxfp4& b, int8_t* v, float& a, float&) {
        nibbles(b.qs, v, [](int q, int) { return quant::kValuesMxfp4[q]; });
        a = e8m0_half_value(b.e);
    });
}

void decode_q2_K(const std::byte* row, int64_t k, int64_t, NaturalChunk& c) {
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

void decode_q3_K(const std::byte* row, int64_t k, int64_t, NaturalChunk& c) {
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
void scale_min_k4(int g, const uint8_t* q, int& sc, int& mn) {
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

void decode_q6_K(const std::byte* row, int64_t k, int64_t, NaturalChunk& c) {
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

void decode_iq4_xs(const std::byte* row, int64_t k, int64_t, NaturalChunk& c) {
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

// What a nibble stands for in the 4-bit types, + kPanelBias: the table of a byte shuffle. Q5_0 and
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
        t.v[i] = static_cast<uint8_t>(v + kPanelBias);
    }
    return t;
}

// The 32-element types with 4-bit values: what their vector unpackers read of a block.
template <class Block>
constexpr TensorType nibble_type() {
    if constexpr (sizeof(Block) == sizeof(quant::BlockMxfp4)) {
        return TensorType::MXFP4;
    } else if constexpr (requires(Block b) { b.qh; }) {
        return requires(Block b) { b.m; } ? TensorType::Q5_1 : TensorType::Q5_0;
    } else if constexpr (requires(Block b) { b.m; }) {
        return TensorType::Q4_1;
    } else if constexpr (sizeof(Block) == sizeof(quant::BlockQ4_0) && requires(Block b) { b.d; }) {
        // Q4_0 and IQ4_NL have the same layout: the caller names which.
        return TensorType::Q4_0;
    }
}

// The fifth bits of a Q5_0 / Q5_1 block (bit j for element j), or 0.
template <class Block>
uint32_t fifth_bits(const Block& b) {
    uint32_t qh = 0;
    if constexpr (requires { b.qh; }) std::memcpy(&qh, b.qh, sizeof qh);
    return qh;
}

// A type's unpacker through its natural decoder.
template <void (*Decode)(const std::byte*, int64_t, int64_t, NaturalChunk&)>
void unpack_natural(const std::byte* row, int64_t k, int64_t nb, WeightPanel& p) {
    NaturalChunk c;
    Decode(row, k, nb, c);
    store_panel(c, p);
}

using UnpackFn = void (*)(const std::byte* row, int64_t k, int64_t nb, WeightPanel& p);

// ---- the loop over a Tile ----

template <int R, bool kMin>
void panel_call(int tn, const WeightPanel (*w)[kPanelChunks], const ActPanel* const* x, int kn,
                float (*out)[kPanelTokens]) {
    switch (tn) {
        case 1: panel_kernel<R, 1, kMin>(w, x, kn, out); break;
        case 2: panel_kernel<R, 2, kMin>(w, x, kn, out); break;
        case 3: panel_kernel<R, 3, kMin>(w, x, kn, out); break;
        default: panel_kernel<R, kPanelTokens, kMin>(w, x, kn, out); break;
    }
}

template <bool kMin, int R = kPanelRows>
void panel_rows(int rn, int tn, const WeightPanel (*w)[kPanelChunks], const ActPanel* const* x, int kn,
                float (*out)[kPanelTokens]) {
    if constexpr (R > 1) {
        if (rn < R) return panel_rows<kMin, R - 1>(rn, tn, w, x, kn, out);
    }
    panel_call<R, kMin>(tn, w, x, kn, out);
}

// block: elements per block of the type (32 or 256); kMin: whether WeightPanel::m is used.
template <bool kMin>
void run_panels(const Tile& t, UnpackFn unpack, int64_t block) {
    const int64_t nb = t.cols / block;
    const int64_t n_chunks = (t.cols + kChunk - 1) / kChunk;
    WeightPanel w[kPanelRows][kPanelChunks];
    for (int64_t rb = t.r0; rb < t.r1; rb += kPanelRows) {
        const int rn = static_cast<int>(t.r1 - rb < kPanelRows ? t.r1 - rb : kPanelRows);
        for (int64_t kc = 0; kc < n_chunks; kc += kPanelChunks) {
            const int kn = static_cast<int>(n_chunks - kc < kPanelChunks ? n_chunks - kc : kPanelChunks);
            for (int r = 0; r < rn; ++r) {
                const std::byte* row = t.w + static_cast<size_t>(rb + r) * t.w_row_bytes;
                for (int k = 0; k < kn; ++k) unpack(row, kc + k, nb, w[r][k]);
            }
            for (int64_t tok = t.t0; tok < t.t1; tok += kPanelTokens) {
                const int tn = static_cast<int>(t.t1 - tok < kPanelTokens ? t.t1 - tok : kPanelTokens);
                const ActPanel* xs[kPanelTokens];
                for (int i = 0; i < tn; ++i) {
                    xs[i] = reinterpret_cast<const ActPanel*>(t.x + static_cast<size_t>(tok + i) * t.x_row_bytes) + kc;
                }
                float out[kPanelRows][kPanelTokens];
                panel_rows<kMin>(rn, tn, w, xs, kn, out);
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

// The generic unpacker of every block-quantized type; `fast` may replace some.
struct PanelType {
    UnpackFn unpack;
    int64_t block;
    bool min;
};

PanelType natural_panel_type(TensorType type) {
    switch (type) {
        case TensorType::Q4_0: return {unpack_natural<decode_q4_0>, 32, false};
        case TensorType::Q4_1: return {unpack_natural<decode_q4_1>, 32, true};
        case TensorType::Q5_0: return {unpack_natural<decode_q5_0>, 32, false};
        case TensorType::Q5_1: return {unpack_natural<decode_q5_1>, 32, true};
        case TensorType::Q8_0: return {unpack_natural<decode_q8_0>, 32, false};
        case TensorType::IQ4_NL: return {unpack_natural<decode_iq4_nl>, 32, false};
        case TensorType::MXFP4: return {unpack_natural<decode_mxfp4>, 32, false};
        case TensorType::Q2_K: return {unpack_natural<decode_q2_K>, 256, true};
        case TensorType::Q3_K: return {unpack_natural<decode_q3_K>, 256, false};
        case TensorType::Q4_K: return {unpack_natural<decode_q45_K<quant::BlockQ4_K>>, 256, true};
        case TensorType::Q5_K: return {unpack_natural<decode_q45_K<quant::BlockQ5_K>>, 256, true};
        case TensorType::Q6_K: return {unpack_natural<decode_q6_K>, 256, false};
        case TensorType::IQ4_XS: return {unpack_natural<decode_iq4_xs>, 256, false};
        default: return {nullptr, 0, false};
    }
}

void run_panel_type(const Tile& t, const PanelType& p) {
    if (p.unpack == nullptr) return;  // matmul.cpp checked the type
    if (p.min) {
        run_panels<true>(t, p.unpack, p.block);
    } else {
        run_panels<false>(t, p.unpack, p.block);
    }
}
