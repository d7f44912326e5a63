"""Texts that content may give per locale (``LocalText``: a text, or ``{locale: text}``)."""


def plain(text) -> str:
    """A LocalText as one string: the default locale's (key ``""``), else the first given."""
    if isinstance(text, dict):
        return text.get("") or next(iter(text.values()), "")
    return text or ""
