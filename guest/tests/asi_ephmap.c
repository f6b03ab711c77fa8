// SPDX-License-Identifier: GPL-2.0
/*
 * Ephemeral mappings: the kernel copies a task's own data without leaving
 * the restricted address space, and the data is what it was.
 *
 * Pinned to one CPU, with that CPU's counters (asi/cpu/N):
 * - 1000 pread()s of cached tmpfs pages, 1000 pipe round trips (a write and
 *   a read of 4 KiB) and 256 copy-on-write faults in a forked child take no
 *   exit caused by the kernel's own work (fault, free, stable_cr3, other;
 *   switch exits are other processes' doing and are only reported), and map
 *   at least one page ephemerally per copy.
 * - Every byte read, piped and copied on write is the pattern that was
 *   written, and a checksum of it is printed: the same with asi=off, where
 *   the same checks run (the exit counts are then not asked for).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kselftest.h"
#include "asi.h"

#define PAGE ASI_PAGE
#define FILE_PAGES 64
#define ROUNDS 1000
#define COW_PAGES 256
#define DIR "/tmp/asi-ephmap"

static int cpu, active;

struct counts {
	long long own, exits, ephmaps;
};

/* Exits the syscalls themselves can cause, all exits, and ephemeral maps. */
static int snap(struct counts *c)
{
	static const char * const own[] = {
		"exits_fault", "exits_free", "exits_stable_cr3", "exits_other",
	};

	memset(c, 0, sizeof(*c));
	if (!active)
		return 0;
	for (unsigned int i = 0; i < sizeof(own) / sizeof(own[0]); i++) {
		long long v = asi_cpu_stat(cpu, own[i]);

		if (v < 0)
			return -1;
		c->own += v;
	}
	c->exits = asi_cpu_stat(cpu, "exits");
	c->ephmaps = asi_cpu_stat(cpu, "ephmaps");
	return c->exits < 0 || c->ephmaps < 0 ? -1 : 0;
}

/* No exit of our own doing between @a and @b, and @min ephemeral maps. */
static int judge(const char *what, struct counts *a, struct counts *b, long long min)
{
	long long own = b->own - a->own, maps = b->ephmaps - a->ephmaps;

	if (!active)
		return 0;
	ksft_print_msg("%s: %lld exits (%lld of its own), %lld ephemeral maps\n",
		       what, b->exits - a->exits, own, maps);
	if (own || maps < min)
		return -1;
	return 0;
}

static unsigned char pattern(unsigned long i, unsigned int gen)
{
	return (unsigned char)((i * 2654435761u) >> 13) ^ gen;
}

static void fill(unsigned char *p, size_t len, unsigned long base, unsigned int gen)
{
	for (size_t i = 0; i < len; i++)
		p[i] = pattern(base + i, gen);
}

/* The first mismatch, or -1. */
static long check(const unsigned char *p, size_t len, unsigned long base, unsigned int gen)
{
	for (size_t i = 0; i < len; i++)
		if (p[i] != pattern(base + i, gen))
			return i;
	return -1;
}

static uint32_t sum(const unsigned char *p, size_t len, uint32_t s)
{
	for (size_t i = 0; i < len; i++)
		s = (s << 5) + s + p[i];
	return s;
}

static uint32_t checksum_file, checksum_pipe, checksum_cow;

static int test_cached_read(void)
{
	unsigned char *buf = malloc(FILE_PAGES * PAGE), page[PAGE];
	struct counts a, b;
	int fd, ret = 0;
	long bad;

	if (!buf)
		return -1;
	fill(buf, FILE_PAGES * PAGE, 0, 1);
	fd = open(DIR "/file", O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || pwrite(fd, buf, FILE_PAGES * PAGE, 0) != FILE_PAGES * PAGE)
		return -1;
	/* Prefault the buffer: a first touch of it would be the fault's, not the read's. */
	memset(page, 0, sizeof(page));
	if (snap(&a))
		return -1;
	for (int i = 0; i < ROUNDS; i++) {
		unsigned long off = (unsigned long)((i * 37) % FILE_PAGES) * PAGE;

		if (pread(fd, page, PAGE, off) != PAGE)
			return -1;
		bad = check(page, PAGE, off, 1);
		if (bad >= 0) {
			ksft_print_msg("read: byte %lu of page at %lu differs\n", bad, off);
			ret = -1;
			break;
		}
		checksum_file = sum(page, PAGE, checksum_file);
	}
	if (snap(&b))
		return -1;
	close(fd);
	free(buf);
	return ret ? ret : judge("1000 cached 4 KiB reads", &a, &b, ROUNDS);
}

