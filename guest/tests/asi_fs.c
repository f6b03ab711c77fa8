// SPDX-License-Identifier: GPL-2.0
/*
 * Real filesystems, block devices and swap: the data is what was written.
 *
 * On ext4 and on btrfs, each on its own virtio-blk disk (scripts/vm --disk;
 * the guest's init mounts them at /mnt/disk, /mnt/disk2, ...):
 * - read_write: a file written with write() in pieces that straddle pages,
 *   read back with read();
 * - mmap: the file read through a shared mapping, rewritten through it,
 *   msync()ed, read back with read(), and read again with O_DIRECT (from
 *   the disk);
 * - direct_io: a second file written and read with O_DIRECT (aligned
 *   buffers, no page cache);
 * - writeback: after sync() and drop_caches, with none of either file's
 *   pages left in the page cache (mincore), both read back from the disk,
 *   one with read(), the other through a mapping.
 * Swap (a disk holding a swap area, from mkswap on the host): swapon, then
 * a child in a cgroup v2 with memory.max 32 MiB (memory.swap.max "max")
 * fills 96 MiB of anonymous memory with a pattern and checks all of it:
 * /proc/vmstat's pswpout and pswpin must show that at least the 64 MiB over
 * the limit went out to the disk and came back in.
 *
 * Every byte is checked against its pattern (a mismatch fails the case),
 * and a checksum of each is printed ("datasum NAME HEX"): the runner
 * (scripts/test) compares them between the asi=off and asi=on boots.  A
 * filesystem, swap area or kernel feature the boot lacks makes its cases
 * skip, and the program then exits SKIP (4), never PASS.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/swap.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kselftest.h"
#include "asi.h"

#define PAGE ASI_PAGE
#define FILE_BYTES (1UL << 20)
#define CHUNK (3 * PAGE + 100)		/* write()/read() pieces: not page-aligned */
#define DIO_CHUNK (64UL << 10)
#define ANON_BYTES (96UL << 20)
#define LIMIT_BYTES (32UL << 20)
#define CG "/tmp/asi-fs-cgroup"

/* The 64-bit word @i of the data of generation @gen. */
static uint64_t pattern(uint64_t i, unsigned int gen)
{
	uint64_t x = (i + 1) * 0x9e3779b97f4a7c15ULL ^ gen * 0xd6e8feb86659fd93ULL;

	return x ^ x >> 29;
}

static void fill(uint64_t *p, size_t bytes, unsigned int gen)
{
	for (size_t i = 0; i < bytes / 8; i++)
		p[i] = pattern(i, gen);
}

/* Check @bytes at @p against generation @gen; add them to @s; 0 or -1. */
static int check(const char *what, const uint64_t *p, size_t bytes, unsigned int gen,
		 uint32_t *s)
{
	for (size_t i = 0; i < bytes / 8; i++) {
		if (p[i] != pattern(i, gen)) {
			ksft_print_msg("%s: byte %zu differs: %016llx, not %016llx\n", what,
				       i * 8, (unsigned long long)p[i],
				       (unsigned long long)pattern(i, gen));
			return -1;
		}
		*s = (*s ^ (uint32_t)p[i]) * 16777619u;
		*s = (*s ^ (uint32_t)(p[i] >> 32)) * 16777619u;
	}
	return 0;
}

static void datasum(const char *fs, const char *what, uint32_t s)
{
	/* The runner compares these lines between asi=off and asi=on boots. */
	ksft_print_msg("datasum %s_%s %08x\n", fs, what, s);
}

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

/* All of @len at @buf with write() (@wr) or read(), in CHUNK pieces; 0 or -1. */
static int rw_all(int fd, void *buf, size_t len, int wr)
{
	char *p = buf;

	for (size_t off = 0; off < len;) {
		size_t n = len - off < CHUNK ? len - off : CHUNK;
		ssize_t r = wr ? write(fd, p + off, n) : read(fd, p + off, n);

		if (r <= 0) {
			ksft_print_msg("%s at %zu: %s\n", wr ? "write" : "read", off,
				       r ? strerror(errno) : "end of file");
			return -1;
		}
		off += r;
	}
	return 0;
}

