// SPDX-License-Identifier: GPL-2.0
/*
 * make bench, guest side: microbenchmarks with the ASI counters around them.
 *
 * Each microbenchmark runs a fixed number of operations and prints one line
 *
 *   @@BENCH workload=NAME phase=PHASE ops=N ns=T stats=ok enters=... exits=...
 *
 * with the elapsed CLOCK_MONOTONIC time and the change of every counter of
 * /sys/kernel/debug/asi/stats over the run. Without that file the line says
 * stats=missing: the host reports it as an error, never as zero. Under QEMU
 * -icount shift=0 one nanosecond of guest time is one guest instruction, so
 * ns is then an exact instruction count.
 *
 *   asi-bench info                      the kernel's ASI state (@@INFO lines)
 *   asi-bench list                      the microbenchmarks
 *   asi-bench run NAME OPS [PHASE]      one microbenchmark
 *   asi-bench snap FILE [start|end]     save the time and the counters in FILE;
 *                                       start/end: open or close the window of
 *                                       the host's instruction counter
 *   asi-bench diff NAME OPS PRE POST [PHASE]
 *                                       a @@BENCH line from two snapshots, for
 *                                       workloads run by a script (fio)
 *   asi-bench wrap NAME OPS PHASE CMD...
 *                                       run CMD as the workload; the line adds
 *                                       cpu_ns, the CPU time of CMD and its
 *                                       children (instructions under -icount,
 *                                       without the time all CPUs sat idle)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "asi.h"

#define STATS ASI_DIR "stats"
#define PAGE 4096UL
#define MAX_KEYS 64

struct snap {
	uint64_t ns;
	uint64_t idle_ms;	/* idle + iowait of all CPUs, /proc/stat */
	int ok;			/* the stats file was there */
	int n;
	char key[MAX_KEYS][40];
	char val[MAX_KEYS][40];	/* numbers, or words such as flush_policy */
};

static char self[4096];

