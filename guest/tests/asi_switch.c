// SPDX-License-Identifier: GPL-2.0
/*
 * Context switches and the restricted address space.
 *
 * - Two threads of one process on one CPU, taking turns through a futex:
 *   a switch to another thread of the loaded mm keeps the restricted CR3,
 *   so the switches take (almost) no exits.
 * - One thread that sleeps again and again on its CPU: the switches to
 *   idle (lazy TLB, the idle task borrows the loaded mm) and back keep it.
 * - Two processes on one CPU taking turns the same way: a switch to another
 *   mm goes from one restricted space straight to the other's, without an
 *   exit (the "switches" counter counts them), and keeps the mitigations of
 *   one: an IBPB at every such switch and a data flush before the next
 *   task's user code (unless asi_flush=none).
 * The counter read is the test CPU's own (asi/cpu/N): switches on the other
 * CPUs are not counted; other tasks woken on this one are noise, which the
 * thresholds leave room for. Skips when the kernel runs without ASI.
 */
#define _GNU_SOURCE
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kselftest.h"
#include "asi.h"

#define ROUNDS 2000
#define SLEEPS 500

static int cpu;

static void pin(void)
{
	if (asi_pin(cpu))
		ksft_exit_fail_msg("sched_setaffinity: %m\n");
}

static atomic_int thread_turn;

static void *other_thread(void *arg)
{
	pin();
	asi_take_turns(&thread_turn, 1, ROUNDS, 0);
	return arg;
}

/* This CPU's counters that a switch moves. */
static const char * const counted[] = {
	"exits_switch", "switches", "flush_predictor", "flush_data",
};

#define NCOUNTED (sizeof(counted) / sizeof(counted[0]))

/* The counters' deltas during fn() in d[]; false if one cannot be read. */
static int deltas(void (*fn)(void), long long d[NCOUNTED])
{
	long long before[NCOUNTED];
	unsigned int i;

	for (i = 0; i < NCOUNTED; i++)
		before[i] = asi_cpu_stat(cpu, counted[i]);
	fn();
	for (i = 0; i < NCOUNTED; i++) {
		d[i] = asi_cpu_stat(cpu, counted[i]);
		if (before[i] < 0 || d[i] < 0)
			return 0;
		d[i] -= before[i];
	}
	return 1;
}

/* exits_switch during fn(), or -1. */
static long long switch_exits(void (*fn)(void))
{
	long long d[NCOUNTED];

	return deltas(fn, d) ? d[0] : -1;
}

static void threads(void)
{
	pthread_t t;

	pin();
	atomic_store(&thread_turn, 0);
	if (pthread_create(&t, NULL, other_thread, NULL))
		ksft_exit_fail_msg("pthread_create: %m\n");
	asi_take_turns(&thread_turn, 0, ROUNDS, 0);
	pthread_join(t, NULL);
}

static void sleeps(void)
{
	struct timespec ts = { .tv_nsec = 200000 };

	pin();
	for (int i = 0; i < SLEEPS; i++)
		nanosleep(&ts, NULL);
}

static void processes(void)
{
	atomic_int *turn = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
				MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	pid_t pid;

	if (turn == MAP_FAILED)
		ksft_exit_fail_msg("mmap: %m\n");
	pin();
	atomic_store(turn, 0);
	pid = fork();
	if (pid < 0)
		ksft_exit_fail_msg("fork: %m\n");
	if (!pid) {
		asi_take_turns(turn, 1, ROUNDS, 1);
		_exit(0);
	}
	asi_take_turns(turn, 0, ROUNDS, 1);
	waitpid(pid, NULL, 0);
	munmap(turn, 4096);
}

int main(void)
{
	long long n, d[NCOUNTED], flushes;

	ksft_print_header();
	if (!asi_active())
		ksft_exit_skip("ASI is not active in this kernel\n");
	cpu = sysconf(_SC_NPROCESSORS_ONLN) - 1;
	ksft_set_plan(3);

	/* 2 x ROUNDS switches between the threads. */
	n = switch_exits(threads);
	ksft_print_msg("%d round trips between two threads: %lld switch exits\n", ROUNDS, n);
	ksft_test_result(n >= 0 && n < ROUNDS / 10, "thread_switch_within_mm_stays_restricted\n");

	n = switch_exits(sleeps);
	ksft_print_msg("%d sleeps through idle: %lld switch exits\n", SLEEPS, n);
	ksft_test_result(n >= 0 && n < SLEEPS / 10, "idle_and_back_stays_restricted\n");

	/*
	 * 2 x ROUNDS switches between the processes: restricted to restricted,
	 * each with its IBPB and, before the other's user code, its data flush.
	 */
	if (!deltas(processes, d))
		ksft_exit_fail_msg("cannot read asi/cpu/%d\n", cpu);
	ksft_print_msg("%d round trips between two processes: %lld switch exits, %lld switches, %lld predictor flushes, %lld data flushes\n",
		       ROUNDS, d[0], d[1], d[2], d[3]);
	flushes = asi_stat_is("flush_policy", "none") ? 0 : ROUNDS;
	ksft_test_result(d[0] < ROUNDS / 10 && d[1] >= ROUNDS &&
			 d[2] >= (flushes ? d[1] : 0) && d[3] >= flushes,
			 "switch_to_another_mm_stays_restricted_and_flushes\n");

	ksft_finished();
}