/* All of @len at the aligned @buf with O_DIRECT pwrite()/pread() from 0; 0 or -1. */
static int dio_all(int fd, void *buf, size_t len, int wr)
{
	char *p = buf;

	for (size_t off = 0; off < len; off += DIO_CHUNK) {
		ssize_t r = wr ? pwrite(fd, p + off, DIO_CHUNK, off) :
				 pread(fd, p + off, DIO_CHUNK, off);

		if (r != (ssize_t)DIO_CHUNK) {
			ksft_print_msg("O_DIRECT %s at %zu: %s\n", wr ? "write" : "read", off,
				       r < 0 ? strerror(errno) : "short");
			return -1;
		}
	}
	return 0;
}

static struct fs {
	const char *name;	/* the type in /proc/mounts */
	char dir[64];		/* where init mounted it, or "" */
} filesystems[] = { { "ext4", "" }, { "btrfs", "" } };

#define NFS (sizeof(filesystems) / sizeof(filesystems[0]))
#define FS_CASES 4

/* The first /mnt/disk* that holds a filesystem of @f's type. */
static void fs_find(struct fs *f)
{
	char line[512], mnt[64], type[32];
	FILE *m = fopen("/proc/mounts", "r");

	while (m && fgets(line, sizeof(line), m))
		if (sscanf(line, "%*s %63s %31s", mnt, type) == 2 &&
		    !strncmp(mnt, "/mnt/disk", 9) && !strcmp(type, f->name)) {
			strcpy(f->dir, mnt);
			break;
		}
	if (m)
		fclose(m);
}

/* Pages of @fd's first @len bytes in the page cache, or -1. */
static long cached_pages(int fd, size_t len)
{
	unsigned char vec[FILE_BYTES / PAGE];
	void *m = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
	long n = 0;

	if (m == MAP_FAILED || mincore(m, len, vec))
		return -1;
	munmap(m, len);
	for (size_t i = 0; i < len / PAGE; i++)
		n += vec[i] & 1;
	return n;
}

static int drop_caches(void)
{
	sync();
	return asi_put("/proc/sys/vm/drop_caches", "3");
}

