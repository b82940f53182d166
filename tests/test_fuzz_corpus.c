/* test_fuzz_corpus.c — every fuzz target (fuzz/fuzz_*.c, built without
 * libFuzzer by tests/support/fuzz_main.c under ASan + UBSan) over its seed
 * corpus and every malformed sample: the targets' contract checks abort on a
 * breach (a failure without a one-line message naming the file, a view
 * outside its buffer, a parsed spec that does not build, a reader of an
 * edited trace that fails uncleanly, a parser that breaks its contract). */
#include "tests/support/check.h"

#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

static void replay(const char *target, const char *inputs, long at_least)
{
    char cmd[2048], out[512];
    snprintf(out, sizeof out, "%s/%s.out", test_tmpdir(), target);
    snprintf(cmd, sizeof cmd, "build/san/fuzz/%s %s > %s 2>&1", target, inputs, out);
    int st = system(cmd);
    FILE *f = fopen(out, "r");
    char text[4096] = "";
    if (f) {
        size_t k = fread(text, 1, sizeof text - 1, f);
        text[k] = 0;
        fclose(f);
    }
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        fail_msg("%s failed on %s:\n%s", target, inputs, text);
    long n = atol(text);
    print_message("%s: %ld inputs\n", target, n);
    assert_true(n >= at_least);
}

static void test_spec_corpus(void **st)
{
    replay("fuzz_spec", "tests/malformed/spec examples/b4/model.json examples/cuba/model.json "
                        "examples/digits/model.json examples/digits/model-if.json tests/pinned/mixed.json "
                        "examples/spikingbrain-7b-layer/model.json", 80);
}
static void test_npy_corpus(void **st) { replay("fuzz_npy", "tests/malformed/npy examples/digits tests/fixtures", 50); }
static void test_safetensors_corpus(void **st) { replay("fuzz_safetensors", "tests/malformed/safetensors", 30); }
static void test_chip_corpus(void **st) { replay("fuzz_chip", "tests/malformed/chips chips", 40); }
/* checkpoint config, vocab, shard index and language-model spec (issue 11) */
static void test_lm_corpus(void **st) { replay("fuzz_lm", "fuzz/corpus/lm", 5); }
static void test_http_corpus(void **st) { replay("fuzz_http", "fuzz/corpus/http", 10); }
/* edits to a recorded trace (fuzz/corpus/trace: the crafted cases of issue 10) */
static void test_trace_corpus(void **st) { replay("fuzz_trace", "fuzz/corpus/trace", 8); }
/* NIR graphs (issue 13): the paper's files and every malformed one */
static void test_nir_corpus(void **st) { replay("fuzz_nir", "tests/malformed/nir examples/nir fuzz/corpus/nir", 25); }
/* SANA-FE architecture, network YAML and netlist (issue 14) */
static void test_sanafe_corpus(void **st) { replay("fuzz_sanafe", "fuzz/corpus/sanafe", 6); }

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spec_corpus),
        cmocka_unit_test(test_npy_corpus),
        cmocka_unit_test(test_safetensors_corpus),
        cmocka_unit_test(test_chip_corpus),
        cmocka_unit_test(test_lm_corpus),
        cmocka_unit_test(test_http_corpus),
        cmocka_unit_test(test_trace_corpus),
        cmocka_unit_test(test_nir_corpus),
        cmocka_unit_test(test_sanafe_corpus),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
