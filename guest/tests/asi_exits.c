// SPDX-License-Identifier: GPL-2.0
/*
 * Exits from the restricted address space, counted and traced.
 *
 * - A system call that touches no user data through the direct map
 *   (getppid) takes no page-fault exit.
 * - One kernel read of a sensitive page (a read of /proc/self/mem, which the
 *   kernel serves through its direct map) exits exactly once, on a page
 *   fault, and the asi:asi_exit tracepoint reports it with reason=fault.
 * Skips when the kernel runs without ASI.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "kselftest.h"
#include "asi.h"

#define TRACE "/sys/kernel/tracing/"

/* The tests run pinned here and count this CPU's exits only (asi/cpu/N). */
static int cpu;

static int test_null_syscalls(void)
{
	long long before, after;

	/*
	 * Page-fault exits only, and only this CPU's: a preemption may exit
	 * on the context switch, and the other CPUs' tasks fault too, which
	 * is not the system call's doing.
	 */
	asi_put(ASI_DIR "reset", "1");
	before = asi_cpu_stat(cpu, "exits_fault");
	for (int i = 0; i < 1000; i++)
		syscall(SYS_getppid);
	after = asi_cpu_stat(cpu, "exits_fault");
	if (before < 0 || after < 0)
		return -1;
	/* The stats read itself may not exit either. */
	if (after != before) {
		ksft_print_msg("1000 getppid(): %lld fault exits\n", after - before);
		return -1;
	}
	return 0;
}

static char *secret_page(void)
{
	char *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	strcpy(p, "secret");
	return p;
}

static int read_via_kernel(char *p, char *out, size_t len)
{
	int fd = open("/proc/self/mem", O_RDONLY);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = pread(fd, out, len, (uintptr_t)p);
	close(fd);
	return n == (ssize_t)len ? 0 : -1;
}

static int test_one_access_one_exit(void)
{
	char *p = secret_page(), copy[7];
	int fd = open("/proc/self/mem", O_RDONLY);
	long long faults;

	if (!p || fd < 0)
		return -1;
	asi_put(ASI_DIR "reset", "1");
	if (pread(fd, copy, sizeof(copy), (uintptr_t)p) != sizeof(copy))
		return -1;
	faults = asi_cpu_stat(cpu, "exits_fault");
	close(fd);
	if (strcmp(copy, "secret"))
		return -1;
	if (faults != 1) {
		ksft_print_msg("one read of a sensitive page: %lld fault exits\n", faults);
		return -1;
	}
	return 0;
}

static int test_tracepoint(void)
{
	char *p = secret_page(), copy[7], *buf;
	int fd, found;
	ssize_t n;

	if (!p)
		return -1;
	if (asi_put(TRACE "trace", "") || asi_put(TRACE "events/asi/asi_exit/enable", "1"))
		return -1;
	if (read_via_kernel(p, copy, sizeof(copy)))
		return -1;
	asi_put(TRACE "events/asi/asi_exit/enable", "0");
	buf = calloc(1, 1 << 20);
	fd = open(TRACE "trace", O_RDONLY);
	if (!buf || fd < 0)
		return -1;
	n = read(fd, buf, (1 << 20) - 1);
	close(fd);
	found = n > 0 && strstr(buf, "asi_exit: reason=fault address=0x");
	if (!found)
		ksft_print_msg("no asi_exit event with reason=fault in the trace\n");
	free(buf);
	return found ? 0 : -1;
}

int main(void)
{
	ksft_print_header();
	if (!asi_active())
		ksft_exit_skip("ASI is not active in this kernel\n");
	cpu = sysconf(_SC_NPROCESSORS_ONLN) - 1;
	if (asi_pin(cpu))
		ksft_exit_fail_msg("sched_setaffinity: %m\n");
	ksft_set_plan(3);
	if (test_null_syscalls() == 0)
		ksft_test_result_pass("null_syscalls_do_not_exit\n");
	else
		ksft_test_result_fail("null_syscalls_do_not_exit\n");
	if (test_one_access_one_exit() == 0)
		ksft_test_result_pass("one_sensitive_access_one_exit\n");
	else
		ksft_test_result_fail("one_sensitive_access_one_exit\n");
	if (access(TRACE "events/asi/asi_exit", F_OK))
		ksft_test_result_skip("tracepoint: no tracefs events in this kernel\n");
	else if (test_tracepoint() == 0)
		ksft_test_result_pass("exit_tracepoint_reports_fault\n");
	else
		ksft_test_result_fail("exit_tracepoint_reports_fault\n");
	ksft_finished();
}
