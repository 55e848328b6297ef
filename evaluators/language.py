"""Language codes: which a user may declare, their English names, and the language each
metric is told.

A run's language is decided once, never per hypothesis: the declared code when there is
one, else the writing system detected over *all* references together
(:func:`resolve_language`). Metrics then choose their tokenizer from it; a hypothesis in
another script is scored with those settings and counted in a warning.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from .errors import InvalidOptionError
from .scripts import detect_family

# ISO 639-1 code -> English name (names as ISO 639-2 gives them, shortened to the usual one).
LANGUAGE_NAMES: dict[str, str] = {
    "aa": "Afar", "ab": "Abkhazian", "ae": "Avestan", "af": "Afrikaans", "ak": "Akan", "am": "Amharic",
    "an": "Aragonese", "ar": "Arabic", "as": "Assamese", "av": "Avaric", "ay": "Aymara", "az": "Azerbaijani",
    "ba": "Bashkir", "be": "Belarusian", "bg": "Bulgarian", "bh": "Bihari", "bi": "Bislama", "bm": "Bambara",
    "bn": "Bengali", "bo": "Tibetan", "br": "Breton", "bs": "Bosnian", "ca": "Catalan", "ce": "Chechen",
    "ch": "Chamorro", "co": "Corsican", "cr": "Cree", "cs": "Czech", "cu": "Church Slavonic", "cv": "Chuvash",
    "cy": "Welsh", "da": "Danish", "de": "German", "dv": "Dhivehi", "dz": "Dzongkha", "ee": "Ewe",
    "el": "Greek", "en": "English", "eo": "Esperanto", "es": "Spanish", "et": "Estonian", "eu": "Basque",
    "fa": "Persian", "ff": "Fula", "fi": "Finnish", "fj": "Fijian", "fo": "Faroese", "fr": "French",
    "fy": "Western Frisian", "ga": "Irish", "gd": "Scottish Gaelic", "gl": "Galician", "gn": "Guarani",
    "gu": "Gujarati", "gv": "Manx", "ha": "Hausa", "he": "Hebrew", "hi": "Hindi", "ho": "Hiri Motu",
    "hr": "Croatian", "ht": "Haitian Creole", "hu": "Hungarian", "hy": "Armenian", "hz": "Herero",
    "ia": "Interlingua", "id": "Indonesian", "ie": "Interlingue", "ig": "Igbo", "ii": "Sichuan Yi",
    "ik": "Inupiaq", "io": "Ido", "is": "Icelandic", "it": "Italian", "iu": "Inuktitut", "ja": "Japanese",
    "jv": "Javanese", "ka": "Georgian", "kg": "Kongo", "ki": "Kikuyu", "kj": "Kuanyama", "kk": "Kazakh",
    "kl": "Greenlandic", "km": "Khmer", "kn": "Kannada", "ko": "Korean", "kr": "Kanuri", "ks": "Kashmiri",
    "ku": "Kurdish", "kv": "Komi", "kw": "Cornish", "ky": "Kyrgyz", "la": "Latin", "lb": "Luxembourgish",
    "lg": "Ganda", "li": "Limburgish", "ln": "Lingala", "lo": "Lao", "lt": "Lithuanian", "lu": "Luba-Katanga",
    "lv": "Latvian", "mg": "Malagasy", "mh": "Marshallese", "mi": "Maori", "mk": "Macedonian",
    "ml": "Malayalam", "mn": "Mongolian", "mr": "Marathi", "ms": "Malay", "mt": "Maltese", "my": "Burmese",
    "na": "Nauru", "nb": "Norwegian Bokmål", "nd": "North Ndebele", "ne": "Nepali", "ng": "Ndonga",
    "nl": "Dutch", "nn": "Norwegian Nynorsk", "no": "Norwegian", "nr": "South Ndebele", "nv": "Navajo",
    "ny": "Chichewa", "oc": "Occitan", "oj": "Ojibwa", "om": "Oromo", "or": "Odia", "os": "Ossetian",
    "pa": "Punjabi", "pi": "Pali", "pl": "Polish", "ps": "Pashto", "pt": "Portuguese", "qu": "Quechua",
    "rm": "Romansh", "rn": "Rundi", "ro": "Romanian", "ru": "Russian", "rw": "Kinyarwanda", "sa": "Sanskrit",
    "sc": "Sardinian", "sd": "Sindhi", "se": "Northern Sami", "sg": "Sango", "si": "Sinhala", "sk": "Slovak",
    "sl": "Slovenian", "sm": "Samoan", "sn": "Shona", "so": "Somali", "sq": "Albanian", "sr": "Serbian",
    "ss": "Swati", "st": "Southern Sotho", "su": "Sundanese", "sv": "Swedish", "sw": "Swahili", "ta": "Tamil",
    "te": "Telugu", "tg": "Tajik", "th": "Thai", "ti": "Tigrinya", "tk": "Turkmen", "tl": "Tagalog",
    "tn": "Tswana", "to": "Tongan", "tr": "Turkish", "ts": "Tsonga", "tt": "Tatar", "tw": "Twi",
    "ty": "Tahitian", "ug": "Uyghur", "uk": "Ukrainian", "ur": "Urdu", "uz": "Uzbek", "ve": "Venda",
    "vi": "Vietnamese", "vo": "Volapük", "wa": "Walloon", "wo": "Wolof", "xh": "Xhosa", "yi": "Yiddish",
    "yo": "Yoruba", "za": "Zhuang", "zh": "Chinese", "zu": "Zulu",
}

# Their ISO 639-2 three-letter codes (terminology and bibliographic) -> 639-1.
_THREE_TO_TWO: dict[str, str] = {
    "aar": "aa", "abk": "ab", "afr": "af", "aka": "ak", "alb": "sq", "amh": "am", "ara": "ar", "arg": "an",
    "arm": "hy", "asm": "as", "ava": "av", "ave": "ae", "aym": "ay", "aze": "az", "bak": "ba", "bam": "bm",
    "baq": "eu", "bel": "be", "ben": "bn", "bih": "bh", "bis": "bi", "bod": "bo", "bos": "bs", "bre": "br",
    "bul": "bg", "bur": "my", "cat": "ca", "ces": "cs", "cha": "ch", "che": "ce", "chi": "zh", "chu": "cu",
    "chv": "cv", "cor": "kw", "cos": "co", "cre": "cr", "cym": "cy", "cze": "cs", "dan": "da", "deu": "de",
    "div": "dv", "dut": "nl", "dzo": "dz", "ell": "el", "eng": "en", "epo": "eo", "est": "et", "eus": "eu",
    "ewe": "ee", "fao": "fo", "fas": "fa", "fij": "fj", "fin": "fi", "fra": "fr", "fre": "fr", "fry": "fy",
    "ful": "ff", "geo": "ka", "ger": "de", "gla": "gd", "gle": "ga", "glg": "gl", "glv": "gv", "gre": "el",
    "grn": "gn", "guj": "gu", "hat": "ht", "hau": "ha", "heb": "he", "her": "hz", "hin": "hi", "hmo": "ho",
    "hrv": "hr", "hun": "hu", "hye": "hy", "ibo": "ig", "ice": "is", "ido": "io", "iii": "ii", "iku": "iu",
    "ile": "ie", "ina": "ia", "ind": "id", "ipk": "ik", "isl": "is", "ita": "it", "jav": "jv", "jpn": "ja",
    "kal": "kl", "kan": "kn", "kas": "ks", "kat": "ka", "kau": "kr", "kaz": "kk", "khm": "km", "kik": "ki",
    "kin": "rw", "kir": "ky", "kom": "kv", "kon": "kg", "kor": "ko", "kua": "kj", "kur": "ku", "lao": "lo",
    "lat": "la", "lav": "lv", "lim": "li", "lin": "ln", "lit": "lt", "ltz": "lb", "lub": "lu", "lug": "lg",
    "mac": "mk", "mah": "mh", "mal": "ml", "mao": "mi", "mar": "mr", "may": "ms", "mkd": "mk", "mlg": "mg",
    "mlt": "mt", "mon": "mn", "mri": "mi", "msa": "ms", "mya": "my", "nau": "na", "nav": "nv", "nbl": "nr",
    "nde": "nd", "ndo": "ng", "nep": "ne", "nld": "nl", "nno": "nn", "nob": "nb", "nor": "no", "nya": "ny",
    "oci": "oc", "oji": "oj", "ori": "or", "orm": "om", "oss": "os", "pan": "pa", "per": "fa", "pli": "pi",
    "pol": "pl", "por": "pt", "pus": "ps", "que": "qu", "roh": "rm", "ron": "ro", "rum": "ro", "run": "rn",
    "rus": "ru", "sag": "sg", "san": "sa", "sin": "si", "slk": "sk", "slo": "sk", "slv": "sl", "sme": "se",
    "smo": "sm", "sna": "sn", "snd": "sd", "som": "so", "sot": "st", "spa": "es", "sqi": "sq", "srd": "sc",
    "srp": "sr", "ssw": "ss", "sun": "su", "swa": "sw", "swe": "sv", "tah": "ty", "tam": "ta", "tat": "tt",
    "tel": "te", "tgk": "tg", "tgl": "tl", "tha": "th", "tib": "bo", "tir": "ti", "ton": "to", "tsn": "tn",
    "tso": "ts", "tuk": "tk", "tur": "tr", "twi": "tw", "uig": "ug", "ukr": "uk", "urd": "ur", "uzb": "uz",
    "ven": "ve", "vie": "vi", "vol": "vo", "wel": "cy", "wln": "wa", "wol": "wo", "xho": "xh", "yid": "yi",
    "yor": "yo", "zha": "za", "zho": "zh", "zul": "zu",
}

# Three-letter ISO 639-3 codes of individual languages in common use (FLORES-200, WMT,
# Hugging Face dataset cards) that have no 639-1 code of their own: (macrolanguage, name).
_INDIVIDUAL: dict[str, tuple[str | None, str]] = {
    "cmn": ("zh", "Mandarin Chinese"), "yue": ("zh", "Cantonese"), "wuu": ("zh", "Wu Chinese"),
    "nan": ("zh", "Min Nan Chinese"), "hak": ("zh", "Hakka Chinese"), "lzh": ("zh", "Literary Chinese"),
    "arb": ("ar", "Standard Arabic"), "ary": ("ar", "Moroccan Arabic"), "arz": ("ar", "Egyptian Arabic"),
    "apc": ("ar", "Levantine Arabic"), "acm": ("ar", "Mesopotamian Arabic"), "pes": ("fa", "Iranian Persian"),
    "prs": ("fa", "Dari"), "swh": ("sw", "Swahili"), "zsm": ("ms", "Standard Malay"),
    "ekk": ("et", "Standard Estonian"), "lvs": ("lv", "Standard Latvian"), "khk": ("mn", "Halh Mongolian"),
    "npi": ("ne", "Nepali"), "ory": ("or", "Odia"), "pbt": ("ps", "Southern Pashto"),
    "azj": ("az", "North Azerbaijani"), "azb": ("az", "South Azerbaijani"), "uzn": ("uz", "Northern Uzbek"),
    "plt": ("mg", "Plateau Malagasy"), "gaz": ("om", "West Central Oromo"), "als": ("sq", "Tosk Albanian"),
    "quy": ("qu", "Ayacucho Quechua"), "ydd": ("yi", "Eastern Yiddish"), "gug": ("gn", "Paraguayan Guarani"),
    "kmr": ("ku", "Northern Kurdish"), "ckb": ("ku", "Central Kurdish"), "shn": ("my", "Shan"),
    "fil": (None, "Filipino"), "ceb": (None, "Cebuano"), "haw": (None, "Hawaiian"), "hmn": (None, "Hmong"),
    "ast": (None, "Asturian"), "mai": (None, "Maithili"), "bho": (None, "Bhojpuri"), "sat": (None, "Santali"),
    "mni": (None, "Manipuri"), "kok": (None, "Konkani"), "doi": (None, "Dogri"), "min": (None, "Minangkabau"),
    "ace": (None, "Acehnese"), "ban": (None, "Balinese"), "bug": (None, "Buginese"), "war": (None, "Waray"),
    "ilo": (None, "Iloko"), "nso": (None, "Northern Sotho"), "tum": (None, "Tumbuka"), "luo": (None, "Luo"),
    "kam": (None, "Kamba"), "kea": (None, "Kabuverdianu"), "fur": (None, "Friulian"), "lij": (None, "Ligurian"),
    "lmo": (None, "Lombard"), "scn": (None, "Sicilian"), "vec": (None, "Venetian"), "szl": (None, "Silesian"),
    "ltg": (None, "Latgalian"), "crh": (None, "Crimean Tatar"), "hne": (None, "Chhattisgarhi"),
    "awa": (None, "Awadhi"), "kab": (None, "Kabyle"), "tzm": (None, "Central Atlas Tamazight"),
    "zgh": (None, "Standard Moroccan Tamazight"), "fon": (None, "Fon"), "bem": (None, "Bemba"),
    "sah": (None, "Yakut"), "chr": (None, "Cherokee"), "nds": (None, "Low German"), "gsw": (None, "Swiss German"),
    "hsb": (None, "Upper Sorbian"), "dsb": (None, "Lower Sorbian"), "tpi": (None, "Tok Pisin"),
    "pap": (None, "Papiamento"), "mos": (None, "Mossi"), "tet": (None, "Tetum"), "grc": (None, "Ancient Greek"),
}

# Languages whose text needs other tokenization than splitting at spaces, by family:
# zh (Chinese characters), ja (Japanese), ko (Korean), th (Thai, Lao, Khmer, Burmese:
# no spaces between words, no dictionary segmenter here).
_FAMILY = {"zh": "zh", "ja": "ja", "ko": "ko", "th": "th", "lo": "th", "km": "th", "my": "th"}

_SUBTAG_RE = re.compile(r"[A-Za-z0-9]{1,8}")
_BY_NAME = {name.lower(): code for code, name in LANGUAGE_NAMES.items()}
_HINT = ("use an ISO 639-1 code such as 'en', 'de' or 'zh', a 639-3 code such as 'deu', "
         "or a tag such as 'zh-Hans' or 'pt-BR'")


def _primary(code: str) -> str:
    """The 639-1 (or, without one, 639-3) code a validated tag's primary subtag stands for."""
    primary = code.split("-")[0]
    if primary in _THREE_TO_TWO:
        return _THREE_TO_TWO[primary]
    if primary in _INDIVIDUAL:
        return _INDIVIDUAL[primary][0] or primary
    return primary


