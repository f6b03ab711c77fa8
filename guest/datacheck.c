// SPDX-License-Identifier: GPL-2.0
/*
 * datacheck: user data that must survive whatever the kernel does around it.
 *
 * make stress and make fuzz run this beside stress-ng or trinity. It fills
 * regions of every kind of user memory ASI treats as sensitive with a pattern
 * that is a function of (seed, region, page, generation), then, until SIGTERM:
 * every interval it verifies every word, forks a child that verifies the
 * copy-on-write view and writes its own copy, moves the anonymous region with
 * mremap, write-protects and unprotects it, re-reads the file-backed regions
 * through read(2) (the kernel's copy path), rewrites a quarter of every
 * region with a new generation, and with -u runs the userfaultfd fork pattern
 * of uffd_fork.h (pages filled by UFFDIO_COPY for a forked child, every other
 * round write-protected). On SIGTERM it verifies once more and prints
 *   datacheck: PASS rounds=N verified=BYTES
 * or the first mismatches and
 *   datacheck: FAIL ...
 * and exits 0 or 1. Regions the kernel does not support (secretmem) are
 * reported as "unsupported" and skipped.
 *
 * Usage: datacheck [-m MiB per region] [-i seconds between rounds] [-s seed] [-u]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "uffd_fork.h"

#ifndef __NR_memfd_secret
#define __NR_memfd_secret 447
#endif

#define PAGE 4096UL
#define WORDS (PAGE / sizeof(uint64_t))
#define MAX_REPORTS 8

enum kind { ANON, SHARED, MEMFD, SYSV, SECRET, FILEMAP, NKIND };
static const char *const names[NKIND] = {
	"anon-private", "anon-shared", "memfd", "sysv-shm", "secretmem", "tmpfs-file",
};

struct region {
	enum kind kind;
	uint8_t *mem;
	size_t len;
	int fd;			/* file-backed regions: verified through read(2) too */
	uint32_t *gen;		/* generation of each page */
	int ok;
};

static struct region regions[NKIND];
static uint64_t seed = 0x5eed;
static unsigned long verified, mismatches;
static volatile sig_atomic_t stop;

static uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

static uint64_t want(const struct region *r, size_t page, size_t word)
{
	return mix(seed ^ ((uint64_t)r->kind << 56) ^ ((uint64_t)r->gen[page] << 40) ^
		   (page * WORDS + word));
}

static void fill_page(struct region *r, size_t page)
{
	uint64_t *p = (uint64_t *)(r->mem + page * PAGE);

	for (size_t w = 0; w < WORDS; w++)
		p[w] = want(r, page, w);
}

static void report(const struct region *r, const char *how, size_t page, size_t w,
		   uint64_t got)
{
	mismatches++;
	if (mismatches <= MAX_REPORTS)
		printf("datacheck: MISMATCH %s (%s) offset 0x%zx: expected %016llx got %016llx\n",
		       names[r->kind], how, page * PAGE + w * 8,
		       (unsigned long long)want(r, page, w), (unsigned long long)got);
}

/* Verify a page's words against the pattern; buf is the mapping or a read(2) copy. */
static int check_page(const struct region *r, const uint64_t *buf, size_t page, const char *how)
{
	for (size_t w = 0; w < WORDS; w++) {
		if (buf[w] != want(r, page, w)) {
			report(r, how, page, w, buf[w]);
			return 1;
		}
	}
	verified += PAGE;
	return 0;
}

static int verify(const struct region *r)
{
	static uint64_t buf[WORDS];
	int bad = 0;

	for (size_t page = 0; page < r->len / PAGE; page++) {
		bad |= check_page(r, (const uint64_t *)(r->mem + page * PAGE), page, "mapping");
		if (r->fd >= 0 && r->kind != SECRET) {
			if (pread(r->fd, buf, PAGE, page * PAGE) != (ssize_t)PAGE) {
				printf("datacheck: MISMATCH %s: read(2) at 0x%zx: %s\n",
				       names[r->kind], page * PAGE, strerror(errno));
				mismatches++;
				bad = 1;
			} else {
				bad |= check_page(r, buf, page, "read(2)");
			}
		}
	}
	return bad;
}

static void *map_fd(int fd, size_t len)
{
	void *p;

	if (ftruncate(fd, len))
		return NULL;
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	return p == MAP_FAILED ? NULL : p;
}

