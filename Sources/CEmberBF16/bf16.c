// See include/CEmberBF16.h. The kernel: for each panel of 32 output columns, blocks of 8
// rows keep 8 × 2 zmm accumulators; per pair of k, two 64-byte loads of the packed panel
// and one 32-bit broadcast of each row's pair feed 16 `vdpbf16ps`. The panel (32 × k bf16)
// stays in L1/L2 while the row blocks stream past it.
#include "CEmberBF16.h"
#include "lanes.h"

#include <immintrin.h>
#include <math.h>
#include <string.h>

#define EMBER_BF16_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
enum { PANEL = 32, ROWS = 8 };

int ember_bf16_available(void) {
    static int known = -1;  // the CPU does not change: concurrent first calls store the same value
    int value = __atomic_load_n(&known, __ATOMIC_RELAXED);
    if (value < 0) {
        __builtin_cpu_init();
        value = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl")
            && __builtin_cpu_supports("avx512bf16");
        __atomic_store_n(&known, value, __ATOMIC_RELAXED);
    }
    return value;
}

static inline int pairs(int k) { return (k + 1) / 2; }

/// Round to nearest even, as `vcvtne2ps2bf16` does (NaN stays NaN).
static inline uint16_t to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

size_t ember_bf16_packed_count(int n, int k) { return (size_t)((n + PANEL - 1) / PANEL) * (size_t)pairs(k) * PANEL * 2; }

void ember_bf16_pack(const float *w, int n, int k, uint16_t *packed) { ember_bf16_pack_strided(w, n, k, k, 1, packed); }

// The scalar packing, for panels with fewer than 32 rows and layouts without a fast path.
static void pack_panel_scalar(const float *w, int n, int k, ptrdiff_t rowStride, ptrdiff_t colStride, int p, uint16_t *panel) {
    const int kp = pairs(k);
    for (int q = 0; q < kp; q++)
        for (int j = 0; j < PANEL; j++)
            for (int e = 0; e < 2; e++) {
                const int row = p + j, col = 2 * q + e;
                panel[((size_t)q * PANEL + j) * 2 + e] = (row < n && col < k) ? to_bf16(w[row * rowStride + col * colStride]) : 0;
            }
}

// 16 lanes of (bf16(low) | bf16(high) << 16): one k pair for 16 panel rows.
EMBER_BF16_TARGET
static inline __m512i pair16(__m512 low, __m512 high) {
    const __m512i l = _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(low));
    const __m512i h = _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(high));
    return _mm512_or_si512(l, _mm512_slli_epi32(h, 16));
}

// A full panel whose 32 rows are adjacent in memory (rowStride 1: a transposed view, such
// as attention's v): each k pair is two 32-float loads, interleaved into 128 bytes.
EMBER_BF16_TARGET
static void pack_panel_rows_adjacent(const float *w, int k, ptrdiff_t colStride, int p, uint16_t *panel) {
    const int kp = pairs(k);
    for (int q = 0; q < kp; q++) {
        const float *c0 = w + (ptrdiff_t)(2 * q) * colStride + p;
        const int odd = 2 * q + 1 < k;
        const float *c1 = c0 + colStride;
        const __m512 zero = _mm512_setzero_ps();
        uint16_t *out = panel + (size_t)q * PANEL * 2;
        _mm512_storeu_si512(out, pair16(_mm512_loadu_ps(c0), odd ? _mm512_loadu_ps(c1) : zero));
        _mm512_storeu_si512(out + 32, pair16(_mm512_loadu_ps(c0 + 16), odd ? _mm512_loadu_ps(c1 + 16) : zero));
    }
}

// A full panel whose rows are contiguous (colStride 1: weights as stored, attention's k):
// each row converts 32 columns at a time, then its pairs go to every 32nd 32-bit slot.
EMBER_BF16_TARGET
static void pack_panel_columns_adjacent(const float *w, int k, ptrdiff_t rowStride, int p, uint16_t *panel) {
    const int kp = pairs(k);
    uint32_t *slots = (uint32_t *)panel;
    uint32_t converted[16];
    for (int j = 0; j < PANEL; j++) {
        const float *row = w + (ptrdiff_t)(p + j) * rowStride;
        for (int i = 0; i < 2 * kp; i += 32) {
            const int left = k - i;
            const __m512bh v = _mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(tail16(left - 16), row + i + 16), _mm512_maskz_loadu_ps(tail16(left), row + i));
            _mm512_storeu_si512(converted, (__m512i)v);
            const int count = kp - i / 2 < 16 ? kp - i / 2 : 16;
            for (int t = 0; t < count; t++) slots[(size_t)(i / 2 + t) * PANEL + j] = converted[t];
        }
    }
}

