"""A training module that ends the process before the trainer can write its record."""

import os
import unittest


class Exiting(unittest.TestCase):
    def test_exits(self):
        os._exit(0)