static int test_pipe(void)
{
	unsigned char in[PAGE], out[PAGE];
	struct counts a, b;
	int p[2], ret = 0;
	long bad;

	if (pipe(p))
		return -1;
	memset(out, 0, sizeof(out));
	memset(in, 0, sizeof(in));
	if (snap(&a))
		return -1;
	for (int i = 0; i < ROUNDS; i++) {
		fill(in, PAGE, (unsigned long)i * PAGE, 2);
		if (write(p[1], in, PAGE) != PAGE || read(p[0], out, PAGE) != PAGE)
			return -1;
		bad = check(out, PAGE, (unsigned long)i * PAGE, 2);
		if (bad >= 0) {
			ksft_print_msg("pipe: byte %ld of round %d differs\n", bad, i);
			ret = -1;
			break;
		}
		checksum_pipe = sum(out, PAGE, checksum_pipe);
	}
	if (snap(&b))
		return -1;
	close(p[0]);
	close(p[1]);
	/* A write and a read each: two maps a round trip. */
	return ret ? ret : judge("1000 pipe round trips", &a, &b, 2 * ROUNDS);
}

/* The child writes one byte of every page: each write copies the page. */
static int cow_child(unsigned char *m)
{
	struct counts a, b;
	long bad;

	if (snap(&a))
		return 2;
	for (int i = 0; i < COW_PAGES; i++)
		m[i * PAGE] = pattern(i * PAGE, 4);
	if (snap(&b))
		return 2;
	for (int i = 0; i < COW_PAGES; i++) {
		bad = check(m + i * PAGE + 1, PAGE - 1, i * PAGE + 1, 3);
		if (bad >= 0 || m[i * PAGE] != pattern(i * PAGE, 4)) {
			ksft_print_msg("cow: page %d of the child's copy differs\n", i);
			return 1;
		}
	}
	return judge("256 copy-on-write faults", &a, &b, COW_PAGES) ? 1 : 0;
}

static int test_cow(void)
{
	unsigned char *m = mmap(NULL, COW_PAGES * PAGE, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int status;
	pid_t pid;
	long bad;

	if (m == MAP_FAILED)
		return -1;
	fill(m, COW_PAGES * PAGE, 0, 3);
	fflush(stdout);
	pid = fork();
	if (pid < 0)
		return -1;
	if (!pid)
		_exit(cow_child(m));
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status))
		return -1;
	/* The parent's pages are untouched by the child's writes. */
	bad = check(m, COW_PAGES * PAGE, 0, 3);
	if (bad >= 0) {
		ksft_print_msg("cow: byte %ld of the parent's memory changed\n", bad);
		return -1;
	}
	checksum_cow = sum(m, COW_PAGES * PAGE, 0);
	munmap(m, COW_PAGES * PAGE);
	return 0;
}

static void result(int ok, const char *name)
{
	if (ok == 0)
		ksft_test_result_pass("%s\n", name);
	else
		ksft_test_result_fail("%s\n", name);
}

int main(void)
{
	ksft_print_header();
	active = asi_active();
	cpu = sysconf(_SC_NPROCESSORS_ONLN) - 1;
	if (asi_pin(cpu))
		ksft_exit_fail_msg("sched_setaffinity: %m\n");
	if (mkdir(DIR, 0700) && access(DIR, F_OK))
		ksft_exit_fail_msg("mkdir " DIR ": %m\n");
	if (mount("tmpfs", DIR, "tmpfs", 0, "size=16m"))
		ksft_exit_fail_msg("mount tmpfs on " DIR ": %m\n");
	ksft_set_plan(3);
	result(test_cached_read(), "tmpfs_cached_read_no_exit_same_data");
	result(test_pipe(), "pipe_round_trip_no_exit_same_data");
	result(test_cow(), "cow_fault_no_exit_same_data");
	ksft_print_msg("checksums (asi %s): file %08x pipe %08x cow %08x\n",
		       active ? "on" : "off", checksum_file, checksum_pipe, checksum_cow);
	umount(DIR);
	ksft_finished();
}