static void die(const char *what)
{
	fprintf(stderr, "asi-bench: %s: %s\n", what, strerror(errno));
	exit(1);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static uint64_t idle_ms(void)
{
	unsigned long long v[5] = { 0 };
	char buf[256];
	ssize_t len;
	int fd = open("/proc/stat", O_RDONLY);

	if (fd < 0)
		return 0;
	len = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (len <= 0)
		return 0;
	buf[len] = 0;
	if (sscanf(buf, "cpu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
		   &v[4]) != 5)
		return 0;
	return (v[3] + v[4]) * 1000 / sysconf(_SC_CLK_TCK);
}

static void parse_stats(struct snap *s, char *buf)
{
	char *save, *line;

	s->n = 0;
	for (line = strtok_r(buf, "\n", &save); line && s->n < MAX_KEYS;
	     line = strtok_r(NULL, "\n", &save)) {
		if (sscanf(line, "%39s %39s", s->key[s->n], s->val[s->n]) == 2)
			s->n++;
	}
}

enum { MARK_NONE, MARK_START, MARK_END };

/*
 * @mark opens or closes the window of the host's instruction counter
 * (tools/insn-count.c) right after or before the counters are read.
 */
static void take(struct snap *s, int mark)
{
	char buf[4096];

	if (mark == MARK_END)
		insn_count_end();
	s->ok = 0;
	s->n = 0;
	if (asi_get(STATS, buf, sizeof(buf)) > 0) {
		parse_stats(s, buf);
		s->ok = 1;
	}
	s->idle_ms = idle_ms();
	/* The time last: the reads above are not part of what follows. */
	s->ns = now_ns();
	if (mark == MARK_START)
		insn_count_start();
}

static int numeric(const char *v)
{
	if (!*v)
		return 0;
	for (; *v; v++)
		if (*v < '0' || *v > '9')
			return 0;
	return 1;
}

static void report(const char *name, const char *phase, unsigned long ops,
		   const struct snap *a, const struct snap *b)
{
	printf("@@BENCH workload=%s phase=%s ops=%lu ns=%llu idle_ms=%llu", name, phase,
	       ops, (unsigned long long)(b->ns - a->ns),
	       (unsigned long long)(b->idle_ms - a->idle_ms));
	if (!a->ok || !b->ok) {
		printf(" stats=missing\n");
		fflush(stdout);
		return;
	}
	printf(" stats=ok");
	for (int i = 0; i < b->n; i++) {
		if (!strcmp(b->key[i], "active"))
			continue;
		if (!numeric(b->val[i]))
			continue;
		for (int j = 0; j < a->n; j++) {
			if (strcmp(a->key[j], b->key[i]) || !numeric(a->val[j]))
				continue;
			printf(" %s=%lld", b->key[i],
			       (long long)(strtoull(b->val[i], NULL, 10) -
					   strtoull(a->val[j], NULL, 10)));
			break;
		}
	}
	printf("\n");
	fflush(stdout);
}

static void pin(int cpu)
{
	if (asi_pin(cpu))
		die("sched_setaffinity");
}

static int ncpus(void)
{
	cpu_set_t set;

	if (sched_getaffinity(0, sizeof(set), &set))
		return 1;
	return CPU_COUNT(&set);
}

static void reap(pid_t pid)
{
	int status;

	if (waitpid(pid, &status, 0) != pid)
		die("waitpid");
	if (!WIFEXITED(status) || WEXITSTATUS(status)) {
		fprintf(stderr, "asi-bench: child failed (status %#x)\n", status);
		exit(1);
	}
}

/* The microbenchmarks: each runs ops operations between two snapshots. */

static void bench_null_syscall(unsigned long ops, struct snap *a, struct snap *b)
{
	take(a, MARK_START);
	for (unsigned long i = 0; i < ops; i++)
		syscall(SYS_getppid);
	take(b, MARK_END);
}

/* A 4 KiB read() of a page of a file in tmpfs: the page cache, in memory. */
static void bench_read_cached(unsigned long ops, struct snap *a, struct snap *b)
{
	const unsigned long pages = 64;
	static char buf[PAGE];
	char path[] = "/tmp/asi-bench.XXXXXX";
	int fd = mkstemp(path);

	if (fd < 0)
		die("mkstemp");
	unlink(path);
	memset(buf, 0x5a, sizeof(buf));
	for (unsigned long i = 0; i < pages; i++)
		if (write(fd, buf, PAGE) != PAGE)
			die("write");
	take(a, MARK_START);
	for (unsigned long i = 0; i < ops; i++)
		if (pread(fd, buf, PAGE, (i % pages) * PAGE) != PAGE)
			die("pread");
	take(b, MARK_END);
	close(fd);
}

/*
 * One byte back and forth between two processes over two pipes; an
 * operation is one round trip. With cpu_b == cpu_a both run on one CPU and
 * each round trip is exactly two context switches.
 */
static void pingpong(unsigned long ops, int cpu_a, int cpu_b, struct snap *a,
		     struct snap *b)
{
	int ab[2], ba[2];
	char c = 0;
	pid_t pid;

	if (pipe(ab) || pipe(ba))
		die("pipe");
	pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		close(ab[1]);
		close(ba[0]);
		pin(cpu_b);
		for (;;) {
			ssize_t n = read(ab[0], &c, 1);

			if (n == 0)
				_exit(0);
			if (n != 1 || write(ba[1], &c, 1) != 1)
				_exit(1);
		}
	}
	pin(cpu_a);
	/* One round trip first: the child is running and pinned. */
	if (write(ab[1], &c, 1) != 1 || read(ba[0], &c, 1) != 1)
		die("pipe io");
	take(a, MARK_START);
	for (unsigned long i = 0; i < ops; i++)
		if (write(ab[1], &c, 1) != 1 || read(ba[0], &c, 1) != 1)
			die("pipe io");
	take(b, MARK_END);
	close(ab[0]);
	close(ba[1]);
	close(ab[1]);
	reap(pid);
	close(ba[0]);
	pin(0);
}

static void bench_pipe_pingpong(unsigned long ops, struct snap *a, struct snap *b)
{
	/* Across CPUs where there are two; one CPU (-icount runs) shares it. */
	pingpong(ops, 0, ncpus() > 1 ? 1 : 0, a, b);
}

/* An operation is one context switch: a round trip on one CPU is two. */
static void bench_context_switch(unsigned long ops, struct snap *a, struct snap *b)
{
	pingpong((ops + 1) / 2, 0, 0, a, b);
}

/*
 * Two threads of this process on one CPU take turns through a futex; an
 * operation is one switch between them, and a turn is two.
 */
static atomic_int thread_turn;
static unsigned long thread_turns;

static void *thread_switch_peer(void *arg)
{
	pin(0);
	asi_take_turns(&thread_turn, 1, thread_turns, 0);
	return arg;
}

