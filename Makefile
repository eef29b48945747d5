# buildwarden: `make deps` installs what builds and tests need (Debian packages),
# `make` builds build/buildwarden, `make test` runs unit + real-kernel tests (root).
.DELETE_ON_ERROR:
.SECONDARY:

OUT      ?= build
CC       ?= gcc
CLANG    ?= clang
BPFTOOL  ?= bpftool
PROTOC_C ?= protoc-c
PREFIX   ?= /usr/local
DESTDIR  ?=
ARCH     := $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')
VERSION  := $(shell cat VERSION 2>/dev/null || echo 0.0.0)
V ?= 0
ifeq ($(V),1)
Q =
msg =
else
Q = @
msg = @printf '  %-8s %s\n' "$(1)" "$(2)";
endif

WARN := -Wall -Wextra -Werror -Werror=undef -Wmissing-prototypes -Wstrict-prototypes \
	-Wvla -Wwrite-strings -Wformat-security -Wmissing-field-initializers -fno-common \
	-Wno-unused-parameter
# a packager's CPPFLAGS/CFLAGS/LDFLAGS (dpkg-buildflags: fortify, relro) are kept
CPPFLAGS := $(CPPFLAGS) -D_GNU_SOURCE -Iinclude -Iuser -I/usr/include/postgresql -I$(OUT)/gen -DBW_VERSION='"$(VERSION)"'
CFLAGS   ?= -g -O2
CFLAGS   += $(WARN) -std=gnu11
SANFLAGS := -g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
LIBS     := -lbpf -lelf -lz -lprotobuf-c -lyaml -lssl -lcrypto -lsqlite3 -lpq -lldns -lpthread

BPF_CFLAGS := -g -O2 -target bpf -D__TARGET_ARCH_$(ARCH) -Wall -Werror -Werror=undef \
	-Wimplicit-fallthrough -Ibpf/include -Ibpf -Iinclude

# one man page per subcommand, and buildwarden(8) (see "man pages" below)
MAN_NAMES := buildwarden $(addprefix buildwarden-,run agent enroll collector query policy decode report version)
MAN_PAGES := $(patsubst %,$(OUT)/man/%.8,$(MAN_NAMES))

# `make` alone builds the binary, whatever rule comes first below.
.DEFAULT_GOAL := all

