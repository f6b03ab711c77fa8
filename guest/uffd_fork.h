/* SPDX-License-Identifier: GPL-2.0 */
/*
 * uffd_fork_check(): the userfaultfd pattern of the kernel's uffd-unit-tests
 * "events" and "events-wp" tests, as a data check.
 *
 * A region of anonymous memory is registered with userfaultfd (missing faults,
 * and write-protect faults with @wp) and UFFD_FEATURE_EVENT_FORK; a monitor
 * thread of this process serves the faults. Then the process forks: the child
 * inherits the registration, the monitor takes over the child's userfaultfd
 * from the fork event, fills every page the child touches with UFFDIO_COPY
 * (write-protected with @wp) from a source region holding a known pattern, and
 * unprotects a page when the child writes it. The child reads every word of
 * every page, writes the first word back (a write-protect fault with @wp) and
 * reads the page again. Any word that differs from the pattern is reported.
 *
 * A child that makes no progress for UFFD_FORK_STALL seconds is reported with
 * the page it is on and its state in /proc, and killed: a hang is a failure.
 *
 * Returns the number of bad pages (0: all good), or -errno if the kernel lacks
 * what the check needs (no userfaultfd, no write-protect support).
 */
#ifndef UFFD_FORK_H
#define UFFD_FORK_H

#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <signal.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define UFFD_PAGE 4096UL
#define UFFD_FORK_STALL 60

struct uffd_fork {
	int uffd;
	int stop[2];
	uint8_t *src, *dst;
	volatile size_t *progress;	/* shared with the child: the page it is on */
	size_t npages;
	int wp;
	unsigned long copies, unprotects, forks, errors;
};

static uint64_t uffd_fork_word(uint64_t seed, size_t page, size_t word)
{
	uint64_t x = seed ^ (page << 20) ^ word;

	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	return x | 1;	/* never 0: a zeroed page is always a mismatch */
}

static int uffd_fork_serve(struct uffd_fork *u, struct uffd_msg *msg)
{
	unsigned long addr = msg->arg.pagefault.address & ~(UFFD_PAGE - 1);

	switch (msg->event) {
	case UFFD_EVENT_FORK:
		close(u->uffd);
		u->uffd = msg->arg.fork.ufd;
		u->forks++;
		return 0;
	case UFFD_EVENT_PAGEFAULT:
		if (msg->arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WP) {
			struct uffdio_writeprotect w = {
				.range = { .start = addr, .len = UFFD_PAGE },
			};

			u->unprotects++;
			return ioctl(u->uffd, UFFDIO_WRITEPROTECT, &w);
		} else {
			struct uffdio_copy c = {
				.dst = addr,
				.src = (unsigned long)u->src + (addr - (unsigned long)u->dst),
				.len = UFFD_PAGE,
				.mode = u->wp ? UFFDIO_COPY_MODE_WP : 0,
			};

			u->copies++;
			if (ioctl(u->uffd, UFFDIO_COPY, &c) && errno != EEXIST)
				return -1;
			return 0;
		}
	default:
		return 0;	/* remove, unmap, remap: nothing to serve */
	}
}

static void *uffd_fork_monitor(void *arg)
{
	struct uffd_fork *u = arg;

	for (;;) {
		struct pollfd p[2] = {
			{ .fd = u->uffd, .events = POLLIN },
			{ .fd = u->stop[0], .events = POLLIN },
		};
		struct uffd_msg msg;

		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			u->errors++;
			return NULL;
		}
		if (p[1].revents)
			return NULL;
		if (!(p[0].revents & POLLIN))
			continue;
		if (read(u->uffd, &msg, sizeof(msg)) != sizeof(msg)) {
			if (errno != EAGAIN)
				u->errors++;
			continue;
		}
		if (uffd_fork_serve(u, &msg))
			u->errors++;
	}
}

/* In the child: every page as the pattern says, before and after a write. */
static int uffd_fork_child(struct uffd_fork *u, uint64_t seed)
{
	size_t words = UFFD_PAGE / sizeof(uint64_t), bad = 0;

	for (size_t page = 0; page < u->npages; page++) {
		volatile uint64_t *w = (uint64_t *)(u->dst + page * UFFD_PAGE);
		int wrong = 0;

		*u->progress = page;
		for (size_t i = 0; i < words; i++)
			wrong |= w[i] != uffd_fork_word(seed, page, i);
		w[0] = w[0];	/* a write-protect fault with wp */
		for (size_t i = 0; i < words; i++)
			wrong |= w[i] != uffd_fork_word(seed, page, i);
		if (wrong && bad++ < 4)
			printf("uffd_fork: page %zu: word 0 %#llx, want %#llx\n", page,
			       (unsigned long long)w[0],
			       (unsigned long long)uffd_fork_word(seed, page, 0));
	}
	return bad > 255 ? 255 : (int)bad;
}

/* Print what a stuck child is doing: the page, its state and kernel stack. */
static void uffd_fork_stuck(struct uffd_fork *u, pid_t pid)
{
	static const char *const files[] = { "stat", "wchan", "stack" };
	char path[64], buf[2048];

	printf("uffd_fork: child %d stuck on page %zu of %zu for %d s (%lu copies, %lu unprotects)\n",
	       pid, *u->progress, u->npages, UFFD_FORK_STALL, u->copies, u->unprotects);
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		int fd;
		ssize_t n;

		snprintf(path, sizeof(path), "/proc/%d/%s", pid, files[i]);
		fd = open(path, O_RDONLY);
		n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
		if (fd >= 0)
			close(fd);
		buf[n > 0 ? n : 0] = 0;
		printf("uffd_fork: %s: %s\n", path, n > 0 ? buf : "(unreadable)");
	}
	fflush(stdout);
}