static void bench_thread_switch(unsigned long ops, struct snap *a, struct snap *b)
{
	pthread_t t;

	thread_turns = (ops + 1) / 2;
	atomic_store(&thread_turn, 0);
	if (pthread_create(&t, NULL, thread_switch_peer, NULL))
		die("pthread_create");
	take(a, MARK_START);
	asi_take_turns(&thread_turn, 0, thread_turns, 0);
	take(b, MARK_END);
	pthread_join(t, NULL);
}

/* First touches of fresh anonymous memory, 256 pages a mapping. */
static void bench_page_fault(unsigned long ops, struct snap *a, struct snap *b)
{
	const unsigned long batch = 256;

	take(a, MARK_START);
	for (unsigned long done = 0; done < ops; done += batch) {
		unsigned long n = ops - done < batch ? ops - done : batch;
		char *p = mmap(NULL, n * PAGE, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (p == MAP_FAILED)
			die("mmap");
		for (unsigned long i = 0; i < n; i++)
			p[i * PAGE] = 1;
		munmap(p, n * PAGE);
	}
	take(b, MARK_END);
}

/* mmap and munmap of 128 KiB of anonymous memory, untouched. */
static void bench_mmap_munmap(unsigned long ops, struct snap *a, struct snap *b)
{
	const size_t len = 32 * PAGE;

	take(a, MARK_START);
	for (unsigned long i = 0; i < ops; i++) {
		void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (p == MAP_FAILED)
			die("mmap");
		if (munmap(p, len))
			die("munmap");
	}
	take(b, MARK_END);
}

/* fork(), the child exits at once, the parent waits. */
static void bench_fork_exit(unsigned long ops, struct snap *a, struct snap *b)
{
	take(a, MARK_START);
	for (unsigned long i = 0; i < ops; i++) {
		pid_t pid = fork();

		if (pid < 0)
			die("fork");
		if (pid == 0)
			_exit(0);
		reap(pid);
	}
	take(b, MARK_END);
}

/* fork() and execve() of this static program, which exits at once. */
static void bench_fork_exec(unsigned long ops, struct snap *a, struct snap *b)
{
	char *argv[] = { self, "exit", NULL };
	char *envp[] = { NULL };

	take(a, MARK_START);
	for (unsigned long i = 0; i < ops; i++) {
		pid_t pid = fork();

		if (pid < 0)
			die("fork");
		if (pid == 0) {
			execve(self, argv, envp);
			_exit(127);
		}
		reap(pid);
	}
	take(b, MARK_END);
}

static const struct bench {
	const char *name;
	void (*fn)(unsigned long ops, struct snap *a, struct snap *b);
	const char *what;
} benches[] = {
	{ "null_syscall", bench_null_syscall, "getppid()" },
	{ "read_cached", bench_read_cached, "4 KiB pread() of a tmpfs page" },
	{ "pipe_pingpong", bench_pipe_pingpong, "1-byte round trip, two processes, two CPUs" },
	{ "page_fault", bench_page_fault, "first touch of an anonymous page" },
	{ "mmap_munmap", bench_mmap_munmap, "mmap+munmap of 128 KiB anonymous, untouched" },
	{ "fork_exit", bench_fork_exit, "fork, child _exit, wait" },
	{ "fork_exec", bench_fork_exec, "fork, execve of a static program, exit, wait" },
	{ "context_switch", bench_context_switch, "one switch between two processes on one CPU" },
	{ "thread_switch", bench_thread_switch, "one switch between two threads of one process on one CPU" },
};

static int run(const char *name, unsigned long ops, const char *phase)
{
	struct snap a, b;

	for (size_t i = 0; i < sizeof(benches) / sizeof(benches[0]); i++) {
		if (strcmp(benches[i].name, name))
			continue;
		if (!strcmp(name, "context_switch") || !strcmp(name, "thread_switch"))
			ops = (ops + 1) / 2 * 2;
		pin(0);
		benches[i].fn(ops, &a, &b);
		report(name, phase, ops, &a, &b);
		return 0;
	}
	fprintf(stderr, "asi-bench: no microbenchmark %s\n", name);
	return 2;
}

static uint64_t children_cpu_ns(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_CHILDREN, &ru))
		die("getrusage");
	return ((uint64_t)ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000ULL +
	       ((uint64_t)ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000ULL;
}

static int wrap(const char *name, unsigned long ops, const char *phase, char **cmd)
{
	struct snap a, b;
	uint64_t cpu0, cpu1;
	int status;
	pid_t pid;

	cpu0 = children_cpu_ns();
	take(&a, MARK_START);
	pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		execvp(cmd[0], cmd);
		fprintf(stderr, "asi-bench: %s: %s\n", cmd[0], strerror(errno));
		_exit(127);
	}
	if (waitpid(pid, &status, 0) != pid)
		die("waitpid");
	take(&b, MARK_END);
	cpu1 = children_cpu_ns();
	if (!WIFEXITED(status) || WEXITSTATUS(status)) {
		fprintf(stderr, "asi-bench: %s: the workload failed (status %#x)\n", name,
			status);
		return 1;
	}
	printf("@@CPU workload=%s phase=%s cpu_ns=%llu\n", name, phase,
	       (unsigned long long)(cpu1 - cpu0));
	report(name, phase, ops, &a, &b);
	return 0;
}

