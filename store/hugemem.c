/* SPDX-License-Identifier: GPL-3.0-or-later */
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "packfs/hugemem.h"

#define HUGE_PAGE ((uintptr_t) 2 * 1024 * 1024)

/* Every block starts with this header, 64 bytes before the caller's pointer
 * (which keeps malloc()'s alignment). A mapped block's caller memory starts
 * on a huge-page boundary, so all of it can be huge pages. */
typedef struct block_header {
        void *base;     /* what to munmap(), or NULL: the block is malloc()'s */
        size_t length;
        uint8_t pad[64 - sizeof(void *) - sizeof(size_t)];
} block_header;

_Static_assert(sizeof(block_header) == 64, "the header keeps the caller's alignment");

void *pf_hugemem_alloc(size_t size) {
        block_header *h;

        if (size < PF_HUGEMEM_MIN) {
                if (size > SIZE_MAX - sizeof(*h))
                        return NULL;
                h = malloc(sizeof(*h) + size);
                if (!h)
                        return NULL;
                h->base = NULL;
                return h + 1;
        }

        /* Room for the header page before the aligned start, the alignment
         * slack, and the caller's bytes rounded up to whole huge pages (a
         * huge page needs all of its 2 MiB in the advised range). */
        size_t page = (size_t) sysconf(_SC_PAGESIZE);
        if (size > SIZE_MAX - 3 * HUGE_PAGE - 2 * page)
                return NULL;
        size_t advised = (size + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
        size_t length = advised + HUGE_PAGE + 2 * page;
        uint8_t *base = mmap(NULL, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (base == MAP_FAILED)
                return NULL;
        uint8_t *data = (uint8_t *) (((uintptr_t) base + page + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1));
        /* Only advice: without THP (or with it off) the memory is plain pages. */
        (void) madvise(data, advised, MADV_HUGEPAGE);
        h = (block_header *) data - 1;
        h->base = base;
        h->length = length;
        return data;
}

void pf_hugemem_free(void *p) {
        if (!p)
                return;
        block_header *h = (block_header *) p - 1;
        if (h->base)
                munmap(h->base, h->length);
        else
                free(h);
}
