"""A training module with a failing test."""

import unittest


class Failing(unittest.TestCase):
    def test_fails(self):
        self.assertEqual(1, 2, "TINY-TRAINING-FAILURE")
