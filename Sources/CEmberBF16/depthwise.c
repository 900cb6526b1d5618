// See include/ember_depthwise.h. One plane (channel c, image n) at a time, 16 outputs of a
// row per zmm (8 per ymm when the output is at most 8 wide, so 7×7 planes do not waste
// half of every operation). The k×k weights stay in registers; masked loads read only the
// input that exists, so the zero padding is never materialized. Stride 2 loads 48 inputs
// per row once and picks each tap's 16 even-spaced values with one two-source permute.
// Stride 1 computes two output rows per pass: each input row loaded serves both.
// ReLU6 is min(6, max(0, x)) with the constant first: x86 min/max return their second operand
// when either is NaN, so a NaN stays NaN (the engine rejects non-finite embeddings).
#include "ember_depthwise.h"

#include <immintrin.h>
#include <stdint.h>

#define DW_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma")))
#define DW_INLINE static inline __attribute__((always_inline))
enum { MAX_KERNEL = 7 };

// Detected once when the library loads, before any thread can ask.
static int avx512;
__attribute__((constructor)) static void detect_avx512(void) {
    __builtin_cpu_init();
    avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl")
        && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("fma");
}

int ember_depthwise_available(void) { return avx512; }

// Lanes i (0 ≤ i < lanes) whose input column first + i lies in [0, width).
DW_INLINE unsigned lane_mask(int first, int width, int lanes) {
    int lo = -first, hi = width - first;
    if (lo < 0) lo = 0;
    if (hi > lanes) hi = lanes;
    if (hi <= lo) return 0;
    return (unsigned)(((1u << hi) - 1) & ~((1u << lo) - 1));
}

// Address arithmetic for a column that may lie left of the row (its lanes are masked off
// and never read); integer math keeps it defined.
DW_INLINE const float *at(const float *row, int column) { return (const float *)((uintptr_t)row + (intptr_t)column * 4); }

// ---- stride 1, 16 lanes, two output rows per pass ---------------------------------------

DW_TARGET DW_INLINE void plane_s1_zmm(const float *src, int height, int width, const float *w, float b, int K,
                                     int pad_top, int pad_left, int oh, int ow, int relu6, float *dst) {
    __m512 wv[MAX_KERNEL * MAX_KERNEL];
    for (int t = 0; t < K * K; t++) wv[t] = _mm512_set1_ps(w[t]);
    const __m512 bias = _mm512_set1_ps(b), zero = _mm512_setzero_ps(), six = _mm512_set1_ps(6);
    for (int ox = 0; ox < ow; ox += 16) {
        __mmask16 masks[MAX_KERNEL];
        for (int kx = 0; kx < K; kx++) masks[kx] = (__mmask16)lane_mask(ox - pad_left + kx, width, 16);
        const __mmask16 store = (__mmask16)lane_mask(ox, ow, 16);
        // Two output rows a pass; with an odd height the last pass computes one row past the
        // end (its input rows are bounds-checked) and does not store it.
        for (int oy = 0; oy < oh; oy += 2) {
            // Input rows oy − pad_top + r, r in 0...K, feed output row oy (taps r) and oy + 1 (taps r − 1).
            __m512 a0 = bias, a1 = bias;
            for (int r = 0; r <= K; r++) {
                const int iy = oy - pad_top + r;
                if (iy < 0 || iy >= height) continue;
                const float *row = src + (intptr_t)iy * width;
                for (int kx = 0; kx < K; kx++) {
                    const __m512 v = _mm512_maskz_loadu_ps(masks[kx], at(row, ox - pad_left + kx));
                    if (r < K) a0 = _mm512_fmadd_ps(wv[r * K + kx], v, a0);
                    if (r >= 1) a1 = _mm512_fmadd_ps(wv[(r - 1) * K + kx], v, a1);
                }
            }
            if (relu6) {
                a0 = _mm512_min_ps(six, _mm512_max_ps(zero, a0));
                a1 = _mm512_min_ps(six, _mm512_max_ps(zero, a1));
            }
            _mm512_mask_storeu_ps(dst + (intptr_t)oy * ow + ox, store, a0);
            if (oy + 1 < oh) _mm512_mask_storeu_ps(dst + (intptr_t)(oy + 1) * ow + ox, store, a1);
        }
    }
}