void ember_bf16_pack_strided(const float *w, int n, int k, ptrdiff_t rowStride, ptrdiff_t colStride, uint16_t *packed) {
    const int kp = pairs(k);
    const int fast = ember_bf16_available();
    for (int p = 0; p < n; p += PANEL) {
        uint16_t *panel = packed + (size_t)(p / PANEL) * kp * PANEL * 2;
        if (fast && p + PANEL <= n && rowStride == 1) pack_panel_rows_adjacent(w, k, colStride, p, panel);
        else if (fast && p + PANEL <= n && colStride == 1) pack_panel_columns_adjacent(w, k, rowStride, p, panel);
        else pack_panel_scalar(w, n, k, rowStride, colStride, p, panel);
    }
}

void ember_bf16_pack_bf16_rows(const uint16_t *w, int n, int k, size_t ldw, uint16_t *packed) {
    const int kp = pairs(k);
    for (int p = 0; p < n; p += PANEL) {
        uint32_t *slots = (uint32_t *)(packed + (size_t)(p / PANEL) * kp * PANEL * 2);
        for (int j = 0; j < PANEL; j++) {
            const uint16_t *row = w + (size_t)(p + j) * ldw;
            for (int q = 0; q < kp; q++) {
                uint32_t word = 0;
                if (p + j < n) {
                    const uint32_t high = 2 * q + 1 < k ? row[2 * q + 1] : 0;
                    word = row[2 * q] | high << 16;
                }
                slots[(size_t)q * PANEL + j] = word;
            }
        }
    }
}

EMBER_BF16_TARGET
void ember_bf16_pack_bf16_columns(const uint16_t *w, int n, int k, size_t ldw, uint16_t *packed) {
    const int kp = pairs(k);
    // Output lane 2i takes element i of the even row, lane 2i + 1 element i of the odd row
    // (index 32 + i in permutex2var's second operand); the high half continues at i + 16.
    uint16_t lowIndex[32], highIndex[32];
    for (int i = 0; i < 32; i++) {
        lowIndex[i] = (uint16_t)((i % 2 ? 32 : 0) + i / 2);
        highIndex[i] = (uint16_t)((i % 2 ? 32 : 0) + 16 + i / 2);
    }
    const __m512i lowPick = _mm512_loadu_si512(lowIndex), highPick = _mm512_loadu_si512(highIndex);
    for (int p = 0; p < n; p += PANEL) {
        uint16_t *panel = packed + (size_t)(p / PANEL) * kp * PANEL * 2;
        const __mmask32 valid = tail32(n - p);
        for (int q = 0; q < kp; q++) {
            const __m512i even = _mm512_maskz_loadu_epi16(valid, w + (size_t)(2 * q) * ldw + p);
            const __m512i odd = 2 * q + 1 < k ? _mm512_maskz_loadu_epi16(valid, w + (size_t)(2 * q + 1) * ldw + p) : _mm512_setzero_si512();
            _mm512_storeu_si512(panel + (size_t)q * PANEL * 2, _mm512_permutex2var_epi16(even, lowPick, odd));
            _mm512_storeu_si512(panel + (size_t)q * PANEL * 2 + 32, _mm512_permutex2var_epi16(even, highPick, odd));
        }
    }
}

size_t ember_bf16_rows_count(int m, int k) { return (size_t)m * (size_t)pairs(k) * 2; }

EMBER_BF16_TARGET
void ember_bf16_convert(const float *x, int m, int k, int ldx, uint16_t *out) {
    const int kp2 = pairs(k) * 2;
    for (int r = 0; r < m; r++) {
        const float *row = x + (size_t)r * ldx;
        uint16_t *o = out + (size_t)r * kp2;
        int i = 0;
        for (; i + 32 <= k; i += 32) {
            __m512bh v = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(row + i + 16), _mm512_loadu_ps(row + i));
            _mm512_storeu_si512(o + i, (__m512i)v);
        }
        for (; i < kp2; i++) o[i] = i < k ? to_bf16(row[i]) : 0;
    }
}

