/* check.c — test helpers. */
#include "tests/support/check.h"

#include <stdlib.h>
#include <string.h>

const char *test_tmpdir(void)
{
    static char dir[256]; /* test-process scratch; tests are single-threaded */
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/nesim-test-XXXXXX");
        if (!mkdtemp(dir))
            fail_msg("mkdtemp failed");
    }
    return dir;
}
