# avps: one binary, bin/avps. `make` builds it (installing missing Debian packages
# first), `make test` runs every test, plain and under ASan/UBSan and valgrind,
# `make demo` runs the main job on the embedded default.

CC ?= cc
# the README's `make test` builds on every core without being told
MAKEFLAGS += -j$(shell nproc)
PKGS := ompi-c libcjson libpng libzstd libdeflate
# the native engine (issue 7): libjpeg-turbo for JPEG input
PKGS += libjpeg
# avps show and the report's pictures (viz/): FreeType for class names
PKGS += freetype2
# OpenBLAS's headers only: the engine opens the library with dlopen on first use
# (model/nn/cpu/gemm.c), so commands that never run it do not start its threads
HEADER_PKGS := openblas
DEPS_OK := $(shell scripts/setup-deps >&2 && echo ok)
ifneq ($(DEPS_OK),ok)
$(error scripts/setup-deps could not install the dependencies; see above)
endif
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) $(HEADER_PKGS))
PKG_LIBS := $(shell pkg-config --libs $(PKGS)) -lm -lpthread

# -ffp-contract=off: no fused multiply-adds, so sums are the same on every machine.
CFLAGS_BASE := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -ffp-contract=off -g $(PKG_CFLAGS)
CFLAGS ?= -O2
SAN_FLAGS := -O1 -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer

MODULES := data model ensemble fusion eval viz mpi
# a module's sources and headers, in sub-folders too (the engine: model/nn/core, cpu, nets/...)
SRCS := $(sort $(foreach m,$(MODULES),$(shell find $(m) -name '*.c')))
LIB_SRCS := $(filter-out mpi/main.c,$(SRCS))
HDRS := $(sort $(foreach m,$(MODULES),$(shell find $(m) -name '*.h')))

OBJS := $(SRCS:%.c=build/obj/%.o)
SAN_OBJS := $(SRCS:%.c=build/san/%.o)
LIB_OBJS := $(LIB_SRCS:%.c=build/obj/%.o)
SAN_LIB_OBJS := $(LIB_SRCS:%.c=build/san/%.o)

UNIT_SRCS := $(wildcard tests/unit_*.c)
UNITS := $(UNIT_SRCS:tests/%.c=build/tests/%)
SAN_UNITS := $(UNIT_SRCS:tests/%.c=build/tests/san_%)
TOOLS := build/tests/json_compare build/tests/npy_tool build/tests/san_npy_tool build/tests/pan_compare \
         build/tests/deform_tool build/tests/san_deform_tool \
         build/tests/upsnet_heads_tool build/tests/san_upsnet_heads_tool \
         build/tests/png_tool build/tests/san_png_tool

.PHONY: all test demo bench clean check-clang
all: bin/avps

bin/avps: $(OBJS)
	@mkdir -p bin
	$(CC) $(CFLAGS) -o $@ $(OBJS) $(PKG_LIBS)

build/san/avps: $(SAN_OBJS)
	$(CC) $(SAN_FLAGS) -o $@ $(SAN_OBJS) $(PKG_LIBS)

build/obj/%.o: %.c $(HDRS) Makefile
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) $(CFLAGS) -c -o $@ $<

build/san/%.o: %.c $(HDRS) Makefile
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) $(SAN_FLAGS) -c -o $@ $<

build/tests/unit_%: tests/unit_%.c tests/check.h $(LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) $(CFLAGS) -o $@ $< $(LIB_OBJS) $(PKG_LIBS)

build/tests/san_unit_%: tests/unit_%.c tests/check.h $(SAN_LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) $(SAN_FLAGS) -o $@ $< $(SAN_LIB_OBJS) $(PKG_LIBS)

# the differential polygon test and harness carry the rasteriser they check against
build/tests/unit_polygon_diff build/tests/san_unit_polygon_diff build/tests/san_fuzz_polygon \
  build/fuzz/fuzz_polygon: tests/poly_oracle.h

build/tests/json_compare: tests/json_compare.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) $(CFLAGS) -o $@ $< $(PKG_LIBS)

build/tests/npy_tool: tests/npy_tool.c $(LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) $(CFLAGS) -o $@ $< $(LIB_OBJS) $(PKG_LIBS)

build/tests/san_npy_tool: tests/npy_tool.c $(SAN_LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) $(SAN_FLAGS) -o $@ $< $(SAN_LIB_OBJS) $(PKG_LIBS)

