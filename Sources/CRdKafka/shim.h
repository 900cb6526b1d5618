// Thin C layer for librdkafka: only what Swift cannot import directly.
#ifndef EMBER_CRDKAFKA_SHIM_H
#define EMBER_CRDKAFKA_SHIM_H

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

// rd_kafka_producev is variadic; this fixed-arity form copies payload and key
// (RD_KAFKA_MSG_F_COPY) and hands ownership of `headers` to librdkafka on success.
static inline rd_kafka_resp_err_t ember_rd_kafka_produce(
    rd_kafka_t *rk, const char *topic, int32_t partition,
    const void *payload, size_t payload_len,
    const void *key, size_t key_len,
    rd_kafka_headers_t *headers, int64_t timestamp_ms, void *opaque) {
    return rd_kafka_producev(
        rk,
        RD_KAFKA_V_TOPIC(topic),
        RD_KAFKA_V_PARTITION(partition),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_VALUE((void *)payload, payload_len),
        RD_KAFKA_V_KEY(key, key_len),
        RD_KAFKA_V_HEADERS(headers),
        RD_KAFKA_V_TIMESTAMP(timestamp_ms),
        RD_KAFKA_V_OPAQUE(opaque),
        RD_KAFKA_V_END);
}

// Offset sentinels are #defines of casts; expose them as int64_t.
static inline int64_t ember_rd_kafka_offset_beginning(void) { return RD_KAFKA_OFFSET_BEGINNING; }
static inline int64_t ember_rd_kafka_offset_end(void) { return RD_KAFKA_OFFSET_END; }
static inline int64_t ember_rd_kafka_offset_stored(void) { return RD_KAFKA_OFFSET_STORED; }
static inline int64_t ember_rd_kafka_offset_invalid(void) { return RD_KAFKA_OFFSET_INVALID; }
static inline int32_t ember_rd_kafka_partition_ua(void) { return RD_KAFKA_PARTITION_UA; }

#endif
