# inference-operator — build, test, run.
#
#   make              build/inference-operator (LEAN=1: lean static libcurl and
#                     GnuTLS from deps/, ~2 minutes once; LEAN=0: Debian's
#                     shared libraries; STATIC=1: a static PIE, see below)
#   make test         unit + integration (+ e2e once the control plane exists)
#   make asan         the same tests under AddressSanitizer + UBSan
#   make valgrind     unit + integration under valgrind memcheck
#   make crd          regenerate charts/inference-operator/crds/ from the field table
#   make bench-webhook  webhook throughput/latency against the stack's floor
#   make cluster-up / cluster-down   local kube-apiserver + etcd (tests/cluster);
#                     CLUSTER_MODE=gpu: a simulated GPU cluster (scheduler,
#                     controller-manager, GPU nodes)
#   make e2e          end-to-end tests against that control plane
#   make e2e-faults   the reconciler through a fault-injecting proxy
#   make soak         SOAK_MINUTES of load + churn + restarts; RSS (bench)
#   make e2e-gpu      end-to-end tests on the simulated GPU cluster
#   make demo / demo-down            the product running for real, locally,
#                     on the simulated GPU cluster
#   make image        build/image/inference-operator.tar (OCI, no Docker)
#   make layout       regenerate layout/hot.ld, the static binary's link
#                     order, from a profile on the local control plane
#   make test-chart   the Helm chart against the real API server
#   make clean

CC       ?= cc
BUILD    ?= build
WARN     := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wvla \
            -Wformat=2 -Wno-format-nonliteral
CPPFLAGS += -D_DEFAULT_SOURCE -D_POSIX_C_SOURCE=200809L \
            -Iserver -Iwebhook -Icerts -Ireconciler
CFLAGS   ?= -O2 -g

# Dependencies and how they are linked.
#
# LEAN=1 (default): libcurl and GnuTLS are static libraries built from
#   Debian's own source packages by deps/curl.sh (HTTP/HTTPS over
#   GnuTLS only) and deps/gnutls.sh (no p11-kit, IDN, TPM, SRP, ...), cached
#   outside the repo (~2 minutes cold on 2 cores, then reused); the other
#   libraries are Debian's static ones; only libc and libcJSON (no static
#   library in Debian) stay shared.  Webhook-only startup RSS ~4.1 MB
#   (reconciler-only 5.0 MB) instead of 8.6 MB: Debian's libcurl-gnutls
#   alone loads libssh2 (+ OpenSSL's libcrypto), Kerberos, LDAP, SASL, RTMP, psl, idn2, brotli and
#   zstd, GnuTLS loads p11-kit, and every shared library costs its
#   relocations and the partly-used pages around what it runs.
# LEAN=0: everything from Debian's shared libraries (libcurl4-gnutls-dev);
#   the fallback when the source packages cannot be had.
# Switching LEAN (or CC/CFLAGS/LDFLAGS) rebuilds: $(BUILD)/flags records the
# last build's and everything depends on it.
LEAN     ?= 1
ifeq ($(LEAN),1)
CURL_PREFIX   := $(shell bash deps/curl.sh --prefix)
GNUTLS_PREFIX := $(shell bash deps/gnutls.sh --prefix)
ifeq ($(and $(CURL_PREFIX),$(GNUTLS_PREFIX)),)
$(error deps/curl.sh or deps/gnutls.sh --prefix failed (see above); or build with LEAN=0)
endif
DEP_LIBS := $(CURL_PREFIX)/lib/libcurl.a $(GNUTLS_PREFIX)/lib/libgnutls.a
PKGS     := libcjson
CPPFLAGS += -I$(CURL_PREFIX)/include -I$(GNUTLS_PREFIX)/include -DCURL_STATICLIB
# Pack relative relocations (glibc >= 2.36): less to read and dirty at
# startup.  The operator's link also drops unused sections (not the
# tests': Criterion finds its tests in a section nothing references).
LDFLAGS  += -Wl,-z,pack-relative-relocs -Wl,--as-needed
BIN_LDFLAGS := -Wl,--gc-sections
BSTATIC  := -Wl,-Bstatic
BDYNAMIC := -Wl,-Bdynamic
# STATIC=1 (default): the operator itself is a static PIE, glibc and cJSON
#   (deps/cjson.sh) included: no loader, no shared libc, ~1 MB less RSS
#   (startup, with layout/hot.ld: webhook-only 2.0 MiB, reconciler-only
#   2.9 MiB; bench/README.md).
#   Host names still resolve: glibc 2.36 has its files and dns NSS modules
#   inside libc (tests/kube/run.sh proves it against the API server).  The
#   image is then the binary + passwd/group (image/rootfs.sh).  Sanitized
#   builds stay dynamic, and so does `make valgrind`'s own build (memcheck
#   cannot replace a static binary's malloc); the tests always link
#   dynamically (Criterion is a shared library).  STATIC=0: the binary
#   links libc and libcjson.so dynamically, as the tests do.
STATIC   ?= 1
ifeq ($(STATIC)$(findstring -fsanitize,$(CFLAGS) $(LDFLAGS)),1)
CJSON_PREFIX := $(shell bash deps/cjson.sh --prefix)
DEP_LIBS += $(CJSON_PREFIX)/lib/libcjson.a
PKGS     :=
CPPFLAGS += -I$(CJSON_PREFIX)/include
BIN_LDFLAGS += -static-pie
STATIC_BIN := 1
endif
# Order matters for static archives: users before what they use.
LDLIBS   += $(CURL_PREFIX)/lib/libcurl.a $(BSTATIC) -lmicrohttpd $(BDYNAMIC) \
            $(GNUTLS_PREFIX)/lib/libgnutls.a $(BSTATIC) -lhogweed -lnettle -lgmp \
            -ltasn1 -lz -lyaml -latomic $(BDYNAMIC) $(CJSON_PREFIX:%=%/lib/libcjson.a)