build/tests/png_tool: tests/png_tool.c $(LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) $(CFLAGS) -o $@ $< $(LIB_OBJS) $(PKG_LIBS)

build/tests/san_png_tool: tests/png_tool.c $(SAN_LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) $(SAN_FLAGS) -o $@ $< $(SAN_LIB_OBJS) $(PKG_LIBS)

build/tests/deform_tool: tests/deform_tool.c $(LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) $(CFLAGS) -o $@ $< $(LIB_OBJS) $(PKG_LIBS)

build/tests/san_deform_tool: tests/deform_tool.c $(SAN_LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) $(SAN_FLAGS) -o $@ $< $(SAN_LIB_OBJS) $(PKG_LIBS)

build/tests/upsnet_heads_tool: tests/upsnet_heads_tool.c $(LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) $(CFLAGS) -o $@ $< $(LIB_OBJS) $(PKG_LIBS)

build/tests/san_upsnet_heads_tool: tests/upsnet_heads_tool.c $(SAN_LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) $(SAN_FLAGS) -o $@ $< $(SAN_LIB_OBJS) $(PKG_LIBS)

build/tests/pan_compare: tests/pan_compare.c $(LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) $(CFLAGS) -o $@ $< $(LIB_OBJS) $(PKG_LIBS)

build/bench_decode: scripts/bench_decode.c $(LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) $(CFLAGS) -o $@ $< $(LIB_OBJS) $(PKG_LIBS)

# rle_from_polygon's CPU time over a ground truth's polygons (docs/performance.md).
build/bench_polygon: scripts/bench_polygon.c $(LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) $(CFLAGS) -o $@ $< $(LIB_OBJS) $(PKG_LIBS)

test: bin/avps build/san/avps $(UNITS) $(SAN_UNITS) $(TOOLS) check-clang
	@tests/run

# No warnings with clang either (when it is installed).
check-clang:
	@if command -v clang >/dev/null 2>&1; then \
	  for f in $(SRCS) $(UNIT_SRCS) tests/npy_tool.c tests/png_tool.c tests/deform_tool.c tests/upsnet_heads_tool.c; do clang $(CFLAGS_BASE) -fsyntax-only $$f || exit 1; done; fi

demo: bin/avps
	@scripts/demo

bench: bin/avps build/bench_decode
	@scripts/bench-pq

clean:
	rm -rf build bin

# The two-level fusion's figures in docs/algorithms.md: build/measure_fusion WORLD.
build/measure_fusion: scripts/measure_fusion.c $(LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) $(CFLAGS) -o $@ $< $(LIB_OBJS) $(PKG_LIBS)

# ---- fuzzing (tests/fuzz/, docs/fuzzing.md) ----
# `make test` replays every harness's corpus once through tests/fuzz/driver.c under
# ASan+UBSan (any compiler); `make fuzz` runs each under libFuzzer for FUZZ_TIME seconds.
FUZZ_SRCS := $(filter-out tests/fuzz/driver.c,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_NAMES := $(FUZZ_SRCS:tests/fuzz/%.c=%)
FUZZ_REPLAYS := $(FUZZ_NAMES:%=build/tests/san_%)
FUZZ_BINS := $(FUZZ_NAMES:%=build/fuzz/%)
FUZZ_CC ?= clang
FUZZ_TIME ?= 60
FUZZ_FLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_OBJS := $(LIB_SRCS:%.c=build/fuzz/obj/%.o)
test: $(FUZZ_REPLAYS)
.PHONY: fuzz fuzz-build

build/tests/san_fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/driver.c $(wildcard tests/fuzz/*.h) $(SAN_LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) $(SAN_FLAGS) -o $@ $< tests/fuzz/driver.c $(SAN_LIB_OBJS) $(PKG_LIBS)

build/fuzz/obj/%.o: %.c $(HDRS) Makefile
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(CFLAGS_BASE) $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

build/fuzz/libavps.a: $(FUZZ_OBJS)
	rm -f $@ && ar rcs $@ $(FUZZ_OBJS)

build/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(wildcard tests/fuzz/*.h) build/fuzz/libavps.a
	$(FUZZ_CC) $(CFLAGS_BASE) $(FUZZ_FLAGS) -fsanitize=fuzzer -o $@ $< build/fuzz/libavps.a $(PKG_LIBS)

fuzz-build: $(FUZZ_BINS)

fuzz: fuzz-build
	@tests/fuzz/run-fuzz.sh $(FUZZ_TIME) $(FUZZ_NAMES)
