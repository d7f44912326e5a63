"""URL patterns of targeting (``/products/*``), matched in time linear in the URL.

A pattern is literal text with ``*`` for any run of characters; it matches a whole URL, or its
path when the pattern starts with ``/``, case-insensitively. The matcher finds each literal piece
in turn (leftmost, which is optimal for ``*`` between pieces), so a crafted URL costs no more than
reading it once per piece: no regex backtracking.
"""

import re
from re._casefix import _EXTRA_CASES

#: ``scheme://host`` in front of a path; a path pattern starts matching at the ``/`` after it.
_ORIGIN = re.compile(r"[a-z]+://[^/]+")

#: Characters that ``re.IGNORECASE`` treats as equal although their lowercase forms differ (``ſ``
#: and ``s``, ``ς`` and ``σ``...), each mapped to the one :func:`fold` keeps. Taken from the table
#: ``re`` itself uses, so a pattern matches exactly what it matched when it was a regex.
_CASE_VARIANTS = tuple(
    (chr(code), chr(min(code, *others)))
    for code, others in sorted(_EXTRA_CASES.items())
    if min(code, *others) != code
)


def fold(text: str) -> str:
    """``text`` with every character replaced by one representative of its ``re.IGNORECASE``
    class, so that a case-sensitive comparison of folded strings is the case-insensitive one.

    One output character per input character (``str.lower`` alone turns ``İ`` into two), in a few
    passes of C string methods: linear in the length, and cheap for ASCII, which URLs are.
    """
    if text.isascii():
        return text.lower()
    folded = text.replace("\u0130", "i").lower()
    for variant, representative in _CASE_VARIANTS:
        if variant in folded:
            folded = folded.replace(variant, representative)
    return folded


class UrlPattern:
    """A compiled ``url_include``/``url_exclude`` pattern, matched in time linear in the URL.

    ``*`` matches any run of characters but a line feed; everything else is literal and compared
    case-insensitively; the pattern matches the whole URL. A pattern starting with ``/`` matches
    the path of a URL on any host (``scheme://host`` in front is skipped) and ignores a query or
    fragment after what it matched. These are the semantics of the regexes the patterns used to
    be compiled into (``.*`` for ``*``, anchored, ``re.IGNORECASE``, ``$`` admitting one trailing
    line feed), whose backtracking cost seconds a request on a crafted 4 KB URL.

    Notes
    -----
    The literal pieces between the stars are found left to right; taking each piece's leftmost
    occurrence never loses a match, so nothing is ever retried. The work is a few linear scans of
    the URL (each piece is searched from where the one before it ended), never more.
    """

    __slots__ = (
        "text",
        "_is_path",
        "_first",
        "_middle",
        "_last",
        "_has_line_feed",
        "_last_then_query",
    )

    def __init__(self, text: str):
        folded = fold(text)
        self.text = text
        self._is_path = text.startswith("/")
        pieces = folded.split("*")
        self._first = pieces[0]
        self._last = pieces[-1] if len(pieces) > 1 else None
        # ``re`` searches a literal with a table of its overlaps (Knuth-Morris-Pratt): linear
        # whatever the piece, where ``str.find`` is quadratic on some pieces under 100 characters.
        self._middle = tuple(re.compile(re.escape(piece)) for piece in pieces[1:-1])
        self._has_line_feed = "\n" in folded
        # The last piece followed by the start of a query or fragment, for the path patterns whose
        # last piece may end before one (two literals: ``[?#]`` would cost a match attempt at
        # every occurrence of the piece's first character).
        self._last_then_query = (
            tuple(re.compile(re.escape(self._last + start)) for start in "?#")
            if self._is_path and self._last
            else ()
        )

    def __repr__(self) -> str:
        return f"UrlPattern({self.text!r})"

    def matches(self, url: str) -> bool:
        """Whether ``url`` is a page this pattern names."""
        return self.matches_folded(fold(url))

    def matches_folded(self, folded: str) -> bool:
        """Whether the URL that :func:`fold` turned into ``folded`` is a page this pattern names."""
        start = 0
        if self._is_path and (origin := _ORIGIN.match(folded)):
            start = origin.end()
        length = len(folded)
        if not folded.endswith("\n"):
            return self._matches_between(folded, start, length)
        # A trailing line feed may be left unmatched (regex ``$``); only a pattern with a line
        # feed of its own can match it.
        if self._has_line_feed and self._matches_between(folded, start, length):
            return True
        return self._matches_between(folded, start, length - 1)

    def _matches_between(self, url: str, start: int, end: int) -> bool:
        """Whether the pattern matches ``url[start:end]`` (a path pattern: a prefix of it,
        followed by a query or fragment)."""
        first, last = self._first, self._last
        if not url.startswith(first, start, end):
            return False
        at = start + len(first)
        if last is None:
            return at == end or self._is_path and self._is_query_at(url, at, end)
        limit = end - len(last)
        for piece in self._middle:
            found = piece.search(url, at, limit)
            # The leftmost occurrence leaves the most room for the rest; a line feed before it
            # (a star cannot match one) is before every later occurrence too.
            if found is None or url.find("\n", at, found.start()) >= 0:
                return False
            at = found.end()
        if at > limit:
            return False
        first_line_feed = url.find("\n", at, end)
        if url.endswith(last, at, end) and not 0 <= first_line_feed < limit:
            return True
        if not self._last_then_query:
            # Not a path pattern, or a last star that already covers any query: there is nowhere
            # else for the match to end.
            return False
        # The last piece ends before a query or fragment: the star before it and the query cannot
        # match a line feed, so the piece starts at or before the first one after ``at`` and ends
        # after the last one.
        last_line_feed = url.rfind("\n", at, end)
        low = at if last_line_feed < 0 else max(at, last_line_feed + 1 - len(last))
        high = end if first_line_feed < 0 else min(end, first_line_feed + len(last) + 1)
        return any(needle.search(url, low, high) for needle in self._last_then_query)

    def _is_query_at(self, url: str, at: int, end: int) -> bool:
        return url[at] in "?#" and url.find("\n", at, end) < 0
