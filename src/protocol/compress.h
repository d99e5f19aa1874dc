/*
 * Compression codecs of record batches (attributes & 7): gzip, snappy (the
 * xerial framing Kafka clients write, and raw blocks), lz4 (LZ4 frames) and
 * zstd. Decompression writes into a bounded buffer so a decompression bomb is
 * refused instead of allocated. Batches are stored as produced; the broker
 * decompresses only to validate.
 */
#ifndef PROTO_COMPRESS_H
#define PROTO_COMPRESS_H

#include <stddef.h>
#include <stdint.h>

const char *proto_compression_name(int codec);

/*
 * Decompresses in into out (out_cap bytes). Returns SM_OK with *out_len,
 * SM_ERR_RANGE when the output would exceed out_cap (nothing is written past
 * it), SM_ERR_CORRUPT for malformed input, SM_ERR_VERSION for an unknown codec.
 */
int proto_decompress(int codec, const uint8_t *in, size_t in_len, uint8_t *out, size_t out_cap,
                     size_t *out_len);

/* Upper bound of proto_compress's output for len input bytes. */
size_t proto_compress_bound(int codec, size_t len);
/* Compresses in a form Kafka clients read (gzip stream, xerial snappy, LZ4
 * frame, zstd frame). level < 0: the codec's default. */
int proto_compress(int codec, int level, const uint8_t *in, size_t in_len, uint8_t *out,
                   size_t out_cap, size_t *out_len);

/*
 * Validates the records inside a compressed batch (whose header and CRC
 * proto_batch_validate already checked): decompresses into at most
 * max_decompressed bytes and walks every record (count, offset deltas,
 * lengths, nothing left over). Returns SM_OK, SM_ERR_RANGE (too large),
 * SM_ERR_CORRUPT or SM_ERR_VERSION (unknown codec).
 */
int proto_batch_validate_compressed(const uint8_t *batch, size_t len, size_t max_decompressed);

#endif
