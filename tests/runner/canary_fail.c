// SPDX-License-Identifier: GPL-2.0
/*
 * Deliberately failing guest test, used only by the runner's own test
 * (scripts/test --runner-selftest) to prove a failing test fails make test.
 */
#include "kselftest.h"

int main(void)
{
	ksft_print_header();
	ksft_set_plan(2);
	ksft_test_result_pass("canary_passes\n");
	ksft_test_result_fail("canary_fails_on_purpose\n");
	ksft_finished();
}
