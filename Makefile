# ASI workbench: the front door. See README.md.
#
#   make run      build, boot an ASI kernel and show it at work
#   make test     the whole test suite (ends with "N passed, M failed")
#   make build    kernel(s) + guest programs + initramfs
#   make tree     git tree of the kernel for editing the series (build/linux)
#   make patches  regenerate patches/ from build/linux
#   make check    checkpatch --strict on every patch, build every prefix of the series
#   make check-defconfig  x86_64_defconfig + kvm_guest.config with and without ASI: build
#                 both, boot them under QEMU, asi=on: ASI enabled, KUnit asi, audit, clean
#                 log (not in CI: slow; APPEND=... adds boot parameters, e.g. nokaslr)
#   make vm CMD=  boot the default kernel and run CMD in the guest
#   make stress   stress-ng on the asi=on debug kernel, then audit, data and log checks
#                 (DURATION=seconds of workload, default 60; release: DURATION=600)
#   make fuzz     trinity on the asi=on debug kernel, same checks (DURATION= as above)
#   make mm-loop  the kernel's mm selftests in a loop on the asi=on debug kernel (DURATION=
#                 seconds, default 1800), then audit and log checks
#   make bench    asi=off / asi=on / paranoid / blanket: exits, flushes, instructions and
#                 time per op for fio, a compile and microbenchmarks -> build/bench/report.*
#                 (QUICK=1 for a smoke run of a few minutes; BENCHFLAGS=... see scripts/bench -h)

SHELL := /bin/sh
TOP := $(CURDIR)

