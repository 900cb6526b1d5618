// Thin C layer for FFmpeg: only what Swift cannot import directly (function-like
// macros and sentinels defined as expressions).
#ifndef EMBER_CFFMPEG_SHIM_H
#define EMBER_CFFMPEG_SHIM_H

#include <stdio.h>
#include <libavformat/avformat.h>
#include <libavcodec/avcodec.h>
#include <libavutil/avutil.h>
#include <libavutil/channel_layout.h>
#include <libavutil/error.h>
#include <libavutil/imgutils.h>
#include <libavutil/opt.h>
#include <libavutil/tx.h>
#include <libswscale/swscale.h>
#include <libswresample/swresample.h>

static inline int ember_averror_eof(void) { return AVERROR_EOF; }
static inline int ember_averror_eagain(void) { return AVERROR(EAGAIN); }
static inline int ember_averror_exit(void) { return AVERROR_EXIT; }
static inline int ember_averror_invaliddata(void) { return AVERROR_INVALIDDATA; }
static inline int64_t ember_av_nopts_value(void) { return AV_NOPTS_VALUE; }
static inline int ember_av_time_base(void) { return AV_TIME_BASE; }

// av_err2str is a macro over a compound literal; write into the caller's buffer.
static inline void ember_av_strerror(int errnum, char *buf, size_t size) {
    if (av_strerror(errnum, buf, size) < 0) snprintf(buf, size, "FFmpeg error %d", errnum);
}

static inline void ember_av_channel_layout_mono(AVChannelLayout *layout) {
    av_channel_layout_default(layout, 1);
}

#endif
