#!/bin/sh
# In the guest (busybox sh): the workload of make stress / make fuzz, with its own checks.
# Usage: soak.sh stress|fuzz DURATION [AUDIT_FILE]
#
#  1. ASI audit before the workload, ASI counters reset.
#  2. Data that must survive: random files in tmpfs (/tmp) and in /dev/shm with their
#     sha256 recorded, and datacheck (anonymous, shared, memfd, SysV, secretmem and
#     tmpfs-file regions with a known pattern, verified every few seconds and through
#     fork/CoW, mremap, mprotect and read(2); pages a forked child gets by UFFDIO_COPY,
#     missing and write-protected).
#  3. In the background: memory compaction and page-cache drops every 15 s (page
#     migration and reallocation under ASI).
#  4. The workload, bounded by DURATION (plus a grace period, then SIGKILL):
#     stress: stress-ng, about thirty stressors that touch user memory, with --verify
#             (exec and madvise as nobody);
#     fuzz:   trinity as user nobody, restarted until DURATION is used up.
#  5. datacheck's final verification, sha256sum -c, the ASI audit again, the counters.
# Results are lines "@@SOAK key value" and "@@AUDIT phase ..." blocks that
# scripts/stress judges, with the serial log. Exit status 0 if the guest-side checks passed.
mode=${1:?usage: soak.sh stress|fuzz DURATION [AUDIT_FILE]}
duration=${2:?usage: soak.sh stress|fuzz DURATION [AUDIT_FILE]}
ASI=/sys/kernel/debug/asi
audit_file=${3:-$ASI/audit}
data=/tmp/soak-data
shmdata=/dev/shm/soak-data
rc=0

say() { echo "@@SOAK $*"; }

audit() {
	if [ ! -e "$audit_file" ]; then
		echo "@@AUDIT $1 unavailable: $audit_file does not exist"
		return
	fi
	echo "@@AUDIT $1 begin"
	cat "$audit_file" 2>&1 || echo "read-error: status $?"
	echo "@@AUDIT $1 end"
}

stats() {
	echo "@@STATS $1 begin"
	cat $ASI/stats 2>&1
	echo "@@STATS $1 end"
}

echo "soak: mode=$mode duration=${duration}s kernel $(uname -r), $(nproc) CPUs"
echo "soak: cmdline: $(cat /proc/cmdline)"
free -m | sed 's/^/soak: /'
audit before
[ -w $ASI/reset ] && echo 1 > $ASI/reset

