/* fuzz_main.c — runs a libFuzzer target (fuzz/fuzz_*.c) over files without
 * libFuzzer, so `make test` replays the seed corpora and every malformed
 * sample through each target under ASan + UBSan: a target's contract checks
 * abort on a breach, and a target that no longer compiles fails the build.
 * Usage: fuzz_X FILE_OR_DIR...; prints how many inputs ran. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "%s: cannot open\n", path);
        return -1;
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    /* an exact-size copy, so a read past the end is an ASan report */
    uint8_t *buf = malloc(n > 0 ? (size_t)n : 1);
    size_t k = buf ? fread(buf, 1, (size_t)n, f) : 0;
    fclose(f);
    if (!buf || k != (size_t)n) {
        free(buf);
        fprintf(stderr, "%s: cannot read\n", path);
        return -1;
    }
    LLVMFuzzerTestOneInput(buf, k);
    free(buf);
    return 1;
}

int main(int argc, char **argv)
{
    long ran = 0;
    for (int i = 1; i < argc; i++) {
        struct stat sb;
        if (stat(argv[i], &sb) != 0) {
            fprintf(stderr, "%s: no such file or directory\n", argv[i]);
            return 2;
        }
        if (!S_ISDIR(sb.st_mode)) {
            if (run_file(argv[i]) < 0)
                return 2;
            ran++;
            continue;
        }
        DIR *d = opendir(argv[i]);
        if (!d)
            return 2;
        for (struct dirent *e; (e = readdir(d));) {
            char p[4096];
            snprintf(p, sizeof p, "%s/%s", argv[i], e->d_name);
            if (e->d_name[0] == '.' || stat(p, &sb) != 0 || !S_ISREG(sb.st_mode))
                continue;
            if (run_file(p) < 0) {
                closedir(d);
                return 2;
            }
            ran++;
        }
        closedir(d);
    }
    printf("%ld inputs\n", ran);
    return 0;
}
