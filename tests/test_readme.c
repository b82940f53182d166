/* test_readme.c — README.md runs as written:
 * - the C API example compiles against libnesim.a and runs;
 * - "Adding a neuron model": the file shown is neurons/linleak.c byte for
 *   byte, and the registry line shown is in neurons/registry.c;
 * - every `build/rel/nesim ...` and `mpirun ...` command of its sh blocks
 *   exits 0 (paths under /tmp/ moved into the test's scratch directory).
 * Run from the repository root after `make` (make test builds both). */
#include "tests/support/check.h"

#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

/* The body of the fenced block right after the marker line, malloc'd. */
static char *block_after(const char *text, const char *marker)
{
    const char *m = strstr(text, marker);
    if (!m)
        fail_msg("README.md has no marker '%s'", marker);
    const char *open = strstr(m, "```");
    const char *body = open ? strchr(open, '\n') : NULL;
    const char *close = body ? strstr(body + 1, "\n```") : NULL;
    if (!close)
        fail_msg("no fenced block after '%s'", marker);
    size_t n = (size_t)(close - body); /* body starts at '\n'; keep the last line's newline */
    char *out = malloc(n + 1);
    memcpy(out, body + 1, n);
    out[n] = 0;
    return out;
}

static int sh(const char *cmd)
{
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static void test_api_example_builds_and_runs(void **st)
{
    char *readme = test_read_file("README.md", NULL);
    char *code = block_after(readme, "<!-- readme-test: api -->");
    char src[512], exe[512], out[512], cmd[4096];
    snprintf(src, sizeof src, "%s/api.c", test_tmpdir());
    snprintf(exe, sizeof exe, "%s/api", test_tmpdir());
    snprintf(out, sizeof out, "%s/api.out", test_tmpdir());
    FILE *f = fopen(src, "w");
    fputs(code, f);
    fclose(f);
    snprintf(cmd, sizeof cmd,
             "cc -std=c11 -Wall -Wextra -Werror -D_POSIX_C_SOURCE=200809L -I. %s build/rel/libnesim.a "
             "$(pkg-config --libs gsl sqlite3 libevent jansson) $(mpicc --showme:link 2>/dev/null) -lm -lpthread "
             "-o %s && %s > %s",
             src, exe, exe, out);
    assert_int_equal(sh(cmd), 0);
    char *got = test_read_file(out, NULL);
    if (!strstr(got, " spikes, first at tick ") || !strstr(got, "kernels lif/epoch"))
        fail_msg("the API example printed: %s", got);
    assert_true(atol(got) > 1000); /* 3200 neurons near threshold for 1 s */
    free(got);
    free(code);
    free(readme);
}

static void test_model_section_is_the_shipped_model(void **st)
{
    char *readme = test_read_file("README.md", NULL);
    char *shown = block_after(readme, "<!-- readme-test: model neurons/linleak.c -->");
    char *file = test_read_file("neurons/linleak.c", NULL);
    if (strcmp(shown, file) != 0)
        fail_msg("README's model file differs from neurons/linleak.c");
    char *line = block_after(readme, "<!-- readme-test: registry -->");
    char *reg = test_read_file("neurons/registry.c", NULL);
    if (!strstr(reg, line))
        fail_msg("neurons/registry.c lacks the README's line: %s", line);
    free(reg);
    free(line);
    free(file);
    free(shown);
    free(readme);
}

/* Each `build/rel/nesim` command (with its continuation lines, comments
 * dropped) of every ```sh block, in order, from the repository root. */
static void test_every_command_runs(void **st)
{
    char *readme = test_read_file("README.md", NULL);
    int ran = 0;
    for (const char *p = readme; (p = strstr(p, "```sh\n"));) {
        p += 6;
        const char *end = strstr(p, "\n```");
        if (!end)
            break;
        while (p < end) {
            const char *nl = memchr(p, '\n', (size_t)(end - p) + 1);
            size_t n = (size_t)(nl - p);
            if ((n > 16 && strncmp(p, "build/rel/nesim ", 16) == 0) || (n > 7 && strncmp(p, "mpirun ", 7) == 0)) {
                char cmd[4096] = "";
                size_t k = 0;
                for (;;) { /* join continuation lines, drop comments */
                    char line[1024];
                    snprintf(line, sizeof line, "%.*s", (int)n, p);
                    char *hash = strstr(line, " #");
                    if (hash)
                        *hash = 0;
                    size_t ll = strlen(line);
                    int cont = ll && line[ll - 1] == '\\';
                    if (cont)
                        line[--ll] = 0;
                    k += (size_t)snprintf(cmd + k, sizeof cmd - k, "%s ", line);
                    if (!cont)
                        break;
                    p = nl + 1;
                    nl = memchr(p, '\n', (size_t)(end - p) + 1);
                    n = (size_t)(nl - p);
                }
                /* /tmp/x -> the scratch directory */
                char moved[8192] = "";
                size_t m = 0;
                for (const char *c = cmd; *c && m < sizeof moved - 600;) {
                    if (strncmp(c, "/tmp/", 5) == 0) {
                        m += (size_t)snprintf(moved + m, sizeof moved - m, "%s/", test_tmpdir());
                        c += 5;
                    } else {
                        moved[m++] = *c++;
                    }
                }
                moved[m] = 0;
                char full[8400];
                snprintf(full, sizeof full, "%s >/dev/null 2>&1", moved);
                if (sh(full) != 0)
                    fail_msg("README command failed: %s", moved);
                ran++;
            }
            p = nl + 1;
        }
    }
    print_message("%d README commands ran\n", ran);
    assert_true(ran >= 15);
    free(readme);
}

int main(void)
{
    /* the scale-out examples: Open MPI refuses root unless told (CI runs as root) */
    setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);
    setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_api_example_builds_and_runs),
        cmocka_unit_test(test_model_section_is_the_shipped_model),
        cmocka_unit_test(test_every_command_runs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
