# SPDX-License-Identifier: MIT
# enrichfarm: one Makefile for the library, the three programs, the test tools
# and the tests.  `make` builds bin/enqueuer, bin/worker, bin/statusd (and the
# mock provider used by tests, demo and benchmarks); `make test` installs what
# is missing, builds and runs every test; `make test SAN=1` does it under
# AddressSanitizer and UndefinedBehaviorSanitizer.

VERSION  := 0.1.0
BUILD    ?= build
BIN      ?= bin
SAN      ?= 0
WERROR   ?= 1
CC       ?= cc
V        ?= 0

PKGS     := hiredis libuv libcurl libcjson openssl libpq
TESTPKGS := cmocka

CFLAGS_BASE := -std=c11 -Wall -Wextra -Wshadow -Wpointer-arith -Wformat=2 \
               -D_GNU_SOURCE -DEF_VERSION='"$(VERSION)"' -g -MMD -MP \
               -Ilib -I$(BUILD)/gen
ifeq ($(WERROR),1)
CFLAGS_BASE += -Werror
endif
ifeq ($(SAN),1)
OPT      ?= -O1
CFLAGS_BASE += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS  += -fsanitize=address,undefined
else
OPT      ?= -O2
endif

PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
TEST_LIBS  := $(shell pkg-config --libs $(TESTPKGS) 2>/dev/null)
ALL_CFLAGS := $(CFLAGS_BASE) $(OPT) $(PKG_CFLAGS) $(CFLAGS)
LIBS       := $(PKG_LIBS) -lm

ifeq ($(V),1)
Q :=
else
Q := @
endif

