"""Decoding of bash's `$'...'` strings (ANSI-C quoting)."""

from __future__ import annotations

import re

from .tokens import SandboxParseError


def _ansi_c(src: str, i: int) -> tuple[str, int]:
    """Decode a `$'...'` string starting after `$'`; returns (text, end)."""
    simple = {"n": "\n", "t": "\t", "r": "\r", "a": "\a", "b": "\b", "f": "\f", "v": "\v"}
    simple.update({"e": "\x1b", "E": "\x1b", "\\": "\\", "'": "'", '"': '"', "?": "?"})
    out: list[str] = []
    n = len(src)
    while i < n:
        c = src[i]
        if c == "'":
            text = "".join(out)
            if "\x00" in text:
                raise SandboxParseError("a $'...' string contains a NUL byte")
            return text, i + 1
        if c != "\\" or i + 1 >= n:
            out.append(c)
            i += 1
            continue
        e = src[i + 1]
        if e in simple:
            out.append(simple[e])
            i += 2
        elif e in "01234567":
            m = re.match(r"[0-7]{1,3}", src[i + 1 :])
            assert m is not None  # noqa: S101  # e is an octal digit
            out.append(chr(int(m.group(), 8) & 0xFF))
            i += 1 + len(m.group())
        elif e in "xuU":
            width = {"x": 2, "u": 4, "U": 8}[e]
            m = re.match(rf"[0-9a-fA-F]{{1,{width}}}", src[i + 2 :])
            if not m:
                out.append("\\" + e)
                i += 2
            else:
                code = int(m.group(), 16)
                if code > 0x10FFFF:
                    raise SandboxParseError("a $'...' escape is out of range")
                out.append(chr(code))
                i += 2 + len(m.group())
        elif e == "c":
            if i + 2 >= n:
                raise SandboxParseError("unterminated $'...' string")
            out.append(chr(ord(src[i + 2]) & 0x1F))
            i += 3
        else:
            out.append("\\" + e)
            i += 2
    raise SandboxParseError("unterminated $'...' string")
