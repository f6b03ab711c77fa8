// SPDX-License-Identifier: GPL-2.0
/*
 * Memory hotplug: a DIMM plugged in from the QEMU monitor, onlined, used,
 * offlined, onlined again and ejected, with the restricted address spaces
 * checked at each step.
 *
 * The boot must have room for it (scripts/vm --dimm MIB, which puts vm.dimm=MIB
 * on the command line); without, every case skips.  The program writes
 * "@@VM-HOTPLUG dimm" to the kernel log, and the host plugs the DIMM in.
 * - plug: the DIMM's memory blocks appear, offline;
 * - online: onlined as movable memory; with ASI on, the stats count every
 *   page mapped into the ASI direct map, its free pages are mapped there and
 *   the audit (each entry maps its own page, of memory that is online) finds
 *   no violation;
 * - use: anonymous memory lands in it (movable allocations prefer it); with
 *   ASI on, its pages there are sensitive and absent from the restricted
 *   spaces, and the audit finds no violation;
 * - offline: the data moves out intact; with ASI on, every page is counted
 *   out of the ASI direct map, its entries are empty (no PFN left) while the
 *   kernel's direct map still maps it, and the audit (which reports memory
 *   that is not online but mapped) finds no violation;
 * - reonline: online and used again (the page tables freed by the offline are
 *   made again), then offline;
 * - eject: ejected through ACPI (the guest removes the memory, QEMU the
 *   DIMM): the blocks are gone, the PFNs are no longer in the direct map,
 *   and the audit finds no violation.
 * A state change that does not finish in 120 s (an offline that retries
 * forever) kills the program, which fails it.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "kselftest.h"
#include "asi.h"

#define MEM "/sys/devices/system/memory/"
#define MAX_BLOCKS 64
#define USE_MIB 32UL
#define USE_PAGES (USE_MIB << 8)

static unsigned long block_pages;	/* pages per memory block */
static unsigned long memmap_pages;	/* ... holding its own memory map */
static long old_blocks[4096];
static int nold;
static long blocks[MAX_BLOCKS];		/* the DIMM's */
static int nblocks;
static uint64_t first_pfn, end_pfn;

static int list_blocks(long *ids, int max)
{
	DIR *d = opendir(MEM);
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (!strncmp(e->d_name, "memory", 6) && e->d_name[6] >= '0' &&
		    e->d_name[6] <= '9' && n < max)
			ids[n++] = strtol(e->d_name + 6, NULL, 10);
	closedir(d);
	return n;
}

static int is_old(long id)
{
	for (int i = 0; i < nold; i++)
		if (old_blocks[i] == id)
			return 1;
	return 0;
}

/* Set every block of the DIMM to @state ("online_movable", "offline"). */
static int set_state(const char *state)
{
	char file[128], buf[64];
	int ok = 1;

	for (int i = 0; i < nblocks; i++) {
		snprintf(file, sizeof(file), MEM "memory%ld/state", blocks[i]);
		/* A kernel that cannot offline (a pooled page, say) retries forever. */
		alarm(120);
		if (asi_put(file, state)) {
			ksft_print_msg("%s > memory%ld/state: %m\n", state, blocks[i]);
			ok = 0;
			continue;
		}
		alarm(0);
		if (asi_get(file, buf, sizeof(buf)) <= 0 ||
		    strncmp(buf, state, strcspn(state, "_"))) {
			ksft_print_msg("memory%ld is %s after %s\n", blocks[i], buf, state);
			ok = 0;
		}
	}
	return ok;
}

/* What the ASI pfn probe says of @pfn: 'P' restricted present, 'A' absent with
 * an empty entry, 'K' absent with a PFN kept, 'N' not in the direct map, 0 on
 * error; *sensitive as it reports. */
