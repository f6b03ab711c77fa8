// SPDX-License-Identifier: GPL-2.0
/*
 * Ephemeral mappings: the kernel copies a task's own data without leaving
 * the restricted address space, and the data is what it was.
 *
 * Pinned to one CPU, with that CPU's counters (asi/cpu/N), on tmpfs, on ext4
 * on a virtio-blk disk and on a writable 9p share (the last two when the VM
 * has them: scripts/vm --disk, --share):
 * - a file written with write(), written back and dropped from the page
 *   cache, then read back cold and cached, and copied on write through a
 *   private mapping, holds the pattern that was written;
 * - 1000 pread()s of its cached pages, 1000 pipe round trips (a write and a
 *   read of 4 KiB), as many with vmsplice() to user memory as the read, and
 *   256 copy-on-write faults in a forked child take no
 *   exit caused by the kernel's own work (fault, free, stable_cr3, other;
 *   switch exits are other processes' doing and are only reported), and map
 *   at least one page ephemerally per copy (asi=on only: SKIP otherwise);
 * - every byte read, piped and copied on write is checked against the
 *   pattern, and a checksum of it is printed ("datasum NAME HEX"): the runner
 *   (scripts/test) compares them between the asi=off and asi=on boots.
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
#include <sys/uio.h>
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
static char cmdline[4096];

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

/*
 * The filesystems the data goes through: tmpfs (mounted here), ext4 on the
 * virtio-blk disk and a writable 9p share, which scripts/vm --disk and
 * --share provide and the guest's init mounts.  A missing one is skipped,
 * unless its device is there and did not mount.
 */
static struct fs {
	const char *name, *dir;	/* name: the type in /proc/mounts */
	const char *why;	/* why it is skipped, or NULL */
} filesystems[] = {
	{ "tmpfs", DIR, NULL },
	{ "ext4", "/mnt/disk", NULL },
	{ "9p", "/mnt/share", NULL },
};

#define NFS (sizeof(filesystems) / sizeof(filesystems[0]))

/* Whether a filesystem of type @type is mounted at @dir (9p's statfs is the host's). */
static int mounted(const char *dir, const char *type)
{
	char line[512], mnt[256], fstype[64];
	FILE *f = fopen("/proc/mounts", "r");
	int found = 0;

	if (!f)
		return 0;
	while (!found && fgets(line, sizeof(line), f))
		found = sscanf(line, "%*s %255s %63s", mnt, fstype) == 2 &&
			!strcmp(mnt, dir) && !strcmp(fstype, type);
	fclose(f);
	return found;
}

static void fs_probe(struct fs *f)
{
	if (!mounted(f->dir, f->name))
		f->why = "not mounted";
	if (f->why && !strcmp(f->name, "ext4") && !access("/dev/vda", F_OK))
		ksft_exit_fail_msg("/dev/vda is there but %s holds no ext4\n", f->dir);
	if (f->why && !strcmp(f->name, "9p") && strstr(cmdline, "vm.share=1"))
		ksft_exit_fail_msg("the VM shares a directory but %s is not 9p\n", f->dir);
}

static void datasum(const char *what, const char *fs, uint32_t s)
{
	/* The runner compares these lines between asi=off and asi=on boots. */
	ksft_print_msg("datasum %s%s%s %08x\n", fs ? fs : "", fs ? "_" : "", what, s);
}

/* Each page of the file read back @rounds times, checked; -1 on a mismatch. */
static int read_back(const char *what, int fd, unsigned int gen, int rounds, uint32_t *s)
{
	unsigned char page[PAGE];
	long bad;

	for (int i = 0; i < rounds; i++) {
		unsigned long off = (unsigned long)((i * 37) % FILE_PAGES) * PAGE;

		if (pread(fd, page, PAGE, off) != PAGE) {
			ksft_print_msg("%s: pread at %lu: %m\n", what, off);
			return -1;
		}
		bad = check(page, PAGE, off, gen);
		if (bad >= 0) {
			ksft_print_msg("%s: byte %ld of the page at %lu differs\n", what, bad, off);
			return -1;
		}
		*s = sum(page, PAGE, *s);
	}
	return 0;
}

/*
 * write() the file, write it to the disk and drop it from the page cache
 * (ext4, 9p; tmpfs keeps it), then read every page back, cold and cached.
 */
