// SPDX-License-Identifier: GPL-2.0
/*
 * No userfault is left pending on a range after UFFDIO_UNREGISTER returns.
 *
 * UFFDIO_UNREGISTER wakes the faults pending in the range and then clears the
 * registration, both under the mmap lock held for writing, so that no fault
 * can be queued in between. Faults taken under the per-VMA lock are not held
 * off by the mmap lock: one that starts between the wake and the clearing is
 * queued on a range that is no longer registered, nobody wakes it, and a
 * monitor that answers it with UFFDIO_COPY gets ENOENT. The kernel's
 * uffd-unit-tests "events-wp" test failed that way in make test ("UFFDIO_COPY
 * error: -2"), when its forked child read its pages back right after the
 * UFFD_EVENT_REMOVE its monitor answers by unregistering. Write-protected
 * pages widen the window: the clearing first takes the protection off every
 * page of the range.
 *
 * Each round registers a range with MISSING and WP, write-protects its
 * populated pages, and unregisters it while a thread on the other CPU reads
 * the one missing page at a point spread over the time the unregistering
 * took in the previous round. After the unregistering returns, a message for
 * that read is the bug (answered with UFFDIO_COPY to show the ENOENT, then
 * UFFDIO_WAKE so that the thread goes on). Without the fix (patch 2 of the
 * series) 274 of 400 rounds left one, with asi=off, under QEMU TCG; with it,
 * none of 600.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "kselftest.h"
#include "asi.h"

#define NPAGES		4096	/* 16 MiB: the protection walk is the window */
#define MAX_ROUNDS	100
#define BUDGET_NS	(30ULL * 1000000000ULL)

static char *area;
static atomic_int go, done;
static atomic_ullong fault_at;	/* CLOCK_MONOTONIC ns at which to read */

static unsigned long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static void *reader(void *arg __attribute__((unused)))
{
	int round = 0;

	asi_pin(1);
	for (;;) {
		unsigned long long at;

		while (atomic_load(&go) == round)
			;
		round = atomic_load(&go);
		if (round < 0)
			return NULL;
		at = atomic_load(&fault_at);
		while (now_ns() < at)
			;
		/* A fresh read fault on the missing page: per-VMA lock. */
		(void)*(volatile char *)area;
		atomic_store(&done, round);
	}
}

/* Returns 1 if a fault was left pending, 0 if not, -errno on setup failure. */
static int one_round(int round, unsigned long long *took)
{
	struct uffdio_api api = { .api = UFFD_API };
	struct uffdio_register reg = { 0 };
	struct uffdio_writeprotect wp = { 0 };
	struct uffdio_range range;
	unsigned long long t0, deadline;
	int uffd, ret = 0;

	if (madvise(area, ASI_PAGE, MADV_DONTNEED))
		return -errno;
	uffd = syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (uffd < 0)
		return -errno;
	if (ioctl(uffd, UFFDIO_API, &api))
		goto err;
	reg.range.start = (unsigned long)area;
	reg.range.len = NPAGES * ASI_PAGE;
	reg.mode = UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_WP;
	if (ioctl(uffd, UFFDIO_REGISTER, &reg))
		goto err;
	wp.range = reg.range;
	wp.mode = UFFDIO_WRITEPROTECT_MODE_WP;
	if (ioctl(uffd, UFFDIO_WRITEPROTECT, &wp))
		goto err;

	/* Spread the read over [0, 1.25 x last duration) from the start. */
	t0 = now_ns();
	atomic_store(&fault_at, t0 + (*took * 5 / 4) * (round % 16) / 16);
	atomic_store(&go, round);
	range = reg.range;
	if (ioctl(uffd, UFFDIO_UNREGISTER, &range))
		goto err;
	*took = now_ns() - t0;

	/* Either the read completes, or its fault message arrives. */
	deadline = now_ns() + 2000000000ULL;
	while (atomic_load(&done) != round) {
		struct pollfd pfd = { .fd = uffd, .events = POLLIN };
		struct uffd_msg msg;

		if (now_ns() > deadline) {
			ksft_print_msg("round %d: the read neither completed nor reported a fault\n",
				       round);
			ret = 1;
			break;
		}
		if (poll(&pfd, 1, 10) <= 0)
			continue;
		if (read(uffd, &msg, sizeof(msg)) != sizeof(msg))
			continue;
		if (msg.event == UFFD_EVENT_PAGEFAULT) {
			struct uffdio_copy copy = {
				.dst = msg.arg.pagefault.address & ~(ASI_PAGE - 1),
				.src = (unsigned long)area + ASI_PAGE,
				.len = ASI_PAGE,
			};
			struct uffdio_range wake = {
				.start = copy.dst, .len = ASI_PAGE,
			};

			ioctl(uffd, UFFDIO_COPY, &copy);
			ksft_print_msg("round %d: fault at %#llx pending after UFFDIO_UNREGISTER (unregister took %llu us); UFFDIO_COPY: %lld\n",
				       round, (unsigned long long)msg.arg.pagefault.address,
				       *took / 1000, (long long)copy.copy);
			ioctl(uffd, UFFDIO_WAKE, &wake);
			ret = 1;
		}
	}
	while (atomic_load(&done) != round && now_ns() < deadline + 1000000000ULL)
		usleep(1000);
	close(uffd);
	return ret;
err:
	ret = -errno;
	close(uffd);
	return ret;
}

/* "-k": go on after a pending fault and count them (to measure the rate). */
int main(int argc, char **argv)
{
	unsigned long long took = 1000000, start;
	int round, bad = 0, rounds = 0, keep = argc > 1 && !strcmp(argv[1], "-k");
	pthread_t thr;

	ksft_print_header();
	ksft_set_plan(1);
	if (sysconf(_SC_NPROCESSORS_ONLN) < 2)
		ksft_exit_skip("needs two CPUs\n");
	area = mmap(NULL, NPAGES * ASI_PAGE, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (area == MAP_FAILED)
		ksft_exit_fail_msg("mmap: %s\n", strerror(errno));
	/* 4 KiB pages, all present: the protection walk visits every PTE. */
	madvise(area, NPAGES * ASI_PAGE, MADV_NOHUGEPAGE);
	memset(area, 0x5a, NPAGES * ASI_PAGE);
	asi_pin(0);
	if (pthread_create(&thr, NULL, reader, NULL))
		ksft_exit_fail_msg("pthread_create\n");

	start = now_ns();
	for (round = 1; round <= MAX_ROUNDS && now_ns() - start < BUDGET_NS; round++) {
		int r = one_round(round, &took);

		if (r < 0) {
			atomic_store(&go, -1);
			pthread_join(thr, NULL);
			ksft_test_result_skip("userfaultfd: %s\n", strerror(-r));
			ksft_finished();
		}
		rounds++;
		bad += r;
		if (bad && !keep)
			break;
	}
	atomic_store(&go, -1);
	pthread_join(thr, NULL);
	if (bad)
		ksft_test_result_fail("unregister_vs_fresh_fault: a fault stayed pending after UFFDIO_UNREGISTER in %d of %d rounds\n",
				      bad, rounds);
	else
		ksft_test_result_pass("unregister_vs_fresh_fault: %d rounds, last unregister %llu us, no fault left pending\n",
				      rounds, took / 1000);
	ksft_finished();
}
