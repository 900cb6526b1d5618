// See include/CEmberBF16.h. The kernel: for each panel of 32 output columns, blocks of 8
// rows keep 8 × 2 zmm accumulators; per pair of k, two 64-byte loads of the packed panel
// and one 32-bit broadcast of each row's pair feed 16 `vdpbf16ps`. The panel (32 × k bf16)
// stays in L1/L2 while the row blocks stream past it.
#include "CEmberBF16.h"

#include <immintrin.h>
#include <string.h>

#define EMBER_BF16_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
enum { PANEL = 32, ROWS = 8 };

int ember_bf16_available(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl")
        && __builtin_cpu_supports("avx512bf16");
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

void ember_bf16_pack_strided(const float *w, int n, int k, ptrdiff_t rowStride, ptrdiff_t colStride, uint16_t *packed) {
    const int kp = pairs(k);
    for (int p = 0; p < n; p += PANEL) {
        uint16_t *panel = packed + (size_t)(p / PANEL) * kp * PANEL * 2;
        for (int q = 0; q < kp; q++)
            for (int j = 0; j < PANEL; j++)
                for (int e = 0; e < 2; e++) {
                    const int row = p + j, col = 2 * q + e;
                    panel[((size_t)q * PANEL + j) * 2 + e] = (row < n && col < k) ? to_bf16(w[row * rowStride + col * colStride]) : 0;
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
void ember_bf16_gemm(const uint16_t *xb, int m, int k, const uint16_t *packed, int n, float *c, int ldc) {
    const int kp = pairs(k);
    for (int p = 0; p < n; p += PANEL) {
        const uint16_t *panel = packed + (size_t)(p / PANEL) * kp * PANEL * 2;
        const int columns = n - p < PANEL ? n - p : PANEL;
        for (int r0 = 0; r0 < m; r0 += ROWS) {
            const int rows = m - r0 < ROWS ? m - r0 : ROWS;
            const int32_t *a[ROWS];
            for (int r = 0; r < ROWS; r++) a[r] = (const int32_t *)(xb + (size_t)(r0 + (r < rows ? r : 0)) * kp * 2);
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
            const __mmask16 low = (__mmask16)(columns >= 16 ? 0xffff : (1u << columns) - 1);
            const __mmask16 high = (__mmask16)(columns <= 16 ? 0 : columns >= 32 ? 0xffff : (1u << (columns - 16)) - 1);
            for (int r = 0; r < rows; r++) {
                float *out = c + (size_t)(r0 + r) * ldc + p;
                _mm512_mask_storeu_ps(out, low, acc[r][0]);
                _mm512_mask_storeu_ps(out + 16, high, acc[r][1]);
            }
        }
    }
}