static int test_read_write(struct fs *f, int *fdp)
{
	unsigned char *buf = malloc(FILE_PAGES * PAGE);
	char path[128], what[64];
	uint32_t s = 0;
	int fd;

	snprintf(path, sizeof(path), "%s/asi-ephmap-%d", f->dir, getpid());
	snprintf(what, sizeof(what), "%s read/write", f->name);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (!buf || fd < 0)
		return -1;
	unlink(path);
	fill(buf, FILE_PAGES * PAGE, 0, 1);
	/* Page by page: the write copies through one page at a time. */
	for (int i = 0; i < FILE_PAGES; i++)
		if (write(fd, buf + i * PAGE, PAGE) != PAGE)
			return -1;
	free(buf);
	if (fsync(fd) || posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED))
		return -1;
	if (read_back(what, fd, 1, FILE_PAGES, &s) || read_back(what, fd, 1, ROUNDS, &s))
		return -1;
	datasum("file", f->name, s);
	*fdp = fd;
	return 0;
}

/* 1000 reads of the cached file: no exit of their own. */
static int test_cached_read(struct fs *f, int fd)
{
	struct counts a, b;
	char what[64];
	uint32_t s = 0;

	snprintf(what, sizeof(what), "%s: %d cached 4 KiB reads", f->name, ROUNDS);
	if (snap(&a) || read_back(what, fd, 1, ROUNDS, &s) || snap(&b))
		return -1;
	return judge(what, &a, &b, ROUNDS);
}

/*
 * A private mapping of the file, written one byte a page: each write copies
 * the page-cache page into an anonymous one.  The copies hold the file's
 * data and the byte; the file is unchanged.
 */
static int test_private_cow(struct fs *f, int fd)
{
	unsigned char *m = mmap(NULL, FILE_PAGES * PAGE, PROT_READ | PROT_WRITE,
				MAP_PRIVATE, fd, 0);
	struct counts a, b;
	char what[64];
	uint32_t s = 0;
	long bad;

	if (m == MAP_FAILED)
		return -1;
	snprintf(what, sizeof(what), "%s: %d private-mapping copy-on-write faults",
		 f->name, FILE_PAGES);
	if (snap(&a))
		return -1;
	for (int i = 0; i < FILE_PAGES; i++)
		m[i * PAGE] = pattern(i * PAGE, 5);
	if (snap(&b))
		return -1;
	for (int i = 0; i < FILE_PAGES; i++) {
		bad = check(m + i * PAGE + 1, PAGE - 1, i * PAGE + 1, 1);
		if (bad >= 0 || m[i * PAGE] != pattern(i * PAGE, 5)) {
			ksft_print_msg("%s: page %d of the private copy differs\n", what, i);
			return -1;
		}
		s = sum(m + i * PAGE, PAGE, s);
	}
	munmap(m, FILE_PAGES * PAGE);
	if (active) {
		ksft_print_msg("%s: %lld exits (%lld of their own), %lld ephemeral maps\n",
			       what, b.exits - a.exits, b.own - a.own, b.ephmaps - a.ephmaps);
	}
	datasum("private_cow", f->name, s);
	return read_back(what, fd, 1, FILE_PAGES, &s);
}

/* The verdicts of a workload: its data, and (asi=on) its exits. */
struct verdict {
	int data, exits;
};

/* Read a page from the pipe with read(), or with vmsplice() to user memory. */
static int pipe_get(int fd, unsigned char *out, int vms)
{
	struct iovec iov = { .iov_base = out, .iov_len = PAGE };

	if (vms)
		return vmsplice(fd, &iov, 1, 0) == PAGE ? 0 : -1;
	return read(fd, out, PAGE) == PAGE ? 0 : -1;
}

static void test_pipe(struct verdict *v, int vms)
{
	const char *name = vms ? "vmsplice" : "pipe";
	unsigned char in[PAGE], out[PAGE];
	struct counts a, b;
	uint32_t s = 0;
	int p[2];
	long bad;

	v->data = v->exits = -1;
	if (pipe(p))
		return;
	memset(out, 0, sizeof(out));
	memset(in, 0, sizeof(in));
	if (snap(&a))
		return;
	for (int i = 0; i < ROUNDS; i++) {
		fill(in, PAGE, (unsigned long)i * PAGE, 2);
		if (write(p[1], in, PAGE) != PAGE || pipe_get(p[0], out, vms))
			return;
		bad = check(out, PAGE, (unsigned long)i * PAGE, 2);
		if (bad >= 0) {
			ksft_print_msg("%s: byte %ld of round %d differs\n", name, bad, i);
			return;
		}
		s = sum(out, PAGE, s);
	}
	if (snap(&b))
		return;
	close(p[0]);
	close(p[1]);
	datasum(name, NULL, s);
	v->data = 0;
	/* A write and a read each: two maps a round trip. */
	v->exits = judge(vms ? "1000 pipe round trips, vmsplice() to read" :
			 "1000 pipe round trips", &a, &b, 2 * ROUNDS);
}

/*
 * The child writes one byte of every page: each write copies the page.  Exit
 * status: bit 0 the data differs, bit 1 the exits or maps are wrong, 4 an
 * error.
 */