def validate_language(code: str) -> str:
    """Check a declared language and return it in canonical BCP 47 casing (``ZH_hans`` ->
    ``zh-Hans``). Accepted: ISO 639-1 codes, their 639-2 three-letter codes, common 639-3
    codes (``cmn``, ``yue``, ``arb``...), each optionally followed by script / region /
    variant subtags (``zh-Hans``, ``pt-BR``, ``zho_Hans`` as FLORES writes it).

    Raises:
        InvalidOptionError: for anything else (``klingon``, ``xx-nope``, an empty string).
    """
    if not isinstance(code, str):
        raise InvalidOptionError(f"language must be a code such as 'de', got {type(code).__name__}", _HINT)
    parts = code.strip().replace("_", "-").split("-")
    primary = parts[0].lower()
    known = primary in LANGUAGE_NAMES or primary in _THREE_TO_TWO or primary in _INDIVIDUAL
    if not known or not all(_SUBTAG_RE.fullmatch(p) for p in parts[1:]):
        suggestion = _BY_NAME.get(code.strip().lower())
        hint = f"the ISO 639-1 code of {code.strip()} is {suggestion!r}" if suggestion else _HINT
        raise InvalidOptionError(f"unknown language {code!r}", hint)
    subtags = []
    for part in parts[1:]:
        if len(part) == 4 and part.isalpha():
            subtags.append(part.title())  # script: Hans, Latn
        elif (len(part) == 2 and part.isalpha()) or (len(part) == 3 and part.isdigit()):
            subtags.append(part.upper())  # region: BR, 419
        else:
            subtags.append(part.lower())
    return "-".join([primary, *subtags])