// ---- stride 1, 8 lanes (outputs at most 8 wide) ----------------------------------------

DW_TARGET DW_INLINE void plane_s1_ymm(const float *src, int height, int width, const float *w, float b, int K,
                                     int pad_top, int pad_left, int oh, int ow, int relu6, float *dst) {
    __m256 wv[MAX_KERNEL * MAX_KERNEL];
    for (int t = 0; t < K * K; t++) wv[t] = _mm256_set1_ps(w[t]);
    const __m256 bias = _mm256_set1_ps(b), zero = _mm256_setzero_ps(), six = _mm256_set1_ps(6);
    __mmask8 masks[MAX_KERNEL];
    for (int kx = 0; kx < K; kx++) masks[kx] = (__mmask8)lane_mask(-pad_left + kx, width, 8);
    const __mmask8 store = (__mmask8)lane_mask(0, ow, 8);
    for (int oy = 0; oy < oh; oy++) {
        __m256 a0 = bias;
        for (int ky = 0; ky < K; ky++) {
            const int iy = oy - pad_top + ky;
            if (iy < 0 || iy >= height) continue;
            const float *row = src + (intptr_t)iy * width;
            for (int kx = 0; kx < K; kx++)
                a0 = _mm256_fmadd_ps(wv[ky * K + kx], _mm256_maskz_loadu_ps(masks[kx], at(row, -pad_left + kx)), a0);
        }
        if (relu6) a0 = _mm256_min_ps(six, _mm256_max_ps(zero, a0));
        _mm256_mask_storeu_ps(dst + (intptr_t)oy * ow, store, a0);
    }
}

// ---- stride 2, 16 lanes -----------------------------------------------------------------

DW_TARGET DW_INLINE void plane_s2_zmm(const float *src, int height, int width, const float *w, float b, int K,
                                     int pad_top, int pad_left, int oh, int ow, int relu6, float *dst) {
    __m512 wv[MAX_KERNEL * MAX_KERNEL];
    for (int t = 0; t < K * K; t++) wv[t] = _mm512_set1_ps(w[t]);
    // Tap kx of output lane i reads input b + kx + 2i, b = 2·ox − pad_left: element kx + 2i of
    // the 48 loaded (L0 | L1 | L2). Taps 0 and 1 pick from L0 | L1; tap kx ≥ 2 shifts the
    // even (or odd) picks by kx / 2 lanes and takes the last lanes from L2.
    __m512i index[MAX_KERNEL];
    for (int kx = 0; kx < K; kx++) {
        int32_t lanes[16];
        for (int i = 0; i < 16; i++) {
            const int e = kx + 2 * i;
            lanes[i] = kx < 2 ? e : (e < 32 ? kx / 2 + i : 16 + (e - 32));
        }
        index[kx] = _mm512_loadu_si512(lanes);
    }
    const __m512 bias = _mm512_set1_ps(b), zero = _mm512_setzero_ps(), six = _mm512_set1_ps(6);
    for (int ox = 0; ox < ow; ox += 16) {
        const int first = 2 * ox - pad_left;
        const __mmask16 m0 = (__mmask16)lane_mask(first, width, 16), m1 = (__mmask16)lane_mask(first + 16, width, 16),
                        m2 = (__mmask16)lane_mask(first + 32, width, 16);
        const __mmask16 store = (__mmask16)lane_mask(ox, ow, 16);
        for (int oy = 0; oy < oh; oy++) {
            __m512 a0 = bias;
            for (int ky = 0; ky < K; ky++) {
                const int iy = 2 * oy - pad_top + ky;
                if (iy < 0 || iy >= height) continue;
                const float *row = src + (intptr_t)iy * width;
                const __m512 l0 = _mm512_maskz_loadu_ps(m0, at(row, first)), l1 = _mm512_maskz_loadu_ps(m1, at(row, first + 16));
                const __m512 l2 = K > 2 ? _mm512_maskz_loadu_ps(m2, at(row, first + 32)) : zero;
                const __m512 even = _mm512_permutex2var_ps(l0, index[0], l1);
                const __m512 odd = K > 1 ? _mm512_permutex2var_ps(l0, index[1], l1) : zero;
                for (int kx = 0; kx < K; kx++) {
                    const __m512 v = kx == 0 ? even : kx == 1 ? odd : _mm512_permutex2var_ps(kx % 2 ? odd : even, index[kx], l2);
                    a0 = _mm512_fmadd_ps(wv[ky * K + kx], v, a0);
                }
            }
            if (relu6) a0 = _mm512_min_ps(six, _mm512_max_ps(zero, a0));
            _mm512_mask_storeu_ps(dst + (intptr_t)oy * ow + ox, store, a0);
        }
    }
}