# ---- generated code -------------------------------------------------------
PROTOS  := buildwarden collector
PROTO_C := $(patsubst %,$(OUT)/gen/%.pb-c.c,$(PROTOS))
PROTO_H := $(patsubst %,$(OUT)/gen/%.pb-c.h,$(PROTOS))
SKEL_H  := $(OUT)/gen/sensor.skel.h
BPF_SRCS := $(wildcard bpf/*.bpf.c)
BPF_OBJS := $(patsubst bpf/%.bpf.c,$(OUT)/bpf/%.tmp.bpf.o,$(BPF_SRCS))
BPF_HDRS := $(wildcard bpf/lib/*.h bpf/include/*.h) include/sensor_abi.h

$(OUT)/gen/%.pb-c.c $(OUT)/gen/%.pb-c.h &: proto/%.proto
	$(call msg,PROTOC,$<)
	$(Q)mkdir -p $(OUT)/gen && $(PROTOC_C) --proto_path=proto --c_out=$(OUT)/gen $<

$(OUT)/bpf/%.tmp.bpf.o: bpf/%.bpf.c $(BPF_HDRS)
	$(call msg,BPF,$<)
	$(Q)mkdir -p $(@D) && $(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(OUT)/bpf/sensor.bpf.o: $(BPF_OBJS)
	$(call msg,LINK-BPF,$@)
	$(Q)$(BPFTOOL) gen object $@ $^

$(SKEL_H): $(OUT)/bpf/sensor.bpf.o
	$(call msg,SKEL,$@)
	$(Q)mkdir -p $(@D) && $(BPFTOOL) gen skeleton $< name sensor_bpf > $@

# ---- user space: one static library per part (see docs/architecture.md) ----
PARTS := base policy transport pipeline sensor collector agent report draft
define part_rules
$(1)_SRCS := $$(wildcard user/$(1)/*.c)
$(1)_OBJS := $$(patsubst user/%.c,$(OUT)/obj/%.o,$$($(1)_SRCS))
$(1)_SOBJS := $$(patsubst user/%.c,$(OUT)/asan/%.o,$$($(1)_SRCS))
$(OUT)/lib/libbw_$(1).a: $$($(1)_OBJS)
	$$(call msg,AR,$$@)
	$$(Q)mkdir -p $$(@D) && rm -f $$@ && ar rcs $$@ $$^
$(OUT)/lib/libbw_$(1)_asan.a: $$($(1)_SOBJS)
	$$(call msg,AR,$$@)
	$$(Q)mkdir -p $$(@D) && rm -f $$@ && ar rcs $$@ $$^
endef
$(foreach p,$(PARTS),$(eval $(call part_rules,$(p))))

# Only the sensor part includes the BPF skeleton: everything else (the collector
# among it) builds without clang's BPF target and bpftool.
GEN_DEPS := $(PROTO_H)
$(sensor_OBJS) $(sensor_SOBJS): $(SKEL_H)

$(OUT)/obj/%.o: user/%.c $(GEN_DEPS)
	$(call msg,CC,$<)
	$(Q)mkdir -p $(@D) && $(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c $< -o $@
$(OUT)/asan/%.o: user/%.c $(GEN_DEPS)
	$(call msg,CC-SAN,$<)
	$(Q)mkdir -p $(@D) && $(CC) $(CPPFLAGS) $(WARN) -std=gnu11 $(SANFLAGS) -MMD -MP -c $< -o $@
$(OUT)/obj/gen/%.o: $(OUT)/gen/%.c $(PROTO_H)
	$(call msg,CC,$<)
	$(Q)mkdir -p $(@D) && $(CC) $(CPPFLAGS) -g -O2 -c $< -o $@
$(OUT)/asan/gen/%.o: $(OUT)/gen/%.c $(PROTO_H)
	$(call msg,CC-SAN,$<)
	$(Q)mkdir -p $(@D) && $(CC) $(CPPFLAGS) $(SANFLAGS) -c $< -o $@

# Link order: a part only uses the parts after it (docs/architecture.md).
LINK_ORDER := agent collector report draft sensor pipeline transport policy base
PART_LIBS  := $(foreach p,$(LINK_ORDER),$(OUT)/lib/libbw_$(p).a) $(patsubst %,$(OUT)/obj/gen/%.pb-c.o,$(PROTOS))
SAN_LIBS   := $(foreach p,$(LINK_ORDER),$(OUT)/lib/libbw_$(p)_asan.a) $(patsubst %,$(OUT)/asan/gen/%.pb-c.o,$(PROTOS))

CLI_SRCS := $(wildcard user/cli/*.c)
CLI_OBJS := $(patsubst user/%.c,$(OUT)/obj/%.o,$(CLI_SRCS))

all: $(OUT)/buildwarden $(MAN_PAGES)
.PHONY: all

$(OUT)/buildwarden: $(CLI_OBJS) $(PART_LIBS)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(CLI_OBJS) $(PART_LIBS) $(LIBS)

# ---- tests --------------------------------------------------------------
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(OUT)/tests/unit/%,$(UNIT_SRCS))
INTEG_SRCS := $(wildcard tests/integration/test_*.c)
INTEG_BINS := $(patsubst tests/integration/%.c,$(OUT)/tests/integration/%,$(INTEG_SRCS))
CLI_TEST_SRCS := $(wildcard tests/cli/test_*.c)
CLI_TEST_BINS := $(patsubst tests/cli/%.c,$(OUT)/tests/cli/%,$(CLI_TEST_SRCS))
TESTLIB_SRCS := $(wildcard tests/lib/*.c)
FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS := $(patsubst tests/fuzz/%.c,$(OUT)/fuzz/%,$(FUZZ_SRCS))

$(OUT)/tests/unit/%: tests/unit/%.c $(TESTLIB_SRCS) $(SAN_LIBS) $(GEN_DEPS)
	$(call msg,CC-TEST,$<)
	$(Q)mkdir -p $(@D) && $(CC) $(CPPFLAGS) -Itests $(WARN) -Wno-missing-prototypes -std=gnu11 $(SANFLAGS) \
		-o $@ $< $(TESTLIB_SRCS) $(SAN_LIBS) $(LIBS) -lcmocka

$(OUT)/tests/integration/%: tests/integration/%.c $(TESTLIB_SRCS) $(PART_LIBS) $(GEN_DEPS)
	$(call msg,CC-TEST,$<)
	$(Q)mkdir -p $(@D) && $(CC) $(CPPFLAGS) -Itests $(CFLAGS) -Wno-missing-prototypes \
		-o $@ $< $(TESTLIB_SRCS) $(PART_LIBS) $(LIBS) -lcmocka

# BPF logic tests: bpf/tests/ programs, never linked into the sensor's object, run with
# BPF_PROG_TEST_RUN by tests/unit/test_bpf_logic.c.
$(OUT)/bpf/tests/logic.tmp.bpf.o: bpf/tests/logic_test.h
$(OUT)/bpf/tests/logic.bpf.o: $(OUT)/bpf/tests/logic.tmp.bpf.o
	$(call msg,LINK-BPF,$@)
	$(Q)$(BPFTOOL) gen object $@ $^
$(OUT)/gen/logic_test.skel.h: $(OUT)/bpf/tests/logic.bpf.o
	$(call msg,SKEL,$@)
	$(Q)mkdir -p $(@D) && $(BPFTOOL) gen skeleton $< name logic_test_bpf > $@
$(OUT)/tests/unit/test_bpf_logic: $(OUT)/gen/logic_test.skel.h bpf/tests/logic_test.h
$(OUT)/tests/unit/test_bpf_logic: private CPPFLAGS += -Ibpf
# The tier that needs no root: it execs the binary, like the integration suites.
$(OUT)/tests/cli/%: tests/cli/%.c $(TESTLIB_SRCS) $(PART_LIBS) $(GEN_DEPS)
	$(call msg,CC-TEST,$<)
	$(Q)mkdir -p $(@D) && $(CC) $(CPPFLAGS) -Itests $(CFLAGS) -Wno-missing-prototypes \
		-o $@ $< $(TESTLIB_SRCS) $(PART_LIBS) $(LIBS) -lcmocka

FUZZ_FLAGS := -g -O1 -fsanitize=fuzzer,address,undefined
$(OUT)/fuzz/%: tests/fuzz/%.c $(wildcard user/*/*.c) $(PROTO_C) $(GEN_DEPS)
	$(call msg,FUZZ,$<)
	$(Q)mkdir -p $(@D) && $(CLANG) $(CPPFLAGS) -Itests $(FUZZ_FLAGS) -o $@ $< \
		$(wildcard user/base/*.c user/policy/*.c user/transport/*.c user/pipeline/*.c user/collector/*.c user/report/*.c user/draft/*.c) \
		user/sensor/fanotify_parse.c $(PROTO_C) $(LIBS)

# ---- man pages: made from the --help texts (user/cli/help.c), never written by hand ----
$(OUT)/gen_man: tools/gen_man.c user/cli/help.c user/cli/help.h
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D) && $(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ tools/gen_man.c user/cli/help.c
$(OUT)/man/%.8: $(OUT)/gen_man VERSION
	$(call msg,MAN,$@)
	$(Q)mkdir -p $(@D) && $(OUT)/gen_man $(patsubst buildwarden-%,%,$*) $(VERSION) > $@
man: $(MAN_PAGES)
.PHONY: man

test-bins: $(OUT)/buildwarden $(MAN_PAGES) $(UNIT_BINS) $(CLI_TEST_BINS) $(INTEG_BINS) $(FUZZ_BINS)
test: test-bins
	$(Q)OUT=$(OUT) tests/run.sh
fuzz: $(FUZZ_BINS)
	$(Q)for f in $(FUZZ_BINS); do n=$$(basename $$f); mkdir -p $(OUT)/fuzz-corpus/$$n; \
		$$f -max_total_time=$${FUZZ_SECONDS:-60} $(OUT)/fuzz-corpus/$$n tests/fuzz/corpus/$$n || exit 1; done
# Other kernels under QEMU (issue 9): scripts/vmtest/run.sh says per row what ran.
vmtest: test-bins
	$(Q)OUT=$(OUT) scripts/vmtest/run.sh
.PHONY: vmtest
bench: $(OUT)/buildwarden
	$(Q)OUT=$(OUT) bench/run.sh
	$(Q)OUT=$(OUT) bench/collector/run.sh
# tests/run.sh runs it too, as one counted test (and its self-test, tests/layers/).
check-layers:
	$(Q)scripts/check-layers.py
# enforce mode's permission answers under load (docs/PERFORMANCE.md)
bench-perm: $(OUT)/buildwarden
	$(Q)OUT=$(OUT) bench/perm.sh

.PHONY: test test-bins fuzz bench bench-perm check-layers

# ---- install, deps, clean -------------------------------------------------
# UNITDIR: Debian's packages put units in /lib/systemd/system whatever the PREFIX.
UNITDIR ?= $(PREFIX)/lib/systemd/system
SYSCONFDIR ?= /etc
install: $(OUT)/buildwarden $(MAN_PAGES)
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(UNITDIR) $(DESTDIR)$(PREFIX)/share/doc/buildwarden \
		$(DESTDIR)$(PREFIX)/share/man/man8 $(DESTDIR)$(SYSCONFDIR)/buildwarden
	install -m 0755 $(OUT)/buildwarden $(DESTDIR)$(PREFIX)/bin/buildwarden
	for u in agent collector; do sed 's|@PREFIX@|$(PREFIX)|g' packaging/buildwarden-$$u.service \
		> $(DESTDIR)$(UNITDIR)/buildwarden-$$u.service; done
	install -m 0644 README.md docs/*.md $(DESTDIR)$(PREFIX)/share/doc/buildwarden/
	install -m 0644 $(MAN_PAGES) $(DESTDIR)$(PREFIX)/share/man/man8/
	install -D -m 0755 ci/buildwarden-ci.sh $(DESTDIR)$(PREFIX)/share/buildwarden/ci/buildwarden-ci.sh
	install -m 0644 ci/gitlab/buildwarden.gitlab-ci.yml $(DESTDIR)$(PREFIX)/share/buildwarden/ci/
	# the sample policy only where none is: never over the operator's
	[ -e $(DESTDIR)$(SYSCONFDIR)/buildwarden/policy.yaml ] || \
		install -m 0644 packaging/policy.yaml $(DESTDIR)$(SYSCONFDIR)/buildwarden/policy.yaml
.PHONY: install

# ---- the Debian package: built from a copy of the tree in $(OUT)/deb, so the results
# (.deb, .changes, .buildinfo) land there and not in the tree's parent directory. Kept
# between runs: a rebuild compiles only what changed. Then lintian, failing on errors.
DEB_SRC := $(OUT)/deb/buildwarden-$(VERSION)
deb:
	mkdir -p $(DEB_SRC)
	if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then \
		git ls-files -co --exclude-standard -z | tar --null --ignore-failed-read -T - -cf - ; \
	else tar --exclude=./$(OUT) --exclude=./.git -cf - . ; fi | tar -xf - -C $(DEB_SRC)
	cd $(DEB_SRC) && dpkg-buildpackage -b -us -uc --no-pre-clean
	lintian --fail-on error --display-level '>=warning' $(OUT)/deb/buildwarden_$(VERSION)_*.changes
.PHONY: deb

DEB_PKGS := build-essential openssl clang llvm libclang-rt-dev bpftool libbpf-dev libelf-dev zlib1g-dev \
	protobuf-c-compiler libprotobuf-c-dev libyaml-dev libssl-dev libsqlite3-dev libpq-dev libldns-dev \
	libcmocka-dev pkg-config iproute2 procps python3 coreutils util-linux sqlite3
# only the tests need these: the report tests open the HTML in headless Chromium and
# validate SARIF against its schema; the export tests send to a real rsyslog (its
# OpenSSL driver for syslog over TLS)
DEB_TEST_PKGS := chromium python3-jsonschema rsyslog rsyslog-openssl postgresql-15
# only `make deb` and tests/packaging/ need these (building and linting the package, the
# clean Debian 12 root, rendering the man pages, systemd-analyze); not a CI runner that
# only builds the binary (deps-build)
DEB_PACKAGING_PKGS := debhelper devscripts lintian fakeroot mmdebstrap man-db groff-base systemd
# make vmtest (run by make test): QEMU's TCG, busybox for the guests' shell,
# cpio for their initramfs, e2fsprogs for their disk, the archive keyring to
# fetch Debian's kernels
DEB_TEST_PKGS += qemu-system-x86 busybox-static cpio e2fsprogs debian-archive-keyring xz-utils
deps:
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $(DEB_PKGS) $(DEB_TEST_PKGS) \
		$(DEB_PACKAGING_PKGS)
# what a CI runner needs to build the binary from the tree (ci/github/setup.sh)
deps-build:
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $(DEB_PKGS)
.PHONY: deps deps-build

vmlinux:
	scripts/gen-vmlinux.sh $(ARCH) $${VMLINUX_BTF:-/sys/kernel/btf/vmlinux} "$$(uname -r)"
.PHONY: vmlinux

clean:
	rm -rf $(OUT)
.PHONY: clean

-include $(shell find $(OUT)/obj $(OUT)/asan -name '*.d' 2>/dev/null)
