// SPDX-License-Identifier: GPL-2.0
/*
 * SMT stunning: while a CPU is unrestricted, its sibling runs no user code.
 *
 * A thread pinned on the sibling of this test's CPU counts in a loop, in
 * user space.  The test writes to debugfs asi/stun_hold (CONFIG_ASI_STUN_TEST):
 * the kernel leaves the restricted space on this CPU and stays in the full
 * one, without preemption, reading the counter as soon as the exit returns
 * and again at the end.  With asi_stun=on the counter must not move: not one
 * user instruction on the sibling after the exit (the exit brought it into
 * the kernel before it returned); the sibling must have been seen holding
 * its user space off, its CPU counting a wait; and the counter must move
 * again once this CPU has returned to user space.  With stunning off it is
 * the control: the counter must move during the hold, or the test could not
 * tell stunning from a sibling that did not run.  Then, with stunning on,
 * CPU hotplug: with the sibling offline the hold stuns nothing, and once it
 * is back it is held again.  Skips without ASI or without an SMT sibling
 * (boot with threads=2).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "kselftest.h"
#include "asi.h"

static volatile uint64_t counter;
static atomic_int stop;
static int sibling;

static void *count_loop(void *arg)
{
	if (asi_pin(sibling))
		return (void *)1;
	while (!atomic_load_explicit(&stop, memory_order_relaxed))
		counter++;
	return arg;
}

/* The other thread of CPU 0's core, from sysfs, or -1. */
static int find_sibling(void)
{
	char buf[128], *p = buf;

	if (asi_get("/sys/devices/system/cpu/cpu0/topology/thread_siblings_list",
		    buf, sizeof(buf)) <= 0)
		return -1;
	while (*p) {
		int c = strtol(p, &p, 10);

		if (c != 0)
			return c;
		if (*p)
			p++;
	}
	return -1;
}

/* Hold this CPU unrestricted for @hold ms; parse what the kernel saw. */
static void hold_once(long hold, int *held, unsigned long long *before,
		      unsigned long long *after, int *sib, int *exited)
{
	char cmd[64], result[128];

	snprintf(cmd, sizeof(cmd), "%lx %ld", (unsigned long)&counter, hold);
	if (asi_put(ASI_DIR "stun_hold", cmd))
		ksft_exit_fail_msg("write %s to asi/stun_hold: %m\n", cmd);
	if (asi_get(ASI_DIR "stun_hold", result, sizeof(result)) <= 0 ||
	    sscanf(result, "held %d before %llu after %llu sibling %d exited %d",
		   held, before, after, sib, exited) != 5)
		ksft_exit_fail_msg("asi/stun_hold says: %s\n", result);
	ksft_print_msg("%s", result);
}

static int set_online(int cpu, int online)
{
	char path[80];

	snprintf(path, sizeof(path), "/sys/devices/system/cpu/cpu%d/online", cpu);
	return asi_put(path, online ? "1" : "0");
}