/* The four cases on one filesystem; each result reported. */
static void fs_test(struct fs *f)
{
	char a[128], b[128], what[64];
	uint64_t *buf, *abuf;
	int fa = -1, fb = -1, ok;
	uint64_t *m;
	uint32_t s;
	long cached;
	double t0 = now();

	snprintf(a, sizeof(a), "%s/asi-fs-a", f->dir);
	snprintf(b, sizeof(b), "%s/asi-fs-b", f->dir);
	buf = malloc(FILE_BYTES);
	if (!buf || posix_memalign((void **)&abuf, PAGE, FILE_BYTES))
		ksft_exit_fail_msg("out of memory\n");

	/* write() and read(). */
	s = 0;
	snprintf(what, sizeof(what), "%s read_write", f->name);
	fill(buf, FILE_BYTES, 1);
	fa = open(a, O_RDWR | O_CREAT | O_TRUNC, 0600);
	ok = fa >= 0 && !rw_all(fa, buf, FILE_BYTES, 1);
	memset(buf, 0, FILE_BYTES);
	ok = ok && lseek(fa, 0, SEEK_SET) == 0 && !rw_all(fa, buf, FILE_BYTES, 0) &&
	     !check(what, buf, FILE_BYTES, 1, &s);
	if (ok)
		datasum(f->name, "read_write", s);
	ksft_test_result(ok, "%s_read_write\n", f->name);

	/* Through a shared mapping: read, rewrite, msync, read back twice. */
	s = 0;
	snprintf(what, sizeof(what), "%s mmap", f->name);
	m = fa < 0 ? MAP_FAILED : mmap(NULL, FILE_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED,
				       fa, 0);
	ok = m != MAP_FAILED && !check(what, m, FILE_BYTES, 1, &s);
	if (ok) {
		fill(m, FILE_BYTES, 2);
		ok = !msync(m, FILE_BYTES, MS_SYNC);
	}
	if (m != MAP_FAILED)
		munmap(m, FILE_BYTES);
	s = 0;
	memset(buf, 0, FILE_BYTES);
	ok = ok && lseek(fa, 0, SEEK_SET) == 0 && !rw_all(fa, buf, FILE_BYTES, 0) &&
	     !check(what, buf, FILE_BYTES, 2, &s);
	if (ok) {
		uint32_t d = 0;
		int fd = open(a, O_RDONLY | O_DIRECT);

		snprintf(what, sizeof(what), "%s mmap, read with O_DIRECT", f->name);
		memset(abuf, 0, FILE_BYTES);
		ok = fd >= 0 && !dio_all(fd, abuf, FILE_BYTES, 0) &&
		     !check(what, abuf, FILE_BYTES, 2, &d) && d == s;
		if (fd >= 0)
			close(fd);
	}
	if (ok)
		datasum(f->name, "mmap", s);
	ksft_test_result(ok, "%s_mmap\n", f->name);

	/* O_DIRECT both ways, a file of its own. */
	s = 0;
	snprintf(what, sizeof(what), "%s direct_io", f->name);
	fill(abuf, FILE_BYTES, 3);
	fb = open(b, O_RDWR | O_CREAT | O_TRUNC | O_DIRECT, 0600);
	ok = fb >= 0 && !dio_all(fb, abuf, FILE_BYTES, 1);
	memset(abuf, 0, FILE_BYTES);
	ok = ok && !dio_all(fb, abuf, FILE_BYTES, 0) && !check(what, abuf, FILE_BYTES, 3, &s);
	if (!ok && fb < 0)
		ksft_print_msg("open %s with O_DIRECT: %m\n", b);
	if (ok)
		datasum(f->name, "direct_io", s);
	ksft_test_result(ok, "%s_direct_io\n", f->name);

	/* Written back, dropped from the page cache, read back from the disk. */
	if (fa >= 0)
		close(fa);
	if (fb >= 0)
		close(fb);
	s = 0;
	snprintf(what, sizeof(what), "%s writeback", f->name);
	fa = open(a, O_RDONLY);
	fb = open(b, O_RDONLY);
	ok = fa >= 0 && fb >= 0 && !drop_caches();
	if (ok) {
		cached = cached_pages(fa, FILE_BYTES) + cached_pages(fb, FILE_BYTES);
		if (cached) {
			ksft_print_msg("%s: %ld pages still cached after sync and drop_caches\n",
				       what, cached);
			ok = 0;
		}
	}
	memset(buf, 0, FILE_BYTES);
	ok = ok && !rw_all(fa, buf, FILE_BYTES, 0) && !check(what, buf, FILE_BYTES, 2, &s);
	m = ok ? mmap(NULL, FILE_BYTES, PROT_READ, MAP_SHARED, fb, 0) : MAP_FAILED;
	ok = ok && m != MAP_FAILED && !check(what, m, FILE_BYTES, 3, &s);
	if (m != MAP_FAILED)
		munmap(m, FILE_BYTES);
	if (ok)
		datasum(f->name, "writeback", s);
	ksft_test_result(ok, "%s_writeback\n", f->name);

	if (fa >= 0)
		close(fa);
	if (fb >= 0)
		close(fb);
	unlink(a);
	unlink(b);
	free(buf);
	free(abuf);
	ksft_print_msg("%s on %s: %.1f s\n", f->name, f->dir, now() - t0);
}

/* /dev/vd? holding a swap area ("SWAPSPACE2" at the end of its first page). */
static int swap_find(char *dev, size_t len)
{
	for (char c = 'a'; c <= 'z'; c++) {
		char magic[10];
		int fd;

		snprintf(dev, len, "/dev/vd%c", c);
		fd = open(dev, O_RDONLY);
		if (fd < 0)
			continue;
		if (pread(fd, magic, sizeof(magic), PAGE - 10) == sizeof(magic) &&
		    !memcmp(magic, "SWAPSPACE2", 10)) {
			close(fd);
			return 0;
		}
		close(fd);
	}
	return -1;
}

/* One counter of /proc/vmstat, or -1. */
static long long vmstat(const char *name)
{
	static char buf[16384];

	if (asi_get("/proc/vmstat", buf, sizeof(buf)) <= 0)
		return -1;
	return asi_value(buf, name);
}