# --- data that must survive ----------------------------------------------------------
mkdir -p $data $shmdata
for i in 1 2 3 4 5 6 7 8; do head -c 4194304 /dev/urandom > $data/f$i; done
for i in 1 2 3 4; do head -c 4194304 /dev/urandom > $shmdata/f$i; done
sha256sum $data/* $shmdata/* > /tmp/soak.sha256
say data_files "$(wc -l < /tmp/soak.sha256) files, $(du -sk $data $shmdata | awk '{s+=$1} END {print s}') KiB"

datacheck -u -m 8 -i 5 > /tmp/datacheck.out 2>&1 &
dc=$!
# Niced up: among thirty stressors at nice 0 it would verify only every minute or two.
renice -n -10 -p $dc >/dev/null
n=0
until grep -q 'datacheck: ready' /tmp/datacheck.out 2>/dev/null; do
	n=$((n + 1))
	if [ $n -gt 120 ] || ! kill -0 $dc 2>/dev/null; then
		cat /tmp/datacheck.out
		say datacheck_start failed
		rc=1
		break
	fi
	sleep 1
done
cat /tmp/datacheck.out

# --- background: compaction (page migration) and page-cache drops --------------------
# Also the lowest MemAvailable seen, to show the margin against the OOM killer.
avail() { awk '/^MemAvailable:/ {print int($2 / 1024)}' /proc/meminfo; }
echo "$(avail)" > /tmp/soak.minavail
echo 0 > /tmp/soak.churns
(
	n=0 last=0
	while :; do
		sleep 3
		a=$(avail)
		[ "$a" -lt "$(cat /tmp/soak.minavail)" ] && echo "$a" > /tmp/soak.minavail
		now=$(date +%s)
		[ $((now - last)) -ge 15 ] || continue
		last=$now
		echo 1 > /proc/sys/vm/compact_memory 2>/dev/null
		echo 3 > /proc/sys/vm/drop_caches 2>/dev/null
		n=$((n + 1))
		echo $n > /tmp/soak.churns
	done
) &
churn=$!
renice -n -10 -p $churn >/dev/null

# --- the workload --------------------------------------------------------------------
# The grace catches a hang, not slowness: under TCG with KASAN, stressors overrun a
# 30 s run by a minute or more (stress-ng done after 74-108 s here alone, and killed
# at 210 s with two Bochs emulators on the same two cores).
grace=360
start=$(date +%s)

run_stress() {
	# Memory is bounded per stressor so that the whole set fits a 2 GiB guest with KASAN:
	# an OOM kill is a kernel report in the serial log and fails the run.
	# CAP_IPC_LOCK is dropped and RLIMIT_MEMLOCK set so that mlock and secretmem are bounded.
	# A second stress-ng runs as nobody: the exec stressor refuses root, and the madvise
	# stressor as root injects memory errors (MADV_HWPOISON, CONFIG_MEMORY_FAILURE), whose
	# SIGBUS on its own poisoned page kills it by design.
	# -v: stress-ng names a stressor killed by a signal only in its debug output.
	hostrun sh -c 'cd /tmp && exec "$@"' sh timeout -s KILL $((duration + grace)) \
		setpriv --reuid=65534 --regid=65534 --clear-groups -- \
		stress-ng --timeout "${duration}s" --verify --metrics-brief -v \
		--exec 1 --exec-max 4 \
		--madvise 1 > /tmp/stress-nobody.out 2>&1 &
	nobody=$!
	hostrun sh -c 'cd /tmp && exec "$@"' sh timeout -s KILL $((duration + grace)) \
		setpriv --bounding-set=-ipc_lock -- \
		prlimit --memlock=67108864 -- \
		stress-ng --timeout "${duration}s" --verify --metrics-brief -v \
		--oom-avoid \
		--vm 1 --vm-bytes 96M --vm-keep \
		--mmap 1 --mmap-bytes 32M \
		--mremap 1 --mremap-bytes 32M \
		--pagemove 1 --pagemove-bytes 16M \
		--mincore 1 \
		--msync 1 --msync-bytes 16M \
		--mlock 1 \
		--remap 1 \
		--userfaultfd 1 \
		--mmapfork 1 \
		--pageswap 1 \
		--physpage 1 \
		--fork 1 --fork-max 4 \
		--vfork 1 --vfork-max 4 \
		--clone 1 --clone-max 8 \
		--pipe 1 \
		--splice 1 \
		--tee 1 \
		--vm-splice 1 \
		--sendfile 1 \
		--zero 1 \
		--hdd 1 --hdd-bytes 16M \
		--readahead 1 --readahead-bytes 8M \
		--seek 1 --seek-size 16M \
		--fallocate 1 --fallocate-bytes 16M \
		--io-uring 1 \
		--aio 1 \
		--shm 1 --shm-bytes 16M \
		--shm-sysv 1 --shm-sysv-bytes 16M \
		--memfd 1 --memfd-bytes 32M --memfd-fds 32 \
		--secretmem 1
	src=$?
	wait $nobody
	nrc=$?
	sed 's/^stress-ng:/stress-ng(nobody):/' /tmp/stress-nobody.out
	say workload_exit_nobody $nrc
	return $src
}

# trinity as nobody, in its own small tmpfs, restarted (new seed) until the time is used.
# Limits keep one fuzzer process from taking the guest's memory: an OOM kill would be a
# kernel report in the serial log.
run_fuzz() {
	mkdir -p /host/tmp/fuzz
	mount -t tmpfs -o size=256m,mode=1777 tmpfs /host/tmp/fuzz || return 1
	# SysV shared memory is not charged to RLIMIT_AS: cap it system-wide (128 MiB).
	echo 33554432 > /proc/sys/kernel/shmmax
	echo 32768 > /proc/sys/kernel/shmall
	start=$(date +%s)
	seed=${FUZZ_SEED:-$start}
	end=$((start + duration))
	runs=0 quick=0 frc=0
	while [ "$(date +%s)" -lt $end ]; do
		left=$((end - $(date +%s)))
		runs=$((runs + 1))
		s=$((seed + runs - 1))
		t0=$(date +%s)
		say trinity_run "$runs seed $s for ${left}s"
		# shellcheck disable=SC2086
		hostrun timeout -s INT -k 30 $left \
			prlimit --as=536870912 --fsize=16777216 --nproc=256 --nofile=512 \
			--memlock=8388608 -- \
			setpriv --reuid=65534 --regid=65534 --clear-groups -- \
			sh -c 'cd /tmp/fuzz && exec trinity -q -C 2 --disable-fds=sockets -s "$0" $1' \
			"$s" "$TRINITY_EXCLUDE"
		frc=$?
		say trinity_exit "$frc after $(( $(date +%s) - t0 ))s"
		# Whatever escaped the process group (trinity children call setsid): kill as nobody.
		hostrun setpriv --reuid=65534 --regid=65534 --clear-groups -- kill -9 -1 2>/dev/null
		if [ $(( $(date +%s) - t0 )) -lt 10 ]; then
			quick=$((quick + 1))
			[ $quick -lt 3 ] || { say trinity_error "exited within 10 s three times"; return 1; }
		fi
	done
	say trinity_runs "$runs"
	n=0
	while grep -qs '^Uid:[[:space:]]*65534' /proc/[0-9]*/status; do
		n=$((n + 1))
		[ $n -le 10 ] || { say trinity_error "processes of nobody survive kill -9"; return 1; }
		hostrun setpriv --reuid=65534 --regid=65534 --clear-groups -- kill -9 -1 2>/dev/null
		sleep 1
	done
	return 0
}