# ---- sources ----
LIB_SRC    := $(wildcard lib/*.c)
LUA_SRC    := $(sort $(wildcard scripts/*.lua))
GEN_SRC    := $(BUILD)/gen/ef_scripts_gen.c
LIB_OBJ    := $(LIB_SRC:%.c=$(BUILD)/%.o) $(BUILD)/gen/ef_scripts_gen.o
ASSETS     := $(sort $(wildcard statusd/assets/*))
ASSET_SRC  := $(BUILD)/gen/ef_assets_gen.c
PROGS      := enqueuer worker statusd
PROG_MAIN  = $(BUILD)/$(1)/main.o
PROG_OBJ   = $(patsubst %.c,$(BUILD)/%.o,$(filter-out $(1)/main.c,$(wildcard $(1)/*.c)))
MOCK_SRC   := $(wildcard tests/mockprov/*.c)
MOCK_OBJ   := $(MOCK_SRC:%.c=$(BUILD)/%.o)
UNIT_SRC   := $(wildcard tests/unit/test_*.c)
UNIT_BIN   := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
HELPER_SRC := $(wildcard tests/helpers/*.c)
HELPER_BIN := $(HELPER_SRC:tests/helpers/%.c=$(BUILD)/tests/%)

.PHONY: all deps test unit integration clean bench fuzz demo install check-deps
all: $(addprefix $(BIN)/,$(PROGS)) $(if $(MOCK_SRC),$(BIN)/mockprov)

# ---- dependencies (Debian) ----
deps:
	@sh mk/deps.sh

# ---- generated Lua embedding ----
$(GEN_SRC): $(LUA_SRC) mk/embed.sh
	@mkdir -p $(dir $@)
	@echo "  GEN   $@"
	$(Q)sh mk/embed.sh $@ $(LUA_SRC)

$(ASSET_SRC): $(ASSETS) mk/embed_assets.sh
	@mkdir -p $(dir $@)
	@echo "  GEN   $@"
	$(Q)sh mk/embed_assets.sh $@ $(ASSETS)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC    $<"
	$(Q)$(CC) $(ALL_CFLAGS) -c $< -o $@

$(BUILD)/gen/%.o: $(BUILD)/gen/%.c
	@echo "  CC    $<"
	$(Q)$(CC) $(ALL_CFLAGS) -c $< -o $@

# every library object may include the generated header
$(LIB_SRC:%.c=$(BUILD)/%.o): $(GEN_SRC)

$(BUILD)/libef.a: $(LIB_OBJ)
	@echo "  AR    $@"
	$(Q)rm -f $@ && ar rcs $@ $^

define PROG_RULES
$(BUILD)/$(1).a: $(call PROG_OBJ,$(1)) $(if $(filter statusd,$(1)),$(BUILD)/gen/ef_assets_gen.o) | $(GEN_SRC)
	@mkdir -p $$(dir $$@)
	@echo "  AR    $$@"
	$(Q)rm -f $$@ && ar rcs $$@ $$^
$(call PROG_OBJ,$(1)) $(call PROG_MAIN,$(1)): $(GEN_SRC)
$(BIN)/$(1): $(call PROG_MAIN,$(1)) $(BUILD)/$(1).a $(BUILD)/libef.a
	@mkdir -p $(BIN)
	@echo "  LINK  $$@"
	$(Q)$(CC) $(LDFLAGS) -o $$@ $$^ $(LIBS)
endef
$(foreach p,$(PROGS),$(eval $(call PROG_RULES,$(p))))

$(BIN)/mockprov: $(MOCK_OBJ)
	@mkdir -p $(BIN)
	@echo "  LINK  $@"
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

# unit tests link the library and every program archive (not the mains)
$(BUILD)/tests/test_%: tests/unit/test_%.c $(addprefix $(BUILD)/,$(addsuffix .a,$(PROGS))) $(BUILD)/libef.a
	@mkdir -p $(dir $@)
	@echo "  LINK  $@"
	$(Q)$(CC) $(ALL_CFLAGS) -Itests/unit $(LDFLAGS) -o $@ $< \
		$(addprefix $(BUILD)/,$(addsuffix .a,$(PROGS))) $(BUILD)/libef.a $(LIBS) $(TEST_LIBS)

$(BUILD)/tests/%: tests/helpers/%.c $(BUILD)/libef.a
	@mkdir -p $(dir $@)
	@echo "  LINK  $@"
	$(Q)$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libef.a $(LIBS)

# ---- tests ----
# the build before the tests uses every core unless make was given -j
TEST_BUILD_JOBS = $(if $(filter -j%,$(MAKEFLAGS)),,-j$(shell nproc 2>/dev/null || echo 1))

test: deps
	@$(MAKE) --no-print-directory $(TEST_BUILD_JOBS) all $(UNIT_BIN) $(HELPER_BIN)
	@BUILD=$(BUILD) BIN=$(BIN) SAN=$(SAN) bash tests/run.sh

unit: all $(UNIT_BIN)
	@BUILD=$(BUILD) BIN=$(BIN) bash tests/run.sh unit

integration: all $(HELPER_BIN)
	@BUILD=$(BUILD) BIN=$(BIN) bash tests/run.sh integration

bench: all
	@bash bench/run $(if $(filter-out 0,$(QUICK)),--quick) $(BENCH_ARGS)

clean:
	rm -rf $(BUILD) $(BIN)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

# ---- demo and install ----
# `make demo` runs the whole farm on this machine (scripts/demo.sh; options
# through DEMO_ARGS, e.g. DEMO_ARGS='--sample ids').  `make install` copies
# the three programs (the Lua scripts are inside them) to $(PREFIX)/bin and
# the systemd units to $(PREFIX)/lib/systemd/system; DESTDIR is honoured.
PREFIX  ?= /usr/local
DESTDIR ?=
SYSTEMD_UNITS := $(wildcard scripts/systemd/*.service)

demo: deps
	@$(MAKE) --no-print-directory all
	@BIN=$(BIN) bash scripts/demo.sh $(DEMO_ARGS)

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/systemd/system \
		$(DESTDIR)$(PREFIX)/share/enrichfarm/examples
	install -m 0755 $(addprefix $(BIN)/,$(PROGS)) $(DESTDIR)$(PREFIX)/bin/
	for u in $(SYSTEMD_UNITS); do \
		sed 's|/usr/local/|$(PREFIX)/|g' $$u >$(DESTDIR)$(PREFIX)/lib/systemd/system/$$(basename $$u) && \
		chmod 0644 $(DESTDIR)$(PREFIX)/lib/systemd/system/$$(basename $$u) || exit 1; done
	install -m 0644 scripts/systemd/enrichfarm.env $(DESTDIR)$(PREFIX)/share/enrichfarm/
	install -m 0644 examples/*.json $(DESTDIR)$(PREFIX)/share/enrichfarm/examples/

# ---- soak ----
# `make soak` runs the long form of the chaos tests (tests/soak/run.sh, about
# 12 minutes): the scenarios of tests/integration/test_chaos.sh at soak size.
# SOAK_ARGS names a subset, e.g. SOAK_ARGS='crash memory'.
.PHONY: soak
soak: deps
	@$(MAKE) --no-print-directory all
	@BUILD=$(BUILD) BIN=$(BIN) bash tests/soak/run.sh $(SOAK_ARGS)

# ---- containers ----
# `make compose-test` runs docker-compose.yml for real (tests/compose/run.sh):
# its own dockerd without iptables, base images from mmdebstrap, the stack
# with three workers, faults mid-job, down, the sentinel profile with its
# primary killed mid-job; the host checked as it was.  As
# root; it says `skip` and exits 0 where dockerd cannot run.  .ci/run runs it
# after `make test`.
.PHONY: compose-test
compose-test:
	@bash tests/compose/run.sh

# ---- fuzzing ----
# `make fuzz` builds the libFuzzer targets in tests/fuzz/ with clang (ASan and
# UBSan) and runs each for FUZZ_SECONDS (default 60), or FUZZ_RUNS executions
# when set; seeds come from tests/fuzz/corpus/NAME/, new corpus entries,
# crashes and logs go under $(BUILD)/fuzz/.  `make test` runs a short pass of
# every target (tests/integration/test_fuzz_short.sh).
FUZZ_SECONDS ?= 60
FUZZ_RUNS    ?= 0
fuzz:
	@BUILD=$(BUILD) FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_RUNS=$(FUZZ_RUNS) sh tests/fuzz/run.sh