EMBER_BF16_TARGET
void ember_bf16_convert_transposed(const float *x, int channels, int frames, int ldx, uint16_t *out, int ldo) {
    uint32_t words[16];
    // Two channels at a time: their values at 16 frames become 16 (even, odd) bf16 pairs,
    // each the 32-bit word of one output row; an odd channel count or row stride ends scalar.
    const int paired = ldo % 2 == 0 ? channels & ~1 : 0;
    int c = 0;
    for (; c < paired; c += 2) {
        const float *x0 = x + (size_t)c * ldx, *x1 = x0 + ldx;
        int t = 0;
        for (; t + 16 <= frames; t += 16) {
            _mm512_storeu_si512(words, pair16(_mm512_loadu_ps(x0 + t), _mm512_loadu_ps(x1 + t)));
            for (int i = 0; i < 16; i++) memcpy(out + (size_t)(t + i) * ldo + c, &words[i], 4);
        }
        for (; t < frames; t++) {
            out[(size_t)t * ldo + c] = to_bf16(x0[t]);
            out[(size_t)t * ldo + c + 1] = to_bf16(x1[t]);
        }
    }
    for (; c < channels; c++)
        for (int t = 0; t < frames; t++) out[(size_t)t * ldo + c] = to_bf16(x[(size_t)c * ldx + t]);
}

// GELU, x/2 · (1 + erf(x/√2)), with the rational erf of VectorMath.swift (Eigen's, on [−4, 4]).
EMBER_BF16_TARGET
static inline __m512 gelu16(__m512 v) {
    const __m512 c = _mm512_min_ps(_mm512_max_ps(_mm512_mul_ps(v, _mm512_set1_ps(0.70710678118654752f)), _mm512_set1_ps(-4.0f)),
                                   _mm512_set1_ps(4.0f));
    const __m512 x2 = _mm512_mul_ps(c, c);
    __m512 p = _mm512_set1_ps(-2.72614225801306e-10f);
    p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(2.77068142495902e-08f));
    p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(-2.10102402082508e-06f));
    p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(-5.69250639462346e-05f));
    p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(-7.34990630326855e-04f));
    p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(-2.95459980854025e-03f));
    p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(-1.60960333262415e-02f));
    p = _mm512_mul_ps(p, c);
    __m512 q = _mm512_set1_ps(-1.45660718464996e-05f);
    q = _mm512_fmadd_ps(q, x2, _mm512_set1_ps(-2.13374055278905e-04f));
    q = _mm512_fmadd_ps(q, x2, _mm512_set1_ps(-1.68282697438203e-03f));
    q = _mm512_fmadd_ps(q, x2, _mm512_set1_ps(-7.37332916720468e-03f));
    q = _mm512_fmadd_ps(q, x2, _mm512_set1_ps(-1.42647390514189e-02f));
    const __m512 erf = _mm512_div_ps(p, q);
    return _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(0.5f), v), _mm512_add_ps(_mm512_set1_ps(1.0f), erf));
}

