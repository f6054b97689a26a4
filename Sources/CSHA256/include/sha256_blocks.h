// SHA-256's compression function on the x86 SHA extensions (Storage/SHA256.swift). Every probe
// hashes its checkpoint and data and every `analyze` its probe file; the portable Swift function
// reads ≈ 130 MB/s on the Emerald Rapids host, 40 % of `analyze`'s CPU on the demo's MoE probe file.
#ifndef TI_SHA256_BLOCKS_H
#define TI_SHA256_BLOCKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/// Whether this CPU has the SHA extensions (and the SSSE3 and SSE4.1 they are used with); always
/// false off x86-64.
bool ti_sha256_hardware_available(void);

/// Runs the compression function over `blocks` 64-byte blocks at `data` on `state` (H0…H7, FIPS
/// 180-4 §6.2.2). Only when `ti_sha256_hardware_available()`.
void ti_sha256_blocks_hardware(uint32_t state[8], const uint8_t *data, size_t blocks);

#endif
