// Lane masks shared by the C kernels: the first `left` lanes of a 16-float or 32-halfword
// vector (none when left ≤ 0, all when left reaches the width), for tails and partial tiles.
#ifndef EMBER_LANES_H
#define EMBER_LANES_H

#include <immintrin.h>

static inline __mmask16 tail16(int left) { return (__mmask16)(left >= 16 ? 0xffff : left <= 0 ? 0 : (1u << left) - 1); }

static inline __mmask32 tail32(int left) { return (__mmask32)(left >= 32 ? 0xffffffffu : left <= 0 ? 0 : (1u << left) - 1); }

#endif
