// SPDX-License-Identifier: GPL-2.0
/*
 * What /sys/devices/system/cpu/vulnerabilities says, with ASI on and off.
 *
 * The expected text follows from the CPU's bugs and flags (/proc/cpuinfo),
 * from ASI's state and flush policy (debugfs) and from the command line:
 * - ASI off, or on with asi_flush=none: no file mentions ASI;
 * - ASI on and flushing: no file of a buffer-clearing mitigation (MDS, TAA,
 *   MMIO Stale Data, RFDS, TSA) reports the VERW on every return to user
 *   space, and each one the CPU is affected by and that clears before user
 *   space reports ASI, unless such a mitigation was chosen by name
 *   (mds=full, ...), in which case none reports ASI;
 * - spectre_v2 reports "IBPB: ASI exits" exactly when ASI is on and flushing,
 *   the CPU has IBPB and spectre_v2_user= is not given;
 * - a file of a bug the CPU does not have says "Not affected";
 * - with ASI on, null system calls take no exit and no data flush;
 * - the calibration file times every primitive the CPU has, and only those.
 * Which lines a CPU model can check depends on its bugs: run it on one with
 * MDS (scripts/test boots QEMU's Skylake-Client-v1 for that).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "kselftest.h"
#include "asi.h"

#define VULNS "/sys/devices/system/cpu/vulnerabilities/"
#define CALLS 10000

static char bugs[4096], flags[8192], cmdline[4096];

/* The value of the first "@key\t: ..." line of /proc/cpuinfo, padded with blanks. */
static void cpuinfo_line(const char *key, char *out, size_t len)
{
	static char buf[1 << 16];
	size_t n = strlen(key);
	char *p, *end;

	if (asi_get("/proc/cpuinfo", buf, sizeof(buf)) <= 0)
		ksft_exit_fail_msg("cannot read /proc/cpuinfo\n");
	for (p = buf; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
		if (strncmp(p, key, n) || (p[n] != '\t' && p[n] != ' '))
			continue;
		p = strchr(p, ':');
		end = p ? strchr(p, '\n') : NULL;
		if (!p || !end)
			break;
		snprintf(out, len, " %.*s ", (int)(end - p - 1), p + 1);
		return;
	}
	snprintf(out, len, " ");
}

static bool has_word(const char *list, const char *word)
{
	char w[64];

	snprintf(w, sizeof(w), " %s ", word);
	return strstr(list, w);
}

/* A boot parameter given as @prefix... (for example "mds=full"). */
static bool param(const char *prefix)
{
	char w[64];

	snprintf(w, sizeof(w), " %s", prefix);
	return strstr(cmdline, w);
}

static bool read_vuln(const char *name, char *buf, size_t len)
{
	char path[256];

	snprintf(path, sizeof(path), VULNS "%s", name);
	if (asi_get(path, buf, len) < 0)
		return false;
	buf[strcspn(buf, "\n")] = 0;
	return true;
}

static const struct {
	const char *file, *bug;
} verw_vulns[] = {
	{ "mds", "mds" },
	{ "tsx_async_abort", "taa" },
	{ "mmio_stale_data", "mmio_stale_data" },
	{ "reg_file_data_sampling", "rfds" },
	{ "tsa", "tsa" },
};

/* The texts of a buffer clear on every return to user space, without ASI. */
static bool per_return_verw(const char *s)
{
	return (!strncmp(s, "Mitigation: Clear ", 18) &&
		strncmp(s, "Mitigation: Clear CPU buffers: VM", 33)) ||
	       !strncmp(s, "Vulnerable: Clear CPU buffers attempted", 39);
}

/*
 * /sys/kernel/debug/asi/calibrate (CONFIG_ASI_CALIBRATE, set by the guest
 * config): a row per primitive, "n/a" exactly where the CPU lacks it (the
 * cpuinfo flag, or a second online CPU for the shootdown), else a minimum
 * and a median with min <= median.
 */
static void check_calibrate(void)
{
	static const struct {
		const char *row, *flag;
	} rows[] = {
		{ "timer", NULL }, { "cr3_write", NULL }, { "cr3_noflush", "pcid" },
		{ "tlb_refill", NULL }, { "invlpg", NULL }, { "ibpb", "ibpb" },
		{ "entry_ibpb", "ibpb" }, { "verw", NULL }, { "l1d_flush", "flush_l1d" },
		{ "shootdown", NULL },
	};
	static char buf[8192];
	int bad = 0;

	if (asi_get(ASI_DIR "calibrate", buf, sizeof(buf)) <= 0) {
		ksft_test_result_fail("calibrate: cannot read " ASI_DIR "calibrate\n");
		return;
	}
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		size_t n = strlen(rows[i].row);
		bool have = rows[i].flag ? has_word(flags, rows[i].flag) :
			    strcmp(rows[i].row, "shootdown") ||
			    sysconf(_SC_NPROCESSORS_ONLN) > 1;
		char lo[32] = "", med[32] = "";
		unsigned long long l, m;
		const char *p;

		for (p = buf; p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
			if (!strncmp(p, rows[i].row, n) && p[n] == ' ')
				break;
		if (!p || sscanf(p + n, "%31s %31s", lo, med) != 2) {
			ksft_print_msg("calibrate: no row %s\n", rows[i].row);
			bad++;
		} else if (!have) {
			if (strcmp(lo, "n/a") || strcmp(med, "n/a")) {
				ksft_print_msg("calibrate: %s timed (%s %s) on a CPU without it\n",
					       rows[i].row, lo, med);
				bad++;
			}
		} else if (sscanf(lo, "%llu", &l) != 1 || sscanf(med, "%llu", &m) != 1 ||
			   l > m || (!strcmp(rows[i].row, "timer") && !l)) {
			ksft_print_msg("calibrate: %s: min %s, median %s\n", rows[i].row, lo, med);
			bad++;
		}
	}
	ksft_test_result(!bad, "calibrate: every primitive the CPU has is timed, only those\n");
}