static void msleep(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

int main(void)
{
	long long ipis, avoided, acks, waits, timeouts, timeout_ms;
	unsigned long long before, after;
	uint64_t resumed, seen;
	cpu_set_t set;
	pthread_t thread;
	int held, sib, exited, on;
	long hold;

	ksft_print_header();
	ksft_set_plan(4);
	if (!asi_active())
		ksft_exit_skip("ASI is off\n");
	sibling = find_sibling();
	if (sibling < 0)
		ksft_exit_skip("CPU 0 has no SMT sibling (boot with threads=2)\n");
	on = asi_stat_is("stun", "on");
	timeout_ms = asi_stat("stun_timeout_ms");
	if (timeout_ms <= 0)
		ksft_exit_fail_msg("no stun_timeout_ms in asi/stats\n");
	/*
	 * The hold lasts up to twice this: within the bound, or the sibling
	 * is let go.  The control, with stunning off, needs no bound, and
	 * holds long enough for the sibling to run whatever the emulator does.
	 */
	hold = !on || timeout_ms / 4 > 100 ? 100 : timeout_ms / 4;
	if (access(ASI_DIR "stun_hold", F_OK))
		ksft_exit_skip("no asi/stun_hold (CONFIG_ASI_STUN_TEST)\n");
	ksft_print_msg("CPU 0 and its sibling %d, stunning %s, bound %lld ms, hold %ld ms\n",
		       sibling, on ? "on" : "off", timeout_ms, hold);

	if (asi_pin(0))
		ksft_exit_fail_msg("sched_setaffinity: %m\n");
	if (pthread_create(&thread, NULL, count_loop, NULL))
		ksft_exit_fail_msg("pthread_create: %m\n");
	while (counter < 1000)
		sched_yield();

	ipis = asi_cpu_stat(0, "stun_ipis");
	avoided = asi_cpu_stat(0, "stun_avoided");
	acks = asi_cpu_stat(0, "stun_ack_timeouts");
	waits = asi_cpu_stat(sibling, "stun_waits");
	timeouts = asi_cpu_stat(sibling, "stun_timeouts");
	hold_once(hold, &held, &before, &after, &sib, &exited);

	if (on)
		ksft_test_result(held && sib == sibling && before && after == before,
				 "no user instruction on the sibling while this CPU is unrestricted (moved by %llu)\n",
				 after - before);
	else
		ksft_test_result(after > before,
				 "control, stunning off: the sibling's loop ran during the hold (moved by %llu)\n",
				 after - before);

	resumed = counter;
	msleep(50);
	ksft_test_result(counter > resumed, "the sibling's loop runs again after the enter\n");

	if (on) {
		/*
		 * The hold's exit sends an IPI, or finds the sibling in the
		 * kernel; unless an interrupt exited first (and stunned then).
		 */
		ipis = asi_cpu_stat(0, "stun_ipis") - ipis;
		avoided = asi_cpu_stat(0, "stun_avoided") - avoided;
		acks = asi_cpu_stat(0, "stun_ack_timeouts") - acks;
		waits = asi_cpu_stat(sibling, "stun_waits") - waits;
		timeouts = asi_cpu_stat(sibling, "stun_timeouts") - timeouts;
		ksft_test_result((!exited || ipis + avoided >= 1) && !acks && waits >= 1 &&
				 !timeouts,
				 "counted: exit %d, %lld IPI(s) sent, %lld sibling(s) found in the kernel, %lld wait(s) for the sibling to leave user space timed out, %lld wait(s) on the sibling, %lld timeout(s)\n",
				 exited, ipis, avoided, acks, waits, timeouts);
	} else {
		ksft_test_result_skip("counters: stunning is off\n");
	}

	if (!on) {
		ksft_test_result_skip("hotplug: stunning is off\n");
	} else if (set_online(sibling, 0)) {
		ksft_test_result_skip("hotplug: cannot offline CPU %d: %m\n", sibling);
	} else {
		int alone_held, alone_sib, back_held, back_sib;

		hold_once(hold, &alone_held, &before, &after, &alone_sib, &exited);
		if (set_online(sibling, 1))
			ksft_exit_fail_msg("cannot online CPU %d again: %m\n", sibling);
		/* Offlining broke the loop's affinity: pin it again. */
		CPU_ZERO(&set);
		CPU_SET(sibling, &set);
		if (pthread_setaffinity_np(thread, sizeof(set), &set))
			ksft_exit_fail_msg("pthread_setaffinity_np: %m\n");
		seen = counter;
		while (counter == seen)
			sched_yield();
		msleep(20);
		hold_once(hold, &back_held, &before, &after, &back_sib, &exited);
		ksft_test_result(alone_sib == -1 && !alone_held && back_sib == sibling &&
				 back_held && after == before,
				 "hotplug: offline sibling %d stuns nothing, online again it is held (moved by %llu)\n",
				 alone_sib, after - before);
	}

	atomic_store(&stop, 1);
	pthread_join(thread, NULL);
	ksft_finished();
}