static int probe(uint64_t pfn, int *sensitive)
{
	char buf[256], num[32], r[16];
	unsigned long long pte;
	int s;

	snprintf(num, sizeof(num), "%#llx", (unsigned long long)pfn);
	if (asi_put(ASI_DIR "pfn", num) || asi_get(ASI_DIR "pfn", buf, sizeof(buf)) <= 0)
		return 0;
	if (strstr(buf, "not in the direct map"))
		return 'N';
	if (sscanf(buf, "pfn %*s sensitive %d restricted %15s %llx", &s, r, &pte) != 3)
		return 0;
	if (sensitive)
		*sensitive = s;
	if (!strcmp(r, "present"))
		return 'P';
	return pte ? 'K' : 'A';
}

static int audit_clean(const char *when)
{
	char buf[4096];
	long long v, c;

	if (asi_get(ASI_DIR "audit", buf, sizeof(buf)) <= 0)
		return 0;
	v = asi_value(buf, "violations");
	c = asi_value(buf, "checked");
	if (v || c <= 0) {
		ksft_print_msg("audit %s: %s", when, buf);
		return 0;
	}
	return 1;
}

/* The PFNs of USE_PAGES pages at @p (0: not resident), in one read. */
static int pfns_of(const unsigned char *p, uint64_t *pfn)
{
	int fd = open("/proc/self/pagemap", O_RDONLY);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = pread(fd, pfn, USE_PAGES * sizeof(*pfn), (uintptr_t)p / ASI_PAGE * sizeof(*pfn));
	close(fd);
	if (n != (ssize_t)(USE_PAGES * sizeof(*pfn)))
		return -1;
	for (unsigned long i = 0; i < USE_PAGES; i++)
		pfn[i] = pfn[i] >> 63 ? pfn[i] & ((1ULL << 55) - 1) : 0;
	return 0;
}

static uint64_t pfn[USE_PAGES];

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

/* Fill USE_MIB of anonymous memory; return it, with how many pages are in the
 * DIMM and (ASI on) whether the first 64 of those are sensitive and absent. */
static unsigned char *use(unsigned long *in_dimm, int *hidden)
{
	size_t len = USE_MIB << 20;
	unsigned char *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int checked = 0;

	*in_dimm = 0;
	*hidden = 1;
	if (p == MAP_FAILED)
		return NULL;
	for (size_t off = 0; off < len; off += ASI_PAGE)
		for (size_t i = 0; i < ASI_PAGE; i += 8)
			*(uint64_t *)(p + off + i) = (off + i) * 0x9e3779b97f4a7c15ULL;
	if (pfns_of(p, pfn)) {
		ksft_print_msg("reading /proc/self/pagemap: %m\n");
		return p;
	}
	for (unsigned long i = 0; i < USE_PAGES; i++) {
		int s = 0, r;

		if (pfn[i] < first_pfn || pfn[i] >= end_pfn)
			continue;
		(*in_dimm)++;
		/* A sample, spread over the range. */
		if (!asi_active() || checked >= 64 || i % 61)
			continue;
		checked++;
		r = probe(pfn[i], &s);
		if (r != 'A' || !s) {
			ksft_print_msg("pfn %#llx of user memory: probe '%c', sensitive %d\n",
				       (unsigned long long)pfn[i], r ? r : '?', s);
			*hidden = 0;
		}
	}
	return p;
}

static int intact(unsigned char *p)
{
	size_t len = USE_MIB << 20;

	for (size_t off = 0; off < len; off += 8)
		if (*(uint64_t *)(p + off) != off * 0x9e3779b97f4a7c15ULL) {
			ksft_print_msg("byte %zu changed\n", off);
			return 0;
		}
	return 1;
}

static unsigned long in_dimm_now(unsigned char *p)
{
	unsigned long n = 0;

	if (pfns_of(p, pfn))
		return USE_PAGES;
	for (unsigned long i = 0; i < USE_PAGES; i++)
		n += pfn[i] >= first_pfn && pfn[i] < end_pfn;
	return n;
}

/* Pages of the DIMM the kernel maps for use (not its memory map's own). */
static int usable(uint64_t pfn)
{
	return (pfn - first_pfn) % block_pages >= memmap_pages;
}

