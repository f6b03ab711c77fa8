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
 *   mm must exit (its restricted space is another one); this proves the
 *   counter counts.
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

/* exits_switch during fn(), or -1. */
static long long switch_exits(void (*fn)(void))
{
	long long before = asi_cpu_stat(cpu, "exits_switch"), after;

	fn();
	after = asi_cpu_stat(cpu, "exits_switch");
	return before < 0 || after < 0 ? -1 : after - before;
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
	long long n;

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

	n = switch_exits(processes);
	ksft_print_msg("%d round trips between two processes: %lld switch exits\n", ROUNDS, n);
	ksft_test_result(n >= ROUNDS, "switch_to_another_mm_exits\n");

	ksft_finished();
}
