"""The sanitizer check of conftest.Daemon itself: a report that a daemon
(or a child it forked) writes while it stops fails the test, for
AddressSanitizer, LeakSanitizer and UndefinedBehaviorSanitizer alike. The
daemon here is a small program built with the same sanitizer flags as
`make SAN=1`."""

import subprocess

import pytest

from conftest import Daemon

PROGRAM = r"""
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t stop;
static void on_term(int s) { (void)s; stop = 1; }
static void *keep;

int
main(int argc, char **argv)
{
	const char *what = argc > 1 ? argv[1] : "clean";
	volatile int big = 2147483647;

	signal(SIGTERM, on_term);
	if (strcmp(what, "child-leak") == 0 && fork() == 0) {
		/* The child outlives the parent and reports after it. */
		signal(SIGTERM, SIG_IGN);
		sleep(1);
		keep = malloc(64);
		keep = NULL;
		exit(0);
	}
	fprintf(stderr, "prog: ready\n");
	while (!stop)
		pause();
	if (strcmp(what, "leak") == 0) {
		keep = malloc(64);
		keep = NULL;
	} else if (strcmp(what, "ubsan") == 0)
		fprintf(stderr, "%d\n", big + 1);
	return 0;
}
"""


@pytest.fixture(scope="module")
def prog(tmp_path_factory):
    d = tmp_path_factory.mktemp("san")
    src, exe = d / "prog.c", d / "prog"
    src.write_text(PROGRAM)
    subprocess.run(["cc", "-g", "-O0", "-fsanitize=address,undefined",
                    "-fno-sanitize-recover=undefined",
                    "-fno-omit-frame-pointer", "-o", str(exe), str(src)],
                   check=True)
    return str(exe)


def test_clean_stop_passes(prog):
    Daemon([prog, "clean"]).stop()


@pytest.mark.parametrize("what", ["leak", "ubsan", "child-leak"])
def test_report_at_stop_fails(prog, what):
    d = Daemon([prog, what])
    with pytest.raises(pytest.fail.Exception) as e:
        d.stop()
    assert "sanitizer report" in str(e.value)
