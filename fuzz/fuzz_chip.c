/* fuzz_chip.c — libFuzzer target for nesim_chip_parse (chip profiles).
 *
 * Contract checked besides memory safety: a failure is NESIM_EINVAL (or
 * ENOMEM) with a one-line message; a success gives a profile whose every
 * number carries a source or an assumption. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/chip.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    nesim_chip *c = NULL;
    nesim_error err = {0};
    int rc = nesim_chip_parse((const char *)data, size, "fuzz.json", NULL, &c, &err);
    if (rc != NESIM_OK) {
        if ((rc != NESIM_EINVAL && rc != NESIM_ENOMEM) || !err.msg[0] || strchr(err.msg, '\n'))
            abort();
        return 0;
    }
    for (size_t i = 0; i < c->n_values; i++)
        if (!c->values[i].source && !c->values[i].assumption)
            abort();
    nesim_chip_free(c);
    return 0;
}
