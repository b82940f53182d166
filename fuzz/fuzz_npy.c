/* fuzz_npy.c — libFuzzer target for nesim_npy_parse.
 *
 * Besides "no crash, no sanitizer report", it checks the parser's contract:
 * a failure carries a non-empty message, and a success yields a view that
 * lies exactly inside the input (count * itemsize bytes ending at its end),
 * every element of which is then read. A contract breach aborts so the
 * fuzzer records the input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/tensor.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    nesim_tensor t;
    nesim_error err = {0};
    int rc = nesim_npy_parse(data, size, "fuzz.npy", &t, &err);
    if (rc != NESIM_OK) {
        if (rc != NESIM_EINVAL || err.code != rc || !err.msg[0])
            abort();
        return 0;
    }
    const uint8_t *p = t.data;
    if (t.nbytes != t.count * nesim_dtype_size(t.dtype) || p < data || p + t.nbytes != data + size)
        abort();
    volatile double sink = 0;
    for (size_t i = 0; i < t.count; i++)
        sink += nesim_tensor_get(&t, i);
    (void)sink;
    nesim_tensor_check_finite(&t, "fuzz", &err);
    if (t.fortran) { /* the transposed copy holds the same elements, in C order */
        nesim_tensor c = t;
        if (nesim_tensor_to_c_order(&c, &err) == NESIM_OK) {
            if (c.fortran || c.data == t.data)
                abort();
            for (size_t i = 0; i < t.count; i++) {
                double a = nesim_tensor_get(&t, i), b = nesim_tensor_get(&c, i);
                if (memcmp(&a, &b, sizeof a) != 0 && !(a != a && b != b))
                    abort();
            }
            nesim_tensor_release(&c);
        }
    }
    nesim_tensor_release(&t);
    return 0;
}
