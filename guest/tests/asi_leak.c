// SPDX-License-Identifier: GPL-2.0
/*
 * Spectre v1 against a sensitive page, from the kernel
 * (/sys/kernel/debug/asi/leak_test, CONFIG_ASI_LEAK_TEST).
 *
 * PASS: with ASI on, the positive control (an ordinary copy of the secret)
 * leaks and the sensitive page does not.  FAIL: the sensitive page leaks with
 * ASI on, or the attack did not run in the restricted address space.  SKIP:
 * the control does not leak, so the CPU gives no signal (QEMU TCG does not
 * speculate), or ASI is off (the numbers are reported: both copies should
 * leak there).
 */
#include <stdio.h>

#include "kselftest.h"
#include "asi.h"

#define LEAK ASI_DIR "leak_test"

int main(void)
{
	long long asi, restricted, hit, miss, len, control, sensitive;
	char buf[1024];

	ksft_print_header();
	ksft_set_plan(1);
	if (asi_get(LEAK, buf, sizeof(buf)) <= 0)
		ksft_exit_fail_msg("cannot read %s (kernel without CONFIG_ASI_LEAK_TEST?)\n", LEAK);
	asi = asi_value(buf, "asi");
	restricted = asi_value(buf, "restricted");
	hit = asi_value(buf, "hit_cycles");
	miss = asi_value(buf, "miss_cycles");
	len = asi_value(buf, "length");
	control = asi_value(buf, "control");
	sensitive = asi_value(buf, "sensitive");
	if (asi < 0 || restricted < 0 || len <= 0 || control < 0 || sensitive < 0)
		ksft_exit_fail_msg("unexpected report:\n%s", buf);

	ksft_print_msg("ASI %s; cache hit %lld cycles, miss %lld\n", asi ? "on" : "off", hit, miss);
	ksft_print_msg("bytes recovered: control (ordinary memory) %lld/%lld, sensitive page %lld/%lld\n",
		       control, len, sensitive, len);

	/* A skip is the test's result: exit with the skip code, not as a pass. */
	if (control < len * 3 / 4)
		ksft_exit_skip("spectre_v1_sensitive_page: the positive control recovered %lld/%lld bytes: no speculation signal on this CPU (an emulator does not speculate)\n",
			       control, len);
	if (!asi)
		ksft_exit_skip("spectre_v1_sensitive_page: ASI off: the sensitive page leaked %lld/%lld bytes, as expected without ASI\n",
			       sensitive, len);
	if (!restricted)
		ksft_test_result_fail("spectre_v1_sensitive_page: the attack did not run in the restricted address space\n");
	else
		/* One byte may match by chance; more is a leak. */
		ksft_test_result(sensitive <= 1, "spectre_v1_sensitive_page\n");
	ksft_finished();
}
