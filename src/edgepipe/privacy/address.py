"""Street addresses and postcodes: the ``ADDRESS`` pass of :func:`edgepipe.privacy.redact.redact`.

What makes an address identifying is the street line with its house number and the postcode;
the city and the country alone are not (and the cloud needs them to answer "how far is it"), so
those are left in the text. A street named without a number ("the shops on Rua Augusta") is a
place, not an address, and is left alone too.

Patterns, each with the shapes that shaped it:

* house number, then a street name in capitals, then a street word: "221B Baker Street",
  "1600 Pennsylvania Avenue NW", "42 Wallaby Way", "350 Fifth Avenue", "100 Queen St W";
* a street word, then the name, then the house number (Portuguese, Spanish, Italian, Polish,
  Brazilian, French, Indonesian, Thai...): "Rua de Santa Catarina 312", "Avenida da Liberdade
  185", "Calle de Alcalá 48", "Via del Corso 18", "ul. Marszałkowska 84/92", "Jalan Sudirman
  45"; or the number first: "16 Calle Ocho";
* house number, then a French street word: "12 rue de Rivoli", "5 avenue Anatole France";
* a German or Dutch compound street name, then the number: "Friedrichstraße 43",
  "Keizersgracht 123";
* a street name and street word, then the number, "No." or "No:" between them maybe (English
  words in the European order, Russian, Hungarian, Turkish...): "Sheikh Zayed Road 12",
  "Nevsky Prospekt 28", "Andrássy út 22", "Istiklal Caddesi No: 45", "Street 15" (not "Oxford
  Street 5 minutes away");
* Japanese block numbers (chōme-banchi-gō) before or after the district: "3-1-1 Marunouchi",
  "Ginza 4-6-16", "2-chōme"; Korean road names: "Sejong-daero 175", "Teheran-ro 152";
* a flat, unit, plot, villa, block or post-office box number: "Flat 4B", "Apt. 12",
  "Plot 23", "Villa 12", "Blk 123", "P.O. Box 1234", "Caixa Postal 88", "#04-567";
* postcodes that cannot be mistaken for a time, a price or a count: UK ("NW1 6XE"), Canada
  ("M5H 2N2"), Ireland ("D02 X285"), the Netherlands ("1015 CJ Amsterdam"), Portugal
  ("1200-205"), Brazil ("01310-200"), Poland ("00-514 Warszawa"), a US state and ZIP ("NY
  10118", "DC 20500-0003"), an Australian state and postcode ("NSW 2000"); a 4-digit postcode
  after a comma and before a town ("..., 8001 Zürich"; never a year); Sweden, Czechia, Slovakia
  and Greece before a town ("111 57 Stockholm", "110 00 Praha"); Japan after "〒". Five- and
  six-digit postcodes (Germany, France, Spain, Italy, India, Nigeria) are long numbers that the
  ``NUMBER`` pass removes wherever they stand; a Japanese one ("100-0005") reads as a phone
  number.
"""

from __future__ import annotations

import re

