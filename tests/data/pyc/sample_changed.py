"""A module that exercises most kinds of constants and code objects (valid Python 3.8+)."""

import os
from collections import namedtuple

BIG = 2**100 + 12345
NEGATIVE_BIG = -(2**70)
RATIO = 1.5e-7
WAVE = 3 + 4j
RAW = b"\x00\xffbytes"
TEXT = "naïve ☃ text"
LETTERS = frozenset({"alpha", "beta", "gamma", "delta"})
NESTED = ((1, 2), ("a", ("b", None)), ..., True, False)

Point = namedtuple("Point", "x y")


def outer(a, b=2, *args, c, d=4, **kwargs):
    total = a + b

    def inner(x):
        nonlocal total
        total += x
        return total * c + 1

    squares = [n * n for n in range(a) if n not in LETTERS]
    return inner(len(squares)), {k: v for k, v in kwargs.items()}, args, d


class Shape:
    sides = 0

    def __init__(self, name):
        self.name = name

    @property
    def label(self):
        try:
            return f"{self.name!r}:{self.sides:>3}"
        except (TypeError, ValueError) as error:
            raise RuntimeError(os.sep) from error
        finally:
            pass


async def fetch(items):
    async for item in items:
        yield item
    await fetch_more()


async def fetch_more():
    return [x async for x in fetch(())]


def gen():
    yield from range(3)
    lam = lambda q: q if q in {1, 2, 3} else -q  # noqa: E731
    return lam
