# inference-operator — build, test, run.
#
#   make              build/inference-operator
#   make test         unit + integration (+ e2e once the control plane exists)
#   make asan         the same tests under AddressSanitizer + UBSan
#   make valgrind     unit + integration under valgrind memcheck
#   make crd          regenerate charts/inference-operator/crds/ from the field table
#   make bench-webhook  webhook throughput/latency against the stack's floor
#   make cluster-up / cluster-down   local kube-apiserver + etcd (tests/cluster)
#   make e2e          end-to-end tests against that control plane
#   make demo / demo-down            the product running for real, locally
#   make image        build/image/inference-operator.tar (OCI, no Docker)
#   make test-chart   the Helm chart against the real API server
#   make clean

CC       ?= cc
BUILD    ?= build
PKGS     := libmicrohttpd gnutls libcurl libcjson yaml-0.1
WARN     := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wvla \
            -Wformat=2 -Wno-format-nonliteral
CPPFLAGS += -D_DEFAULT_SOURCE -D_POSIX_C_SOURCE=200809L \
            -Iserver -Iwebhook -Icerts -Ireconciler
CFLAGS   ?= -O2 -g
CFLAGS   += -std=c17 $(WARN) -pthread -MMD -MP $(shell pkg-config --cflags $(PKGS))
LDLIBS   += $(shell pkg-config --libs $(PKGS)) -pthread -lm
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

.PHONY: all test unit integration e2e kube-live test-chart image asan valgrind crd \
        crd-check clean \
        bench fuzz bench-webhook cluster-up cluster-down demo demo-down
all: $(BIN)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

$(BUILD)/libinference.a: $(LIB_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

$(BIN): $(MAIN_OBJ) $(BUILD)/libinference.a
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

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

test: unit integration crd-check e2e kube-live test-chart

# The Helm chart rendered, linted, applied (server dry run) and installed
# into the real API server; the binary run in-cluster style under only the
# chart's RBAC; the OCI image built and run from its unpacked rootfs.
test-chart: $(BIN)
	IO_BIN=$(abspath $(BIN)) tests/chart/run.sh

# build/image/inference-operator.tar, an OCI archive built without Docker.
image: $(BIN)
	image/build.sh $(abspath $(BIN))

# The client, watch, leader election and certificate bootstrap against the
# real kube-apiserver of the local control plane.
kube-live: $(BUILD)/tests/kube
	KUBE_TEST_BIN=$(abspath $(BUILD)/tests/kube) tests/kube/run.sh $(CRITERION_FLAGS)

# The control plane is built once into a cache outside the repo
# (~5 minutes cold on 2 cores), then reused.
cluster-up:
	tests/cluster/up.sh

cluster-down:
	tests/cluster/down.sh

# e2e uses the binary of this build tree (plain or sanitized).
e2e: $(BIN)
	IO_BIN=$(abspath $(BIN)) tests/e2e/run.sh

demo: $(BIN)
	IO_BIN=$(abspath $(BIN)) tests/demo/demo.sh

demo-down:
	tests/demo/demo-down.sh

# The sanitizer build lives in its own tree so it never mixes objects.
# One criterion job at a time: with two, criterion's own runner leaks 48
# bytes now and then and LeakSanitizer fails the run on it.
asan:
	$(MAKE) BUILD=build/asan CFLAGS="-O1 -g -fno-omit-frame-pointer \
	  -fsanitize=address,undefined -fno-sanitize-recover=all" \
	  LDFLAGS="-fsanitize=address,undefined" CRITERION_FLAGS=--jobs=1 test

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
valgrind: $(BUILD)/tests/unit $(BUILD)/tests/integration $(BIN)
	@rm -rf $(VG_DIR) && mkdir -p $(VG_DIR)/log
	@cp $^ $(VG_DIR)/
	@cd $(VG_DIR) && export IO_BIN=$$PWD/inference-operator IO_UNDER_VALGRIND=1; \
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

bench-webhook: $(BIN)
	$(MAKE) -C bench/webhook BUILD=$(abspath $(BUILD))/bench
	bench/webhook/run.sh $(abspath $(BIN)) $(abspath $(BUILD))/bench

clean:
	rm -rf build

-include $(LIB_OBJ:.o=.d) $(MAIN_OBJ:.o=.d) \
         $(UNIT_SRC:%.c=$(BUILD)/obj/%.d) $(INTG_SRC:%.c=$(BUILD)/obj/%.d) \
         $(KUBE_SRC:%.c=$(BUILD)/obj/%.d)