// One tile: rows [r0, r0 + rows) (rows ≤ 8, row r at xb + r · lda) against the 32-column
// panel starting at column p, then the epilogue while the tile is in registers: bias, the activation, then
// the store (added to what the output holds with EMBER_BF16_ACCUMULATE, or rounded to bf16
// when `toBF16`). `toBF16` and `act` are constants at each call site, so the compiler
// specializes the tile for them.
EMBER_BF16_TARGET
static inline __attribute__((always_inline)) void gemm_tile(const uint16_t *xb, size_t lda, int kp, const uint16_t *packed, int n, int p,
                                                            int r0, int rows, void *c, int ldc, const float *bias, int flags,
                                                            const int toBF16, const int act) {
    const uint16_t *panel = packed + (size_t)(p / PANEL) * kp * PANEL * 2;
    const int columns = n - p < PANEL ? n - p : PANEL;
    const __mmask16 low = tail16(columns), high = tail16(columns - 16);
    const __mmask32 both = tail32(columns);
    const int rowScale = bias && (flags & EMBER_BF16_ROW_SCALE);
    const int rowBias = !rowScale && bias && (flags & EMBER_BF16_ROW_BIAS), accumulate = !toBF16 && (flags & EMBER_BF16_ACCUMULATE);
    const int32_t *a[ROWS];
    for (int r = 0; r < ROWS; r++) a[r] = (const int32_t *)(xb + (size_t)(r0 + (r < rows ? r : 0)) * lda);
    __m512 acc[ROWS][2];
    for (int r = 0; r < ROWS; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    for (int q = 0; q < kp; q++) {
        const __m512bh b0 = (__m512bh)_mm512_loadu_si512(panel + (size_t)q * PANEL * 2);
        const __m512bh b1 = (__m512bh)_mm512_loadu_si512(panel + (size_t)q * PANEL * 2 + 32);
#pragma GCC unroll 8
        for (int r = 0; r < ROWS; r++) {
            const __m512bh v = (__m512bh)_mm512_set1_epi32(a[r][q]);
            acc[r][0] = _mm512_dpbf16_ps(acc[r][0], v, b0);
            acc[r][1] = _mm512_dpbf16_ps(acc[r][1], v, b1);
        }
    }
    const __m512 bias0 = bias && !rowBias && !rowScale ? _mm512_maskz_loadu_ps(low, bias + p) : _mm512_setzero_ps();
    const __m512 bias1 = bias && !rowBias && !rowScale ? _mm512_maskz_loadu_ps(high, bias + p + 16) : _mm512_setzero_ps();
    for (int r = 0; r < rows; r++) {
        __m512 v0, v1;
        if (rowScale) {
            const __m512 f = _mm512_set1_ps(bias[r0 + r]);
            v0 = _mm512_mul_ps(acc[r][0], f);
            v1 = _mm512_mul_ps(acc[r][1], f);
        } else if (rowBias) {
            const __m512 b = _mm512_set1_ps(bias[r0 + r]);
            v0 = _mm512_add_ps(acc[r][0], b);
            v1 = _mm512_add_ps(acc[r][1], b);
        } else {
            v0 = _mm512_add_ps(acc[r][0], bias0);
            v1 = _mm512_add_ps(acc[r][1], bias1);
        }
        if (act == EMBER_BF16_GELU) {
            v0 = gelu16(v0);
            v1 = gelu16(v1);
        } else if (act == EMBER_BF16_RELU6) {
            const __m512 zero = _mm512_setzero_ps(), six = _mm512_set1_ps(6.0f);
            v0 = _mm512_min_ps(_mm512_max_ps(v0, zero), six);
            v1 = _mm512_min_ps(_mm512_max_ps(v1, zero), six);
        }
        if (toBF16) {
            uint16_t *out = (uint16_t *)c + (size_t)(r0 + r) * ldc + p;
            _mm512_mask_storeu_epi16(out, both, (__m512i)_mm512_cvtne2ps_pbh(v1, v0));
        } else {
            float *out = (float *)c + (size_t)(r0 + r) * ldc + p;
            if (accumulate) {
                v0 = _mm512_add_ps(_mm512_maskz_loadu_ps(low, out), v0);
                v1 = _mm512_add_ps(_mm512_maskz_loadu_ps(high, out + 16), v1);
            }
            _mm512_mask_storeu_ps(out, low, v0);
            _mm512_mask_storeu_ps(out + 16, high, v1);
        }
    }
}

// Panels outer, row blocks inner: each 32 × k panel of the weights stays in L1/L2 while
// the rows stream past it (linear layers: many rows, the weights the larger operand).
EMBER_BF16_TARGET
static inline __attribute__((always_inline)) void gemm_tiles(const uint16_t *xb, size_t lda, int m, int k, const uint16_t *packed, int n,
                                                             void *c, int ldc, const float *bias, int flags, const int toBF16) {
    const int kp = pairs(k), act = flags & (EMBER_BF16_GELU | EMBER_BF16_RELU6);
    // One loop per activation, each a constant in its tiles: without GELU's constants and
    // temporaries in the epilogue the accumulators stay in registers (k = 64 tiles, attention's
    // scores, measured 190 → 218 GFLOP/s; k = 384 about 3% faster).
#define EMBER_TILES(ACTIVATION)                                                                                              \
    for (int p = 0; p < n; p += PANEL)                                                                                        \
        for (int r0 = 0; r0 < m; r0 += ROWS)                                                                                  \
            gemm_tile(xb, lda, kp, packed, n, p, r0, m - r0 < ROWS ? m - r0 : ROWS, c, ldc, bias, flags, toBF16, ACTIVATION)
    if (act == EMBER_BF16_GELU) EMBER_TILES(EMBER_BF16_GELU);
    else if (act == EMBER_BF16_RELU6) EMBER_TILES(EMBER_BF16_RELU6);
    else EMBER_TILES(EMBER_BF16_NONE);
#undef EMBER_TILES
}

// Row blocks outer: attention's products (64 query rows against all keys, or 64 weight rows
// against 64 value columns) measured about 10% faster with each row block kept in L1 and
// written out row by row.
EMBER_BF16_TARGET
void ember_bf16_gemm_row_blocks(const uint16_t *xb, size_t lda, int m, int k, const uint16_t *packed, int n, float *c, int ldc,
                                const float *rowScale) {
    const int kp = pairs(k);
    for (int r0 = 0; r0 < m; r0 += ROWS)
        for (int p = 0; p < n; p += PANEL)
            gemm_tile(xb, lda, kp, packed, n, p, r0, m - r0 < ROWS ? m - r0 : ROWS, c, ldc, rowScale,
                      rowScale ? EMBER_BF16_ROW_SCALE : EMBER_BF16_NONE, 0, EMBER_BF16_NONE);
}

void ember_bf16_gemm(const uint16_t *xb, int m, int k, const uint16_t *packed, int n, float *c, int ldc) {
    ember_bf16_gemm_row_blocks(xb, (size_t)pairs(k) * 2, m, k, packed, n, c, ldc, NULL);
}

EMBER_BF16_TARGET
void ember_bf16_gemm_rows_epilogue(const uint16_t *xb, size_t lda, int m, int k, const uint16_t *packed, int n, float *c, int ldc,
                                   const float *bias, int flags) {
    gemm_tiles(xb, lda, m, k, packed, n, c, ldc, bias, flags, 0);
}

EMBER_BF16_TARGET
void ember_bf16_gemm_rows_to_bf16(const uint16_t *xb, size_t lda, int m, int k, const uint16_t *packed, int n, uint16_t *c, int ldc,
                                  const float *bias, int flags) {
    gemm_tiles(xb, lda, m, k, packed, n, c, ldc, bias, flags, 1);
}

// Rows as `ember_bf16_convert` lays them out: kp = k rounded up to even elements apart.
void ember_bf16_gemm_epilogue(const uint16_t *xb, int m, int k, const uint16_t *packed, int n, float *c, int ldc,
                              const float *bias, int flags) {
    ember_bf16_gemm_rows_epilogue(xb, (size_t)pairs(k) * 2, m, k, packed, n, c, ldc, bias, flags);
}

void ember_bf16_gemm_to_bf16(const uint16_t *xb, int m, int k, const uint16_t *packed, int n, uint16_t *c, int ldc,
                             const float *bias, int flags) {
    ember_bf16_gemm_rows_to_bf16(xb, (size_t)pairs(k) * 2, m, k, packed, n, c, ldc, bias, flags);
}

EMBER_BF16_TARGET
void ember_bf16_layer_norm(const float *x, int m, int width, int ldx, const float *gamma, const float *beta, float eps, uint16_t *out) {
    const int kp2 = pairs(width) * 2;
    const float inverseWidth = 1.0f / (float)width;
    for (int r = 0; r < m; r++) {
        const float *row = x + (size_t)r * ldx;
        uint16_t *o = out + (size_t)r * kp2;
        // Two passes, as the fp32 layerNorm: the mean, then the mean squared deviation.
        __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
        int i = 0;
        for (; i + 32 <= width; i += 32) {
            s0 = _mm512_add_ps(s0, _mm512_loadu_ps(row + i));
            s1 = _mm512_add_ps(s1, _mm512_loadu_ps(row + i + 16));
        }
        for (; i < width; i += 16) s0 = _mm512_add_ps(s0, _mm512_maskz_loadu_ps(tail16(width - i), row + i));
        const float mean = _mm512_reduce_add_ps(_mm512_add_ps(s0, s1)) * inverseWidth;
        const __m512 vmean = _mm512_set1_ps(mean);
        s0 = s1 = _mm512_setzero_ps();
        for (i = 0; i + 32 <= width; i += 32) {
            const __m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(row + i), vmean), d1 = _mm512_sub_ps(_mm512_loadu_ps(row + i + 16), vmean);
            s0 = _mm512_fmadd_ps(d0, d0, s0);
            s1 = _mm512_fmadd_ps(d1, d1, s1);
        }
        for (; i < width; i += 16) {
            const __mmask16 valid = tail16(width - i);
            const __m512 d = _mm512_maskz_sub_ps(valid, _mm512_maskz_loadu_ps(valid, row + i), vmean);
            s0 = _mm512_fmadd_ps(d, d, s0);
        }
        const float variance = _mm512_reduce_add_ps(_mm512_add_ps(s0, s1)) * inverseWidth;
        const __m512 scale = _mm512_set1_ps(1.0f / sqrtf(variance + eps));
        for (i = 0; i < kp2; i += 32) {
            const __mmask16 v0 = tail16(width - i), v1 = tail16(width - i - 16);
            const __m512 y0 = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(v0, row + i), vmean), scale),
                                              _mm512_maskz_loadu_ps(v0, gamma + i), _mm512_maskz_loadu_ps(v0, beta + i));
            const __m512 y1 = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(v1, row + i + 16), vmean), scale),
                                              _mm512_maskz_loadu_ps(v1, gamma + i + 16), _mm512_maskz_loadu_ps(v1, beta + i + 16));
            // Lanes past the width are zero: the pad element of an odd width is 0 as ember_bf16_convert writes it.
            _mm512_mask_storeu_epi16(o + i, tail32(kp2 - i),
                                     (__m512i)_mm512_cvtne2ps_pbh(_mm512_maskz_mov_ps(v1, y1), _mm512_maskz_mov_ps(v0, y0)));
        }
    }
}

