/* SPDX-License-Identifier: GPL-3.0-or-later */
#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "packfs/refscan.h"

#define REF_LEN 32

/* Bytes of Nix's base-32 alphabet "0123456789abcdfghijklmnpqrsvwxyz". */
static const bool is_base32[256] = {
        ['0' ... '9'] = true, ['a' ... 'd'] = true, ['f' ... 'n'] = true,
        ['p' ... 's'] = true, ['v' ... 'z'] = true,
};

struct pf_refscan {
        char (*keys)[REF_LEN]; /* candidates, by index */
        bool *seen;            /* seen[idx] */
        size_t n, cap, n_seen;

        uint32_t *slots;       /* open addressing: candidate index + 1, 0 = empty */
        size_t n_slots;        /* power of two, at least twice n */

        char tail[REF_LEN - 1]; /* last bytes fed, for matches across chunks */
        size_t tail_len;
        bool fed;
};

int pf_refscan_new(pf_refscan **ret) {
        pf_refscan *s = calloc(1, sizeof(*s));

        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

void pf_refscan_free(pf_refscan *s) {
        if (!s)
                return;
        free(s->keys);
        free(s->seen);
        free(s->slots);
        free(s);
}

size_t pf_refscan_count(const pf_refscan *s) {
        return s->n;
}

bool pf_refscan_seen(const pf_refscan *s, size_t idx) {
        return idx < s->n && s->seen[idx];
}

size_t pf_refscan_n_seen(const pf_refscan *s) {
        return s->n_seen;
}

static uint64_t load64(const char *p) {
        uint64_t v;

        memcpy(&v, p, sizeof(v));
        return v;
}

/* Hash parts are digests, so mixing their first 16 bytes spreads them well. */
static size_t key_hash(const char *key) {
        uint64_t h = load64(key) ^ (load64(key + 8) * UINT64_C(0x9e3779b97f4a7c15));

        h *= UINT64_C(0xff51afd7ed558ccd);
        return (size_t) (h ^ (h >> 29));
}

/* Returns the slot holding KEY, or the empty slot where it would go. */
static size_t find_slot(const pf_refscan *s, const char *key) {
        size_t mask = s->n_slots - 1;

        for (size_t i = key_hash(key) & mask;; i = (i + 1) & mask) {
                uint32_t v = s->slots[i];
                if (v == 0 || memcmp(s->keys[v - 1], key, REF_LEN) == 0)
                        return i;
        }
}

static int grow_table(pf_refscan *s) {
        size_t n_slots = s->n_slots ? s->n_slots * 2 : 64;
        uint32_t *slots = calloc(n_slots, sizeof(*slots));

        if (!slots)
                return -ENOMEM;
        free(s->slots);
        s->slots = slots;
        s->n_slots = n_slots;
        for (size_t idx = 0; idx < s->n; idx++)
                s->slots[find_slot(s, s->keys[idx])] = (uint32_t) (idx + 1);
        return 0;
}

static int grow_keys(pf_refscan *s) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        char (*keys)[REF_LEN];
        bool *seen;

        keys = realloc(s->keys, cap * sizeof(*keys));
        if (!keys)
                return -ENOMEM;
        s->keys = keys;
        seen = realloc(s->seen, cap * sizeof(*seen));
        if (!seen)
                return -ENOMEM;
        s->seen = seen;
        s->cap = cap;
        return 0;
}

int pf_refscan_add(pf_refscan *s, const char *hash_part) {
        size_t slot;
        int r;

        for (size_t i = 0; i < REF_LEN; i++)
                if (!is_base32[(uint8_t) hash_part[i]])
                        return -EINVAL;
        if (s->fed)
                return -EBUSY;
        if (s->n >= UINT32_MAX - 1 || s->n >= INT32_MAX)
                return -ENOMEM;

        if ((s->n + 1) * 2 > s->n_slots) {
                r = grow_table(s);
                if (r < 0)
                        return r;
        }
        slot = find_slot(s, hash_part);
        if (s->slots[slot] != 0)
                return (int) s->slots[slot] - 1;

        if (s->n == s->cap) {
                r = grow_keys(s);
                if (r < 0)
                        return r;
        }
        memcpy(s->keys[s->n], hash_part, REF_LEN);
        s->seen[s->n] = false;
        s->slots[slot] = (uint32_t) (s->n + 1);
        return (int) s->n++;
}

static void lookup(pf_refscan *s, const char *window) {
        uint32_t v = s->slots[find_slot(s, window)];

        if (v != 0 && !s->seen[v - 1]) {
                s->seen[v - 1] = true;
                s->n_seen++;
        }
}

/*
 * Looks up every 32-byte window of P made of base-32 characters. A window is
 * checked from its end, so one byte outside the alphabet skips the scan past
 * it; bytes already known to be base-32 are not checked again, so a long run of
 * base-32 text costs one check and one lookup per byte.
 */
static void search(pf_refscan *s, const char *p, size_t len) {
        size_t i = 0, ok = 0; /* p[i..ok) are known base-32 characters */

        while (i + REF_LEN <= len && s->n_seen < s->n) {
                size_t end = i + REF_LEN, j = end;
                bool bad;

                assert(ok >= i);
                while (j > ok && is_base32[(uint8_t) p[j - 1]])
                        j--;
                bad = j > ok;
                ok = end;
                if (bad) {
                        /* No window containing p[j - 1] can match; p[j..end) are good. */
                        i = j;
                        continue;
                }
                lookup(s, p + i);
                i++;
        }
}

int pf_refscan_feed(pf_refscan *s, const void *data, size_t len) {
        const char *p = data;
        char joint[2 * (REF_LEN - 1)];
        size_t head, keep;

        s->fed = true;
        if (s->n_seen == s->n || len == 0)
                return 0;

        /* Windows that start in the previous chunks and end in this one. */
        head = MIN(len, REF_LEN - 1);
        memcpy(joint, s->tail, s->tail_len);
        memcpy(joint + s->tail_len, p, head);
        search(s, joint, s->tail_len + head);

        search(s, p, len);

        /* Keep the last REF_LEN - 1 bytes of the stream for the next chunk. */
        if (len >= REF_LEN - 1) {
                memcpy(s->tail, p + len - (REF_LEN - 1), REF_LEN - 1);
                s->tail_len = REF_LEN - 1;
        } else {
                keep = MIN(s->tail_len + len, REF_LEN - 1);
                memcpy(s->tail, joint + s->tail_len + len - keep, keep);
                s->tail_len = keep;
        }
        return 0;
}

int pf_refscan_sink(void *userdata, const void *data, size_t len) {
        return pf_refscan_feed(userdata, data, len);
}
