// 1×1 convolution in AVX-512 F for EmberModel's vision tower (its fp32 1×1 convolutions and
// the stem's im2col product), fp32 throughout, bias and ReLU6 applied while the tile is in
// registers: OpenBLAS's sgemm zeroes the output first and needs a separate bias pass, and on
// these shapes (few input channels, or few columns late in the network) it is no faster.
// Callers check `ember_depthwise_available()` first (same instruction set); the function
// must not run otherwise.
//
// Shapes: x (Cin × columns, row stride ldx), weight (Cout × Cin) as PyTorch stores a 1×1
// convolution, bias (Cout) or NULL, out (Cout × columns, row stride ldo).
#ifndef EMBER_POINTWISE_H
#define EMBER_POINTWISE_H

#include <stddef.h>

/// out = weight · x + bias, clamped to [0, 6] when `relu6` is non-zero. Each output sums its
/// bias first, then the Cin products in order, one fused multiply-add each, whatever the
/// column range: column blocks split across threads (or frames batched) equal one call.
void ember_pointwise_conv(const float *x, int in_channels, int columns, ptrdiff_t ldx, const float *weight, const float *bias,
                          int out_channels, int relu6, float *out, ptrdiff_t ldo);

#endif