/* The child in the cgroup: exit 0, 1 on a mismatch, 2 on an error. */
static int swap_child(void)
{
	uint64_t *p;
	char cur[64];
	uint32_t s = 0;

	if (asi_put(CG "/asi_fs/cgroup.procs", "0")) {
		ksft_print_msg("joining the cgroup: %m\n");
		return 2;
	}
	p = mmap(NULL, ANON_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return 2;
	fill(p, ANON_BYTES, 7);
	if (asi_get(CG "/asi_fs/memory.swap.current", cur, sizeof(cur)) <= 0)
		return 2;
	ksft_print_msg("swap: %lu MiB written, memory.swap.current %lld MiB\n",
		       ANON_BYTES >> 20, atoll(cur) >> 20);
	if (check("swap anon", p, ANON_BYTES, 7, &s))
		return 1;
	ksft_print_msg("datasum swap_anon %08x\n", s);
	return 0;
}

/*
 * Swap-out and -in of anonymous memory under a memory limit.  1 pass, 0
 * fail, -1 skip (@why says why).
 */
static int swap_test(const char **why)
{
	long long out0, in0, out, in, min = (ANON_BYTES - LIMIT_BYTES) / PAGE;
	char dev[32], ctl[256], lim[32];
	int ret = 0, status;
	double t0 = now();
	pid_t pid;

	if (swap_find(dev, sizeof(dev))) {
		*why = "no disk holds a swap area (scripts/vm --disk with a mkswap'd image)";
		return -1;
	}
	if (swapon(dev, 0)) {
		*why = errno == ENOSYS ? "the kernel has no swap support" : NULL;
		if (!*why)
			ksft_print_msg("swapon %s: %m\n", dev);
		return *why ? -1 : 0;
	}
	if ((mkdir(CG, 0700) && errno != EEXIST) || mount("cgroup2", CG, "cgroup2", 0, NULL)) {
		*why = errno == ENODEV ? "the kernel has no cgroup v2" : NULL;
		if (!*why)
			ksft_print_msg("mount cgroup2 on " CG ": %m\n");
		ret = *why ? -1 : 0;
		goto out_swapoff;
	}
	if (asi_get(CG "/cgroup.controllers", ctl, sizeof(ctl)) < 0 || !strstr(ctl, "memory")) {
		*why = "the kernel has no memory controller";
		ret = -1;
		goto out_umount;
	}
	snprintf(lim, sizeof(lim), "%lu", LIMIT_BYTES);
	if (asi_put(CG "/cgroup.subtree_control", "+memory") ||
	    (mkdir(CG "/asi_fs", 0700) && errno != EEXIST) ||
	    asi_put(CG "/asi_fs/memory.max", lim) ||
	    asi_put(CG "/asi_fs/memory.swap.max", "max")) {
		ksft_print_msg("setting up the cgroup " CG "/asi_fs: %m\n");
		goto out_rmdir;
	}
	out0 = vmstat("pswpout");
	in0 = vmstat("pswpin");
	if (out0 < 0 || in0 < 0) {
		*why = "no pswpout/pswpin in /proc/vmstat";
		ret = -1;
		goto out_rmdir;
	}
	fflush(stdout);
	pid = fork();
	if (pid < 0)
		goto out_rmdir;
	if (!pid) {
		ret = swap_child();
		fflush(stdout);
		_exit(ret);
	}
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status)) {
		ksft_print_msg("swap: the child ended with status %#x\n", status);
		goto out_rmdir;
	}
	out = vmstat("pswpout") - out0;
	in = vmstat("pswpin") - in0;
	ksft_print_msg("swap: %lld pages swapped out, %lld in (at least %lld each), %.1f s\n",
		       out, in, min, now() - t0);
	ret = out >= min && in >= min;
out_rmdir:
	rmdir(CG "/asi_fs");
out_umount:
	umount(CG);
	rmdir(CG);
out_swapoff:
	if (swapoff(dev)) {
		ksft_print_msg("swapoff %s: %m\n", dev);
		ret = 0;
	}
	return ret;
}

int main(void)
{
	unsigned int skipped = 0;
	const char *why = NULL;
	int ret;

	ksft_print_header();
	for (unsigned int i = 0; i < NFS; i++)
		fs_find(&filesystems[i]);
	ksft_set_plan(NFS * FS_CASES + 1);
	for (unsigned int i = 0; i < NFS; i++) {
		struct fs *f = &filesystems[i];

		if (f->dir[0]) {
			fs_test(f);
			continue;
		}
		for (int c = 0; c < FS_CASES; c++)
			ksft_test_result_skip("%s: no %s disk mounted at /mnt/disk*\n",
					      f->name, f->name);
		skipped++;
	}
	ret = swap_test(&why);
	if (ret < 0) {
		ksft_test_result_skip("swap_anon: %s\n", why);
		skipped++;
	} else {
		ksft_test_result(ret, "swap_anon\n");
	}
	/* Something missing is a skip, not a pass. */
	if (ksft_get_fail_cnt() || !skipped)
		ksft_finished();
	ksft_print_cnts();
	exit(KSFT_SKIP);
}
