"""Cells safe to open in a spreadsheet: every CSV export the product writes goes through here.

A visitor writes answers, e-mails and attributes; an owner opens the export in Excel or Sheets,
where a cell starting with ``=`` runs as a formula (CSV injection). Such a cell gets a leading
``'``, the defence OWASP recommends.
"""

#: First characters (after any whitespace) that make a spreadsheet read a cell as a formula.
FORMULA_CHARACTERS = frozenset("=+-@\uff1d\uff0b\uff0d\uff20")
#: A cell starting with one of these is neutralised whatever follows (OWASP's list, plus the
#: line feed an import may drop like the carriage return).
CONTROL_STARTS = ("\t", "\r", "\n")


def neutralise(cell):
    """A text cell a spreadsheet would evaluate gets a leading ``'``; numbers pass unchanged."""
    if isinstance(cell, str) and (
        cell.startswith(CONTROL_STARTS) or cell.lstrip()[:1] in FORMULA_CHARACTERS
    ):
        return "'" + cell
    return cell
