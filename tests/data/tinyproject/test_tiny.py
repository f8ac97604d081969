"""The tiny project's training: calls the instrumented library in this process, as CPython's tests call
the interpreter's own code; and tries to start a process, which cpython-verify's trainer refuses."""

import ctypes
import os
import subprocess
import unittest


class Training(unittest.TestCase):
    def test_runs_the_instrumented_code(self):
        library = ctypes.CDLL(os.path.abspath("build/lib/libtiny.so"))
        self.assertIsInstance(library.tiny_train(100000), int)

    def test_starts_a_process(self):
        subprocess.run(["true"], check=True)