// 2^x in 16 lanes for softmax weights that are rounded to bf16 next: x = n + f with n an
// integer and f in [−0.5, 0.5], 2^f by its degree-5 Taylor polynomial (relative error below 3e-6,
// far under bf16's 2^-9), 2^n by vscalefps. Below −126 (−∞ included) gives 0.
EMBER_BF16_TARGET
static inline __m512 exp2_16(__m512 x) {
    const __m512 clamped = _mm512_max_ps(x, _mm512_set1_ps(-127.0f));
    const __m512 n = _mm512_roundscale_ps(clamped, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m512 f = _mm512_sub_ps(clamped, n);
    __m512 p = _mm512_set1_ps(1.3333558146e-3f);
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(9.6181291076e-3f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(5.5504108665e-2f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(2.4022650696e-1f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(6.9314718056e-1f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f));
    const __mmask16 underflow = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-126.0f), _CMP_LT_OQ);
    return _mm512_maskz_scalef_ps((__mmask16)~underflow, p, n);
}

EMBER_BF16_TARGET
void ember_bf16_softmax_convert(const float *s, int rows, int width, int lds, float scale, uint16_t *out, float *sums) {
    const int kp2 = pairs(width) * 2;
    const __m512 minusInfinity = _mm512_set1_ps(-INFINITY);
    for (int r = 0; r < rows; r++) {
        const float *row = s + (size_t)r * lds;
        uint16_t *o = out + (size_t)r * kp2;
        __m512 best0 = minusInfinity, best1 = minusInfinity;
        int i = 0;
        for (; i + 32 <= width; i += 32) {
            best0 = _mm512_max_ps(best0, _mm512_loadu_ps(row + i));
            best1 = _mm512_max_ps(best1, _mm512_loadu_ps(row + i + 16));
        }
        for (; i < width; i += 16) best0 = _mm512_max_ps(best0, _mm512_mask_loadu_ps(minusInfinity, tail16(width - i), row + i));
        const float peak = _mm512_reduce_max_ps(_mm512_max_ps(best0, best1));
        // exp(scale·x − scale·peak) = 2^(log2(e)·scale·x − log2(e)·scale·peak); a row of −∞ only
        // would give NaN in fp32 softmax too.
        const float log2e = 1.44269504088896341f;
        const __m512 vs = _mm512_set1_ps(scale * log2e), shift = _mm512_set1_ps(-scale * log2e * peak);
        __m512 total = _mm512_setzero_ps();
        for (i = 0; i < kp2; i += 32) {
            const __m512 e0 = exp2_16(_mm512_fmadd_ps(_mm512_mask_loadu_ps(minusInfinity, tail16(width - i), row + i), vs, shift));
            const __m512 e1 = exp2_16(_mm512_fmadd_ps(_mm512_mask_loadu_ps(minusInfinity, tail16(width - i - 16), row + i + 16), vs, shift));
            total = _mm512_add_ps(total, _mm512_add_ps(e0, e1));
            const __m512i packedPair = (__m512i)_mm512_cvtne2ps_pbh(e1, e0);
            _mm512_mask_storeu_epi16(o + i, tail32(kp2 - i), packedPair);
        }
        sums[r] = _mm512_reduce_add_ps(total);
    }
}
