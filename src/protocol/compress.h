/*
 * Compression codecs of record batches (attributes & 7): gzip, snappy, lz4 and zstd, in the
 * forms Kafka clients write and read, plus the check of the records inside a compressed batch.
 * Decompression is bounded by the caller (a decompression bomb is refused, not allocated).
 * Reentrant, no shared state. Not for choosing a codec or recompressing stored batches.
 */
#ifndef PROTO_COMPRESS_H
#define PROTO_COMPRESS_H

#include <stddef.h>
#include <stdint.h>

/* "none", "gzip", "snappy", "lz4", "zstd"; "unknown" for other values. */
const char *proto_compression_name(int codec);

/*
 * Decompresses in[0..in_len) into out (out_cap bytes). What is accepted per codec:
 *   gzip   one or more gzip members (not zlib or raw deflate: Java reads gzip only),
 *          nothing after the last;
 *   snappy xerial framing (magic, version, then [int32 length][raw block]...), or else one
 *          raw snappy block (librdkafka writes that);
 *   lz4    exactly one LZ4 frame with independent blocks, as Kafka's reader requires
 *          (checksums that are present are checked; no dictionary id);
 *   zstd   one or more zstd frames, content size optional, window at most 128 MiB
 *          (Kafka's zstd-jni reader refuses bigger windows).
 * Empty input is malformed for every codec. Returns SM_OK with *out_len; SM_ERR_RANGE when the
 * output would exceed out_cap (nothing is written past it; at most out_cap bytes are produced
 * before the refusal); SM_ERR_CORRUPT for malformed input; SM_ERR_VERSION for a codec other
 * than 1..4; SM_ERR_NOMEM when a codec's state cannot be allocated. Codec state is bounded by
 * the format (32 KiB gzip window, lz4 blocks of at most 4 MiB, no zstd window buffer: frames
 * are decoded straight into out); nothing is sized from the output length.
 */
int proto_decompress(int codec, const uint8_t *in, size_t in_len, uint8_t *out, size_t out_cap,
                     size_t *out_len);

/*
 * As proto_decompress, into a buffer it allocates (the caller frees *out) that grows with the
 * output up to max_out bytes: a size declared in the stream is used when there is one, else the
 * buffer doubles as needed. SM_ERR_RANGE beyond max_out. *out is NULL after a failure.
 */
int proto_decompress_alloc(int codec, const uint8_t *in, size_t in_len, size_t max_out,
                           uint8_t **out, size_t *out_len);

/* Output room that always suffices for proto_compress of len bytes; 0 for a codec it does not
 * write or a len too large to bound. */
size_t proto_compress_bound(int codec, size_t len);

/*
 * Compresses in the form Kafka clients read: a gzip member, xerial-framed snappy in 32 KiB
 * blocks (what snappy-java writes), one LZ4 frame with independent 64 KiB blocks and no
 * checksums (what Kafka's Lz4BlockOutputStream writes), one zstd frame. level < 0: the codec's
 * default (gzip 6, lz4 fast, zstd 3); otherwise gzip 0..9, lz4 0..12, zstd 0..22, snappy
 * ignores it; other levels give SM_ERR_RANGE. SM_ERR_SPACE when out_cap is below what the
 * codec needs (proto_compress_bound always suffices; some codecs refuse smaller room even when
 * the result would fit). SM_ERR_VERSION for a codec other than 1..4.
 */
int proto_compress(int codec, int level, const uint8_t *in, size_t in_len, uint8_t *out,
                   size_t out_cap, size_t *out_len);

/*
 * Checks the records inside one batch of exactly len bytes whose header, size and CRC
 * proto_batch_validate already accepted: decompresses the area after the 61-byte header
 * (an uncompressed batch is read in place) and walks every record, as Kafka does for a
 * producer's batch: records_count records, offset deltas 0..count-1 in order, record lengths
 * that add up exactly to the area, and last_offset_delta == count - 1 when count > 0.
 * The decompressed records take at most max_decompressed bytes, allocated as they grow and
 * freed before returning. Returns SM_OK, SM_ERR_RANGE (the records would exceed the bound),
 * SM_ERR_CORRUPT, SM_ERR_VERSION (codec 5..7) or SM_ERR_NOMEM.
 */
int proto_batch_validate_compressed(const uint8_t *batch, size_t len, size_t max_decompressed);

/* The same check without allocating the output: scratch (scratch_cap bytes, the bound) holds
 * the decompressed records and is clobbered. For callers that keep one buffer per thread. */
int proto_batch_validate_compressed_into(const uint8_t *batch, size_t len, uint8_t *scratch,
                                         size_t scratch_cap);

#endif
