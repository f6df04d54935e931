"""Document numbers by their shape: the second ``ID`` pass of the redaction patterns.

The first ``ID`` pass knows document numbers by their labels ("passport", "NIF"...) and a few
formats. Labels and formats differ in every country ("codice fiscale RSSMRA85T10A562S", "PAN
card ABCDE1234F", "CURP GODE561231HDFRRN09", a Chinese ID ending in "X"), so this pass takes
any token that *looks* like a document number, whatever stands before it: six letters and
digits or more (hyphens, dots and slashes may join groups), with at least one letter and two
digits.

What has that shape and is not personal stays (:func:`is_document_number`):

* a quantity or an ordinal: digits, then one word ("1500mAh", "100km", "250ml", "15-minute",
  "1000th", "120EUR"); a Dutch postcode ("1015CJ") is the address pass's;
* a flight, a model or a currency amount: up to three letters, then up to four digits and a
  letter at most ("TP1234", "FR8341", "A380", "USD120", "U21234");
* a word and a small number ("iPhone15", "COVID-19", "Windows11"), or a room, a gate, a seat or
  a bus typed without a space ("room1203": the room pass's);
* a time ("08h30m") or a size ("1920x1080").
"""

from __future__ import annotations

import re

DOCUMENT_NUMBER = re.compile(
    r"(?<![\w@.+/#<-])"
    r"(?=(?:[A-Za-z0-9][./-]?){6})"  # six letters and digits at least
    r"(?=[A-Za-z0-9./-]*\d[A-Za-z0-9./-]*\d)"  # two digits
    r"(?=[0-9./-]*[A-Za-z])"  # a letter
    r"[A-Za-z0-9]+(?:[./-][A-Za-z0-9]+)*"
    r"(?![\w@>]|[./-]\w)",
)
"""Candidates: runs of six letters and digits or more, holding a letter and two digits."""

_KEPT = re.compile(
    r"\d{1,4}(?:[.,]\d+)?[A-Za-z]+"  # 1500mAh, 100km, 15minute, 1000th, 2.5GHz
    r"|[A-Za-z]{1,3}\d{1,4}[A-Za-z]?"  # TP1234, A380, USD120
    r"|[A-Za-z]{3,}\d{1,3}"  # iPhone15, COVID19, Windows11
    r"|(?i:room|suite|rm|floor|gate|terminal|platform|seat|table|bus|tram|line|flight)"
    r"\d{1,5}[A-Za-z]?"  # room1203 (the room pass's), gate12B
    r"|\d{1,2}h\d{2}(?:m|min)?"  # 08h30m
    r"|\d{2,5}x\d{2,5}",  # 1920x1080
)


def is_document_number(token: str) -> bool:
    """Whether ``token`` (a :data:`DOCUMENT_NUMBER` match) is to be redacted (see the module's
    docstring for what is kept)."""
    compact = re.sub(r"[./-]", "", token)
    return not _KEPT.fullmatch(compact)
