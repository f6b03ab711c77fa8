// SPDX-License-Identifier: GPL-2.0
/*
 * A QEMU TCG plugin that counts, exactly, how often the guest executes the
 * instructions the mitigations are made of: VERW, WRMSR (IBPB, L1D flush and
 * SPEC_CTRL writes are WRMSRs; the site says which), MOV to CR3, INVLPG and
 * INVPCID.  Counts are kept per instruction address, so that the host can name
 * the kernel function of each site from System.map.
 *
 * The guest brackets what it measures with two marker NOPs (see guest/asi.h):
 * nopl 0x30495341(%rax) starts a window, nopl 0x31495341(%rax) ends it and
 * makes the plugin print, for every site that ran in the window,
 *
 *	@@INSN window=N kind=K addr=0x... count=C
 *
 * and "@@INSN window=N end".  The output goes to QEMU's log: -d plugin -D FILE.
 *
 * QEMU 7.2 (Debian 12) ships no plugin header; the few entry points used here
 * are declared below as that version's API documents them (plugin API
 * version 1).
 */
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

typedef uint64_t qemu_plugin_id_t;
struct qemu_plugin_tb;
struct qemu_plugin_insn;
typedef struct qemu_info_t qemu_info_t;
enum { QEMU_PLUGIN_CB_NO_REGS = 0 };

void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id,
	void (*cb)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb));
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *tb,
						 size_t idx);
const void *qemu_plugin_insn_data(const struct qemu_plugin_insn *insn);
size_t qemu_plugin_insn_size(const struct qemu_plugin_insn *insn);
uint64_t qemu_plugin_insn_vaddr(const struct qemu_plugin_insn *insn);
void qemu_plugin_register_vcpu_insn_exec_cb(struct qemu_plugin_insn *insn,
	void (*cb)(unsigned int vcpu, void *udata), int flags, void *udata);
void qemu_plugin_outs(const char *string);

__attribute__((visibility("default"))) int qemu_plugin_version = 1;

enum kind { VERW, WRMSR, MOV_CR3, INVLPG, INVPCID, START, END, NR_KINDS };
static const char *const kind_names[] = {
	"verw", "wrmsr", "mov_cr3", "invlpg", "invpcid", "start", "end",
};

#define MAX_SITES 4096
struct site {
	uint64_t addr;
	enum kind kind;
	uint64_t count;		/* executions since boot */
	uint64_t at_start;	/* count when the window opened */
};

static struct site sites[MAX_SITES];
static int nr_sites;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned int window;
static bool overflow;

/* Decode just enough of x86 to recognise the instructions above. */
static int classify(const uint8_t *p, size_t n)
{
	static const uint8_t start[] = { 0x0f, 0x1f, 0x80, 0x41, 0x53, 0x49, 0x30 };
	static const uint8_t end[] = { 0x0f, 0x1f, 0x80, 0x41, 0x53, 0x49, 0x31 };
	bool opsize = false;
	size_t i = 0;

	if (n == sizeof(start) && !memcmp(p, start, n))
		return START;
	if (n == sizeof(end) && !memcmp(p, end, n))
		return END;
	/* Legacy prefixes, then REX. */
	for (; i < n; i++) {
		if (p[i] == 0x66)
			opsize = true;
		else if (p[i] != 0x67 && p[i] != 0xf2 && p[i] != 0xf3 && p[i] != 0x2e &&
			 p[i] != 0x36 && p[i] != 0x3e && p[i] != 0x26 && p[i] != 0x64 &&
			 p[i] != 0x65 && p[i] != 0xf0)
			break;
	}
	if (i < n && (p[i] & 0xf0) == 0x40)
		i++;
	if (i + 2 > n || p[i] != 0x0f)
		return -1;
	switch (p[i + 1]) {
	case 0x00:	/* group 6: /5 is VERW */
		return i + 2 < n && ((p[i + 2] >> 3) & 7) == 5 ? VERW : -1;
	case 0x01:	/* group 7: /7 with a memory operand is INVLPG */
		return i + 2 < n && ((p[i + 2] >> 3) & 7) == 7 &&
		       (p[i + 2] >> 6) != 3 ? INVLPG : -1;
	case 0x22:	/* MOV to control register: reg field 3 is CR3 */
		return i + 2 < n && ((p[i + 2] >> 3) & 7) == 3 ? MOV_CR3 : -1;
	case 0x30:
		return WRMSR;
	case 0x38:
		return opsize && i + 2 < n && p[i + 2] == 0x82 ? INVPCID : -1;
	}
	return -1;
}

static void report(void)
{
	char line[128];
	int i;

	for (i = 0; i < nr_sites; i++) {
		uint64_t c = __atomic_load_n(&sites[i].count, __ATOMIC_RELAXED) -
			     sites[i].at_start;

		if (!c || sites[i].kind >= START)
			continue;
		snprintf(line, sizeof(line), "@@INSN window=%u kind=%s addr=%#llx count=%llu\n",
			 window, kind_names[sites[i].kind],
			 (unsigned long long)sites[i].addr, (unsigned long long)c);
		qemu_plugin_outs(line);
	}
	snprintf(line, sizeof(line), "@@INSN window=%u end%s\n", window,
		 overflow ? " overflow" : "");
	qemu_plugin_outs(line);
}

static void exec(unsigned int vcpu, void *udata)
{
	struct site *s = udata;
	int i;

	(void)vcpu;
	__atomic_fetch_add(&s->count, 1, __ATOMIC_RELAXED);
	if (s->kind != START && s->kind != END)
		return;
	pthread_mutex_lock(&lock);
	if (s->kind == START) {
		for (i = 0; i < nr_sites; i++)
			sites[i].at_start = __atomic_load_n(&sites[i].count, __ATOMIC_RELAXED);
	} else {
		window++;
		report();
	}
	pthread_mutex_unlock(&lock);
}

/* A translation block may be translated again: one site per address and kind. */
static struct site *site_of(uint64_t addr, enum kind kind)
{
	struct site *s = NULL;
	int i;

	pthread_mutex_lock(&lock);
	for (i = 0; i < nr_sites; i++) {
		if (sites[i].addr == addr && sites[i].kind == kind) {
			s = &sites[i];
			break;
		}
	}
	if (!s && nr_sites < MAX_SITES) {
		s = &sites[nr_sites++];
		s->addr = addr;
		s->kind = kind;
		s->count = 0;
		s->at_start = 0;
	} else if (!s) {
		overflow = true;
	}
	pthread_mutex_unlock(&lock);
	return s;
}

static void tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
	size_t i, n = qemu_plugin_tb_n_insns(tb);

	(void)id;
	for (i = 0; i < n; i++) {
		struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
		int kind = classify(qemu_plugin_insn_data(insn), qemu_plugin_insn_size(insn));
		struct site *s;

		if (kind < 0)
			continue;
		s = site_of(qemu_plugin_insn_vaddr(insn), kind);
		if (s)
			qemu_plugin_register_vcpu_insn_exec_cb(insn, exec,
							       QEMU_PLUGIN_CB_NO_REGS, s);
	}
}

__attribute__((visibility("default")))
int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc, char **argv)
{
	(void)info, (void)argc, (void)argv;
	qemu_plugin_register_vcpu_tb_trans_cb(id, tb_trans);
	return 0;
}
