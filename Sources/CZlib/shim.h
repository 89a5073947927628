#ifndef DATAJOIN_CZLIB_SHIM_H
#define DATAJOIN_CZLIB_SHIM_H
#include <zlib.h>

/// deflateInit2 and inflateInit2 are macros that pass ZLIB_VERSION and sizeof(z_stream).
static inline int datajoin_deflate_init_gzip(z_streamp strm, int level) {
    return deflateInit2(strm, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
}
/// windowBits 15 + 16 accepts gzip only: a bundle is always a gzip member stream.
static inline int datajoin_inflate_init_gzip(z_streamp strm) {
    return inflateInit2(strm, 15 + 16);
}
#endif
