"""Marked sections of a Markdown report that one command rewrites and
another keeps: ``pyflat bench --pipeline`` and ``pyflat bench
--conversions`` each own a section of ``bench/RESULTS.md``, which a full
``pyflat bench --markdown`` run rewrites around them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

__all__ = ["Section"]


@dataclass(frozen=True)
class Section:
    """A section between the comment lines ``start`` and ``end``."""

    start: str
    end: str

    def find(self, text: str) -> Optional[str]:
        """The section in ``text``, markers included, with a final newline."""
        start, end = text.find(self.start), text.find(self.end)
        if start < 0 or end < start:
            return None
        return text[start:end + len(self.end)] + "\n"

    def merge(self, existing: str, section: str) -> str:
        """``existing`` with its section replaced by ``section`` (or
        ``section`` appended when it has none)."""
        start, end = existing.find(self.start), existing.find(self.end)
        if start >= 0 and end > start:
            return existing[:start] + section + existing[end + len(self.end):].lstrip("\n")
        return existing.rstrip("\n") + ("\n\n" if existing.strip() else "") + section

    def keep(self, path: str, text: str) -> str:
        """``text`` (a new report for ``path``) with the section that ``path``
        holds now, if any, appended, unless ``text`` has its own."""
        try:
            with open(path, encoding="utf-8") as f:
                existing = f.read()
        except OSError:
            return text
        section = self.find(existing)
        if section is None or self.start in text:
            return text
        return self.merge(text, section)
