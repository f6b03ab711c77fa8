// SPDX-License-Identifier: GPL-2.0
/*
 * make run: ASI at work, seen from a user process.
 *
 * A process puts a secret in a page of its own; the page is absent from the
 * kernel's restricted address space. One kernel access to it (a read through
 * /proc/self/mem, which the kernel serves through its direct map) makes the
 * kernel exit the restricted space once. A short workload follows, with the
 * counters it produced.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "asi.h"

#define PAGE ASI_PAGE
#define ASI ASI_DIR

static void die(const char *what)
{
	perror(what);
	exit(1);
}

static void put(const char *file, const char *s)
{
	if (asi_put(file, s))
		die(file);
}

static void get(const char *file, char *buf, size_t len)
{
	if (asi_get(file, buf, len) < 0)
		die(file);
}

static uint64_t pfn_of(void *addr)
{
	uint64_t pfn = asi_pfn_of(addr);

	if (!pfn)
		die("pagemap");
	return pfn;
}

static unsigned long long stat_of(const char *stats, const char *name)
{
	long long v = asi_value(stats, name);

	return v < 0 ? 0 : v;
}

static void workload(void)
{
	char buf[PAGE];
	int fd[2];

	for (int i = 0; i < 20; i++) {
		pid_t pid = fork();

		if (pid == 0) {
			execl("/bin/true", "true", NULL);
			_exit(1);
		}
		waitpid(pid, NULL, 0);
	}
	if (pipe(fd))
		die("pipe");
	memset(buf, 7, sizeof(buf));
	for (int i = 0; i < 100; i++) {
		if (write(fd[1], buf, sizeof(buf)) != sizeof(buf) ||
		    read(fd[0], buf, sizeof(buf)) != sizeof(buf))
			die("pipe io");
	}
}

int main(void)
{
	static const char secret[] = "the launch code is 0000";
	char line[256], stats[2048], copy[sizeof(secret)];
	unsigned long long exits, faults, enters;
	char *page;
	uint64_t pfn;
	int mem;

	if (!asi_active()) {
		printf("  ASI is not active (boot with asi=on)\n");
		return 0;
	}
	page = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (page == MAP_FAILED)
		die("mmap");
	strcpy(page, secret);
	pfn = pfn_of(page);
	snprintf(line, sizeof(line), "%llu", (unsigned long long)pfn);
	put(ASI "pfn", line);
	get(ASI "pfn", line, sizeof(line));
	printf("  A process holds a secret at %p, physical page %#llx.\n", page,
	       (unsigned long long)pfn);
	printf("  The kernel's view of that page:\n    %s", line);

	mem = open("/proc/self/mem", O_RDONLY);
	if (mem < 0)
		die("/proc/self/mem");
	put(ASI "reset", "1");
	if (pread(mem, copy, sizeof(copy), (uintptr_t)page) != sizeof(copy))
		die("read /proc/self/mem");
	get(ASI "stats", stats, sizeof(stats));
	close(mem);
	faults = stat_of(stats, "exits_fault");
	printf("  One kernel read of it (through /proc/self/mem) returned \"%s\"\n", copy);
	printf("  and cost %llu exit(s) on a page fault (%llu exits in all, %llu enters).\n",
	       faults, stat_of(stats, "exits"), stat_of(stats, "enters"));

	put(ASI "reset", "1");
	workload();
	get(ASI "stats", stats, sizeof(stats));
	exits = stat_of(stats, "exits");
	enters = stat_of(stats, "enters");
	printf("  After 20 fork+exec and 100 pipe round trips of 4 KiB:\n");
	printf("    %llu enters, %llu exits\n", enters, exits);
	printf("    counters (/sys/kernel/debug/asi/stats):\n");
	for (char *l = strtok(stats, "\n"); l; l = strtok(NULL, "\n"))
		printf("      %s\n", l);
	return strcmp(copy, secret) ? 1 : 0;
}
