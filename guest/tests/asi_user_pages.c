// SPDX-License-Identifier: GPL-2.0
/*
 * The pages of a user process are absent from its restricted address space.
 *
 * Anonymous memory, tmpfs page cache and a memfd are touched, their PFNs read
 * from /proc/self/pagemap, and each PFN is checked through the kernel's ASI
 * probe (/sys/kernel/debug/asi/pfn): sensitive, absent from the restricted
 * direct map, present in the full one. Skips when the kernel runs without ASI.
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

#include "kselftest.h"
#include "asi.h"

#define PAGE ASI_PAGE
#define NPAGES 32
#define PROBE ASI_DIR "pfn"

/* "pfn 0x.. sensitive 1 restricted absent 0x0 full present" */
static int probe(uint64_t pfn, char *line, size_t len)
{
	char buf[32];
	int fd = open(PROBE, O_RDWR);
	ssize_t n;

	if (fd < 0)
		return -1;
	snprintf(buf, sizeof(buf), "%llu", (unsigned long long)pfn);
	if (write(fd, buf, strlen(buf)) < 0 || lseek(fd, 0, SEEK_SET))
		return -1;
	n = read(fd, line, len - 1);
	close(fd);
	if (n <= 0)
		return -1;
	line[n] = 0;
	return 0;
}

/* Every page of [p, p + n pages) is resident, sensitive and hidden. */
static int check_hidden(const char *what, unsigned char *p, int n)
{
	char line[256];
	int bad = 0;

	for (int i = 0; i < n; i++) {
		uint64_t pfn = asi_pfn_of(p + i * PAGE);

		if (!pfn) {
			ksft_print_msg("%s: page %d not resident or no PFN (not root?)\n", what, i);
			return -1;
		}
		if (probe(pfn, line, sizeof(line))) {
			ksft_print_msg("%s: probe failed: %m\n", what);
			return -1;
		}
		if (!strstr(line, "sensitive 1") || !strstr(line, "restricted absent 0x0 ") ||
		    !strstr(line, "full present")) {
			if (bad++ < 3)
				ksft_print_msg("%s: page %d: %s", what, i, line);
		}
	}
	return bad ? -1 : 0;
}

static int test_anon(void)
{
	unsigned char *p = mmap(NULL, NPAGES * PAGE, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return -1;
	memset(p, 0x5a, NPAGES * PAGE);
	return check_hidden("anon", p, NPAGES);
}

static int test_cow_child(void)
{
	unsigned char *p = mmap(NULL, NPAGES * PAGE, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int status;
	pid_t pid;

	if (p == MAP_FAILED)
		return -1;
	memset(p, 1, NPAGES * PAGE);
	pid = fork();
	if (pid == 0) {
		/* Copy-on-write copies are user data too. */
		memset(p, 2, NPAGES * PAGE);
		_exit(check_hidden("cow copy", p, NPAGES) ? 1 : 0);
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFEXITED(status) && !WEXITSTATUS(status) ? 0 : -1;
}

static int test_tmpfs(void)
{
	char path[] = "/tmp/asi_user_pages.XXXXXX";
	int fd = mkstemp(path), ret;
	unsigned char *p;

	if (fd < 0)
		return -1;
	unlink(path);
	p = calloc(NPAGES, PAGE);
	if (!p || write(fd, p, NPAGES * PAGE) != (ssize_t)(NPAGES * PAGE))
		return -1;
	free(p);
	p = mmap(NULL, NPAGES * PAGE, PROT_READ, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return -1;
	for (int i = 0; i < NPAGES; i++)
		(void)*(volatile unsigned char *)(p + i * PAGE);
	ret = check_hidden("tmpfs page cache", p, NPAGES);
	munmap(p, NPAGES * PAGE);
	close(fd);
	return ret;
}

static int test_memfd(void)
{
	int fd = memfd_create("asi_user_pages", 0), ret;
	unsigned char *p;

	if (fd < 0 || ftruncate(fd, NPAGES * PAGE))
		return -1;
	p = mmap(NULL, NPAGES * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return -1;
	memset(p, 3, NPAGES * PAGE);
	ret = check_hidden("memfd", p, NPAGES);
	munmap(p, NPAGES * PAGE);
	close(fd);
	return ret;
}

int main(void)
{
	static const struct {
		const char *name;
		int (*fn)(void);
	} tests[] = {
		{ "anonymous_pages_hidden", test_anon },
		{ "cow_copies_hidden", test_cow_child },
		{ "tmpfs_page_cache_hidden", test_tmpfs },
		{ "memfd_pages_hidden", test_memfd },
	};
	char line[256];

	ksft_print_header();
	if (!asi_active())
		ksft_exit_skip("ASI is not active in this kernel\n");
	if (probe(1, line, sizeof(line)))
		ksft_exit_skip("no ASI PFN probe (%s)\n", PROBE);
	ksft_set_plan(ARRAY_SIZE(tests));
	for (size_t i = 0; i < ARRAY_SIZE(tests); i++) {
		if (tests[i].fn() == 0)
			ksft_test_result_pass("%s\n", tests[i].name);
		else
			ksft_test_result_fail("%s\n", tests[i].name);
	}
	ksft_finished();
}
