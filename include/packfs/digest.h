/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * SHA-256 of two byte strings in a row: the keys and integrity checks of the
 * cache's records (a layout string and an identity; a key and a payload).
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

void pf_sha256_pair(const void *a, size_t a_len, const void *b, size_t b_len, uint8_t digest[32]);