/* Online: counted in, free pages of it mapped in the restricted spaces. */
static int online(void)
{
	long long before = asi_stat("hotplug_mapped");
	int ok = set_state("online_movable"), r, s = -1, mapped = 0;

	if (!asi_active())
		return ok;
	if (asi_stat("hotplug_mapped") - before !=
	    (long long)(nblocks * (block_pages - memmap_pages))) {
		ksft_print_msg("hotplug_mapped grew by %lld, not %lu\n",
			       asi_stat("hotplug_mapped") - before,
			       nblocks * (block_pages - memmap_pages));
		ok = 0;
	}
	/* Mostly free now: mapped, unless something took it as sensitive. */
	for (uint64_t pfn = first_pfn; pfn < end_pfn; pfn += 4099) {
		if (!usable(pfn))
			continue;
		r = probe(pfn, &s);
		if (r == 'P' && !s) {
			mapped++;
		} else if (r != 'A' || !s) {
			ksft_print_msg("pfn %#llx after online: probe '%c', sensitive %d\n",
				       (unsigned long long)pfn, r ? r : '?', s);
			ok = 0;
		}
	}
	if (!mapped) {
		ksft_print_msg("no page of the DIMM is mapped in the restricted spaces\n");
		ok = 0;
	}
	/* The new entries: each maps its own page, and memory that is online. */
	return ok && audit_clean("after online");
}

/* Offline: the data moves out; counted out, entries empty, audit clean. */
static int offline(unsigned char *p)
{
	long long before = asi_stat("hotplug_unmapped");
	unsigned long left;
	int ok = set_state("offline"), r;

	if (!intact(p))
		ok = 0;
	left = in_dimm_now(p);
	if (left) {
		ksft_print_msg("%lu pages still in the DIMM after offline\n", left);
		ok = 0;
	}
	if (!asi_active())
		return ok;
	if (asi_stat("hotplug_unmapped") - before !=
	    (long long)(nblocks * (block_pages - memmap_pages))) {
		ksft_print_msg("hotplug_unmapped grew by %lld, not %lu\n",
			       asi_stat("hotplug_unmapped") - before,
			       nblocks * (block_pages - memmap_pages));
		ok = 0;
	}
	for (uint64_t pfn = first_pfn; pfn < end_pfn; pfn += 4099) {
		r = probe(pfn, NULL);
		if (r != 'A') {
			ksft_print_msg("pfn %#llx, offline: probe '%c'\n",
				       (unsigned long long)pfn, r ? r : '?');
			ok = 0;
			break;
		}
	}
	return ok && audit_clean("after offline");
}

static int plug(void)
{
	long ids[4096];
	double t0 = now();
	int n;

	if (asi_put("/dev/kmsg", "@@VM-HOTPLUG dimm\n")) {
		ksft_print_msg("writing to /dev/kmsg: %m\n");
		return 0;
	}
	do {
		sleep(1);
		n = list_blocks(ids, 4096);
		nblocks = 0;
		for (int i = 0; i < n && nblocks < MAX_BLOCKS; i++)
			if (!is_old(ids[i]))
				blocks[nblocks++] = ids[i];
	} while ((unsigned long)nblocks * block_pages < end_pfn - first_pfn && now() - t0 < 90);
	ksft_print_msg("%d memory block(s) appeared in %.0f s\n", nblocks, now() - t0);
	if (!nblocks)
		return 0;
	first_pfn = UINT64_MAX;
	for (int i = 0; i < nblocks; i++)
		if ((uint64_t)blocks[i] * block_pages < first_pfn)
			first_pfn = blocks[i] * block_pages;
	end_pfn = first_pfn + nblocks * block_pages;
	ksft_print_msg("the DIMM: pfn %#llx-%#llx\n", (unsigned long long)first_pfn,
		       (unsigned long long)end_pfn - 1);
	return 1;
}