_UPPER = r"A-ZÀ-ÖØ-ÞĀ-ŽŁŚŻŹĆŃ"
_CAP = rf"[{_UPPER}][^\W_]*(?:['’.-][^\W_]+)*\.?"  # Baker, O'Connell, MG, St.
_HOUSE = r"\d{1,5}[A-Za-z]?(?:\s?[-–/]\s?\d{1,5}[A-Za-z]?)?"  # 221B, 84/92, 12-14
_ORDINAL = r"\d{1,3}(?:st|nd|rd|th)"
_PARTICLES = (
    r"(?:de|da|do|dos|das|del|della|dei|degli|di|du|des|la|le|les|los|las|el|al|y|e|"
    r"von|van|der|den|dem|am|an|im|zum|zur|of|the)"
)
_STREET_AFTER = (
    r"(?:Street|St|Road|Rd|Avenue|Ave|Lane|Ln|Drive|Dr|Way|Place|Pl|Square|Sq|Terrace|Ter|"
    r"Court|Ct|Boulevard|Blvd|Close|Crescent|Cres|Gardens|Gdns|Row|Mews|Hill|Parade|Highway|"
    r"Hwy|Walk|Grove|Park|Circle|Cir|Parkway|Pkwy|Quay|Wharf|Embankment|Green|Broadway)"
)
_STREET_BEFORE = (
    r"(?:Rua|R\.|Avenida|Av\.|Avda\.?|Travessa|Tv\.|Largo|Praça|Praca|Alameda|Estrada|"
    r"Calçada|Calcada|Beco|Calle|C/|Carrer|Paseo|Plaza|Ronda|Camino|Via|Viale|Piazza|Corso|"
    r"Vicolo|Rue|Boulevard|Bd|Place|Allée|Chemin|Quai|Impasse|ul\.|ulica|al\.|aleja|pl\.|plac|"
    r"os\.|osiedle|Strada|Calea|Jalan|Jl\.|Soi|Thanon|Ulitsa|Prospekt|Bulevar|Odos|Leoforos)"
)
_FRENCH_STREET = r"(?:rue|avenue|av\.|boulevard|bd|place|allée|chemin|quai|impasse|cours|route)"
_STREET_NUMBERED = (
    rf"(?:{_STREET_AFTER[3:-1]}|Prospekt|Prospect|Ulitsa|Pereulok|Shosse|utca|út|iela|"
    r"prospekt|ulitsa|Caddesi|Cad\.|Sokak|Sokağı|Sok\.|Bulvarı|Blv\.|Mahallesi|Mah\.)"
)
_NOT_AN_ADDRESS = (
    r"(?!\s*(?:minutes?|mins?|km|kms|m|metres?|meters?|miles?|hours?|hrs?|euros?|people|"
    r"stops?|blocks?|times?|percent|%|am\b|pm\b))"
)
_UNIT = (
    r"(?:Flat|Apt\.?|Apartment|Unit|Plot|Villa|Blk\.?|Bldg\.?|House\s+No\.?|"
    r"P\.?\s?O\.?\s?Box|Caixa\s+Postal|Apartado|Postfach|Casilla)"
)
_COMPOUND = (
    r"(?:straße|strasse|str\.|gasse|weg|platz|allee|damm|ufer|chaussee|gracht|straat|laan|"
    r"plein|kade|singel|steeg|vej|gade|gatan|vägen|veien|katu|tie|gata|gaten|gränd)"
)
_US_STATES = [
    "AL",
    "AK",
    "AZ",
    "AR",
    "CA",
    "CO",
    "CT",
    "DE",
    "DC",
    "FL",
    "GA",
    "HI",
    "ID",
    "IL",
    "IN",
    "IA",
    "KS",
    "KY",
    "LA",
    "ME",
    "MD",
    "MA",
    "MI",
    "MN",
    "MS",
    "MO",
    "MT",
    "NE",
    "NV",
    "NH",
    "NJ",
    "NM",
    "NY",
    "NC",
    "ND",
    "OH",
    "OK",
    "OR",
    "PA",
    "RI",
    "SC",
    "SD",
    "TN",
    "TX",
    "UT",
    "VT",
    "VA",
    "WA",
    "WV",
    "WI",
    "WY",
    "PR",
]