static int cow_child(unsigned char *m)
{
	struct counts a, b;
	long bad;
	int ret = 0;

	if (snap(&a))
		return 4;
	for (int i = 0; i < COW_PAGES; i++)
		m[i * PAGE] = pattern(i * PAGE, 4);
	if (snap(&b))
		return 4;
	for (int i = 0; i < COW_PAGES; i++) {
		bad = check(m + i * PAGE + 1, PAGE - 1, i * PAGE + 1, 3);
		if (bad >= 0 || m[i * PAGE] != pattern(i * PAGE, 4)) {
			ksft_print_msg("cow: page %d of the child's copy differs\n", i);
			ret |= 1;
			break;
		}
	}
	datasum("cow_child", NULL, sum(m, COW_PAGES * PAGE, 0));
	if (judge("256 copy-on-write faults", &a, &b, COW_PAGES))
		ret |= 2;
	return ret;
}

static void test_cow(struct verdict *v)
{
	unsigned char *m = mmap(NULL, COW_PAGES * PAGE, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int status;
	pid_t pid;
	long bad;

	v->data = v->exits = -1;
	if (m == MAP_FAILED)
		return;
	fill(m, COW_PAGES * PAGE, 0, 3);
	fflush(stdout);
	pid = fork();
	if (pid < 0)
		return;
	if (!pid)
		_exit(cow_child(m));
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
	    WEXITSTATUS(status) & 4)
		return;
	v->exits = WEXITSTATUS(status) & 2 ? -1 : 0;
	/* The parent's pages are untouched by the child's writes. */
	bad = check(m, COW_PAGES * PAGE, 0, 3);
	if (bad >= 0)
		ksft_print_msg("cow: byte %ld of the parent's memory changed\n", bad);
	else if (!(WEXITSTATUS(status) & 1))
		v->data = 0;
	datasum("cow_parent", NULL, sum(m, COW_PAGES * PAGE, 0));
	munmap(m, COW_PAGES * PAGE);
}

static void result(int ok, const char *name, const char *fs)
{
	if (ok == 0)
		ksft_test_result_pass("%s%s%s\n", fs ? fs : "", fs ? "_" : "", name);
	else
		ksft_test_result_fail("%s%s%s\n", fs ? fs : "", fs ? "_" : "", name);
}

/* An exit verdict: only asked for with ASI on. */
static void exit_result(int ok, const char *name, const char *fs)
{
	if (!active)
		ksft_test_result_skip("%s%s%s: ASI is off\n", fs ? fs : "", fs ? "_" : "", name);
	else
		result(ok, name, fs);
}

int main(void)
{
	struct verdict v;

	ksft_print_header();
	active = asi_active();
	cpu = sysconf(_SC_NPROCESSORS_ONLN) - 1;
	if (asi_pin(cpu))
		ksft_exit_fail_msg("sched_setaffinity: %m\n");
	if (mkdir(DIR, 0700) && access(DIR, F_OK))
		ksft_exit_fail_msg("mkdir " DIR ": %m\n");
	if (mount("tmpfs", DIR, "tmpfs", 0, "size=16m"))
		ksft_exit_fail_msg("mount tmpfs on " DIR ": %m\n");
	if (asi_get("/proc/cmdline", cmdline, sizeof(cmdline)) < 0)
		ksft_exit_fail_msg("/proc/cmdline: %m\n");
	for (unsigned int i = 0; i < NFS; i++)
		fs_probe(&filesystems[i]);
	ksft_set_plan(3 * NFS + 6);
	for (unsigned int i = 0; i < NFS; i++) {
		struct fs *f = &filesystems[i];
		int fd = -1, ret;

		if (f->why) {
			ksft_test_result_skip("%s_read_write_same_data: %s\n", f->name, f->why);
			ksft_test_result_skip("%s_cached_read_no_exit: %s\n", f->name, f->why);
			ksft_test_result_skip("%s_private_cow_same_data: %s\n", f->name, f->why);
			continue;
		}
		ret = test_read_write(f, &fd);
		result(ret, "read_write_same_data", f->name);
		exit_result(ret ? ret : test_cached_read(f, fd), "cached_read_no_exit", f->name);
		result(ret ? ret : test_private_cow(f, fd), "private_cow_same_data", f->name);
		if (fd >= 0)
			close(fd);
	}
	test_pipe(&v, 0);
	result(v.data, "pipe_round_trip_same_data", NULL);
	exit_result(v.exits, "pipe_round_trip_no_exit", NULL);
	test_pipe(&v, 1);
	result(v.data, "vmsplice_round_trip_same_data", NULL);
	exit_result(v.exits, "vmsplice_round_trip_no_exit", NULL);
	test_cow(&v);
	result(v.data, "cow_fault_same_data", NULL);
	exit_result(v.exits, "cow_fault_no_exit", NULL);
	umount(DIR);
	ksft_finished();
}