# Syscalls trinity must not call here, beyond its own avoid list (exit, exit_group, kill,
# tkill, tgkill, rt_sigqueueinfo, ptrace, vhangup, pause, alarm, clone, fork, ... see
# "trinity -L"), with the reason:
#  reboot, kexec_load, kexec_file_load: would end the guest; as nobody they fail with
#    EPERM, excluded so that no privilege slip can end the run early;
#  pidfd_send_signal: like kill, which trinity avoids itself: it can kill the fuzzer's
#    own main process.
# And --disable-fds=sockets: trinity 2023.01's table of protocols has a bad entry for
# domain 45 (AF_MCTP: the value 1, not a pointer), and trinity's main process segfaults
# (at 0x21) when it picks it while opening its socket fds; the same with asi=off. The
# socket syscalls are still fuzzed, only the pre-opened socket fds are off.
TRINITY_EXCLUDE=${TRINITY_EXCLUDE:--x reboot -x kexec_load -x kexec_file_load -x pidfd_send_signal}

case $mode in
stress) run_stress; wrc=$? ;;
fuzz) run_fuzz; wrc=$? ;;
*) echo "soak: unknown mode $mode"; exit 2 ;;
esac
say workload_exit "$wrc"
say workload_seconds "$(( $(date +%s) - start ))"

# --- afterwards ----------------------------------------------------------------------
kill $churn 2>/dev/null
wait $churn 2>/dev/null
say min_available_mib "$(cat /tmp/soak.minavail)"
say compactions "$(cat /tmp/soak.churns)"
if kill -0 $dc 2>/dev/null; then
	kill -TERM $dc
	wait $dc
	dcrc=$?
else
	wait $dc
	dcrc="died:$?"
fi
grep -v -e 'datacheck: ready' -e 'MiB$' /tmp/datacheck.out
say datacheck "$dcrc"
[ "$dcrc" = 0 ] || rc=1

if sha256sum -c /tmp/soak.sha256 > /tmp/soak.sumcheck 2>&1; then
	say checksums "ok $(grep -c ': OK$' /tmp/soak.sumcheck)"
else
	grep -v ': OK$' /tmp/soak.sumcheck
	say checksums "failed $(grep -vc ': OK$' /tmp/soak.sumcheck)"
	rc=1
fi

audit after
stats after
say tainted "$(cat /proc/sys/kernel/tainted)"
free -m | sed 's/^/soak: /'
exit $rc
