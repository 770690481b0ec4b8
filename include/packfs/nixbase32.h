/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * Nix's base-32 encoding, used for store path hash parts and "ca" fields.
 *
 * The alphabet is "0123456789abcdfghijklmnpqrsvwxyz" (no e, o, u, t) and the bit
 * order is Nix's own: the input is read as one little-endian number and the
 * output prints its 5-bit digits most significant first. So the last character
 * encodes bits 0..4 of byte 0, and base-32 strings do not share prefixes with
 * their byte strings the way hex does.
 *
 * Pure functions on caller-owned buffers; thread-safe.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* Number of characters encoding NBYTES bytes: ceil(NBYTES * 8 / 5); 0 for 0. */
size_t pf_nixbase32_len(size_t nbytes);

/*
 * Encodes N bytes of IN into OUT, which must hold pf_nixbase32_len(N) + 1 bytes;
 * OUT is NUL-terminated.
 */
void pf_nixbase32_encode(const uint8_t *in, size_t n, char *out);

/*
 * Decodes LEN characters of IN (no NUL needed) into the N bytes of OUT.
 * Returns 0, or -EINVAL if LEN != pf_nixbase32_len(N), a character is outside
 * the alphabet, or the string encodes bits beyond N bytes. OUT is written only
 * on success.
 */
int pf_nixbase32_decode(const char *in, size_t len, uint8_t *out, size_t n);