else ifeq ($(LEAN),0)
DEP_LIBS :=
PKGS     := libmicrohttpd gnutls libcurl libcjson yaml-0.1
else
$(error LEAN must be 1 or 0)
endif
# One section per function and per datum: the link drops what nothing
# calls (--gc-sections), and layout/hot.ld orders the rest one function at
# a time, not one file at a time.
CFLAGS   += -std=c17 $(WARN) -pthread -MMD -MP -ffunction-sections -fdata-sections $(if $(PKGS),$(shell pkg-config --cflags $(PKGS)))
LDLIBS   += $(if $(PKGS),$(shell pkg-config --libs $(PKGS))) -pthread -lm
VERSION  := $(shell git describe --tags --always --dirty 2>/dev/null || echo 0.1.0)
CPPFLAGS += -DIO_VERSION='"$(VERSION)"'

# Everything but main() goes into one static library that the binary and
# the tests link, so the tests exercise exactly the shipped code.
LIB_SRC  := $(wildcard server/*.c webhook/*.c certs/*.c reconciler/*.c)
LIB_SRC  := $(filter-out server/main.c,$(LIB_SRC))
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
MAIN_OBJ := $(BUILD)/obj/server/main.o
BIN      := $(BUILD)/inference-operator

UNIT_SRC := $(wildcard tests/unit/*.c)
INTG_SRC := $(wildcard tests/integration/*.c)
KUBE_SRC := $(wildcard tests/kube/*.c)
TEST_LIBS := $(LDLIBS) -lcriterion

.PHONY: all test unit integration e2e e2e-gpu kube-live test-chart image asan valgrind crd layout \
        crd-check clean \
        bench fuzz bench-webhook cluster-up cluster-down demo demo-down \
        e2e-faults soak
all: $(BIN)

# The lean libraries: built once per configuration into the cache (their
# headers are needed before anything compiles).
ifeq ($(LEAN),1)
$(CURL_PREFIX)/lib/libcurl.a:
	bash deps/curl.sh >/dev/null
$(GNUTLS_PREFIX)/lib/libgnutls.a:
	bash deps/gnutls.sh >/dev/null
ifneq ($(CJSON_PREFIX),)
$(CJSON_PREFIX)/lib/libcjson.a:
	bash deps/cjson.sh >/dev/null
endif
endif

# Written when it changes (not the version string: a commit alone does not
# rebuild everything).
FLAGS_NOW := LEAN=$(LEAN) STATIC=$(STATIC) $(CC) $(CFLAGS) | $(LDFLAGS) $(BIN_LDFLAGS) $(LDLIBS)
ifneq ($(file <$(BUILD)/flags),$(FLAGS_NOW))
$(shell mkdir -p $(BUILD))
$(file >$(BUILD)/flags,$(FLAGS_NOW))
endif

$(BUILD)/obj/%.o: %.c $(BUILD)/flags | $(DEP_LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

$(BUILD)/libinference.a: $(LIB_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

# The static binary's code and constants in the order layout/hot.ld gives:
# what the operator runs and reads first, the rest after, so the 64 KiB
# windows the kernel maps around each fault hold what is used (startup RSS
# 4.1 -> see layout/README.md).  A link map beside the binary lets
# `make layout` regenerate the order from a profile.  Not part of
# $(BUILD)/flags: a new order relinks, it does not recompile.
LAYOUT_LD := layout/hot.ld
ifeq ($(STATIC_BIN),1)
$(BIN): BDYNAMIC :=
BIN_LAYOUT := $(LAYOUT_LD)
BIN_LAYOUT_FLAGS = -Wl,-T,$(LAYOUT_LD) -Wl,-Map,$@.map
endif
$(BIN): $(MAIN_OBJ) $(BUILD)/libinference.a $(BUILD)/flags $(BIN_LAYOUT)
	$(CC) $(CFLAGS) $(LDFLAGS) $(BIN_LDFLAGS) $(BIN_LAYOUT_FLAGS) -o $@ \
	  $(filter-out $(BUILD)/flags $(BIN_LAYOUT),$^) $(LDLIBS)

$(BUILD)/tests/unit: $(UNIT_SRC:%.c=$(BUILD)/obj/%.o) $(BUILD)/libinference.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(TEST_LIBS)

$(BUILD)/tests/integration: $(INTG_SRC:%.c=$(BUILD)/obj/%.o) $(BUILD)/libinference.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(TEST_LIBS)

$(BUILD)/tests/kube: $(KUBE_SRC:%.c=$(BUILD)/obj/%.o) $(BUILD)/libinference.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(TEST_LIBS)

# Criterion runs each test in its own process; -j2 matches the machine.
CRITERION_FLAGS ?= --jobs=2

unit: $(BUILD)/tests/unit $(BIN)
	$(BUILD)/tests/unit $(CRITERION_FLAGS)

integration: $(BUILD)/tests/integration $(BIN)
	IO_BIN=$(abspath $(BIN)) $(BUILD)/tests/integration $(CRITERION_FLAGS)

test: unit integration crd-check e2e e2e-faults e2e-gpu kube-live test-chart

# The Helm chart rendered, linted, applied (server dry run) and installed
# into the real API server; the binary run in-cluster style under only the
# chart's RBAC; the OCI image built and run from its unpacked rootfs.
test-chart: $(BIN)
	IO_BIN=$(abspath $(BIN)) tests/chart/run.sh

# build/image/inference-operator.tar, an OCI archive built without Docker.
image: $(BIN)
	image/build.sh $(abspath $(BIN))

# The client, watch, leader election and certificate bootstrap against the
# real kube-apiserver of the local control plane; then the binary itself
# through a host name from /etc/hosts (a static glibc's own resolver).
kube-live: $(BUILD)/tests/kube $(BIN)
	KUBE_TEST_BIN=$(abspath $(BUILD)/tests/kube) tests/kube/run.sh $(CRITERION_FLAGS)
	IO_BIN=$(abspath $(BIN)) tests/kube/resolve.sh

# The control plane is built once into a cache outside the repo
# (~5 minutes cold on 2 cores), then reused.
# CLUSTER_MODE=plain (default) or gpu (tests/cluster/README.md). Given only
# to cluster-up: the test scripts choose their own (e2e plain, e2e-gpu and
# demo gpu), whatever the caller's environment says.
CLUSTER_MODE ?= plain
unexport CLUSTER_MODE
cluster-up:
	CLUSTER_MODE=$(CLUSTER_MODE) tests/cluster/up.sh

cluster-down:
	tests/cluster/down.sh

# e2e uses the binary of this build tree (plain or sanitized).
e2e: $(BIN)
	IO_BIN=$(abspath $(BIN)) tests/e2e/run.sh

# The loopback TCP proxy the fault tests steer (tests/faultproxy): a test
# tool, built with the same warnings but none of the operator's libraries.
FAULTPROXY := $(BUILD)/faultproxy
$(FAULTPROXY): tests/faultproxy/faultproxy.c $(BUILD)/flags
	@mkdir -p $(dir $@)
	$(CC) -D_GNU_SOURCE $(CFLAGS) $(LDFLAGS) -o $@ $< -pthread

# Faults between the operator and the API server (tests/e2e/faults.sh):
# resets, delays, a partition, a half-open connection, kube-apiserver and
# operator crashes, etcd compaction, a second status writer.
e2e-faults: $(BIN) $(FAULTPROXY)
	IO_BIN=$(abspath $(BIN)) FAULTPROXY=$(abspath $(FAULTPROXY)) tests/e2e/faults.sh

# Soak (bench, not CI): SOAK_MINUTES (30) of webhook load + churn of
# SOAK_OBJECTS (1000) InferenceServices + API server restarts; prints RSS
# every minute, fails on unbounded growth or unconverged objects.
soak: $(BIN)
	$(MAKE) -C bench/webhook BUILD=$(abspath $(BUILD))/bench
	IO_BIN=$(abspath $(BIN)) LOAD_BIN=$(abspath $(BUILD))/bench/load bench/soak.sh
# Pods really scheduled, started and garbage-collected: kube-scheduler,
# kube-controller-manager and simulated GPU nodes (build/gpu-cluster).
e2e-gpu: $(BIN)
	IO_BIN=$(abspath $(BIN)) tests/e2e/gpu.sh

demo: $(BIN)
	IO_BIN=$(abspath $(BIN)) tests/demo/demo.sh

demo-down:
	tests/demo/demo-down.sh

# The sanitizer build lives in its own tree so it never mixes objects.
# One criterion job at a time: with two, criterion's own runner leaks 48
# bytes now and then and LeakSanitizer fails the run on it.
# float-cast-overflow is not part of GCC's "undefined": a double from JSON
# converted to an integer out of its range is exactly what hostile input
# does, so it is asked for by name.  ASAN_TARGETS picks other targets
# (e.g. "unit integration") for a quicker sanitized run.
ASAN_SAN     := address,undefined,float-cast-overflow
ASAN_TARGETS ?= test
asan:
	$(MAKE) BUILD=build/asan CFLAGS="-O1 -g -fno-omit-frame-pointer \
	  -fsanitize=$(ASAN_SAN) -fno-sanitize-recover=all" \
	  LDFLAGS="-fsanitize=$(ASAN_SAN)" CRITERION_FLAGS=--jobs=1 $(ASAN_TARGETS)

# Memcheck over every unit and integration test, and over every
# inference-operator the integration tests start.
#  - Each criterion runner runs under valgrind with --trace-children, so the
#    worker that boxfort re-executes for every test is checked, and so is
#    whatever that worker execs.
#  - Criterion ignores a worker's exit status once its test has reported,
#    so --error-exitcode cannot catch a leak found at a worker's exit: every
#    process logs to its own file instead, and any non-empty log (with
#    --quiet a clean process writes nothing) fails the target.
#  - The binaries run from private copies: boxfort re-executes its binary by
#    path, and a relink during the run sends workers into the wrong code.
#  - One runner per suite, VG_JOBS at a time, biggest first: a runner starts
#    its workers one after another (~1.3 s each under valgrind).
#  - IO_UNDER_VALGRIND=1 lets a test scale down what cannot run at valgrind
#    speed (test_server.c: 16 concurrent clients instead of 200).
#  - tests/valgrind.supp only hides criterion's own IPC state in a worker
#    that crashed, never a frame of ours.
VG_DIR   := $(BUILD)/valgrind
VG_JOBS  ?= 2
VALGRIND := valgrind --error-exitcode=99 --leak-check=full \
            --show-leak-kinds=definite,indirect,possible \
            --errors-for-leak-kinds=definite,indirect,possible \
            --trace-children=yes --track-fds=no --quiet \
            --suppressions=$(abspath tests/valgrind.supp)
#  - Memcheck replaces malloc only in a dynamic binary: with the default
#    static PIE the target rebuilds everything with STATIC=0 in its own
#    tree ($(BUILD)/dynamic), as asan does, so the operators the tests
#    start are checked too.
ifeq ($(STATIC_BIN),1)
valgrind:
	$(MAKE) STATIC=0 BUILD=$(BUILD)/dynamic valgrind
else
valgrind: $(BUILD)/tests/unit $(BUILD)/tests/integration $(BIN)
	@rm -rf $(VG_DIR) && mkdir -p $(VG_DIR)/log
	@cp $^ $(VG_DIR)/
	@cd $(VG_DIR) && export IO_BIN=$$PWD/inference-operator IO_UNDER_VALGRIND=1 \
	  IO_SOURCE_DIR=$(abspath .); \
	for t in unit integration; do \
	  ./$$t --list | sed -n "s/^\([A-Za-z0-9_]*\): \([0-9]*\) tests*$$/\2 $$t \1/p" \
	    >$$t.suites; \
	  test -s $$t.suites || { echo "valgrind: $$t lists no suites"; exit 1; }; \
	done; \
	sort -rn *.suites | cut -d' ' -f2- | xargs -n2 -P$(VG_JOBS) sh -c ' \
	  $(VALGRIND) --log-file=$$PWD/log/$$1-$$2.%p.vg ./$$1 --jobs=1 \
	    --filter "$$2/*" >log/$$1-$$2.out 2>&1; rc=$$?; \
	  echo "== $$1 $$2 (exit $$rc)"; cat log/$$1-$$2.out; exit $$rc' sh; \
	rc=$$?; bad=$$(find log -name '*.vg' -size +0c | sort); \
	for f in $$bad; do echo "== valgrind: $$f"; cat $$f; done; \
	echo "valgrind: $$(find log -name '*.vg' | wc -l) processes checked," \
	  "$$(echo $$bad | wc -w) with errors or leaks; runners exit $$rc"; \
	test $$rc -eq 0 && test -z "$$bad"
endif

CRD_FILE := charts/inference-operator/crds/inferenceservices.ai.example.com.yaml
crd: $(BIN)
	@mkdir -p $(dir $(CRD_FILE))
	$(BIN) crd > $(CRD_FILE)

# The committed CRD must be exactly what the table generates.
crd-check: $(BIN)
	@$(BIN) crd | diff -u $(CRD_FILE) - \
	  && echo "crd-check: $(CRD_FILE) matches the field table" \
	  || { echo "crd-check: $(CRD_FILE) is stale: run 'make crd'"; exit 1; }

# The three operators (ours, controller-runtime, kube-rs) side by side on
# the local control plane; figures, not pass/fail.  BENCH_ARGS="--n 1000".
bench: $(BIN)
	bench/run.sh $(BENCH_ARGS)

# libFuzzer targets, FUZZ_SECONDS each from a copy of their seeds; any
# crash, leak, timeout or sanitizer report fails (fuzz/README.md).  Needs
# clang-14 + libclang-rt-14-dev; builds its own objects into build/fuzz.
FUZZ_SECONDS ?= 60
FUZZ_JOBS    ?= 1
fuzz:
	FUZZ_JOBS=$(FUZZ_JOBS) fuzz/run.sh $(FUZZ_SECONDS)

# Not part of the tests: a profile of the operator (valgrind + perf on the
# local control plane, ~15 minutes) that rewrites layout/hot.ld.
layout: $(BIN)
	IO_BIN=$(abspath $(BIN)) layout/profile.sh

bench-webhook: $(BIN)
	$(MAKE) -C bench/webhook BUILD=$(abspath $(BUILD))/bench
	bench/webhook/run.sh $(abspath $(BIN)) $(abspath $(BUILD))/bench

clean:
	rm -rf build

-include $(LIB_OBJ:.o=.d) $(MAIN_OBJ:.o=.d) \
         $(UNIT_SRC:%.c=$(BUILD)/obj/%.d) $(INTG_SRC:%.c=$(BUILD)/obj/%.d) \
         $(KUBE_SRC:%.c=$(BUILD)/obj/%.d)
