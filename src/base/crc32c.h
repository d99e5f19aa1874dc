/*
 * CRC-32C (Castagnoli), the checksum of Kafka record batches. Uses SSE4.2 or
 * ARMv8 CRC instructions when the CPU has them, a table-driven fallback otherwise.
 */
#ifndef SM_CRC32C_H
#define SM_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Extends crc (0 to start) over len bytes; the result is the finished CRC-32C. */
uint32_t sm_crc32c(uint32_t crc, const void *data, size_t len);
/* The portable path, exposed so tests can compare it with the hardware one. */
uint32_t sm_crc32c_sw(uint32_t crc, const void *data, size_t len);
/* 1 when the hardware path is in use. */
int sm_crc32c_hw_available(void);

#endif
