#!/bin/sh
# uffd-unit-tests' fork-event tests only: "events" and "events-wp" on anon, shmem and
# shmem-private memory (hugetlb ones skip: no HUGETLBFS). These are where asi=on once
# lost a page of user data; the whole program takes about 5 minutes per boot under
# emulation, the two tests about 100 s.
exec ./uffd-unit-tests -f events
