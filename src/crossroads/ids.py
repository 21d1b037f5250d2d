"""Request and trace ids: UUID-4-shaped text, cheap to make.

They identify, they do not protect, so a fast PRNG (seeded from the OS per process) is
enough; `uuid.uuid4()` costs several times more and showed in the request-path profile.
"""

from __future__ import annotations

import random

_random = random.Random()  # noqa: S311  (seeded from os.urandom; ids are not secrets)


def new_id() -> str:
    bits = _random.getrandbits(128) & ~(0xF000 << 64) & ~(0xC << 60) | (0x4000 << 64) | (0x8 << 60)
    text = f"{bits:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"
