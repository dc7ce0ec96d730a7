"""The faithfulness guard on captions in other scripts: Arabic, Chinese, Japanese and accented Latin.

Before, only [a-z] counted as a word: an Arabic caption had no content words and scored 1.00 whatever
it said, and "fenêtre" was checked as "fen" and "tre"."""

from __future__ import annotations

from transcribe.clean.faithfulness import WORD, check

THRESHOLD = 0.15


def test_words_of_every_script_are_tokens_and_cjk_is_split_per_character() -> None:
    assert WORD.findall("fenêtre l'eau Küche قارب 猫が好き") == [
        "fenêtre", "l'eau", "Küche", "قارب", "猫", "が", "好", "き",
    ]  # fmt: skip


def test_an_arabic_caption_that_adds_facts_is_flagged() -> None:
    transcript = "في الصورة قارب أحمر على البحر"
    faithful = check("قارب أحمر على البحر", transcript, THRESHOLD, language="ar")
    assert faithful.score == 1.0 and not faithful.flagged and faithful.content_words == 4
    invented = check("قارب أخضر على البحر وطائرة", transcript, THRESHOLD, language="ar")
    assert invented.unsupported_words == ["أخضر", "وطائرة"]
    assert "unsupported_words" in invented.flags


def test_arabic_clitics_vowel_marks_and_alef_spellings_compare_equal() -> None:
    # "and the boat" written onto the word, a short vowel mark, and alef with hamza written plainly.
    report = check("والقارب أَحمر", "قارب احمر", THRESHOLD, language="ar")
    assert report.unsupported_words == [] and report.score == 1.0


def test_a_chinese_caption_is_checked_character_by_character() -> None:
    report = check("一只黑猫在桌子上", "我看到一只猫在桌子上", THRESHOLD, language="zh")
    assert report.unsupported_words == ["黑"]
    assert report.content_words == 8


def test_a_japanese_caption_with_an_added_object_is_flagged() -> None:
    report = check("机の上に犬と猫", "机の上に猫", THRESHOLD, language="ja")
    assert report.unsupported_words == ["犬", "と"]
    assert report.flagged


def test_accented_words_are_whole_words() -> None:
    transcript = "il y a une fenêtre et deux bateaux"
    assert check("Une fenêtre et deux bateaux.", transcript, THRESHOLD, language="fr").score == 1.0
    changed = check("Une fenêtre et deux bâteaux rouges.", transcript, THRESHOLD, language="fr")
    assert changed.unsupported_words == ["bâteaux", "rouges"]