/* Eject through ACPI, as a user would before pulling the DIMM. */
static int eject(void)
{
	DIR *d = opendir("/sys/bus/acpi/devices");
	struct dirent *e;
	double t0 = now();
	long ids[4096];
	int n, left, tried = 0;
	char file[300];

	if (!d)
		return 0;
	while ((e = readdir(d))) {
		if (strncmp(e->d_name, "PNP0C80:", 8))
			continue;
		snprintf(file, sizeof(file), "/sys/bus/acpi/devices/%s/eject", e->d_name);
		if (!asi_put(file, "1"))
			tried++;
	}
	closedir(d);
	if (!tried) {
		ksft_print_msg("no ACPI memory device could be ejected\n");
		return 0;
	}
	do {
		sleep(1);
		n = list_blocks(ids, 4096);
		left = 0;
		for (int i = 0; i < n; i++)
			left += !is_old(ids[i]);
	} while (left && now() - t0 < 60);
	if (left) {
		ksft_print_msg("%d block(s) still there %.0f s after the eject\n", left, now() - t0);
		return 0;
	}
	ksft_print_msg("ejected in %.0f s\n", now() - t0);
	if (!asi_active())
		return 1;
	if (probe(first_pfn, NULL) != 'N') {
		ksft_print_msg("pfn %#llx still in the direct map after the eject\n",
			       (unsigned long long)first_pfn);
		return 0;
	}
	return audit_clean("after the eject");
}

int main(void)
{
	static const char *const names[] = { "plug", "online", "use", "offline",
					     "reonline", "eject" };
	const int ncases = sizeof(names) / sizeof(names[0]);
	char cmdline[4096], buf[64], *p;
	unsigned long in_dimm, dimm_mib;
	unsigned char *mem = NULL;
	int hidden, step, ok;

	setvbuf(stdout, NULL, _IOLBF, 0);	/* progress, if the kernel hangs */
	ksft_print_header();
	ksft_set_plan(ncases);
	if (asi_get("/proc/cmdline", cmdline, sizeof(cmdline)) <= 0 ||
	    !(p = strstr(cmdline, "vm.dimm="))) {
		for (step = 0; step < ncases; step++)
			ksft_test_result_skip("%s: no DIMM slot in this boot (scripts/vm --dimm)\n",
					      names[step]);
		ksft_print_cnts();
		return KSFT_SKIP;
	}
	dimm_mib = strtoul(p + 8, NULL, 10);
	if (asi_get(MEM "block_size_bytes", buf, sizeof(buf)) <= 0)
		ksft_exit_fail_msg("no " MEM "block_size_bytes: memory hotplug not configured\n");
	block_pages = strtoul(buf, NULL, 16) / ASI_PAGE;
	/* memmap_on_memory: each block starts with its struct pages (64 bytes a page). */
	if (asi_get("/sys/module/memory_hotplug/parameters/memmap_on_memory", buf,
		    sizeof(buf)) > 0 && (buf[0] == 'Y' || buf[0] == 'f'))
		memmap_pages = block_pages * 64 / ASI_PAGE;
	nold = list_blocks(old_blocks, 4096);
	/* Only the size is known before: plug() finds where it is. */
	first_pfn = 0;
	end_pfn = (dimm_mib << 20) / ASI_PAGE;

	for (step = 0; step < ncases; step++) {
		double t0 = now();

		switch (step) {
		case 0:
			ok = plug();
			break;
		case 1:
			ok = online();
			break;
		case 2:
			mem = use(&in_dimm, &hidden);
			ok = mem && in_dimm && hidden && intact(mem);
			ksft_print_msg("%lu of %lu pages of user memory in the DIMM\n", in_dimm,
				       USE_PAGES);
			if (ok && asi_active())
				ok = audit_clean("with user memory in the DIMM");
			break;
		case 3:
			ok = offline(mem);
			break;
		case 4:
			munmap(mem, USE_MIB << 20);
			ok = online();
			mem = use(&in_dimm, &hidden);
			ok = ok && mem && in_dimm && hidden && intact(mem);
			ok = offline(mem) && ok;
			break;
		default:
			ok = eject();
			break;
		}
		ksft_print_msg("%s: %.1f s\n", names[step], now() - t0);
		ksft_test_result(ok, "%s\n", names[step]);
		if (!ok) {
			/* Each step needs the one before. */
			for (step++; step < ncases; step++)
				ksft_test_result_skip("%s: an earlier step failed\n", names[step]);
			break;
		}
	}
	ksft_finished();
}
