/* SPDX-License-Identifier: GPL-3.0-or-later */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "packfs/nixbase32.h"
#include "run-suite.h"

static void from_hex(const char *hex, uint8_t *out) {
        for (size_t i = 0; hex[2 * i]; i++) {
                unsigned v;
                ck_assert_int_eq(sscanf(hex + 2 * i, "%2x", &v), 1);
                out[i] = (uint8_t) v;
        }
}

/* Vectors from `nix-hash --type T --to-base32 HEX` (Nix 2.8). */
static const struct {
        const char *hex, *b32;
} vectors[] = {
        /* sha256("") */
        { "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
          "0mdqa9w1p6cmli6976v4wi0sw9r4p5prkj7lzfd1877wk11c9c73" },
        /* sha256("abc") */
        { "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
          "1b8m03r63zqhnjf7l5wnldhh7c134ap5vpj0850ymkq1iyzicy5s" },
        /* md5("") */
        { "d41d8cd98f00b204e9800998ecf8427e", "3y8bwfr609h3lh9ch0izcqq7fl" },
        /* sha1("") */
        { "da39a3ee5e6b4b0d3255bfef95601890afd80709", "143xibwh31h9bvxzalr0sjvbbvpa6ffs" },
        /* sha512("") */
        { "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce"
          "47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e",
          "0zdl9zrg8r3i9c1g90lgg9ip5ijzv3yhz91i0zzn3r8ap9ws784gkp9dk9j3aglhgf1amqb0pj21mh7h1nxcl18akqvvf7ggqsy30yg" },
};

START_TEST(test_len) {
        ck_assert_uint_eq(pf_nixbase32_len(0), 0);
        ck_assert_uint_eq(pf_nixbase32_len(1), 2);
        ck_assert_uint_eq(pf_nixbase32_len(16), 26);
        ck_assert_uint_eq(pf_nixbase32_len(20), 32);
        ck_assert_uint_eq(pf_nixbase32_len(32), 52);
        ck_assert_uint_eq(pf_nixbase32_len(64), 103);
}
END_TEST

START_TEST(test_vectors) {
        for (size_t v = 0; v < sizeof(vectors) / sizeof(vectors[0]); v++) {
                uint8_t bytes[64], back[64];
                char out[128];
                size_t n = strlen(vectors[v].hex) / 2;

                from_hex(vectors[v].hex, bytes);
                ck_assert_uint_eq(pf_nixbase32_len(n), strlen(vectors[v].b32));
                pf_nixbase32_encode(bytes, n, out);
                ck_assert_str_eq(out, vectors[v].b32);

                ck_assert_int_eq(pf_nixbase32_decode(out, strlen(out), back, n), 0);
                ck_assert_mem_eq(back, bytes, n);
        }
}
END_TEST

START_TEST(test_bit_order) {
        /* The last character holds the low bits of the first byte. */
        uint8_t one[20] = { 1 }, last[20] = {};
        char out[33];

        pf_nixbase32_encode(one, sizeof(one), out);
        ck_assert_str_eq(out, "00000000000000000000000000000001");
        last[19] = 0x80;
        pf_nixbase32_encode(last, sizeof(last), out);
        ck_assert_str_eq(out, "h0000000000000000000000000000000");
}
END_TEST

START_TEST(test_round_trip_random) {
        srand(42);
        for (size_t n = 1; n <= 70; n++) {
                uint8_t bytes[70], back[70];
                char out[120];

                for (size_t i = 0; i < n; i++)
                        bytes[i] = (uint8_t) rand();
                pf_nixbase32_encode(bytes, n, out);
                ck_assert_uint_eq(strlen(out), pf_nixbase32_len(n));
                ck_assert_int_eq(pf_nixbase32_decode(out, strlen(out), back, n), 0);
                ck_assert_mem_eq(back, bytes, n);
        }
}
END_TEST

START_TEST(test_decode_invalid) {
        const char *good = "0mdqa9w1p6cmli6976v4wi0sw9r4p5prkj7lzfd1877wk11c9c73";
        uint8_t out[32], untouched[32];
        char bad[53];

        memset(out, 0xaa, sizeof(out));
        memset(untouched, 0xaa, sizeof(untouched));

        /* Wrong length. */
        ck_assert_int_eq(pf_nixbase32_decode(good, 51, out, 32), -EINVAL);
        ck_assert_int_eq(pf_nixbase32_decode(good, 52, out, 31), -EINVAL);
        /* Letters outside the alphabet: e, o, u, t, upper case, punctuation. */
        for (const char *c = "eoutA-"; *c; c++) {
                strcpy(bad, good);
                bad[10] = *c;
                ck_assert_int_eq(pf_nixbase32_decode(bad, 52, out, 32), -EINVAL);
        }
        /* 52 characters carry 260 bits: the first may only be 0 or 1. */
        strcpy(bad, good);
        bad[0] = '2';
        ck_assert_int_eq(pf_nixbase32_decode(bad, 52, out, 32), -EINVAL);
        ck_assert_mem_eq(out, untouched, sizeof(out));

        bad[0] = '1';
        ck_assert_int_eq(pf_nixbase32_decode(bad, 52, out, 32), 0);
}
END_TEST

START_TEST(test_empty) {
        char out[1] = { 'x' };
        uint8_t b;

        pf_nixbase32_encode(NULL, 0, out);
        ck_assert_str_eq(out, "");
        ck_assert_int_eq(pf_nixbase32_decode("", 0, &b, 0), 0);
}
END_TEST

int main(void) {
        Suite *s = suite_create("nixbase32");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_len);
        tcase_add_test(tc, test_vectors);
        tcase_add_test(tc, test_bit_order);
        tcase_add_test(tc, test_round_trip_random);
        tcase_add_test(tc, test_decode_invalid);
        tcase_add_test(tc, test_empty);
        suite_add_tcase(s, tc);
        return run_suite(s);
}
