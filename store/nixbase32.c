/* SPDX-License-Identifier: GPL-3.0-or-later */
#include <errno.h>
#include <string.h>

#include "packfs/nixbase32.h"

static const char alphabet[32] = "0123456789abcdfghijklmnpqrsvwxyz";

size_t pf_nixbase32_len(size_t nbytes) {
        return (nbytes * 8 + 4) / 5;
}

void pf_nixbase32_encode(const uint8_t *in, size_t n, char *out) {
        size_t len = pf_nixbase32_len(n);

        /* Character at position len-1-k holds bits 5k..5k+4 of the little-endian input. */
        for (size_t k = 0; k < len; k++) {
                size_t b = k * 5, i = b / 8;
                unsigned j = b % 8;
                unsigned c = in[i] >> j;

                if (i + 1 < n)
                        c |= (unsigned) in[i + 1] << (8 - j);
                out[len - 1 - k] = alphabet[c & 0x1f];
        }
        out[len] = 0;
}

static int digit_value(char c) {
        const char *p = c ? memchr(alphabet, c, sizeof(alphabet)) : NULL;

        return p ? (int) (p - alphabet) : -1;
}

/* Checks every character and that no bits spill past the last byte, which would be
 * silently lost: so every byte string has exactly one encoding. */
static int validate(const char *in, size_t len, size_t n) {
        for (size_t k = 0; k < len; k++) {
                int d = digit_value(in[len - 1 - k]);
                size_t b = k * 5;

                if (d < 0)
                        return -EINVAL;
                if (b / 8 + 1 >= n && (d >> (8 - b % 8)))
                        return -EINVAL;
        }
        return 0;
}

int pf_nixbase32_decode(const char *in, size_t len, uint8_t *out, size_t n) {
        int r;

        if (len != pf_nixbase32_len(n))
                return -EINVAL;
        r = validate(in, len, n);
        if (r < 0)
                return r;

        memset(out, 0, n);
        for (size_t k = 0; k < len; k++) {
                unsigned d = (unsigned) digit_value(in[len - 1 - k]);
                size_t b = k * 5, i = b / 8;
                unsigned j = b % 8;

                out[i] |= (uint8_t) (d << j);
                if (i + 1 < n)
                        out[i + 1] |= (uint8_t) (d >> (8 - j));
        }
        return 0;
}
