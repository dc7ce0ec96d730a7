"""The annotator page's message catalogs (web/i18n/<code>.json) agree with each other and with the code.

Every catalog has the same keys with the same {placeholders}, except that a counted phrase
("outbox.waiting_in#one", "#other") has the plural categories its language needs (Arabic has six, English
two), each catalog always with `#other`. Every key the page uses (t("…") and tn("…") in web/js,
data-i18n* in web/*.html) is in en.json, and en.json says exactly the English the code and the HTML give
as fallback, so the fallback and the catalog cannot drift apart.
"""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import pytest

from annotate.api.routes.tasks import NO_IMAGES_LEFT
from annotate.services.assignments import SKIP_REASONS
from annotate.services.interface_languages import CATALOG_DIR, check_interface_language, direction, shipped

WEB = CATALOG_DIR.parent
PLURAL = re.compile(r"#(zero|one|two|few|many|other)$")
PLACEHOLDER = re.compile(r"\{(\w+)\}")
JS_STRING = r'"((?:[^"\\\n]|\\.)*)"'
T_CALL = re.compile(rf"(?<![\w.$])t\(\s*\"([\w.]+)\"\s*,\s*{JS_STRING}")
TN_CALL = re.compile(
    rf"(?<![\w.$])tn\(\s*\"([\w.]+)\"\s*,\s*[^,]+,\s*\{{\s*one:\s*{JS_STRING}\s*,\s*other:\s*{JS_STRING}"
)
HTML_ATTRIBUTES = {
    "data-i18n-title": "title",
    "data-i18n-label": "aria-label",
    "data-i18n-placeholder": "placeholder",
    "data-i18n-alt": "alt",
}
ARABIC_LETTER = re.compile(r"[\u0600-\u06ff]")


def catalog(code: str) -> dict[str, str]:
    data = json.loads((CATALOG_DIR / f"{code}.json").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    assert all(isinstance(value, str) and value.strip() for value in data.values()), code
    return data


def js_text(literal: str) -> str:
    return json.loads(f'"{literal}"')


def placeholders(text: str) -> set[str]:
    return set(PLACEHOLDER.findall(text))


def groups(keys: dict[str, str]) -> dict[str, dict[str, str]]:
    """Key (plural category stripped) -> {category or "": text}."""
    found: dict[str, dict[str, str]] = {}
    for key, text in keys.items():
        match = PLURAL.search(key)
        base = PLURAL.sub("", key)
        found.setdefault(base, {})[match.group(1) if match else ""] = text
    return found


class _Marks(HTMLParser):
    """(key, English) for every data-i18n* mark of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, str]] = []
        self.open: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        assert self.open is None, f"<{tag}> inside a data-i18n element: the text would be lost"
        values = {name: value or "" for name, value in attrs}
        for mark, attribute in HTML_ATTRIBUTES.items():
            if mark in values:
                self.found.append((values[mark], values.get(attribute, "")))
        if "data-i18n" in values:
            self.open = [values["data-i18n"], ""]

    def handle_data(self, data: str) -> None:
        if self.open is not None:
            self.open[1] += data

    def handle_endtag(self, tag: str) -> None:
        if self.open is not None:
            self.found.append((self.open[0], " ".join(self.open[1].split())))
            self.open = None


def html_marks() -> list[tuple[str, str]]:
    marks: list[tuple[str, str]] = []
    for path in sorted(WEB.glob("*.html")):
        parser = _Marks()
        parser.feed(path.read_text(encoding="utf-8"))
        marks += parser.found
    return marks


def js_sources() -> dict[str, str]:
    return {path.name: path.read_text(encoding="utf-8") for path in sorted((WEB / "js").glob("*.js"))}


def test_english_and_arabic_ship_and_arabic_reads_right_to_left() -> None:
    assert shipped() == ["ar", "en"]
    assert direction("ar") == "rtl" and direction("en") == "ltr" and direction("he") == "rtl"
    assert check_interface_language(" AR ") == "ar"


@pytest.mark.parametrize("code", [code for code in shipped() if code != "en"])
def test_every_catalog_has_the_same_keys_and_placeholders_as_english(code: str) -> None:
    english, other = groups(catalog("en")), groups(catalog(code))
    assert sorted(set(english) - set(other)) == [], f"{code}.json lacks these keys"
    assert sorted(set(other) - set(english)) == [], f"{code}.json has keys en.json does not"
    for key, forms in english.items():
        theirs = other[key]
        if "" in forms:  # a plain phrase
            assert set(theirs) == {""}, f"{code}.json: {key} is counted there, not in en.json"
            assert placeholders(theirs[""]) == placeholders(forms[""]), f"{code}.json: {key}"
            continue
        assert "other" in forms and "other" in theirs, f"{key}: every counted phrase needs #other"
        assert "" not in theirs, f"{code}.json: {key} is not counted there"
        allowed = set().union(*(placeholders(text) for text in forms.values()))
        assert placeholders(theirs["other"]) == placeholders(forms["other"]), f"{code}.json: {key}#other"
        for category, text in theirs.items():
            # "one"/"two" may spell the number out ("تسجيلان" says two without {count}).
            assert placeholders(text) <= allowed, f"{code}.json: {key}#{category}"


def test_the_arabic_catalog_is_written_in_arabic() -> None:
    untranslated = [key for key, text in catalog("ar").items() if not ARABIC_LETTER.search(text)]
    assert untranslated == ["error.unknown"] or untranslated == [], untranslated
    for key, text in catalog("ar").items():
        assert not re.search(r"\b(the|and|your|please|take)\b", text, re.IGNORECASE), (key, text)


def test_every_key_the_page_uses_is_in_english_with_the_same_words() -> None:
    english = catalog("en")
    used: set[str] = set()
    for name, source in js_sources().items():
        for key, fallback in T_CALL.findall(source):
            used.add(key)
            assert key in english, f"{name}: t({key!r}) is missing from en.json"
            assert english[key] == js_text(fallback), f"{name}: {key} says other words than en.json"
        for key, one, other in TN_CALL.findall(source):
            used.add(key)
            assert english.get(f"{key}#one") == js_text(one), f"{name}: tn({key!r}) #one"
            assert english.get(f"{key}#other") == js_text(other), f"{name}: tn({key!r}) #other"
    for key, text in html_marks():
        used.add(key)
        assert key in english, f"data-i18n {key!r} is missing from en.json"
        assert english[key] == text, f"the HTML's {key} says other words than en.json"
    assert {"recorder.record", "take.too_short", "outbox.waiting_in", "mic.denied", "viewer.hint"} <= used
    # Keys built at run time: skip reasons (from the task API), error codes (errorText in i18n.js), and
    # the task API's "no images left" message.
    dynamic = {key for key in english if key.startswith(("skip.reason.", "error."))} | {"done.message"}
    assert english["done.message"] == NO_IMAGES_LEFT
    unused = set(groups(english)) - used - dynamic
    assert unused == set(), f"en.json keys nothing uses: {sorted(unused)}"


def test_every_skip_reason_has_its_label_in_the_catalogs() -> None:
    english = catalog("en")
    for code, label in SKIP_REASONS.items():
        assert english[f"skip.reason.{code}"] == label
        for language in shipped():
            assert f"skip.reason.{code}" in catalog(language)


def test_t_calls_are_found_across_lines() -> None:
    # The extraction above must not miss a call that a formatter split over several lines.
    source = 't(\n  "take.silent",\n  "We could not hear",\n)'
    assert T_CALL.findall(source) == [("take.silent", "We could not hear")]