static int info(void)
{
	struct utsname u;
	struct snap s;

	uname(&u);
	take(&s, MARK_NONE);
	printf("@@INFO uname=%s\n", u.release);
	printf("@@INFO ncpus=%d\n", ncpus());
	if (!s.ok) {
		printf("@@INFO stats=missing\n");
		return 0;
	}
	printf("@@INFO stats=ok\n");
	for (int i = 0; i < s.n; i++)
		if (!numeric(s.val[i]) || !strcmp(s.key[i], "active"))
			printf("@@INFO %s=%s\n", s.key[i], s.val[i]);
	return 0;
}

static int save(const char *file, int mark)
{
	struct snap s;
	FILE *f;

	take(&s, mark);
	f = fopen(file, "w");
	if (!f)
		die(file);
	fprintf(f, "ns %llu\nidle_ms %llu\nok %d\n", (unsigned long long)s.ns,
		(unsigned long long)s.idle_ms, s.ok);
	for (int i = 0; i < s.n; i++)
		fprintf(f, "%s %s\n", s.key[i], s.val[i]);
	if (fclose(f))
		die(file);
	return 0;
}

static void load(const char *file, struct snap *s)
{
	char buf[4096], *p = buf, *save, *line;
	unsigned long long v;
	size_t len;
	FILE *f = fopen(file, "r");

	if (!f)
		die(file);
	len = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[len] = 0;
	s->ns = 0;
	s->ok = 0;
	/* "ns N", "idle_ms N" and "ok 0|1" first, then the stats lines. */
	for (int i = 0; i < 3; i++) {
		line = strtok_r(i ? NULL : p, "\n", &save);
		if (!line || sscanf(line, "%*s %llu", &v) != 1) {
			fprintf(stderr, "asi-bench: %s: not a snapshot\n", file);
			exit(1);
		}
		if (i == 0)
			s->ns = v;
		else if (i == 1)
			s->idle_ms = v;
		else
			s->ok = v;
	}
	p = save;
	parse_stats(s, p);
}

int main(int argc, char **argv)
{
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

	if (n < 0)
		die("/proc/self/exe");
	self[n] = 0;
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc >= 2 && !strcmp(argv[1], "exit"))
		return 0;
	if (argc == 2 && !strcmp(argv[1], "info"))
		return info();
	if (argc == 2 && !strcmp(argv[1], "list")) {
		for (size_t i = 0; i < sizeof(benches) / sizeof(benches[0]); i++)
			printf("%-16s %s\n", benches[i].name, benches[i].what);
		return 0;
	}
	if ((argc == 4 || argc == 5) && !strcmp(argv[1], "run"))
		return run(argv[2], strtoul(argv[3], NULL, 10),
			   argc == 5 ? argv[4] : "measure");
	if (argc >= 6 && !strcmp(argv[1], "wrap"))
		return wrap(argv[2], strtoul(argv[3], NULL, 10), argv[4], argv + 5);
	if (argc == 3 && !strcmp(argv[1], "snap"))
		return save(argv[2], MARK_NONE);
	if (argc == 4 && !strcmp(argv[1], "snap") && !strcmp(argv[3], "start"))
		return save(argv[2], MARK_START);
	if (argc == 4 && !strcmp(argv[1], "snap") && !strcmp(argv[3], "end"))
		return save(argv[2], MARK_END);
	if ((argc == 6 || argc == 7) && !strcmp(argv[1], "diff")) {
		struct snap a, b;

		load(argv[4], &a);
		load(argv[5], &b);
		report(argv[2], argc == 7 ? argv[6] : "measure",
		       strtoul(argv[3], NULL, 10), &a, &b);
		return 0;
	}
	fprintf(stderr,
		"usage: asi-bench info | list | run NAME OPS [PHASE] | snap FILE [start|end] |\n"
		"       diff NAME OPS PRE POST [PHASE] | wrap NAME OPS PHASE CMD...\n");
	return 2;
}
