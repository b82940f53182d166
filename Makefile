# nesim — build, test, bench, run.
#   make run    build and run the main example
#   make test   build and run every test under ASan + UBSan
#   make bench  build optimised and print benchmark figures
# Missing Debian packages are installed first (tools/deps.sh, via apt-get).

ifeq ($(filter clean help,$(MAKECMDGOALS)),)
DEPS_STATUS := $(shell sh tools/deps.sh 1>&2; echo $$?)
ifneq ($(DEPS_STATUS),0)
$(error tools/deps.sh could not install the packages nesim needs)
endif
endif

.DEFAULT_GOAL := all
CC      ?= cc
PKGS    := gsl sqlite3 libevent jansson hdf5 yaml-0.1
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS))
PKG_LIBS   := $(shell pkg-config --libs $(PKGS)) -lm -lpthread
CMOCKA_CFLAGS := $(shell pkg-config --cflags cmocka)
CMOCKA_LIBS   := $(shell pkg-config --libs cmocka)

# Open MPI, when its compiler wrapper is there (tools/deps.sh installs it):
# `mpirun -np K nesim run ...` then splits a run over K ranks (base/comm.h).
MPICC := $(shell command -v mpicc 2>/dev/null)
ifneq ($(MPICC),)
PKG_CFLAGS += -DNESIM_MPI $(shell mpicc --showme:compile)
PKG_LIBS   += $(shell mpicc --showme:link)
endif

WARN    := -std=c11 -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter
DEFS    := -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -I. -DNESIM_CHIPS_DIR=\"$(CURDIR)/chips\"
REL_CFLAGS := $(WARN) $(DEFS) -DNESIM_BUILD=\"release\" -O2 -g $(PKG_CFLAGS)
SAN_FLAGS  := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
SAN_CFLAGS := $(WARN) $(DEFS) -DNESIM_BUILD=\"sanitizer\" -O1 -g $(SAN_FLAGS) $(PKG_CFLAGS)

LIB_SRC   := $(sort $(wildcard base/*.c neurons/*.c net/*.c sim/*.c eval/*.c traces/*.c serve/*.c jobs/*.c))
CLI_SRC   := $(sort $(wildcard cli/*.c))
TEST_SRC  := $(sort $(wildcard tests/test_*.c))
TEST_HELP := $(filter-out tests/support/fuzz_main.c,$(sort $(wildcard tests/support/*.c)))
BENCH_SRC := $(sort $(wildcard bench/*.c))

REL := build/rel
SAN := build/san
# the browser page of `nesim serve`, embedded in the library
PAGE    := build/gen/page.c
$(PAGE): serve/page/index.html tools/embed.sh
	sh tools/embed.sh $< $@ nesim_page_html

LIB_REL := $(patsubst %.c,$(REL)/%.o,$(LIB_SRC)) $(REL)/gen/page.o
LIB_SAN := $(patsubst %.c,$(SAN)/%.o,$(LIB_SRC)) $(SAN)/gen/page.o

$(REL)/gen/page.o: $(PAGE)
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -O2 -c $< -o $@
$(SAN)/gen/page.o: $(PAGE)
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -O1 -c $< -o $@

NESIM      := $(REL)/nesim
NESIM_SAN  := $(SAN)/nesim
TESTS      := $(patsubst tests/%.c,$(SAN)/tests/%,$(TEST_SRC))
BENCHES    := $(patsubst bench/%.c,$(REL)/bench/%,$(BENCH_SRC))

.PHONY: all run run-digits test bench fuzz clean help examples
all: $(NESIM)

help:
	@sed -n '2,6p' Makefile

$(REL)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(REL_CFLAGS) -MMD -MP -c $< -o $@
$(SAN)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(SAN_CFLAGS) $(CMOCKA_CFLAGS) -MMD -MP -c $< -o $@

$(REL)/libnesim.a: $(LIB_REL)
	@rm -f $@; ar rcs $@ $^
$(SAN)/libnesim.a: $(LIB_SAN)
	@rm -f $@; ar rcs $@ $^

$(NESIM): $(patsubst %.c,$(REL)/%.o,$(CLI_SRC)) $(REL)/libnesim.a
	$(CC) $(REL_CFLAGS) $^ -o $@ $(PKG_LIBS)
$(NESIM_SAN): $(patsubst %.c,$(SAN)/%.o,$(CLI_SRC)) $(SAN)/libnesim.a
	$(CC) $(SAN_CFLAGS) $^ -o $@ $(PKG_LIBS)

$(SAN)/tests/%: $(SAN)/tests/%.o $(patsubst %.c,$(SAN)/%.o,$(TEST_HELP)) $(SAN)/libnesim.a
	$(CC) $(SAN_CFLAGS) $^ -o $@ $(CMOCKA_LIBS) $(PKG_LIBS)

$(REL)/bench/%: $(REL)/bench/%.o $(REL)/libnesim.a
	$(CC) $(REL_CFLAGS) $^ -o $@ $(PKG_LIBS)

run: $(NESIM)
	$(NESIM) run examples/tiny-lm --prompt 'The meaning of life is' --generate 80 \
	    --eval-text examples/tiny-lm/heldout.txt --eval-tokens 256 --k 2,2.5,3,3.5,4

run-digits: $(NESIM)
	$(NESIM) run examples/digits/model.json --input examples/digits/test_inputs.npy --labels examples/digits/test_labels.npy

# the fuzz targets without libFuzzer, for the corpus replay of test_fuzz_corpus
FUZZ_SRC := $(sort $(wildcard fuzz/fuzz_*.c))
FUZZ_REPLAY := $(patsubst fuzz/%.c,$(SAN)/fuzz/%,$(FUZZ_SRC))
$(SAN)/fuzz/%: $(SAN)/fuzz/%.o $(SAN)/tests/support/fuzz_main.o $(SAN)/libnesim.a
	$(CC) $(SAN_CFLAGS) $^ -o $@ $(PKG_LIBS)

test: $(TESTS) $(NESIM_SAN) $(NESIM) $(FUZZ_REPLAY)
	@NESIM=$(NESIM_SAN) sh tests/run.sh $(TESTS)

bench: $(BENCHES) $(NESIM)
	@sh bench/run.sh

fuzz: $(patsubst fuzz/%.c,build/fuzz/%,$(FUZZ_SRC))
build/fuzz/%: fuzz/%.c $(LIB_SRC) $(PAGE)
	@mkdir -p $(dir $@)
	clang $(WARN) $(DEFS) -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined $(PKG_CFLAGS) $< $(LIB_SRC) $(PAGE) -o $@ $(PKG_LIBS)

clean:
	rm -rf build

-include $(shell find build -name '*.d' 2>/dev/null)
.SECONDARY:
