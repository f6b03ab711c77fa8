#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Real programs on the guest kernel, with their results checked: fio 4 KiB random
# reads from tmpfs (the published ASI headline workload) and a gcc compile and run.
# Runs inside the host root filesystem (hostrun), where fio and gcc live.
echo "TAP version 13"
echo "1..2"
dir=$(mktemp -d /tmp/workloads.XXXXXX)

if ! command -v fio >/dev/null; then
	echo "ok 1 fio_randread_tmpfs # SKIP fio is not installed"
elif fio --name=randread --directory="$dir" --rw=randread --bs=4k --size=16m \
	--ioengine=psync --runtime=5 --time_based --verify=0 \
	--output-format=terse >"$dir/fio.out" 2>&1 &&
	[ "$(cut -d';' -f6 "$dir/fio.out")" -gt 0 ] 2>/dev/null; then
	echo "ok 1 fio_randread_tmpfs"
else
	echo "not ok 1 fio_randread_tmpfs"
	sed 's/^/# /' "$dir/fio.out"
fi

cat >"$dir/sum.c" <<'C'
#include <stdio.h>
int main(void)
{
	unsigned long s = 0;

	for (unsigned long i = 1; i <= 1000000; i++)
		s += i * i % 7;
	printf("%lu\n", s);
	return 0;
}
C
if gcc -O2 -o "$dir/sum" "$dir/sum.c" >"$dir/gcc.out" 2>&1 &&
	[ "$("$dir/sum")" = 1999999 ]; then
	echo "ok 2 gcc_compile_and_run"
else
	echo "not ok 2 gcc_compile_and_run"
	sed 's/^/# /' "$dir/gcc.out"
fi
rm -rf "$dir"
