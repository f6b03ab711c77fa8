// SPDX-License-Identifier: GPL-2.0
/*
 * User data served by userfaultfd across a fork reads back as written.
 *
 * The pattern of the kernel's uffd-unit-tests "events" and "events-wp" tests
 * (guest/uffd_fork.h): a child inherits a userfaultfd registration through
 * UFFD_FEATURE_EVENT_FORK and its parent's monitor fills the child's pages with
 * UFFDIO_COPY, write-protected or not. With asi=on this once read zeroes (a
 * page of user data lost); the rounds repeat the pattern so that the pools of
 * sensitive pages are emptied and refilled in between.
 */
#define _GNU_SOURCE
#include <stdio.h>

#include "kselftest.h"
#include "uffd_fork.h"

#define ROUNDS 8
#define NPAGES 256

int main(void)
{
	int wp;

	ksft_print_header();
	ksft_set_plan(2);
	for (wp = 0; wp < 2; wp++) {
		const char *name = wp ? "events-wp" : "events";
		int bad = 0, r;

		for (r = 0; r < ROUNDS && !bad; r++)
			bad = uffd_fork_check(NPAGES, wp, 0x5eed + r);
		if (bad < 0)
			ksft_test_result_skip("%s: userfaultfd: %s\n", name, strerror(-bad));
		else if (bad)
			ksft_test_result_fail("%s: round %d: %d bad page(s) of %d\n", name, r,
					      bad, NPAGES);
		else
			ksft_test_result_pass("%s: %d rounds of %d pages\n", name, ROUNDS,
					      NPAGES);
	}
	ksft_finished();
}
