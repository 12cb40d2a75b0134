"""Seeing inside a running service, even when its Python is stuck (issue #4).

* Metrics live in a shared-memory file that another process reads while the
  writer is stopped (SIGSTOP) or dead; a forked child writes its own file.
* The admin endpoint is served by the kernel thread: it answers while the
  Python main thread spins in pure Python or holds the GIL inside a C call,
  dumps every Python thread's stack without the GIL, and never shows secrets.
* Kernel timestamps tell network time from Python pick-up delay.

Target processes are separate child processes (scripts below), so the test
process is never the one stopped, spinning or forked.

Layout: child.py (Child, cli, values), conftest.py (the mdir and children
fixtures), test_metrics_files.py (metrics from outside, pick-up delay) and
test_admin_watchdog.py (the admin endpoint and the watchdog).
"""
