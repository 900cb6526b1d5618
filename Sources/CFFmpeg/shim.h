// Thin C layer for FFmpeg: only what Swift cannot import directly (function-like
// macros and sentinels defined as expressions).
#ifndef EMBER_CFFMPEG_SHIM_H
#define EMBER_CFFMPEG_SHIM_H

#include <stdio.h>
#include <libavformat/avformat.h>
#include <libavcodec/avcodec.h>
#include <libavutil/avutil.h>
#include <libavutil/channel_layout.h>
#include <libavutil/display.h>
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

// Error tags defined with FFERRTAG (macros Swift cannot import).
static inline int ember_averror_http_bad_request(void) { return AVERROR_HTTP_BAD_REQUEST; }
static inline int ember_averror_http_unauthorized(void) { return AVERROR_HTTP_UNAUTHORIZED; }
static inline int ember_averror_http_forbidden(void) { return AVERROR_HTTP_FORBIDDEN; }
static inline int ember_averror_http_not_found(void) { return AVERROR_HTTP_NOT_FOUND; }
static inline int ember_averror_http_other_4xx(void) { return AVERROR_HTTP_OTHER_4XX; }
static inline int ember_averror_http_server_error(void) { return AVERROR_HTTP_SERVER_ERROR; }
static inline int ember_averror_protocol_not_found(void) { return AVERROR_PROTOCOL_NOT_FOUND; }
static inline int ember_averror_decoder_not_found(void) { return AVERROR_DECODER_NOT_FOUND; }
static inline int ember_averror_input_changed(void) { return AVERROR_INPUT_CHANGED; }
static inline int ember_averror_output_changed(void) { return AVERROR_OUTPUT_CHANGED; }
static inline int ember_averror_errno(int code) { return AVERROR(code); }

#endif