// One channel's planes with the kernel size as a compile-time constant, so the tap loops unroll.
DW_TARGET DW_INLINE void channel(const float *x, int images, int height, int width, const float *w, float b, int K, int stride,
                                 int pad_top, int pad_left, int oh, int ow, int relu6, float *out) {
    for (int n = 0; n < images; n++) {
        const float *src = x + (intptr_t)n * height * width;
        float *dst = out + (intptr_t)n * oh * ow;
        if (stride == 2) plane_s2_zmm(src, height, width, w, b, K, pad_top, pad_left, oh, ow, relu6, dst);
        else if (ow <= 8) plane_s1_ymm(src, height, width, w, b, K, pad_top, pad_left, oh, ow, relu6, dst);
        else plane_s1_zmm(src, height, width, w, b, K, pad_top, pad_left, oh, ow, relu6, dst);
    }
}

// `channel` with the kernel size dispatched to its unrolled instance.
DW_TARGET static void channel_any(const float *x, int images, int height, int width, const float *w, float b, int kernel, int stride,
                                  int pad_top, int pad_left, int oh, int ow, int relu6, float *out) {
    switch (kernel) {
    case 1: channel(x, images, height, width, w, b, 1, stride, pad_top, pad_left, oh, ow, relu6, out); break;
    case 3: channel(x, images, height, width, w, b, 3, stride, pad_top, pad_left, oh, ow, relu6, out); break;
    case 5: channel(x, images, height, width, w, b, 5, stride, pad_top, pad_left, oh, ow, relu6, out); break;
    default: channel(x, images, height, width, w, b, 7, stride, pad_top, pad_left, oh, ow, relu6, out); break;
    }
}

void ember_depthwise_conv(const float *x, int channels, int images, int height, int width,
                          const float *weight, const float *bias, int kernel, int stride,
                          int pad_top, int pad_left, int out_height, int out_width, int relu6, float *out) {
    const ptrdiff_t in_plane = (ptrdiff_t)images * height * width, out_plane = (ptrdiff_t)images * out_height * out_width;
    for (int c = 0; c < channels; c++)
        channel_any(x + c * in_plane, images, height, width, weight + (ptrdiff_t)c * kernel * kernel, bias ? bias[c] : 0, kernel, stride,
                    pad_top, pad_left, out_height, out_width, relu6, out + c * out_plane);
}

void ember_depthwise_conv_strided(const float *x, ptrdiff_t x_channel_stride, int channels, int height, int width,
                                  const float *weight, const float *bias, int kernel, int stride, int pad_top, int pad_left,
                                  int out_height, int out_width, int relu6, float *out, ptrdiff_t out_channel_stride) {
    for (int c = 0; c < channels; c++)
        channel_any(x + c * x_channel_stride, 1, height, width, weight + (ptrdiff_t)c * kernel * kernel, bias ? bias[c] : 0, kernel, stride,
                    pad_top, pad_left, out_height, out_width, relu6, out + c * out_channel_stride);
}
