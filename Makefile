# Postern build. `make` builds everything; `make check` runs every test
# (unit, integration, fuzz smoke) on a normal and an ASan/UBSan build.

PREFIX   ?= /usr/local
DESTDIR  ?=
SYSCONFDIR ?= /etc/postern
MANDIR   ?= $(PREFIX)/share/man
PYTHON   ?= /usr/bin/python3
CC       ?= cc

PKGS = openssl libevent libevent_openssl libevent_pthreads sqlite3 libconfig \
       gmime-3.0 libargon2 gumbo libqrencode cairo pangocairo libqpdf liboath \
       libytnef librnp libpq

WARN = -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
       -Wno-deprecated-declarations
HARDEN = -fstack-protector-strong -D_FORTIFY_SOURCE=2 -fPIE
OPT ?= -O2 -g

# SAN=1 selects the ASan/UBSan build, kept in its own tree.
ifeq ($(SAN),1)
B       = build/asan
SANFLAGS = -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
OPT     = -O1 -g
HARDEN  = -fstack-protector-strong -fPIE
else
B       = build
SANFLAGS =
endif

PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CPPFLAGS += -Ishared -Iexternal-portal -D_GNU_SOURCE
CFLAGS   += -std=c11 $(OPT) $(WARN) $(HARDEN) $(SANFLAGS) $(PKG_CFLAGS)
LDFLAGS  += $(SANFLAGS) -pie -Wl,-z,relro,-z,now
LDLIBS   += $(PKG_LIBS) -lpthread -lm

