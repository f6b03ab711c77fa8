// SPDX-License-Identifier: GPL-2.0
/*
 * User-memory traffic with results that are checked: fork, exec, anonymous
 * mmap/munmap/mremap, copy-on-write, file read/write on tmpfs (read(), pread(),
 * mmap), pipes and shared memfd mappings. Every byte that moves is verified,
 * so a kernel that maps, copies or isolates user memory wrongly fails here.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kselftest.h"

#define PAGE 4096UL
#define ROUNDS 8

static void fill(unsigned char *p, size_t n, uint32_t seed)
{
	for (size_t i = 0; i < n; i++) {
		seed = seed * 1103515245u + 12345u;
		p[i] = seed >> 16;
	}
}

static int check(const unsigned char *p, size_t n, uint32_t seed)
{
	for (size_t i = 0; i < n; i++) {
		seed = seed * 1103515245u + 12345u;
		if (p[i] != (unsigned char)(seed >> 16))
			return -1;
	}
	return 0;
}

static void *map_anon(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

/* Child mode: re-executed binary checks the pattern it gets on stdin. */
static int child_main(uint32_t seed, size_t n)
{
	unsigned char *buf = malloc(n);
	size_t got = 0;

	while (buf && got < n) {
		ssize_t r = read(0, buf + got, n - got);

		if (r <= 0)
			return 2;
		got += r;
	}
	return buf && check(buf, n, seed) == 0 ? 0 : 1;
}

static int test_fork_exec_pipe(void)
{
	const size_t n = 256 * 1024;
	unsigned char *buf = malloc(n);

	if (!buf)
		return -1;
	for (int r = 0; r < ROUNDS; r++) {
		int fd[2], status;
		char seed[16], len[24];
		pid_t pid;

		fill(buf, n, r);
		if (pipe(fd))
			return -1;
		pid = fork();
		if (pid < 0)
			return -1;
		if (pid == 0) {
			snprintf(seed, sizeof(seed), "%d", r);
			snprintf(len, sizeof(len), "%zu", n);
			dup2(fd[0], 0);
			close(fd[1]);
			execl("/proc/self/exe", "mm_traffic", "child", seed, len, NULL);
			_exit(3);
		}
		close(fd[0]);
		for (size_t off = 0; off < n;) {
			ssize_t w = write(fd[1], buf + off, n - off);

			if (w <= 0)
				return -1;
			off += w;
		}
		close(fd[1]);
		if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
		    WEXITSTATUS(status)) {
			ksft_print_msg("child %d: status %#x\n", r, status);
			return -1;
		}
	}
	free(buf);
	return 0;
}

static int test_mmap_mremap(void)
{
	unsigned char *ref = malloc((16 + ROUNDS * 8) * PAGE);

	if (!ref)
		return -1;
	for (int r = 0; r < ROUNDS; r++) {
		size_t len = (16 + r * 8) * PAGE;
		unsigned char *p = map_anon(len), *q;

		if (!p)
			return -1;
		fill(p, len, 100 + r);
		/* Grow, forcing a move by mapping a guard right after it. */
		q = mremap(p, len, 4 * len, MREMAP_MAYMOVE);
		if (q == MAP_FAILED || check(q, len, 100 + r))
			return -1;
		memset(q + len, 0x5a, 3 * len);
		if (munmap(q + len, 2 * len))
			return -1;
		if (check(q, len, 100 + r) || q[3 * len] != 0x5a)
			return -1;
		/* Drop the first page: it must read back as zeroes, the rest intact. */
		fill(ref, len, 100 + r);
		if (madvise(q, PAGE, MADV_DONTNEED) || q[0] != 0 ||
		    memcmp(q + PAGE, ref + PAGE, len - PAGE))
			return -1;
		munmap(q, len);
		munmap(q + 3 * len, len);
	}
	free(ref);
	return 0;
}

static int test_cow(void)
{
	const size_t len = 64 * PAGE;
	unsigned char *p = map_anon(len);
	int status;
	pid_t pid;

	if (!p)
		return -1;
	fill(p, len, 7);
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		if (check(p, len, 7))
			_exit(1);
		fill(p, len, 8);
		_exit(check(p, len, 8) ? 2 : 0);
	}
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
	    WEXITSTATUS(status))
		return -1;
	return check(p, len, 7);
}

static int test_file_rw(void)
{
	const size_t len = 1024 * 1024;
	char path[] = "/tmp/mm_traffic.XXXXXX";
	unsigned char *buf = malloc(len), *rd = malloc(len), *m;
	int fd = mkstemp(path), ret = -1;

	if (fd < 0 || !buf || !rd)
		return -1;
	unlink(path);
	fill(buf, len, 42);
	if (write(fd, buf, len) != (ssize_t)len)
		goto out;
	if (pread(fd, rd, len, 0) != (ssize_t)len || memcmp(buf, rd, len))
		goto out;
	/* Scattered page-sized reads and overwrites. */
	for (size_t i = 0; i < 256; i++) {
		size_t off = ((i * 2654435761u) % (len / PAGE)) * PAGE;

		if (pread(fd, rd, PAGE, off) != (ssize_t)PAGE ||
		    memcmp(rd, buf + off, PAGE))
			goto out;
		buf[off] ^= 0xff;
		if (pwrite(fd, buf + off, 1, off) != 1)
			goto out;
	}
	m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED)
		goto out;
	ret = memcmp(m, buf, len) ? -1 : 0;
	m[len - 1] ^= 0xff;
	buf[len - 1] ^= 0xff;
	munmap(m, len);
	if (!ret && (pread(fd, rd, len, 0) != (ssize_t)len || memcmp(buf, rd, len)))
		ret = -1;
out:
	close(fd);
	free(buf);
	free(rd);
	return ret;
}

static int test_memfd_shared(void)
{
	const size_t len = 32 * PAGE;
	int fd = memfd_create("mm_traffic", 0), status;
	unsigned char *p;
	pid_t pid;

	if (fd < 0 || ftruncate(fd, len))
		return -1;
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return -1;
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		fill(p, len, 99);
		_exit(0);
	}
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
	    WEXITSTATUS(status))
		return -1;
	status = check(p, len, 99);
	munmap(p, len);
	close(fd);
	return status;
}

struct test {
	const char *name;
	int (*fn)(void);
};

static const struct test tests[] = {
	{ "fork_exec_pipe", test_fork_exec_pipe },
	{ "mmap_mremap", test_mmap_mremap },
	{ "cow", test_cow },
	{ "file_rw_tmpfs", test_file_rw },
	{ "memfd_shared", test_memfd_shared },
};

int main(int argc, char **argv)
{
	if (argc == 4 && !strcmp(argv[1], "child"))
		return child_main(atoi(argv[2]), strtoul(argv[3], NULL, 0));

	ksft_print_header();
	ksft_set_plan(ARRAY_SIZE(tests));
	for (size_t i = 0; i < ARRAY_SIZE(tests); i++) {
		errno = 0;
		if (tests[i].fn() == 0)
			ksft_test_result_pass("%s\n", tests[i].name);
		else
			ksft_test_result_fail("%s (%s)\n", tests[i].name,
					      strerror(errno));
	}
	ksft_finished();
}
