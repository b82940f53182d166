/* test_layers.c — the tree's layers point down, and no files lean on each
 * other in a circle: read from the sources' #include lines and, for calls,
 * from the symbols the sanitizer build's objects define and use (nm).
 *
 * The layers, bottom up (DESIGN.md, README "Layout"): base, neurons, net,
 * sim, eval, traces, then serve and jobs side by side, then cli. A file may
 * include or call files of its own folder and of folders below it. */
#include "tests/support/check.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>

static const char *const folders[] = {"base", "neurons", "net", "sim", "eval", "traces", "serve", "jobs", "cli", NULL};
static const int rank[] = {0, 1, 2, 3, 4, 5, 6, 6, 7};

static int folder_of(const char *path)
{
    for (int i = 0; folders[i]; i++) {
        size_t n = strlen(folders[i]);
        if (!strncmp(path, folders[i], n) && path[n] == '/')
            return i;
    }
    return -1;
}

/* May a file of folder a lean on one of folder b? */
static int allowed(int a, int b) { return a == b || rank[b] < rank[a]; }

enum { MAXF = 512 };
typedef struct files {
    char name[MAXF][128]; /* "sim/network" (a .c and its .h are one file) */
    int n;
    unsigned char edge[MAXF][MAXF];
} files;

static int file_id(files *F, const char *path)
{
    char base[128];
    snprintf(base, sizeof base, "%s", path);
    char *dot = strrchr(base, '.');
    if (dot && (!strcmp(dot, ".c") || !strcmp(dot, ".h") || !strcmp(dot, ".o")))
        *dot = 0;
    /* X_internal.h is X's own private header: part of X */
    size_t n = strlen(base);
    if (n > 9 && !strcmp(base + n - 9, "_internal"))
        base[n - 9] = 0;
    for (int i = 0; i < F->n; i++)
        if (!strcmp(F->name[i], base))
            return i;
    assert_true(F->n < MAXF);
    snprintf(F->name[F->n], sizeof F->name[0], "%s", base);
    return F->n++;
}

/* Depth-first search for a circle; prints the first one found. */
static int find_cycle(const files *F, int u, int *state, int *stack, int depth)
{
    state[u] = 1;
    stack[depth] = u;
    for (int v = 0; v < F->n; v++) {
        if (!F->edge[u][v] || u == v)
            continue;
        if (state[v] == 1) {
            char msg[2048] = "";
            size_t o = 0;
            int k = depth;
            while (k >= 0 && stack[k] != v)
                k--;
            for (int i = k; i <= depth && o < sizeof msg - 200; i++)
                o += (size_t)snprintf(msg + o, sizeof msg - o, "%s -> ", F->name[stack[i]]);
            snprintf(msg + o, sizeof msg - o, "%s", F->name[v]);
            print_error("circle: %s\n", msg);
            return 1;
        }
        if (!state[v] && find_cycle(F, v, state, stack, depth + 1))
            return 1;
    }
    state[u] = 2;
    return 0;
}

static int has_cycle(const files *F)
{
    int *state = calloc((size_t)F->n, sizeof *state), *stack = calloc((size_t)F->n + 1, sizeof *stack);
    int found = 0;
    for (int u = 0; u < F->n && !found; u++)
        if (!state[u])
            found = find_cycle(F, u, state, stack, 0);
    free(state);
    free(stack);
    return found;
}

static void test_includes_point_down(void **st)
{
    files *F = calloc(1, sizeof *F);
    int bad = 0, seen = 0;
    for (int f = 0; folders[f]; f++) {
        DIR *d = opendir(folders[f]);
        assert_non_null(d);
        struct dirent *e;
        while ((e = readdir(d))) {
            size_t n = strlen(e->d_name);
            if (n < 3 || (strcmp(e->d_name + n - 2, ".c") && strcmp(e->d_name + n - 2, ".h")))
                continue;
            char path[300], line[1024];
            snprintf(path, sizeof path, "%s/%s", folders[f], e->d_name);
            FILE *fp = fopen(path, "r");
            assert_non_null(fp);
            int me = file_id(F, path);
            seen++;
            while (fgets(line, sizeof line, fp)) {
                char inc[256];
                if (sscanf(line, " #include \"%255[^\"]\"", inc) != 1)
                    continue;
                int g = folder_of(inc);
                if (g < 0)
                    continue; /* tests/, build/gen: not library layers */
                if (!allowed(f, g)) {
                    print_error("%s includes %s: %s sits above %s\n", path, inc, folders[g], folders[f]);
                    bad++;
                }
                F->edge[me][file_id(F, inc)] = 1;
            }
            fclose(fp);
        }
        closedir(d);
    }
    assert_true(seen > 60);
    assert_int_equal(bad, 0);
    assert_false(has_cycle(F));
    free(F);
}

/* Symbols: which object defines each, from `nm` over the sanitizer build. */
typedef struct sym {
    char name[256];
    int file;
} sym;

static void test_calls_point_down(void **st)
{
    const char *build = getenv("NESIM_BUILD") ? getenv("NESIM_BUILD") : "build/san";
    files *F = calloc(1, sizeof *F);
    enum { MAXS = 40000 };
    sym *defs = calloc(MAXS, sizeof *defs);
    int nd = 0, bad = 0;
    /* pass 1: definitions; pass 2: uses */
    for (int pass = 0; pass < 2; pass++)
        for (int f = 0; folders[f]; f++) {
            char cmd[512];
            snprintf(cmd, sizeof cmd, "cd %s && for o in %s/*.o; do [ -e \"$o\" ] && nm -P \"$o\" | sed \"s|^|$o |\"; done",
                     build, folders[f]);
            FILE *p = popen(cmd, "r");
            assert_non_null(p);
            char line[512];
            while (fgets(line, sizeof line, p)) {
                char obj[256], name[256], type[8], src[300];
                if (sscanf(line, "%255s %255s %7s", obj, name, type) != 3)
                    continue;
                /* an object left by a source since moved or deleted is not the tree's */
                snprintf(src, sizeof src, "%.*s.c", (int)strlen(obj) - 2, obj);
                FILE *exists = fopen(src, "r");
                if (!exists)
                    continue;
                fclose(exists);
                int me = file_id(F, obj);
                int defined = strchr("TDBRCVW", type[0]) != NULL;
                if (pass == 0 && defined && nd < MAXS) {
                    snprintf(defs[nd].name, sizeof defs[nd].name, "%s", name);
                    defs[nd++].file = me;
                } else if (pass == 1 && type[0] == 'U') {
                    for (int k = 0; k < nd; k++)
                        if (!strcmp(defs[k].name, name) && defs[k].file != me) {
                            int g = folder_of(F->name[defs[k].file]);
                            if (!allowed(f, g)) {
                                print_error("%s calls %s of %s: %s sits above %s\n", obj, name, F->name[defs[k].file],
                                            folders[g], folders[f]);
                                bad++;
                            }
                            F->edge[me][defs[k].file] = 1;
                            break;
                        }
                }
            }
            pclose(p);
        }
    print_message("%d symbols defined\n", nd);
    assert_true(nd > 300);
    assert_int_equal(bad, 0);
    assert_false(has_cycle(F));
    free(defs);
    free(F);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_includes_point_down),
        cmocka_unit_test(test_calls_point_down),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
