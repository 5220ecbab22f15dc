/* half.c: IEEE 754 binary16 <-> binary32 by bit manipulation, so the result is the same
 * on every machine whether or not it has F16C, and matches numpy's astype(np.float16). */
#include "data.h"

#include <string.h>

float float_from_half(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (uint32_t)(h >> 10) & 0x1fu, man = h & 0x3ffu, bits;
    if (exp == 0x1f) {
        bits = sign | 0x7f800000u | man << 13; /* inf, or NaN keeping its payload */
    } else if (exp != 0) {
        bits = sign | (exp + 112) << 23 | man << 13; /* rebias: 127 - 15 */
    } else if (man == 0) {
        bits = sign;
    } else { /* subnormal half: a normal float once the leading 1 is shifted up */
        exp = 113;
        while (!(man & 0x400u)) {
            man <<= 1;
            exp--;
        }
        bits = sign | exp << 23 | (man & 0x3ffu) << 13;
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* Rounds q + rem / 2^shift to the nearest integer, ties to even. */
static uint32_t round_shifted(uint32_t q, uint32_t rem, unsigned shift) {
    uint32_t halfway = 1u << (shift - 1);
    return q + (rem > halfway || (rem == halfway && (q & 1u)));
}

uint16_t half_from_float(float f) {
    uint32_t bits;
    memcpy(&bits, &f, sizeof bits);
    uint16_t sign = (uint16_t)(bits >> 16 & 0x8000u);
    uint32_t mag = bits & 0x7fffffffu;
    if (mag > 0x7f800000u) { /* NaN: keep the payload's top bits, and never make it inf */
        uint32_t man = mag >> 13 & 0x3ffu;
        return (uint16_t)(sign | 0x7c00u | (man ? man : 1u));
    }
    if (mag >= 0x477ff000u) /* 65520 and up round past 65504, the largest half */
        return (uint16_t)(sign | 0x7c00u);
    if (mag >= 0x38800000u) { /* 2^-14 and up: a normal half; a carry may bump the exponent */
        uint32_t h = (mag - 0x38000000u) >> 13;
        return (uint16_t)(sign | round_shifted(h, mag & 0x1fffu, 13));
    }
    if (mag < 0x33000000u) /* below 2^-25: rounds to zero (2^-25 itself is a tie to 0) */
        return sign;
    /* A subnormal half counts units of 2^-24: the float's significand, shifted down. */
    uint32_t exp = mag >> 23, man = (mag & 0x7fffffu) | 0x800000u;
    unsigned shift = 126 - exp; /* 14..24 */
    return (uint16_t)(sign | round_shifted(man >> shift, man & ((1u << shift) - 1), shift));
}