ADDRESS = re.compile(
    "|".join(
        [
            # 221B Baker Street; 1600 Pennsylvania Avenue NW; 350 Fifth Avenue; 100 Queen St W
            rf"(?<![\w/.-]){_HOUSE},?\s+(?:(?:{_CAP}|{_ORDINAL})\s+){{1,4}}?{_STREET_AFTER}\b\.?"
            r"(?:\s+(?:N|S|E|W|NE|NW|SE|SW)\b)?",
            # Rua de Santa Catarina 312; Avenida da Liberdade 185; ul. Marszałkowska 84/92
            rf"(?<![\w.]){_STREET_BEFORE}\s+(?:(?:{_PARTICLES}|d['’]|l['’])\s*)*{_CAP}"
            rf"(?:\s+(?:(?:{_PARTICLES}|d['’]|l['’])\s*)*{_CAP}){{0,4}},?\s+"
            rf"(?:n\.?[ºo°]\s*)?{_HOUSE}\b",
            # 16 Calle Ocho; 8 Rua Augusta (the number first)
            rf"(?<![\w/.-]){_HOUSE},?\s+{_STREET_BEFORE}\s+(?:(?:{_PARTICLES}|d['’]|l['’])\s*)*"
            rf"{_CAP}(?:\s+{_CAP}){{0,2}}",
            # 12 rue de Rivoli; 5 avenue Anatole France; 3 bis, rue Monge
            rf"(?<![\w/.-])\d{{1,4}}(?:\s?(?:bis|ter))?,?\s+(?i:{_FRENCH_STREET})\s+"
            rf"(?:(?:de|du|des|la|le|les|d['’]|l['’])\s*)*{_CAP}(?:\s+{_CAP}){{0,3}}",
            # Friedrichstraße 43; Keizersgracht 123
            rf"\b[{_UPPER}][^\W\d_]{{2,}}{_COMPOUND}\s+{_HOUSE}\b",
            # Sheikh Zayed Road 12; Istiklal Caddesi No: 45; Street 15
            rf"(?:\b(?:{_CAP}\s+){{0,3}}|\b){_STREET_NUMBERED},?\s+(?:(?:No|Nr|Nº)\.?\s*:?\s*)?"
            rf"{_HOUSE}\b{_NOT_AN_ADDRESS}",
            # 3-1-1 Marunouchi; Ginza 4-6-16; 2-chōme; Sejong-daero 175; 175 Sejong-daero
            rf"(?<![\w/.-])\d{{1,2}}-\d{{1,2}}-\d{{1,3}}(?![\w-])(?:,?\s+{_CAP})?",
            rf"\b{_CAP}\s+\d{{1,2}}-\d{{1,2}}-\d{{1,3}}(?![\w-])",
            r"\b\d{1,2}-ch[oō]me\b(?:[-\s]\d{1,4}(?:-\d{1,4})?)?",
            rf"\b[{_UPPER}][a-z]+-(?:ro|gil|daero)(?:\s?\d{{1,3}}-?gil)?\s+\d{{1,4}}"
            r"(?:-\d{1,4})?\b",
            rf"(?<![\w/.-])\d{{1,4}}(?:-\d{{1,4}})?,?\s+[{_UPPER}][a-z]+-(?:ro|gil|daero)\b",
            # Flat 4B; P.O. Box 1234; #04-567
            rf"\b{_UNIT}\s*(?:No\.?\s*)?#?\s*\d{{1,6}}[A-Za-z]?\b{_NOT_AN_ADDRESS}",
            r"(?<![\w#])#\d{1,3}-\d{1,5}\b",
            # UK; Canada; Ireland (Eircode)
            r"\b(?:[A-Z]{1,2}\d[A-Z\d]?|GIR)\s?\d[ABD-HJLNP-UW-Z]{2}\b",
            r"\b[ABCEGHJ-NPRSTVXY]\d[ABCEGHJ-NPRSTV-Z]\s?\d[ABCEGHJ-NPRSTV-Z]\d\b",
            r"\b(?:[AC-FHKNPRTV-Y]\d{2}|D6W)\s?(?=[0-9AC-FHKNPRTV-Y]{4}\b)(?=\d*[A-Z])"
            r"[0-9AC-FHKNPRTV-Y]{4}\b",
            # the Netherlands (before a town); Portugal; Brazil; Poland (before a town)
            rf"\b[1-9]\d{{3}}\s?(?!SA|SD|SS)[A-Z]{{2}}(?=\s+[{_UPPER}][a-zà-ÿ])",
            r"(?<![\d-])\d{4}-\d{3}(?![\d-])",
            r"(?<![\d-])\d{5}-\d{3}(?![\d-])",
            rf"(?<![\d-])\d{{2}}-\d{{3}}(?=\s+[{_UPPER}][a-zà-ÿąćęłńóśźż])",
            # US state and ZIP; Australian state and postcode
            rf"\b(?:{'|'.join(_US_STATES)})\s+\d{{5}}(?:-\d{{4}})?\b",
            r"\b(?:NSW|VIC|QLD|SA|WA|TAS|ACT|NT)\s+\d{4}\b",
            # 111 57 Stockholm; 〒100-0005
            rf"(?<![\d-])\d{{3}}\s\d{{2}}(?=\s+[{_UPPER}][a-zà-ÿ])",
            r"〒\s?\d{3}-?\d{4}\b",
            # ", 8001 Zürich": four digits between a comma and a town, not a year
            rf"(?<=,\s)(?!(?:19|20)\d\d\b)\d{{4}}(?=\s+[{_UPPER}][a-zà-ÿ]+)",
        ]
    )
)
"""Street lines and postcodes (see the module's docstring); case-sensitive on purpose: capitals
are what tell "42 Wallaby Way" from "bring 2 towels to the pool way"."""