static int setup(struct region *r, enum kind kind, size_t len)
{
	void *p = NULL;
	int id;

	r->kind = kind;
	r->len = len;
	r->fd = -1;
	switch (kind) {
	case ANON:
		/* 2 MiB aligned so that THP can back it when enabled */
		p = mmap(NULL, len + (2UL << 20), PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			return -errno;
		p = (void *)(((uintptr_t)p + (2UL << 20) - 1) & ~((2UL << 20) - 1));
		madvise(p, len, MADV_HUGEPAGE);
		break;
	case SHARED:
		p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			return -errno;
		break;
	case MEMFD:
		r->fd = memfd_create("datacheck", MFD_CLOEXEC);
		if (r->fd < 0)
			return -errno;
		p = map_fd(r->fd, len);
		break;
	case SECRET:
		r->fd = syscall(__NR_memfd_secret, O_CLOEXEC);
		if (r->fd < 0)
			return -errno;
		p = map_fd(r->fd, len);
		break;
	case FILEMAP:
		r->fd = open("datacheck.file", O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (r->fd < 0)
			return -errno;
		unlink("datacheck.file");
		p = map_fd(r->fd, len);
		break;
	case SYSV:
		id = shmget(IPC_PRIVATE, len, IPC_CREAT | 0600);
		if (id < 0)
			return -errno;
		p = shmat(id, NULL, 0);
		shmctl(id, IPC_RMID, NULL);
		if (p == (void *)-1)
			return -errno;
		break;
	default:
		return -EINVAL;
	}
	if (!p)
		return -errno;
	r->mem = p;
	r->gen = calloc(len / PAGE, sizeof(*r->gen));
	if (!r->gen)
		return -ENOMEM;
	for (size_t page = 0; page < len / PAGE; page++)
		fill_page(r, page);
	r->ok = 1;
	return 0;
}

/* A child checks the copy-on-write view, then writes its own copy of everything private. */
static int fork_check(void)
{
	int status;
	pid_t pid = fork();

	if (pid < 0) {
		printf("datacheck: fork: %s\n", strerror(errno));
		return 0;	/* memory pressure, not corruption */
	}
	if (pid == 0) {
		int bad = 0;

		for (int k = 0; k < NKIND; k++) {
			struct region *r = &regions[k];

			if (!r->ok)
				continue;
			bad |= verify(r);
			if (k == ANON) {
				for (size_t page = 0; page < r->len / PAGE; page += 3) {
					r->gen[page] += 1000;
					fill_page(r, page);
				}
				bad |= verify(r);
			}
		}
		fflush(stdout);
		_exit(bad);
	}
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	printf("datacheck: MISMATCH in the forked child (status 0x%x)\n", status);
	mismatches++;
	return 1;
}

/* Move the anonymous region elsewhere and back; write-protect it for a moment. */
static void shuffle_anon(struct region *r)
{
	void *p = mremap(r->mem, r->len, r->len, MREMAP_MAYMOVE | MREMAP_DONTUNMAP);

	if (p == MAP_FAILED)
		p = mremap(r->mem, r->len, r->len * 2, MREMAP_MAYMOVE);
	if (p == MAP_FAILED) {
		printf("datacheck: mremap: %s\n", strerror(errno));
		return;
	}
	if (p != r->mem) {
		munmap(r->mem, r->len);	/* the DONTUNMAP husk, if any */
		r->mem = p;
	}
	mprotect(r->mem, r->len, PROT_READ);
	verify(r);
	mprotect(r->mem, r->len, PROT_READ | PROT_WRITE);
}

/* userfaultfd across fork, write-protected every other round. */
static int uffd_round(unsigned int round)
{
	static int unsupported;
	int bad;

	if (unsupported)
		return 0;
	bad = uffd_fork_check(256, round & 1, seed + round);
	if (bad < 0) {
		printf("datacheck: userfaultfd: unsupported (%s)\n", strerror(-bad));
		unsupported = 1;
		return 0;
	}
	if (bad) {
		printf("datacheck: MISMATCH in %d userfaultfd page(s) (%s) in round %u\n", bad,
		       round & 1 ? "write-protected" : "missing", round);
		mismatches++;
	}
	return !!bad;
}

static void rewrite(struct region *r, unsigned int round)
{
	for (size_t page = round % 4; page < r->len / PAGE; page += 4) {
		r->gen[page]++;
		fill_page(r, page);
	}
}

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

int main(int argc, char **argv)
{
	size_t mib = 8;
	unsigned int interval = 5, rounds = 0;
	struct sigaction sa = { .sa_handler = on_signal };
	int opt, bad = 0, uffd = 0;

	while ((opt = getopt(argc, argv, "m:i:s:u")) != -1) {
		switch (opt) {
		case 'm': mib = strtoul(optarg, NULL, 0); break;
		case 'i': interval = strtoul(optarg, NULL, 0); break;
		case 's': seed = strtoull(optarg, NULL, 0); break;
		case 'u': uffd = 1; break;
		default:
			fprintf(stderr, "usage: %s [-m MiB] [-i seconds] [-s seed] [-u]\n", argv[0]);
			return 2;
		}
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);

	for (int k = 0; k < NKIND; k++) {
		int err = setup(&regions[k], k, mib << 20);

		if (err)
			printf("datacheck: %s: unsupported (%s)\n", names[k], strerror(-err));
		else
			printf("datacheck: %s: %zu MiB\n", names[k], mib);
	}
	printf("datacheck: ready seed=0x%llx interval=%us\n", (unsigned long long)seed, interval);

	while (!stop) {
		struct timespec ts = { .tv_sec = interval };

		if (nanosleep(&ts, NULL) && stop)
			break;
		rounds++;
		for (int k = 0; k < NKIND; k++)
			if (regions[k].ok)
				bad |= verify(&regions[k]);
		bad |= fork_check();
		if (uffd)
			bad |= uffd_round(rounds);
		if (regions[ANON].ok)
			shuffle_anon(&regions[ANON]);
		for (int k = 0; k < NKIND; k++)
			if (regions[k].ok)
				rewrite(&regions[k], rounds);
	}
	for (int k = 0; k < NKIND; k++)
		if (regions[k].ok)
			bad |= verify(&regions[k]);
	if (bad || mismatches) {
		printf("datacheck: FAIL rounds=%u mismatches=%lu verified=%lu\n", rounds,
		       mismatches, verified);
		return 1;
	}
	printf("datacheck: PASS rounds=%u verified=%lu\n", rounds, verified);
	return 0;
}
