/* test_pinned.c — the spike-list checksum of every example, pinned in
 * tests/pinned/checksums.txt: any change in the dynamics (a neuron model, the
 * engine, the coder, a kernel) moves a checksum and fails here. Runs the
 * binary named by $NESIM (make test: the sanitizer build). */
#include "tests/support/check.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

static void check_line(const char *name, const char *want, const char *args)
{
    /* "rel:NAME": the release build (a model at true shape takes minutes
     * under the sanitizers) */
    const char *bin = strncmp(name, "rel:", 4) == 0 ? "build/rel/nesim"
                      : getenv("NESIM")            ? getenv("NESIM")
                                                   : "build/rel/nesim";
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s run %s --chip none --json --quiet", bin, args);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    static char out[1 << 20];
    size_t k = fread(out, 1, sizeof out - 1, p);
    out[k] = 0;
    int st = pclose(p);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        fail_msg("%s: `%s` failed (status %d)", name, cmd, st);
    json_error_t je;
    json_t *j = json_loads(out, 0, &je);
    if (!j)
        fail_msg("%s: not JSON (%s)", name, je.text);
    char got[32];
    const char *g = json_string_value(json_object_get(j, "spike_checksum"));
    snprintf(got, sizeof got, "%s", g ? g : "(none)");
    json_decref(j); /* before a failure: fail_msg does not return */
    if (strcmp(got, want) != 0)
        fail_msg("%s: spike checksum %s, pinned %s (nesim run %s)", name, got, want, args);
}

static void test_checksums(void **st)
{
    FILE *f = fopen("tests/pinned/checksums.txt", "r");
    assert_non_null(f);
    char line[1024];
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#' || line[0] == '\n')
            continue;
        char name[64], sum[32];
        int off = 0;
        if (sscanf(line, "%63s %31s %n", name, sum, &off) != 2)
            fail_msg("bad line in checksums.txt: %s", line);
        line[strcspn(line, "\n")] = 0;
        check_line(name, sum, line + off);
        n++;
    }
    fclose(f);
    assert_true(n >= 6);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_checksums)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
