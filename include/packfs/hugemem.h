/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * Large working buffers (compressor windows, match tables, I/O buffers) backed
 * by transparent huge pages where the kernel offers them.
 *
 * Why: a compressor context touches tens of MiB the first time it runs, one
 * page fault per 4 KiB. Where faults are expensive (virtual machines: ~10 us
 * each measured on the bench machine) zstd spends more time faulting in a
 * fresh context than compressing 6 MB of tar headers with it. One fault per
 * 2 MiB removes that. Requests under PF_HUGEMEM_MIN go to malloc(); where huge
 * pages are off, the memory is ordinary anonymous memory.
 */
#pragma once

#include <stddef.h>

#define PF_HUGEMEM_MIN ((size_t) 1024 * 1024)

/* SIZE bytes aligned as malloc()'s, zero-filled if from the kernel (not
 * promised); NULL when out of memory. Free with pf_hugemem_free(). */
void *pf_hugemem_alloc(size_t size);

/* Frees memory from pf_hugemem_alloc(); NULL is allowed. */
void pf_hugemem_free(void *p);