int main(void)
{
	bool on = asi_active(), flushing, by_name;
	char policy[64] = "", stats[4096], text[512];
	int tests = 2 + sizeof(verw_vulns) / sizeof(verw_vulns[0]) + 3;
	const char *p;
	DIR *dir;
	struct dirent *d;
	int bad = 0, files = 0;

	ksft_print_header();
	ksft_set_plan(tests);

	cpuinfo_line("bugs", bugs, sizeof(bugs));
	cpuinfo_line("flags", flags, sizeof(flags));
	if (asi_get("/proc/cmdline", text, sizeof(text)) < 0)
		ksft_exit_fail_msg("cannot read /proc/cmdline\n");
	snprintf(cmdline, sizeof(cmdline), " %s ", text);
	cmdline[strcspn(cmdline, "\n")] = ' ';
	if (asi_get(ASI_DIR "stats", stats, sizeof(stats)) > 0 &&
	    (p = strstr(stats, "flush_policy ")))
		sscanf(p + 13, "%63s", policy);
	flushing = on && strcmp(policy, "none");
	by_name = param("mds=full") || param("tsx_async_abort=full") ||
		  param("mmio_stale_data=full") || param("reg_file_data_sampling=on") ||
		  param("tsa=on") || param("tsa=user");
	ksft_print_msg("ASI %s, flush policy %s, bugs:%s\n", on ? "on" : "off",
		       policy[0] ? policy : "?", bugs);

	/* mitigations=off turns ASI off. */
	ksft_test_result(!(on && param("mitigations=off")),
			 "mitigations=off leaves ASI off\n");

	dir = opendir(VULNS);
	if (!dir)
		ksft_exit_fail_msg("no " VULNS "\n");
	while ((d = readdir(dir))) {
		if (d->d_name[0] == '.' || !read_vuln(d->d_name, text, sizeof(text)))
			continue;
		files++;
		if (strstr(text, "ASI") && !flushing) {
			ksft_print_msg("%s: \"%s\" with ASI not flushing\n", d->d_name, text);
			bad++;
		}
	}
	closedir(dir);
	ksft_test_result(files && !bad, "%d files: ASI named only where its transitions flush\n",
			 files);

	for (size_t i = 0; i < sizeof(verw_vulns) / sizeof(verw_vulns[0]); i++) {
		const char *f = verw_vulns[i].file;
		bool affected = has_word(bugs, verw_vulns[i].bug), ok;

		if (!read_vuln(f, text, sizeof(text))) {
			ksft_test_result_code(KSFT_SKIP, f, "no such file in this kernel\n");
			continue;
		}
		if (!affected)
			ok = !strcmp(text, "Not affected");
		else if (flushing && !by_name)
			/*
			 * Every buffer clear before user space is ASI's; MMIO
			 * Stale Data alone clears only before VM entry.
			 */
			ok = !per_return_verw(text) ||
			     (!strcmp(f, "mmio_stale_data") && !has_word(bugs, "mds") &&
			      !has_word(bugs, "taa"));
		else
			ok = !strstr(text, "ASI");
		ksft_test_result(ok, "%s (%s): \"%s\"\n", f,
				 affected ? "affected" : "not affected", text);
	}

	if (!read_vuln("spectre_v2", text, sizeof(text))) {
		ksft_test_result_code(KSFT_SKIP, "spectre_v2", "no such file\n");
	} else if (param("spectre_v2_user=") || param("nospectre_v2") ||
		   param("spectre_v2=off")) {
		ksft_test_result_code(KSFT_SKIP, "spectre_v2",
				      "spectre_v2_user chosen on the command line\n");
	} else {
		bool want = flushing && has_word(flags, "ibpb");

		ksft_test_result(!!strstr(text, "IBPB: ASI exits") == want,
				 "spectre_v2: IBPB %s ASI's: \"%s\"\n", want ? "is" : "is not",
				 text);
	}

	if (!on) {
		ksft_test_result_code(KSFT_SKIP, "null system calls", "ASI is off\n");
	} else {
		/* This CPU's counters: the other CPUs' tasks are not the calls' doing. */
		int cpu = sysconf(_SC_NPROCESSORS_ONLN) - 1;
		long long exits, data;

		if (asi_pin(cpu))
			ksft_exit_fail_msg("sched_setaffinity: %m\n");
		exits = asi_cpu_stat(cpu, "exits");
		data = asi_cpu_stat(cpu, "flush_data");
		for (int i = 0; i < CALLS; i++)
			syscall(SYS_getppid);
		exits = asi_cpu_stat(cpu, "exits") - exits;
		data = asi_cpu_stat(cpu, "flush_data") - data;
		ksft_test_result(exits >= 0 && data >= 0 && exits <= CALLS / 1000 &&
				 data <= CALLS / 1000,
				 "%d null system calls: %lld exits, %lld data flushes\n", CALLS,
				 exits, data);
	}
	check_calibrate();
	ksft_finished();
}