# make, kbuild and the guest's kernel command line (vm.top=, at most 2048 bytes in all)
# take the checkout's path as one word of plain characters: refuse any other path at once.
path_bad := $(shell p='$(subst ','"'"',$(TOP))'; case "$$p" in (*[!A-Za-z0-9._+@~/-]*) \
	echo chars ;; esac; [ $${#p} -le 1000 ] || echo long)
ifneq ($(words $(TOP))$(filter chars,$(path_bad)),1)
$(error the checkout path "$(TOP)" has characters other than letters, digits and ._+@~/-, \
	which make, kbuild or the guest's command line would split or misread; clone the \
	repository to a plain path)
endif
ifneq ($(filter long,$(path_bad)),)
$(error the checkout path "$(TOP)" is over 1000 characters: the guest gets it on its \
	kernel command line; clone the repository to a shorter path)
endif
B := $(TOP)/build
SRC := $(B)/linux
FLAVOUR ?= default
KSRC_STAMP := $(SRC)/.git/asi/applied-hash
GUEST_CFLAGS := -static -O2 -g -Wall -Wextra -I$(TOP)/guest -I$(SRC)/tools/testing/selftests

guest_tests := $(patsubst guest/tests/%.c,%,$(wildcard guest/tests/*.c)) \
	$(notdir $(wildcard guest/tests/*.sh))
guest_bins := $(patsubst guest/%.c,$(B)/guest/bin/%,$(wildcard guest/*.c))

.PHONY: all run test build deps source tree tree-reset patches check vm clean \
	kernel-default kernel-debug kernel-defconfig kernel-defconfig-noasi check-defconfig \
	guest selftests stress fuzz bench mm-loop FORCE

all: build

deps:
	@scripts/deps

# Re-applies patches/ to build/linux when it changed (and refuses to clobber work there).
source: deps
	@scripts/source

tree: source
	@echo "build/linux: base commit 'base' + $$(git -C $(SRC) rev-list --count base..HEAD) patch(es)."
	@echo "Edit and commit there, then 'make patches' to export the series."

tree-reset: deps
	@scripts/source --reset

patches:
	@scripts/export-patches

# Explicit rules: make does not search pattern rules for phony targets.
kernel-default kernel-debug kernel-defconfig kernel-defconfig-noasi: source
	@scripts/build-kernel $(@:kernel-%=%)

# UAPI headers of the patched tree for the guest programs and the selftests;
# independent of the kernel flavour, so make test need not build the default kernel.
HDR := $(B)/obj-headers/usr/include/linux/version.h
$(HDR): $(KSRC_STAMP)
	@mkdir -p $(B)/obj-headers
	@$(MAKE) -s -C $(SRC) O=$(B)/obj-headers ARCH=x86_64 allnoconfig >/dev/null
	@$(MAKE) -s -C $(SRC) O=$(B)/obj-headers ARCH=x86_64 headers

$(B)/guest/bin/%: guest/%.c guest/asi.h guest/uffd_fork.h $(HDR)
	@mkdir -p $(dir $@)
	gcc $(GUEST_CFLAGS) -isystem $(B)/obj-headers/usr/include -o $@ $<

# The project's guest tests, installed as a kselftest collection "asi" next to x86.
$(B)/kselftest/asi/%: guest/tests/%.c guest/asi.h guest/uffd_fork.h $(HDR)
	@mkdir -p $(dir $@)
	gcc $(GUEST_CFLAGS) -isystem $(B)/obj-headers/usr/include -o $@ $<

$(B)/kselftest/asi/%.sh: guest/tests/%.sh $(B)/kselftest/.x86-stamp
	@mkdir -p $(dir $@)
	cp $< $@

$(B)/runner-canary/%: tests/runner/%.c $(HDR)
	@mkdir -p $(dir $@)
	gcc $(GUEST_CFLAGS) -o $@ $<

# The kernel's own x86 selftests, static, installed with the kernel's kselftest runner.
$(B)/kselftest/.x86-stamp: $(HDR)
	@rm -rf $(B)/kselftest $(B)/obj-headers/kselftest
	@$(MAKE) -s -C $(SRC)/tools/testing/selftests O=$(B)/obj-headers TARGETS=x86 \
		CC="gcc -static" KSFT_INSTALL_PATH=$(B)/kselftest install >$(B)/selftests-build.log 2>&1 || \
		{ tail -30 $(B)/selftests-build.log; echo "selftests: build failed (log: $(B)/selftests-build.log)"; exit 1; }
	@touch $@

# The kernel's own mm selftests named in tests/mm-selftests, as the collection "mm";
# NAME.sh there is a wrapper from tests/mm/ that runs a part of a program of mm_helpers.
mm_tests := $(shell sed -e 's/\#.*//' tests/mm-selftests)
mm_helpers := uffd-unit-tests
mm_progs := $(filter-out %.sh,$(mm_tests)) $(mm_helpers)
MMSRC := $(SRC)/tools/testing/selftests/mm
$(B)/kselftest/.mm-stamp: $(B)/kselftest/.x86-stamp tests/mm-selftests $(wildcard tests/mm/*.sh)
	@rm -rf $(B)/obj-mm $(B)/kselftest/mm && mkdir -p $(B)/obj-mm $(B)/kselftest/mm
	@$(MAKE) -s -C $(MMSRC) OUTPUT=$(B)/obj-mm CC="gcc -static" \
		KHDR_INCLUDES="-isystem $(B)/obj-headers/usr/include" \
		$(addprefix $(B)/obj-mm/,$(mm_progs)) >$(B)/selftests-mm-build.log 2>&1 || \
		{ tail -30 $(B)/selftests-mm-build.log; echo "selftests: mm build failed (log: $(B)/selftests-mm-build.log)"; exit 1; }
	@cp $(addprefix $(B)/obj-mm/,$(mm_progs)) $(addprefix tests/mm/,$(filter %.sh,$(mm_tests))) \
		$(B)/kselftest/mm/
	@sed -i '/^mm:/d' $(B)/kselftest/kselftest-list.txt
	@for t in $(mm_tests); do echo "mm:$$t" >> $(B)/kselftest/kselftest-list.txt; done
	@touch $@

$(B)/kselftest/.asi-stamp: $(B)/kselftest/.x86-stamp $(B)/kselftest/.mm-stamp $(addprefix $(B)/kselftest/asi/,$(guest_tests))
	@sed -i '/^asi:/d' $(B)/kselftest/kselftest-list.txt
	@for t in $(guest_tests); do echo "asi:$$t" >> $(B)/kselftest/kselftest-list.txt; done
	@touch $@

selftests: $(B)/kselftest/.asi-stamp $(B)/runner-canary/canary_fail

guest: $(guest_bins) $(B)/insn-count.so

# A TCG plugin on the host: exact counts of the mitigations' instructions (scripts/vm --count-insns).
$(B)/insn-count.so: tools/insn-count.c
	@mkdir -p $(dir $@)
	gcc -shared -fPIC -O2 -Wall -Wextra -o $@ $< -lpthread

$(B)/initramfs.cpio.gz: $(filter-out %.c guest/tests,$(wildcard guest/*)) scripts/initramfs $(guest_bins)
	@scripts/initramfs $@

build: kernel-$(FLAVOUR) guest $(B)/initramfs.cpio.gz

vm: build
	@scripts/vm --flavour $(FLAVOUR) $(VMFLAGS) -- $(CMD)

test: source
	@$(MAKE) -s kernel-debug
	@$(MAKE) -s guest selftests $(B)/initramfs.cpio.gz
	@scripts/test --flavour debug

# Workload seconds for make stress / make fuzz; the boot, setup and checks come on top.
DURATION ?= 60
stress fuzz: source
	@$(MAKE) -s kernel-debug
	@$(MAKE) -s guest $(B)/initramfs.cpio.gz
	@scripts/$@ --duration $(DURATION)

# The mm selftests, asi_uffd_fork and uffd_unregister in a loop, asi=on (DURATION= seconds, default 1800).
mm-loop: source
	@$(MAKE) -s kernel-debug
	@$(MAKE) -s selftests $(B)/initramfs.cpio.gz
	@scripts/mm-loop --duration $(if $(filter command line environment,$(origin DURATION)),$(DURATION),1800)

run: build
	@scripts/demo

# One kernel, the variants by boot parameters only; KVM where a probe boot works.
bench: build
	@scripts/bench --kernel $(B)/obj-$(FLAVOUR)/arch/x86/boot/bzImage \
		$(if $(filter-out 0,$(QUICK)),--quick) $(BENCHFLAGS)

check: source
	@scripts/check-series

# A distribution-like kernel, with ASI and without (scripts/build-kernel defconfig,
# defconfig-noasi), booted and judged by scripts/check-defconfig; it builds them itself.
check-defconfig: source
	@$(MAKE) -s guest $(B)/initramfs.cpio.gz
	@scripts/check-defconfig $(if $(APPEND),--append '$(APPEND)')

clean:
	rm -rf $(B)/obj-* $(B)/guest $(B)/kselftest $(B)/runner-canary $(B)/vm $(B)/initramfs.cpio.gz $(B)/insn-count.so