def language_name(code: str) -> str:
    """English name of a language code (``de`` -> ``German``, ``pt-BR`` -> ``Portuguese``,
    ``yue`` -> ``Cantonese``), for prompts such as "Translate into {target_language}".

    Raises:
        InvalidOptionError: if ``code`` is not a language :func:`validate_language` accepts.
    """
    canonical = validate_language(code)
    head = canonical.split("-")[0]
    if head in _INDIVIDUAL:
        return _INDIVIDUAL[head][1]
    return LANGUAGE_NAMES[_primary(canonical)]


def language_family(language: str | None) -> str | None:
    """The family that needs special tokenization (``zh``, ``ja``, ``ko``, ``th``) of a
    validated language code, None for space-delimited languages and for None."""
    if not language:
        return None
    return _FAMILY.get(_primary(validate_language(language)))


def resolve_language(declared: str | None, references: Iterable[str]) -> str | None:
    """The language every metric of a run is told, decided once.

    Returns the declared code (validated, canonical casing) when there is one; otherwise
    the family detected over all ``references`` together (``zh``, ``ja``, ``ko``, ``th``),
    or None for text written with spaces between words, which gets each metric's
    space-delimited defaults (sacrebleu's 13a and so on). Hypotheses are never looked at.

    Raises:
        InvalidOptionError: if ``declared`` is not a known language code.
    """
    if declared is not None:
        return validate_language(declared)
    return detect_family("\n".join(r for r in references if r))
