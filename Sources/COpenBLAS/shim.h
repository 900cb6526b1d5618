// OpenBLAS's CBLAS interface (Debian: /usr/include/x86_64-linux-gnu/openblas-pthread).
#ifndef EMBER_COPENBLAS_SHIM_H
#define EMBER_COPENBLAS_SHIM_H

#include <cblas.h>

#endif
