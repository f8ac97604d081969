"""A training whose work follows what the process sees of its host and its start, as CPython's own tests'
does: ``test.support`` calls ``os.uname()`` on import, and every string the interpreter holds (its initial
environment among them) is allocated, so its length moves later objects and identity-hashed tables. Here
the instrumented library runs as many rounds as those strings are long, so the counters show any of it."""

import ctypes
import os
import socket
import unittest


class HostView(unittest.TestCase):
    def test_runs_as_much_as_the_host_view_is_long(self):
        with open("/proc/self/environ", "rb") as initial:
            environment = initial.read()
        seen = len(environment) + len("".join(os.uname())) + len(socket.gethostname()) + (os.cpu_count() or 0)
        library = ctypes.CDLL(os.path.abspath("build/lib/libtiny.so"))
        self.assertIsInstance(library.tiny_train(1000 * seen), int)
