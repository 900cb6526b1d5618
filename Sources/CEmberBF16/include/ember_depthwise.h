// Depthwise convolution (groups = channels) in AVX-512 F for EmberModel's vision tower, fp32
// throughout (every precision mode runs it). Callers check `ember_depthwise_available()`
// first; `ember_depthwise_conv` must not run otherwise (EmberModel keeps a Swift twin).
//
// Shapes: x (C, N, H, W), weight (C, 1, k, k), bias (C) or NULL, out (C, N, Ho, Wo); zero
// padding `pad_top`/`pad_left` before the image (and whatever Ho, Wo imply after it).
#ifndef EMBER_DEPTHWISE_H
#define EMBER_DEPTHWISE_H

#include <stddef.h>

/// 1 when the CPU executes AVX-512 F, BW, VL and DQ (with FMA), else 0.
int ember_depthwise_available(void);

/// out = bias + Σ w·x over the k×k taps (odd k ≤ 7, stride 1 or 2), clamped to [0, 6] when
/// `relu6` is non-zero. Each output sums bias first, then the taps in row order (ky, then kx),
/// one fused multiply-add each, skipping taps that fall in the padding; the order does not
/// depend on the call's channel range, so channel blocks split across threads equal one call.
/// Borders are handled with masked loads: no padded copy of the input.
void ember_depthwise_conv(const float *x, int channels, int images, int height, int width,
                          const float *weight, const float *bias, int kernel, int stride,
                          int pad_top, int pad_left, int out_height, int out_width, int relu6, float *out);

/// `ember_depthwise_conv` of one image per channel whose planes lie `x_channel_stride` and
/// `out_channel_stride` floats apart (a band of rows cut from a larger tensor).
void ember_depthwise_conv_strided(const float *x, ptrdiff_t x_channel_stride, int channels, int height, int width,
                                  const float *weight, const float *bias, int kernel, int stride, int pad_top, int pad_left,
                                  int out_height, int out_width, int relu6, float *out, ptrdiff_t out_channel_stride);

#endif
