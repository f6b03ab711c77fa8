// SPDX-License-Identifier: GPL-2.0
/*
 * The isolation, checked two independent ways.
 *
 * - The kernel's audit (/sys/kernel/debug/asi/audit) walks every restricted
 *   address space and finds no mapping of user data.
 * - The kernel's own page-table dumper agrees for this process's pages: the
 *   direct-map address of every PFN that /proc/self/pagemap gives for its
 *   anonymous, tmpfs and memfd pages is absent from
 *   /sys/kernel/debug/page_tables/current_restricted and present in
 *   current_kernel.
 * Skips when the kernel runs without ASI.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kselftest.h"
#include "asi.h"

#define NPAGES 16
#define DUMPS "/sys/kernel/debug/page_tables/"

struct range {
	uint64_t start, end;
	int present;
};

struct dump {
	struct range *r;
	size_t n;
	uint64_t dmap;		/* start of the direct map (PAGE_OFFSET) */
};

/*
 * ptdump lines: "0xSTART-0xEND  SIZE  [USR] RW|ro ... LEVEL" when present,
 * blanks instead of the attributes when not; "---[ NAME ]---" markers.
 */
static int read_dump(const char *file, struct dump *d)
{
	size_t cap = 1 << 16, len = 0;
	char *buf = malloc(cap), *line, *save;
	int fd = open(file, O_RDONLY), after_marker = 0;
	ssize_t n;

	memset(d, 0, sizeof(*d));
	if (!buf || fd < 0)
		return -1;
	while ((n = read(fd, buf + len, cap - len - 1)) > 0) {
		len += n;
		if (cap - len < 4096) {
			cap *= 2;
			buf = realloc(buf, cap);
			if (!buf)
				return -1;
		}
	}
	close(fd);
	buf[len] = 0;
	d->r = calloc(len / 40 + 1, sizeof(*d->r));
	if (!d->r)
		return -1;
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		struct range *r = &d->r[d->n];
		char *end;

		if (strstr(line, "---[ Low Kernel Mapping ]---")) {
			after_marker = 1;
			continue;
		}
		if (strncmp(line, "0x", 2))
			continue;
		r->start = strtoull(line, &end, 16);
		if (*end != '-')
			continue;
		r->end = strtoull(end + 1, &end, 16);
		r->present = strstr(end, " RW ") || strstr(end, " ro ");
		if (after_marker) {
			/*
			 * The first range printed after the marker may start a
			 * few pages in (a hole merges with what precedes it);
			 * the direct map starts on a 1 GiB boundary (512 GiB
			 * unless KASLR randomizes the memory layout).
			 */
			d->dmap = r->start & ~((1ULL << 30) - 1);
			after_marker = 0;
		}
		d->n++;
	}
	free(buf);
	return d->n && d->dmap ? 0 : -1;
}

/* 1 mapped, 0 absent, -1 not covered by the dump. */
static int dump_maps(const struct dump *d, uint64_t addr)
{
	for (size_t i = 0; i < d->n; i++)
		if (addr >= d->r[i].start && addr < d->r[i].end)
			return d->r[i].present;
	return -1;
}

static int test_audit(void)
{
	char buf[4096];
	long long checked, violations;

	if (asi_get(ASI_DIR "audit", buf, sizeof(buf)) <= 0) {
		ksft_print_msg("cannot read " ASI_DIR "audit: %m\n");
		return -1;
	}
	checked = asi_value(buf, "checked");
	violations = asi_value(buf, "violations");
	ksft_print_msg("audit: %lld mapped pages checked, %lld violations\n",
		       checked, violations);
	if (checked <= 0 || violations != 0) {
		ksft_print_msg("%s", buf);
		return -1;
	}
	return 0;
}

/* User pages of three kinds, resident, with their PFNs. */
static int user_pages(uint64_t *pfns)
{
	char path[] = "/tmp/asi_isolation.XXXXXX";
	unsigned char *anon, *file, *memfd;
	int fd = mkstemp(path), mfd = memfd_create("asi_isolation", 0);

	if (fd < 0 || mfd < 0 || ftruncate(fd, NPAGES * ASI_PAGE) ||
	    ftruncate(mfd, NPAGES * ASI_PAGE))
		return -1;
	unlink(path);
	anon = mmap(NULL, NPAGES * ASI_PAGE, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	file = mmap(NULL, NPAGES * ASI_PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	memfd = mmap(NULL, NPAGES * ASI_PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	if (anon == MAP_FAILED || file == MAP_FAILED || memfd == MAP_FAILED)
		return -1;
	memset(anon, 0x11, NPAGES * ASI_PAGE);
	memset(file, 0x22, NPAGES * ASI_PAGE);
	memset(memfd, 0x33, NPAGES * ASI_PAGE);
	for (int i = 0; i < NPAGES; i++) {
		pfns[i] = asi_pfn_of(anon + i * ASI_PAGE);
		pfns[NPAGES + i] = asi_pfn_of(file + i * ASI_PAGE);
		pfns[2 * NPAGES + i] = asi_pfn_of(memfd + i * ASI_PAGE);
	}
	/* Stay mapped (and resident) until the dumps are read: exit unmaps. */
	return 0;
}

static int test_dump_agrees(void)
{
	static const char * const kind[] = { "anon", "tmpfs", "memfd" };
	uint64_t pfns[3 * NPAGES];
	struct dump restricted, full;
	int bad = 0;

	if (user_pages(pfns)) {
		ksft_print_msg("cannot set up user pages: %m\n");
		return -1;
	}
	if (read_dump(DUMPS "current_restricted", &restricted) ||
	    read_dump(DUMPS "current_kernel", &full)) {
		ksft_print_msg("cannot read or parse the page-table dumps\n");
		return -1;
	}
	if (restricted.dmap != full.dmap) {
		ksft_print_msg("direct map at %#llx vs %#llx\n",
			       (unsigned long long)restricted.dmap,
			       (unsigned long long)full.dmap);
		return -1;
	}
	for (int i = 0; i < 3 * NPAGES; i++) {
		uint64_t addr = full.dmap + pfns[i] * ASI_PAGE;
		int r = dump_maps(&restricted, addr), f = dump_maps(&full, addr);

		if (!pfns[i] || r != 0 || f != 1) {
			if (bad++ < 5)
				ksft_print_msg("%s page %d pfn %#llx at %#llx: restricted %d full %d\n",
					       kind[i / NPAGES], i % NPAGES,
					       (unsigned long long)pfns[i],
					       (unsigned long long)addr, r, f);
		}
	}
	ksft_print_msg("%d user pages: %d absent from the restricted dump and present in the full one\n",
		       3 * NPAGES, 3 * NPAGES - bad);
	return bad ? -1 : 0;
}

int main(void)
{
	ksft_print_header();
	if (!asi_active())
		ksft_exit_skip("ASI is not active in this kernel\n");
	ksft_set_plan(2);
	ksft_test_result(test_audit() == 0, "audit_finds_no_user_data\n");
	ksft_test_result(test_dump_agrees() == 0, "dump_agrees_with_pagemap\n");
	ksft_finished();
}
