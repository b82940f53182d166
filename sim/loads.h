/* loads.h — reading one weight in its stored precision (internal to the
 * coded kernels). Views may be unaligned (safetensors): every element is
 * read through memcpy, which gcc turns into a plain move. f16 and bf16
 * widen to float exactly; nothing is converted ahead of time. */
#ifndef NESIM_SIM_LOADS_H
#define NESIM_SIM_LOADS_H

#include <stdint.h>
#include <string.h>

#include "net/tensor.h"

static inline float ld_f32(const unsigned char *p)
{
    float v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline double ld_f64(const unsigned char *p)
{
    double v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline float ld_bf16(const unsigned char *p)
{
    uint16_t h;
    memcpy(&h, p, sizeof h);
    uint32_t u = (uint32_t)h << 16; /* bf16 is the top half of a binary32 */
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* IEEE half -> float, exact. The magnitude bits shifted into a binary32 are
 * the value scaled by 2^-112 (subnormal halves land on float subnormals, which
 * the multiply renormalises exactly); Inf/NaN (exponent 31) get the float's
 * all-ones exponent instead. No table: a 256 KiB table would evict the rows. */
static inline float ld_f16(const unsigned char *p)
{
    uint16_t h;
    memcpy(&h, p, sizeof h);
    uint32_t u = (uint32_t)(h & 0x7fffu) << 13;
    float f;
    if ((h & 0x7c00u) == 0x7c00u) {
        u |= 0x7f800000u;
    } else {
        memcpy(&f, &u, sizeof f);
        f *= 0x1p112f;
        memcpy(&u, &f, sizeof u);
    }
    u |= (uint32_t)(h & 0x8000u) << 16;
    memcpy(&f, &u, sizeof f);
    return f;
}

static inline int32_t ld_i8(const unsigned char *p) { return *(const signed char *)p; }

/* Element i of a view of dtype dt (F32, F64, F16, BF16, I8, I16, I32, U8)
 * as a double, exactly; dt a constant at the call, so the switch folds. */
static inline __attribute__((always_inline)) double nesim_ld(nesim_dtype dt, const unsigned char *base, size_t i)
{
    switch (dt) {
    case NESIM_F32: return ld_f32(base + 4 * i);
    case NESIM_F64: return ld_f64(base + 8 * i);
    case NESIM_F16: return ld_f16(base + 2 * i);
    case NESIM_BF16: return ld_bf16(base + 2 * i);
    case NESIM_I8: return ld_i8(base + i);
    case NESIM_I16: {
        int16_t v;
        memcpy(&v, base + 2 * i, sizeof v);
        return v;
    }
    case NESIM_I32: {
        int32_t v;
        memcpy(&v, base + 4 * i, sizeof v);
        return v;
    }
    case NESIM_U8: return base[i];
    default: return 0; /* weights are checked to be one of the above */
    }
}

#endif
