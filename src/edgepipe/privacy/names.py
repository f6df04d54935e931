"""People's names in spaCy's analysis of a request: which ``PERSON`` entities the gate takes, and
names the recogniser labelled otherwise that the sentence shows to be people.

spaCy's recogniser (``en_core_web_md``) finds most names, from many cultures and in lower-case
speech-to-text too ("tell kenji watanabe the table moved"), but it also

* calls places and venues people: "Pena Palace", "Cabo da Roca", "Livraria Bertrand";
* calls some names organisations or titles ("a massage for Oluwadamilare Ajayi": ``ORG``),
  most often names it has never seen, sometimes with the verb before them ("Remind Bao Ngoc
  Pham": one ``ORG``).

:func:`plausible_person` drops the first kind: a ``PERSON`` needs two words or more, no digit,
capitals (or a lower-case request), and no place or venue word ("Palace", "Museum", "Praia",
"Livraria"...). :func:`names_from_context` takes the second: an ``ORG``, ``WORK_OF_ART`` or
``PRODUCT`` entity of two to four name-shaped words (capitalised, no acronym, no particle, no
organisation or place word, not after "the") is a person's name when the sentence treats it as
a person: after a verb that takes a person ("tell", "remind", "invite", "thank"...), after
"for", "with" or "under", after "to" or "from" near a word of writing or sending ("a letter
to", "a message from"), before a possessive ("'s"), next to another name ("Ngozi Chukwu and
Babajide Ogunleye"), or opening the sentence before a verb ("Olusegun Bakare needs a taxi").

:func:`person_names` puts it together, and also widens a name over a hyphenated given name
the recogniser left out ("Ji-woo Choi"), drops a name that names a place or a thing
(:func:`named_after`: "the Calouste Gulbenkian Museum", "the Fernando Pessoa statue"), takes a
single-word ``PERSON`` beside another name ("Rajesh and Deepa Nair"), takes a lower-case
``PERSON`` only where the tagger reads proper nouns and the sentence treats it as a person (not
"desk lamp off"), and, in a lower-case request, looks again with the words after person cues
capitalised (:func:`truecased`: "write a message for chioma eze" -> "for Chioma Eze"), since
the recogniser leans on capitals.

Nothing here is a list of names: the word lists are of places, venues, verbs and particles.
The recogniser cannot tell a famous person from a guest ("Tell me about Fernando Pessoa's
favourite café" loses the name) nor a shop named like a person ("Ginjinha Sem Rival").
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any


def _split(words: str) -> list[str]:
    return words.split()


PARTICLES = frozenset(
    [
        "al", "el", "bin", "ibn", "bint", "da", "de", "do", "dos", "das", "di", "del", "della",
        "du", "van", "von", "der", "den", "ter", "la", "le", "y", "e",
    ]
)  # fmt: skip
"""Small words inside names ("Mohammed bin Rashid", "Maria da Silva")."""

PLACE_FIRST = frozenset(
    _split(
        """rua avenida av praça praca largo travessa alameda calle via piazza rue place avenue
    street st ul plac são sao santa santo saint san mount mt lake cape cabo praia playa plage
    parque palácio palacio palazzo palais castelo castillo castello château chateau museu
    museo musée musee igreja iglesia chiesa église mosteiro monasterio convento torre tour
    ponte puente pont jardim jardín jardin miradouro quinta casa serra vila villa cais
    estação estacion gare mercado mercato marché livraria libreria librairie pastelaria
    padaria teatro teatre théâtre capela capilla forte fort ilha île lago río
    monte bairro barrio campo costa baía bahía hotel hostel pousada café cafe
    restaurante restaurant taberna tasca adega cervejaria marisqueira elevador"""
    )
)
"""First words of places and venues in the languages a Lisbon guest meets."""
PLACE_LAST = frozenset(
    _split(
        """palace tower museum market beach bridge cathedral chapel monastery abbey convent castle
    fortress garden gardens station square street road avenue hotel hostel restaurant café
    cafe bar pub club centre center theatre theater cinema university college school academy
    airport hospital clinic mall gallery library zoo aquarium oceanarium lake river island
    mountain valley forest harbour harbor marina pier coast cape tram metro bus airlines
    airways group company ltd inc llc plc bank foundation institute festival stadium arena
    shop store bakery pharmacy tours tour travel card pass app city town village district
    province county region prefecture municipality"""
    )
)
"""Last words of places, venues and organisations ("Pena Palace", "Time Out Market"); not
the ones that are common surnames too ("Park", "Hill", "Hall", "Church", "Lane", "Bay")."""

CUE_VERBS = frozenset(
    _split(
        """tell ask remind let message text email e-mail mail call ring phone invite thank
    congratulate meet greet help pay invoice bill notify inform forward cc bcc introduce
    wish welcome contact warn page accompany join thank-you"""
    )
)
"""Verbs whose object is a person: "tell X", "remind X", "invoice X"."""
_CUE_PREPOSITIONS = frozenset(["for", "with", "under"])
_DIRECTED = frozenset(["to", "from"])
_WRITING = frozenset(
    _split(
        """write wrote send sent email e-mail mail text message reply say speak talk give
    deliver forward introduce letter note card postcard message email e-mail gift present
    flowers apology reminder invitation toast thank-you thanks text sms parcel package
    invoice receipt photos bouquet"""
    )
)
"""Words that make the next "to"/"from" point at a person ("a letter to X", "a card from X")."""
_TITLES = frozenset(["mr", "mrs", "ms", "miss", "mx", "dr", "prof", "sr", "sra", "srta", "sir"])
_CONVERTED = frozenset(["ORG", "WORK_OF_ART", "PRODUCT"])


def _words(found: str) -> list[str]:
    words = found.replace("’", "'").split()
    if words and words[-1].endswith("'s"):
        words[-1] = words[-1][:-2]
    return [w.strip(".,;:!?") for w in words if w.strip(".,;:!?")]


def is_place(words: Sequence[str]) -> bool:
    """Whether ``words`` name a place, venue or organisation by their first or last word."""
    if not words:
        return False
    return words[0].lower() in PLACE_FIRST or words[-1].lower() in PLACE_LAST


def plausible_person(found: str, *, min_words: int = 2, lower_case_text: bool = False) -> bool:
    """A person's name, not a street, a place or a command the model took for one ("desk lamp
    off"): no digit, no "@", enough words, no place word first or last, and every word but a
    particle ("bin", "da", "van") capitalised; lower-case words pass when the whole request is
    in lower case (speech-to-text) and there are two at least."""
    if any(c.isdigit() for c in found) or "@" in found:
        return False
    words = _words(found)
    if len(words) < min_words or is_place(words):
        return False
    if words[0].lower() in PARTICLES and not words[0][:1].isupper():
        return False  # "das Nações" (of "Parque das Nações")
    names = [w for w in words if w.lower() not in PARTICLES]
    if all(w[:1].isupper() for w in names):
        return True
    return lower_case_text and len(words) >= 2 and all(w.islower() for w in names)


def is_lower_case_text(text: str) -> bool:
    """Speech-to-text style: no capital letter but a lone "I" (and its contractions)."""
    return not any(c.isupper() for c in text.replace("I'", "i'").replace(" I ", " i "))


def _name_shaped(found: str, lower_case_text: bool) -> bool:
    words = found.split()
    if not 2 <= len(words) <= 4 or is_place(words):
        return False
    for word in words:
        core = word.replace("-", "").replace("'", "").replace("’", "")
        if not core.isalpha() or word.lower() in PARTICLES:
            return False
        if lower_case_text:
            if not word.islower():
                return False
        elif not (word[0].isupper() and not word.isupper()):
            return False  # lower case or an acronym ("TAP", "USB")
    return True


_NAMED_AFTER = re.compile(r"^\s+([^\W\d_]+)")
_NAMED_FOR = frozenset(
    _split("statue monument memorial foundation collection prize award building house tomb")
)
_THE_BEFORE = re.compile(r"(?:^|\s)the\s+$", re.IGNORECASE)


def named_after(text: str, start: int, end: int) -> bool:
    """Whether the name ``text[start:end]`` names a place or a thing after a person: "the"
    before it, or a place or venue word after it ("the Vasco da Gama bridge", "the Calouste
    Gulbenkian Museum", "the Fernando Pessoa statue")."""
    if _THE_BEFORE.search(text[:start]):
        return True
    m = _NAMED_AFTER.match(text[end:])
    if m is None:
        return False
    return m.group(1).lower() in PLACE_LAST or m.group(1).lower() in _NAMED_FOR


def after_place_word(text: str, start: int) -> bool:
    """Whether the word before ``text[start:]`` begins a place ("Parque das Nações": the
    recogniser's "das Nações" is the rest of a place's name)."""
    before = text[:start].split()
    return bool(before) and before[-1][:1].isupper() and before[-1].lower() in PLACE_FIRST


def _person_context(doc: Any, start: int, end: int, persons: set[int]) -> bool:
    """Whether the sentence treats tokens ``start:end`` of ``doc`` as a person."""
    i = start - 1
    while i >= 0 and doc[i].text.lower().rstrip(".") in _TITLES | {""}:
        i -= 1
    before = doc[i].text.lower() if i >= 0 else ""
    if before in CUE_VERBS or before in _CUE_PREPOSITIONS:
        return True
    if before in _DIRECTED and any(
        doc[j].lower_ in _WRITING or doc[j].lemma_.lower() in _WRITING
        for j in range(max(0, i - 4), i)
    ):
        return True
    if before in ("and", "&", ",") and i - 1 in persons:
        return True
    after = doc[end] if end < len(doc) else None
    if after is None:
        return False
    if after.tag_ == "POS" or after.text in ("'s", "’s"):
        return True
    if after.lower_ in ("and", "&") and end + 1 in persons:
        return True
    opens = i < 0 or doc[i].is_punct or before in ("and", "&")
    return opens and after.pos_ in ("VERB", "AUX")


def names_from_context(doc: Any, *, lower_case_text: bool | None = None) -> list[tuple[int, int]]:
    """Character spans of people's names that the recogniser labelled ``ORG``, ``WORK_OF_ART``
    or ``PRODUCT`` in ``doc`` (a spaCy ``Doc``), found from how the sentence uses them (see the
    module's docstring)."""
    if lower_case_text is None:
        lower_case_text = is_lower_case_text(doc.text)
    persons: set[int] = set()
    for ent in doc.ents:
        if ent.label_ == "PERSON":
            persons.update(range(ent.start, ent.end))
    found: list[tuple[int, int]] = []
    for ent in doc.ents:
        if ent.label_ not in _CONVERTED:
            continue
        start, end = ent.start, ent.end
        if start > 0 and doc[start - 1].lower_ == "the":
            continue
        if doc[start].lower_ in CUE_VERBS:  # "Remind Bao Ngoc Pham" -> "Bao Ngoc Pham"
            start += 1
        if end - start >= 2 and doc[end - 1].tag_ == "POS":
            end -= 1
        a, b = doc[start].idx, doc[end - 1].idx + len(doc[end - 1].text)
        if _name_shaped(doc.text[a:b], lower_case_text) and _person_context(
            doc, start, end, persons
        ):
            found.append((a, b))
            persons.update(range(start, end))
    return found


_HYPHENATED = r"[A-ZÀ-ÖØ-Þ][a-zà-öø-ÿ]+-[a-zà-öø-ÿ]+"
_HYPHENATED_BEFORE = re.compile(rf"(?<![\w-])({_HYPHENATED})\s+$")
_HYPHENATED_AFTER = re.compile(rf"^\s+({_HYPHENATED})(?![\w-])")
_CONJUNCTION = re.compile(r"^\s*(?:,|and|&)\s*$", re.IGNORECASE)


def _widen(text: str, a: int, b: int) -> tuple[int, int]:
    """Take in a hyphenated given name the recogniser left out ("Ji-woo" of "Ji-woo Choi")."""
    if m := _HYPHENATED_BEFORE.search(text, 0, a):
        a = m.start(1)
    if m := _HYPHENATED_AFTER.match(text[b:]):
        b += m.end(1)
    return a, b


def truecased(doc: Any) -> tuple[str, list[tuple[int, int]]] | None:
    """A lower-case request with the words after a person cue capitalised (up to three, no
    stop word or number: "ask wanjiku mwangi if..." -> "ask Wanjiku Mwangi if..."), so that
    the recogniser sees the names a speech-to-text engine writes in lower case; and the spans
    capitalised. None when there is nothing to capitalise. The text keeps its length."""
    chars = list(doc.text)
    capitalised: list[tuple[int, int]] = []
    for i, tok in enumerate(doc):
        cue = tok.lower_ in CUE_VERBS or tok.lower_ in _CUE_PREPOSITIONS
        if tok.lower_ in _DIRECTED:
            cue = any(doc[j].lower_ in _WRITING for j in range(max(0, i - 4), i))
        if not cue:
            continue
        for nxt in doc[i + 1 : i + 4]:
            if not nxt.is_alpha or nxt.is_stop or nxt.lower_ in _NOT_NAMES:
                break
            first = nxt.text[0].upper()
            if len(first) == 1:
                chars[nxt.idx] = first
                capitalised.append((nxt.idx, nxt.idx + len(nxt.text)))
    return ("".join(chars), capitalised) if capitalised else None


_NOT_NAMES = frozenset(
    _split(
        """today tonight tomorrow yesterday morning afternoon evening night noon midnight
    please pls thanks asap now later soon reception housekeeping concierge room service
    breakfast lunch dinner"""
    )
)


def _lower_case_name(doc: Any, ent: Any, persons: set[int]) -> bool:
    """A lower-case ``PERSON`` that the tagger reads as proper nouns, with no stop word, where
    the sentence treats it as a person ("tell kenji watanabe...", not "desk lamp off")."""
    return (
        any(t.tag_ in ("NNP", "NNPS") for t in ent)
        and not any(t.is_stop for t in ent)
        and _person_context(doc, ent.start, ent.end, persons)
    )


def person_names(
    doc: Any, *, min_words: int = 2, nlp: Any = None, from_context: bool = True
) -> list[tuple[int, int]]:
    """Character spans of people's names in ``doc`` (a spaCy ``Doc``): the ``PERSON``
    entities that are :func:`plausible_person` (widened over a hyphenated given name; a single
    word too when it stands beside another name: "Rajesh and Deepa Nair"), the names
    :func:`names_from_context` finds, and, in a lower-case request, the names the recogniser
    finds once the words after person cues are capitalised (:func:`truecased`; ``nlp``: the
    pipeline to run on it, None to skip)."""
    text = doc.text
    lower = is_lower_case_text(text)
    kept: list[tuple[int, int]] = []
    single: list[tuple[int, int]] = []
    persons = {i for ent in doc.ents if ent.label_ == "PERSON" for i in range(ent.start, ent.end)}
    from_others = names_from_context(doc, lower_case_text=lower) if from_context else []
    kept.extend(from_others)
    persons |= {t.i for t in doc for a, b in from_others if a <= t.idx < b}
    for ent in doc.ents:
        if ent.label_ != "PERSON":
            continue
        a, b = _widen(text, ent.start_char, ent.end_char)
        if after_place_word(text, a) or named_after(text, a, b):
            continue
        if lower and not _lower_case_name(doc, ent, persons):
            continue
        if plausible_person(text[a:b], min_words=min_words, lower_case_text=lower):
            kept.append((a, b))
        elif plausible_person(text[a:b], min_words=1):
            single.append((a, b))
    for a, b in single:  # "Rajesh and Deepa Nair", "Deepa Nair and Rajesh"
        if any(_CONJUNCTION.match(text[b:c]) or _CONJUNCTION.match(text[d:a]) for c, d in kept):
            kept.append((a, b))
    if lower and nlp is not None and (found := truecased(doc)) is not None:
        cased, capitalised = found
        starts = {c for c, _ in capitalised}
        for a, b in person_names(nlp(cased), min_words=min_words, from_context=from_context):
            words = [a + m.start() for m in re.finditer(r"\S+", cased[a:b])]
            if words and all(w in starts for w in words):
                kept.append((a, b))
    return kept
