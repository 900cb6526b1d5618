// bf16 matrix products for EmberModel's optional bf16 mode: AVX512-BF16 `vdpbf16ps`
// (two bf16 products summed into each fp32 lane), fp32 accumulation. Debian's OpenBLAS
// 0.3.21 has no sbgemm, so this is Ember's own kernel. Callers check
// `ember_bf16_available()` first; the kernel functions must not run otherwise.
//
// Shapes: x (m × k) fp32 activations, row stride ldx; w (n × k) fp32 weights as PyTorch
// stores a linear layer; c (m × n) = x · wᵀ, row stride ldc. k is padded to an even kp.
#ifndef CEMBER_BF16_H
#define CEMBER_BF16_H

#include <stddef.h>
#include <stdint.h>

/// 1 when the CPU executes AVX512-BF16 (and AVX-512 F/BW/VL), else 0.
int ember_bf16_available(void);

/// bf16 elements of `w` (n × k) packed by `ember_bf16_pack`: panels of 32 rows of w, pairs of k.
size_t ember_bf16_packed_count(int n, int k);

/// Rounds w (n × k) to bf16 (nearest even) into `packed` (ember_bf16_packed_count elements).
void ember_bf16_pack(const float *w, int n, int k, uint16_t *packed);

/// `ember_bf16_pack` of a strided matrix: element (row, col) of w is w[row·rowStride + col·colStride]
/// (so a transposed view packs without a copy).
void ember_bf16_pack_strided(const float *w, int n, int k, ptrdiff_t rowStride, ptrdiff_t colStride, uint16_t *packed);

/// `ember_bf16_pack` of w (n × k) already in bf16, rows of ldw elements (as a product's
/// to-bf16 store writes them): the same panels as packing the fp32 values they were rounded
/// from. Element (row, col) is w[row · ldw + col].
void ember_bf16_pack_bf16_rows(const uint16_t *w, int n, int k, size_t ldw, uint16_t *packed);

/// `ember_bf16_pack` of the transpose of bf16 rows: element (row, col) of the packed matrix
/// (n × k) is w[col · ldw + row], so k rows of w become the k pairs (attention's values).
void ember_bf16_pack_bf16_columns(const uint16_t *w, int n, int k, size_t ldw, uint16_t *packed);

/// bf16 elements of m rows of x converted by `ember_bf16_convert` (m × kp, kp = k rounded up to even).
size_t ember_bf16_rows_count(int m, int k);

/// Rounds x (m × k, row stride ldx) to bf16 rows of kp elements (zero-padded).
void ember_bf16_convert(const float *x, int m, int k, int ldx, uint16_t *out);

/// The transpose of x (channels × frames, row stride ldx) rounded to bf16: out row t (at
/// out + t · ldo) holds x[0..<channels][t]. Time-major rows for a 1-D convolution.
void ember_bf16_convert_transposed(const float *x, int channels, int frames, int ldx, uint16_t *out, int ldo);

/// c (m × n, row stride ldc) = xb · wᵀ from converted rows xb and packed w; fp32 sums, each
/// element over k in the same order whatever m is (so row blocks equal the whole product).
void ember_bf16_gemm(const uint16_t *xb, int m, int k, const uint16_t *packed, int n, float *c, int ldc);

/// Flags of `ember_bf16_gemm_epilogue`: an activation applied after the bias (none, GELU or
/// ReLU6), or-ed with EMBER_BF16_ROW_BIAS to index the bias by output row (a convolution's
/// channel) instead of column, and EMBER_BF16_ACCUMULATE to add the result to what c holds
/// (a residual connection) instead of overwriting it. EMBER_BF16_ROW_SCALE (used by
/// `ember_bf16_gemm_row_blocks`) multiplies each row's sums by bias[row] instead of adding.
enum { EMBER_BF16_NONE = 0, EMBER_BF16_GELU = 1, EMBER_BF16_RELU6 = 2, EMBER_BF16_ROW_BIAS = 16, EMBER_BF16_ACCUMULATE = 32,
       EMBER_BF16_ROW_SCALE = 64 };

/// `ember_bf16_gemm` with row i of the input at xb + i · lda and, when rowScale is not NULL,
/// each row of c multiplied by rowScale[row] in the store (softmax's 1 / sum).
void ember_bf16_gemm_row_blocks(const uint16_t *xb, size_t lda, int m, int k, const uint16_t *packed, int n, float *c, int ldc,
                                const float *rowScale);

/// `ember_bf16_gemm`, then per element: + bias[column] (or bias[row] with EMBER_BF16_ROW_BIAS;
/// none when bias is NULL), then the activation (EMBER_BF16_GELU: the exact-form GELU with
/// a rational erf, absolute error below 1e-6; EMBER_BF16_RELU6: clamp to [0, 6]), then
/// (EMBER_BF16_ACCUMULATE) + c, all applied while the tile is still in registers.
void ember_bf16_gemm_epilogue(const uint16_t *xb, int m, int k, const uint16_t *packed, int n, float *c, int ldc,
                              const float *bias, int flags);

/// `ember_bf16_gemm_epilogue` (bias and activation; EMBER_BF16_ACCUMULATE is ignored) storing
/// c rounded to bf16: rows of ldc elements, as `ember_bf16_convert` lays out the input of the
/// next layer, so a layer's output feeds the next product without an fp32 round trip.
/// Columns [n, ldc) are not written.
void ember_bf16_gemm_to_bf16(const uint16_t *xb, int m, int k, const uint16_t *packed, int n, uint16_t *c, int ldc,
                             const float *bias, int flags);

/// `ember_bf16_gemm_epilogue` and `ember_bf16_gemm_to_bf16` with row i of the input at
/// xb + i · lda (lda even, rows may overlap) instead of i · kp: a 1-D convolution over
/// time-major bf16 rows, whose window at output t is (kernel · channels) consecutive
/// elements starting at t · stride · channels, runs on its input in place (no im2col).
void ember_bf16_gemm_rows_epilogue(const uint16_t *xb, size_t lda, int m, int k, const uint16_t *packed, int n, float *c, int ldc,
                                   const float *bias, int flags);
void ember_bf16_gemm_rows_to_bf16(const uint16_t *xb, size_t lda, int m, int k, const uint16_t *packed, int n, uint16_t *c, int ldc,
                                  const float *bias, int flags);

/// Layer normalization of rows of x (m × width, row stride ldx), (x − mean) / sqrt(var + eps)
/// · gamma + beta in fp32 (two passes, as EmberModel's fp32 layerNorm), rounded to bf16 rows
/// laid out as `ember_bf16_convert` writes them: the input of the linear layer that follows.
void ember_bf16_layer_norm(const float *x, int m, int width, int ldx, const float *gamma, const float *beta, float eps, uint16_t *out);

/// Softmax rows for a bf16 product, unnormalized: for each row r of s (rows × width, row
/// stride lds), e = exp(scale·x − scale·max(x)) rounded to bf16 into `out` (rows of
/// `ember_bf16_rows_count(1, width)` elements, zero-padded, as `ember_bf16_convert` lays
/// them out), and sums[r] = Σ e in fp32. The caller divides the product by the sum.
void ember_bf16_softmax_convert(const float *s, int rows, int width, int lds, float scale, uint16_t *out, float *sums);

#endif