SHARED_SRC := $(sort $(wildcard shared/*.c))
GW_SRC     := $(sort $(filter-out internal-gw/main.c,$(wildcard internal-gw/*.c)))
PORTAL_SRC := $(sort $(filter-out external-portal/main.c,$(wildcard external-portal/*.c external-portal/*/*.c)))
CLI_SRC    := $(sort $(wildcard cli/*.c))
UNIT_SRC   := $(sort $(wildcard tests/unit/test_*.c))
HARNESS_SRC := $(sort $(wildcard tests/harness/*.c))

SHARED_OBJ := $(SHARED_SRC:%.c=$(B)/obj/%.o)
GW_OBJ     := $(GW_SRC:%.c=$(B)/obj/%.o)
PORTAL_OBJ := $(PORTAL_SRC:%.c=$(B)/obj/%.o)
CLI_OBJ    := $(CLI_SRC:%.c=$(B)/obj/%.o)

LIBSHARED := $(B)/libpostern.a
LIBGW     := $(B)/libgw.a
LIBPORTAL := $(B)/libportal.a

BINS = $(B)/internal-gw $(B)/external-portal $(B)/postern-cli
UNIT_BINS = $(UNIT_SRC:tests/unit/%.c=$(B)/tests/%)
HARNESS_BINS = $(HARNESS_SRC:tests/harness/%.c=$(B)/harness/%)

.PHONY: all check check-unit check-integration check-fuzz fuzz bench demo deps \
        install clean asan e2e deb FORCE

all: $(BINS) $(HARNESS_BINS)

$(B)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c $< -o $@

$(LIBSHARED): $(SHARED_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^
$(LIBGW): $(GW_OBJ) | $(LIBSHARED)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $(GW_OBJ)
$(LIBPORTAL): $(PORTAL_OBJ) | $(LIBSHARED)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $(PORTAL_OBJ)

$(B)/internal-gw: $(B)/obj/internal-gw/main.o $(LIBGW) $(LIBSHARED)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
$(B)/external-portal: $(B)/obj/external-portal/main.o $(LIBPORTAL) $(LIBSHARED)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
$(B)/postern-cli: $(CLI_OBJ) $(LIBGW) $(LIBPORTAL) $(LIBSHARED)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
$(B)/tests/%: $(B)/obj/tests/unit/%.o $(LIBGW) $(LIBPORTAL) $(LIBSHARED)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lcmocka
$(B)/harness/%: $(B)/obj/tests/harness/%.o $(LIBGW) $(LIBPORTAL) $(LIBSHARED)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# --- tests ---------------------------------------------------------------

deps:
	@scripts/deps.sh

check: deps
	$(MAKE) all
	$(MAKE) SAN=1 all
	$(MAKE) check-unit
	$(MAKE) SAN=1 check-unit
	$(MAKE) SAN=1 check-integration
	$(MAKE) check-fuzz
	$(MAKE) e2e
	@echo "make check: all suites passed"

check-unit: $(UNIT_BINS)
	@scripts/run-unit.sh $(UNIT_BINS)

# Integration tests run the real daemons of the build named by B, once
# per database back end in TEST_DBS (PostgreSQL: a server of the tests' own).
TEST_DBS ?= sqlite postgresql
check-integration: all
	@set -e; for db in $(TEST_DBS); do \
	    echo "integration tests, database back end: $$db"; \
	    POSTERN_TEST_DB=$$db POSTERN_BUILD=$(CURDIR)/$(B) $(PYTHON) -m pytest -q -rs -p no:cacheprovider tests/integration $(PYTEST_ARGS); \
	done

asan:
	$(MAKE) SAN=1 all

FUZZ_SRC := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BINS := $(FUZZ_SRC:tests/fuzz/%.c=build/fuzz/%)
# Undefined behaviour aborts, like an ASan report, so the smoke fails on it.
FUZZ_CFLAGS = -std=c11 -g -O1 -fsanitize=fuzzer,address,undefined \
	-fno-sanitize-recover=undefined $(PKG_CFLAGS) -Ishared -Iexternal-portal -D_GNU_SOURCE
FUZZ_SHARED := $(SHARED_SRC:%.c=build/fuzz/obj/%.o) $(GW_SRC:%.c=build/fuzz/obj/%.o) $(PORTAL_SRC:%.c=build/fuzz/obj/%.o)
# The objects are rebuilt when FUZZ_CFLAGS change.
build/fuzz/flags: FORCE
	@mkdir -p $(dir $@)
	@echo '$(FUZZ_CFLAGS)' | cmp -s - $@ || echo '$(FUZZ_CFLAGS)' > $@
FORCE:
build/fuzz/obj/%.o: %.c build/fuzz/flags
	@mkdir -p $(dir $@)
	@echo "  FUZZCC  $<"
	@clang $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@
build/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_SHARED) build/fuzz/flags
	@mkdir -p $(dir $@)
	@echo "  FUZZLD  $@"
	@clang $(FUZZ_CFLAGS) -o $@ $(filter %.c %.o,$^) $(PKG_LIBS) -lpthread -lm
.SECONDARY: $(FUZZ_SHARED)

# `make fuzz` fuzzes each target for FUZZ_SECONDS; check-fuzz is a short smoke.
# Leak detection is on in both (a target suppresses a library's own leaks
# itself, as fuzz_tnef does for libytnef).
FUZZ_SECONDS ?= 60
fuzz: $(FUZZ_BINS)
	@for f in $(FUZZ_BINS); do echo "fuzz: $$f"; mkdir -p build/fuzz/corpus/$$(basename $$f); \
	  $$f -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 build/fuzz/corpus/$$(basename $$f) tests/fuzz/seeds/$$(basename $$f) || exit 1; done
check-fuzz: $(FUZZ_BINS)
	@for f in $(FUZZ_BINS); do echo "fuzz smoke: $$f"; mkdir -p build/fuzz/corpus/$$(basename $$f); \
	  $$f -max_total_time=8 build/fuzz/corpus/$$(basename $$f) tests/fuzz/seeds/$$(basename $$f) 2>build/fuzz/$$(basename $$f).log \
	  || { tail -40 build/fuzz/$$(basename $$f).log; exit 1; }; done

# Postern against smtp-source/smtp-sink, a private Postfix, Dovecot LMTP and
# nginx (docs/benchmarks.md); installs them as root. Prints, asserts nothing.
bench: all
	@scripts/bench-deps.sh
	$(PYTHON) tests/bench/bench.py --build $(CURDIR)/build $(BENCH_ARGS)

demo: deps
	$(MAKE) all
	@scripts/demo.sh

e2e: all
	@scripts/e2e.sh

# Debian packages, built in a copy of the tree so the work tree stays clean;
# the .deb files and lintian's verdict end up in build/deb/.
deb:
	rm -rf build/deb && mkdir -p build/deb/postern
	tar -cf - --exclude=./build --exclude=./.git --exclude=./demo-state \
	    --exclude=./node_modules . | tar -C build/deb/postern -xf -
	cd build/deb/postern && dpkg-buildpackage -us -uc -b -j2
	cd build/deb && lintian --fail-on error *.changes
	@ls build/deb/*.deb

install: all
	install -d $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(SYSCONFDIR)
	install -m 0755 build/internal-gw build/external-portal $(DESTDIR)$(PREFIX)/sbin/
	install -m 0755 build/postern-cli $(DESTDIR)$(PREFIX)/bin/
	install -m 0644 config/internal-gw.conf config/external-portal.conf $(DESTDIR)$(SYSCONFDIR)/
	install -d $(DESTDIR)$(MANDIR)/man8
	install -m 0644 docs/man/*.8 $(DESTDIR)$(MANDIR)/man8/

clean:
	rm -rf build

-include $(shell find build -name '*.d' 2>/dev/null)
.SECONDARY: $(UNIT_SRC:tests/unit/%.c=$(B)/obj/tests/unit/%.o) $(HARNESS_SRC:tests/harness/%.c=$(B)/obj/tests/harness/%.o)
