/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What the guest programs share: the ASI counters in debugfs and the PFN of a
 * user address from /proc/self/pagemap.
 */
#ifndef ASI_GUEST_H
#define ASI_GUEST_H

#include <fcntl.h>
#include <linux/futex.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define ASI_DIR "/sys/kernel/debug/asi/"
#define ASI_PAGE 4096UL

/* Write @s to @file; 0 or -1. */
static inline int asi_put(const char *file, const char *s)
{
	int fd = open(file, O_WRONLY | O_TRUNC);
	int ret;

	if (fd < 0)
		return -1;
	ret = write(fd, s, strlen(s)) < 0 ? -1 : 0;
	close(fd);
	return ret;
}

/* Read all of @file into @buf (NUL-terminated); length or -1. */
static inline ssize_t asi_get(const char *file, char *buf, size_t len)
{
	int fd = open(file, O_RDONLY);
	ssize_t n, total = 0;

	if (fd < 0)
		return -1;
	while (total < (ssize_t)len - 1 &&
	       (n = read(fd, buf + total, len - 1 - total)) > 0)
		total += n;
	close(fd);
	buf[total] = 0;
	return total;
}

/* The value of "@name N" in a "key value" text, or -1. */
static inline long long asi_value(const char *text, const char *name)
{
	size_t n = strlen(name);
	const char *p;

	for (p = text; (p = strstr(p, name)); p += n)
		if ((p == text || p[-1] == '\n') && p[n] == ' ')
			return strtoll(p + n + 1, NULL, 0);
	return -1;
}

/* One counter of /sys/kernel/debug/asi/stats, or -1. */
static inline long long asi_stat(const char *name)
{
	char buf[4096];

	if (asi_get(ASI_DIR "stats", buf, sizeof(buf)) <= 0)
		return -1;
	return asi_value(buf, name);
}

/* Whether the word after "@name " in the stats is @word (flush_policy ...). */
static inline int asi_stat_is(const char *name, const char *word)
{
	char buf[4096], *p;
	size_t n = strlen(name), w = strlen(word);

	if (asi_get(ASI_DIR "stats", buf, sizeof(buf)) <= 0)
		return 0;
	for (p = buf; (p = strstr(p, name)); p += n)
		if ((p == buf || p[-1] == '\n') && p[n] == ' ')
			return !strncmp(p + n + 1, word, w) &&
			       (p[n + 1 + w] == '\n' || !p[n + 1 + w]);
	return 0;
}

/*
 * One counter of CPU @cpu alone (/sys/kernel/debug/asi/cpu/N), or -1: what a
 * test pinned to @cpu caused, without the other CPUs' noise.
 */
static inline long long asi_cpu_stat(int cpu, const char *name)
{
	char buf[4096], file[64];

	snprintf(file, sizeof(file), ASI_DIR "cpu/%d", cpu);
	if (asi_get(file, buf, sizeof(buf)) <= 0)
		return -1;
	return asi_value(buf, name);
}

#ifdef _GNU_SOURCE
#include <sched.h>

/* Pin the calling thread to @cpu; 0 or -1. */
static inline int asi_pin(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return sched_setaffinity(0, sizeof(set), &set);
}
#endif

/* ASI is on (the counters exist with ASI off too, saying "active 0"). */
static inline int asi_active(void)
{
	return asi_stat("active") == 1;
}

/* The PFN behind a user address, or 0 if it is not resident (or not root). */
static inline uint64_t asi_pfn_of(const void *addr)
{
	uint64_t e = 0;
	int fd = open("/proc/self/pagemap", O_RDONLY);
	ssize_t n;

	if (fd < 0)
		return 0;
	n = pread(fd, &e, sizeof(e), (uintptr_t)addr / ASI_PAGE * sizeof(e));
	close(fd);
	if (n != sizeof(e) || !(e & (1ULL << 63)))
		return 0;
	return e & ((1ULL << 55) - 1);
}

/*
 * Take @n turns with another thread or process through the futex @turn: wait
 * until it is @me, hand it over. Two sides on one CPU switch twice a turn.
 * @shared: the futex is in memory shared between processes.
 */
static inline void asi_take_turns(atomic_int *turn, int me, unsigned long n, int shared)
{
	int wait = shared ? FUTEX_WAIT : FUTEX_WAIT_PRIVATE;
	int wake = shared ? FUTEX_WAKE : FUTEX_WAKE_PRIVATE;

	for (unsigned long i = 0; i < n; i++) {
		while (atomic_load(turn) != me)
			syscall(SYS_futex, turn, wait, !me, NULL, NULL, 0);
		atomic_store(turn, !me);
		syscall(SYS_futex, turn, wake, 1, NULL, NULL, 0);
	}
}

/*
 * Marker NOPs for the host's instruction counter (tools/insn-count.c, loaded
 * by scripts/vm --count-insns): it counts the VERW, WRMSR, MOV to CR3, INVLPG
 * and INVPCID the whole machine executes between the two.  Plain NOPs
 * otherwise.
 */
static inline void insn_count_start(void)
{
	__asm__ volatile(".byte 0x0f, 0x1f, 0x80, 0x41, 0x53, 0x49, 0x30" ::: "memory");
}

static inline void insn_count_end(void)
{
	__asm__ volatile(".byte 0x0f, 0x1f, 0x80, 0x41, 0x53, 0x49, 0x31" ::: "memory");
}

#endif /* ASI_GUEST_H */
