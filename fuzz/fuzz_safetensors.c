/* fuzz_safetensors.c — libFuzzer target for nesim_safetensors_parse.
 *
 * Checks the contract as well as memory safety: failures carry a message;
 * on success every listed tensor can be fetched by name, its view lies inside
 * the input, and every element is read. A breach aborts so the fuzzer
 * records the input. */
#include <stdint.h>
#include <stdlib.h>

#include "net/tensor.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    nesim_safetensors *st;
    nesim_error err = {0};
    int rc = nesim_safetensors_parse(data, size, "fuzz.safetensors", &st, &err);
    if (rc != NESIM_OK) {
        if ((rc != NESIM_EINVAL && rc != NESIM_ENOMEM) || err.code != rc || !err.msg[0])
            abort();
        return 0;
    }
    volatile double sink = 0;
    for (size_t k = 0; k < nesim_safetensors_count(st); k++) {
        nesim_tensor t;
        if (nesim_safetensors_get(st, nesim_safetensors_name(st, k), &t, &err) != NESIM_OK)
            abort();
        const uint8_t *p = t.data;
        if (t.nbytes != t.count * nesim_dtype_size(t.dtype) || p < data ||
            t.nbytes > (size_t)(data + size - p))
            abort();
        for (size_t i = 0; i < t.count; i++)
            sink += nesim_tensor_get(&t, i);
        nesim_tensor_check_finite(&t, "fuzz", &err);
    }
    (void)sink;
    nesim_safetensors_metadata(st, "format");
    if (nesim_safetensors_get(st, "\x01 not a tensor", &(nesim_tensor){0}, &err) != NESIM_EINVAL)
        abort();
    nesim_safetensors_close(st);
    return 0;
}
