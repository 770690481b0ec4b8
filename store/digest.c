/* SPDX-License-Identifier: GPL-3.0-or-later */
#include <gcrypt.h>
#include <stdlib.h>

#include "packfs/digest.h"

void pf_sha256_pair(const void *a, size_t a_len, const void *b, size_t b_len, uint8_t digest[32]) {
        gcry_buffer_t parts[] = { { .size = a_len, .len = a_len, .data = (void *) a },
                                  { .size = b_len, .len = b_len, .data = (void *) b } };

        if (gcry_md_hash_buffers(GCRY_MD_SHA256, 0, digest, parts, 2) != 0)
                abort();
}
