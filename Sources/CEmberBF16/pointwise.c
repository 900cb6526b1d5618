// See include/ember_pointwise.h. Register tile: 8 output channels × 48 columns (24 zmm
// accumulators); per input channel, three loads of x and eight broadcast weights feed 24
// fused multiply-adds. x's 48-column strip (Cin × 48 floats) stays in L1/L2 while every
// block of 8 output channels passes over it; the output is written once, finished.
// ReLU6 is min(6, max(0, x)) with the constant first: x86 min/max return their second operand
// when either is NaN, so a NaN stays NaN (the engine rejects non-finite embeddings).
#include "ember_pointwise.h"
#include "lanes.h"

#include <immintrin.h>
#include <stdint.h>

#define PW_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma")))
#define PW_INLINE static inline __attribute__((always_inline))
#ifndef CHUNK_TILES
#define CHUNK_TILES 8
#endif
enum { TILE_ROWS = 8, TILE_VECTORS = 3, TILE_COLUMNS = 16 * TILE_VECTORS };

// ROWS output channels × 16·NV columns starting at x; masks cut the last strip.
PW_TARGET PW_INLINE void tile(const float *x, int cin, ptrdiff_t ldx, const float *w, const float *bias, int relu6,
                              float *out, ptrdiff_t ldo, __mmask16 m0, __mmask16 m1, __mmask16 m2, const int ROWS, const int NV) {
    __m512 acc[TILE_ROWS][TILE_VECTORS];
    for (int r = 0; r < ROWS; r++) {
        const __m512 b = _mm512_set1_ps(bias ? bias[r] : 0);
        for (int v = 0; v < NV; v++) acc[r][v] = b;
    }
    for (int k = 0; k < cin; k++) {
        const float *row = x + (ptrdiff_t)k * ldx;
        const __m512 x0 = _mm512_maskz_loadu_ps(m0, row);
        const __m512 x1 = NV > 1 ? _mm512_maskz_loadu_ps(m1, row + 16) : x0;
        const __m512 x2 = NV > 2 ? _mm512_maskz_loadu_ps(m2, row + 32) : x0;
        for (int r = 0; r < ROWS; r++) {
            const __m512 wr = _mm512_set1_ps(w[(ptrdiff_t)r * cin + k]);
            acc[r][0] = _mm512_fmadd_ps(wr, x0, acc[r][0]);
            if (NV > 1) acc[r][1] = _mm512_fmadd_ps(wr, x1, acc[r][1]);
            if (NV > 2) acc[r][2] = _mm512_fmadd_ps(wr, x2, acc[r][2]);
        }
    }
    const __m512 zero = _mm512_setzero_ps(), six = _mm512_set1_ps(6);
    for (int r = 0; r < ROWS; r++) {
        float *o = out + (ptrdiff_t)r * ldo;
        for (int v = 0; v < NV; v++)
            if (relu6) acc[r][v] = _mm512_min_ps(six, _mm512_max_ps(zero, acc[r][v]));
        _mm512_mask_storeu_ps(o, m0, acc[r][0]);
        if (NV > 1) _mm512_mask_storeu_ps(o + 16, m1, acc[r][1]);
        if (NV > 2) _mm512_mask_storeu_ps(o + 32, m2, acc[r][2]);
    }
}

PW_TARGET
void ember_pointwise_conv(const float *x, int in_channels, int columns, ptrdiff_t ldx, const float *weight, const float *bias,
                          int out_channels, int relu6, float *out, ptrdiff_t ldo) {
    // Chunks of CHUNK_TILES strips: each block of 8 output channels writes (and the first
    // reads) long runs of every row, which the prefetchers follow; the chunk of x stays in L2.
    for (int chunk = 0; chunk < columns; chunk += CHUNK_TILES * TILE_COLUMNS) {
        const int end = chunk + CHUNK_TILES * TILE_COLUMNS < columns ? chunk + CHUNK_TILES * TILE_COLUMNS : columns;
        int o = 0;
        for (; o < out_channels; o += TILE_ROWS) {
            const int rows = out_channels - o < TILE_ROWS ? out_channels - o : TILE_ROWS;
            for (int c = chunk; c < end; c += TILE_COLUMNS) {
                const int left = end - c;
                const __mmask16 m0 = tail16(left), m1 = tail16(left - 16), m2 = tail16(left - 32);
                const float *w = weight + (ptrdiff_t)o * in_channels, *b = bias ? bias + o : NULL;
                float *dst = out + (ptrdiff_t)o * ldo + c;
                const int vectors = left > 32 ? 3 : left > 16 ? 2 : 1;
                if (rows == TILE_ROWS) {
                    if (vectors == 3) tile(x + c, in_channels, ldx, w, b, relu6, dst, ldo, m0, m1, m2, TILE_ROWS, 3);
                    else if (vectors == 2) tile(x + c, in_channels, ldx, w, b, relu6, dst, ldo, m0, m1, m2, TILE_ROWS, 2);
                    else tile(x + c, in_channels, ldx, w, b, relu6, dst, ldo, m0, m1, m2, TILE_ROWS, 1);
                } else {  // the last channels one at a time (same per-output order as the full tile)
                    for (int r = 0; r < rows; r++)
                        tile(x + c, in_channels, ldx, w + (ptrdiff_t)r * in_channels, b ? b + r : NULL, relu6, dst + (ptrdiff_t)r * ldo,
                             ldo, m0, m1, m2, 1, 3);
                }
            }
        }
    }
}