/* Wait for the child; kill it if it makes no progress for UFFD_FORK_STALL s. */
static int uffd_fork_wait(struct uffd_fork *u, pid_t pid, int *status)
{
	size_t last = (size_t)-1;
	int still = 0;

	for (;;) {
		pid_t r = waitpid(pid, status, WNOHANG);

		if (r == pid)
			return 0;
		if (r < 0 && errno != EINTR)
			return -1;
		if (*u->progress != last) {
			last = *u->progress;
			still = 0;
		} else if (++still >= UFFD_FORK_STALL * 10) {
			uffd_fork_stuck(u, pid);
			kill(pid, SIGKILL);
			while (waitpid(pid, status, 0) < 0 && errno == EINTR)
				;
			return 1;
		}
		usleep(100000);
	}
}

static int uffd_fork_check(size_t npages, int wp, uint64_t seed)
{
	struct uffdio_api api = {
		.api = UFFD_API,
		.features = UFFD_FEATURE_EVENT_FORK |
			    (wp ? UFFD_FEATURE_PAGEFAULT_FLAG_WP : 0),
	};
	struct uffd_fork u = { .npages = npages, .wp = wp };
	size_t len = npages * UFFD_PAGE, words = UFFD_PAGE / sizeof(uint64_t);
	struct uffdio_register reg;
	pthread_t mon;
	int ret = 0, status = 0, stuck = 0;
	pid_t pid;

	u.uffd = syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (u.uffd < 0)
		return -errno;
	if (ioctl(u.uffd, UFFDIO_API, &api)) {
		ret = -errno;
		close(u.uffd);
		return ret;
	}
	u.src = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	u.dst = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	u.progress = mmap(NULL, UFFD_PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
			  -1, 0);
	if (u.src == MAP_FAILED || u.dst == MAP_FAILED || u.progress == MAP_FAILED ||
	    pipe(u.stop)) {
		ret = -ENOMEM;
		goto out;
	}
	for (size_t page = 0; page < npages; page++)
		for (size_t i = 0; i < words; i++)
			((uint64_t *)(u.src + page * UFFD_PAGE))[i] = uffd_fork_word(seed, page, i);
	/*
	 * src and dst are adjacent anonymous mappings, one VMA to the kernel:
	 * with THP enabled, filling src can fault in a huge page that reaches
	 * into dst, whose pages are then present (zero) and never fault in the
	 * child. Drop them, as uffd-unit-tests does, and check with mincore()
	 * that every destination page is missing.
	 */
	if (madvise(u.dst, len, MADV_DONTNEED)) {
		ret = -errno;
		goto out_pipe;
	}
	{
		unsigned char vec[npages];
		size_t resident = 0;

		if (mincore(u.dst, len, vec)) {
			ret = -errno;
			goto out_pipe;
		}
		for (size_t page = 0; page < npages; page++)
			resident += vec[page] & 1;
		if (resident) {
			printf("uffd_fork: %zu of %zu destination pages still resident after MADV_DONTNEED\n",
			       resident, npages);
			ret = (int)resident;
			goto out_pipe;
		}
	}
	reg = (struct uffdio_register) {
		.range = { .start = (unsigned long)u.dst, .len = len },
		.mode = UFFDIO_REGISTER_MODE_MISSING | (wp ? UFFDIO_REGISTER_MODE_WP : 0),
	};
	if (ioctl(u.uffd, UFFDIO_REGISTER, &reg)) {
		ret = -errno;
		goto out_pipe;
	}
	if (pthread_create(&mon, NULL, uffd_fork_monitor, &u)) {
		ret = -EAGAIN;
		goto out_pipe;
	}
	fflush(stdout);
	pid = fork();
	if (pid == 0)
		_exit(uffd_fork_child(&u, seed));
	if (pid > 0)
		stuck = uffd_fork_wait(&u, pid, &status);
	if (write(u.stop[1], "", 1) != 1)
		u.errors++;
	pthread_join(mon, NULL);
	if (pid < 0)
		ret = -EAGAIN;
	else if (stuck || !WIFEXITED(status))
		ret = npages ? (int)npages : 1;	/* killed: count it all as bad */
	else
		ret = WEXITSTATUS(status);
	if (ret >= 0 && (u.errors || u.forks != 1 || u.copies < npages)) {
		printf("uffd_fork: monitor: %lu errors, %lu fork events, %lu copies for %zu pages\n",
		       u.errors, u.forks, u.copies, npages);
		ret = ret ? ret : 1;
	}
out_pipe:
	close(u.stop[0]);
	close(u.stop[1]);
out:
	if (u.src != MAP_FAILED)
		munmap(u.src, len);
	if (u.dst != MAP_FAILED)
		munmap(u.dst, len);
	if (u.progress != MAP_FAILED)
		munmap((void *)u.progress, UFFD_PAGE);
	close(u.uffd);
	return ret;
}

#endif /* UFFD_FORK_H */
