"""The shared formatting helpers: every view writes the same number the same way."""

from __future__ import annotations

from tui.formatting import format_duration, format_parameters, format_perplexity, format_score


def test_tiny_models_do_not_show_zero_million_parameters():
    """Finding 11: tiny models showed "0M" parameters."""
    assert format_parameters(134_515_008) == "135M"
    assert format_parameters(180_000) == "0.2M"
    assert format_parameters(4_200) == "4.2K"
    assert format_parameters(1_710_000_000) == "1.7B"


def test_huge_perplexities_are_not_printed_with_fifteen_digits():
    """Finding 11: a word perplexity printed as 54847031526.351."""
    assert format_perplexity(54847031526.351) == "5.48e+10"
    assert format_perplexity(5483.2) == "5,483"
    assert format_perplexity(12.345) == "12.35"


def test_durations_and_scores():
    assert format_duration(0.423) == "0.42 s" and format_duration(42) == "42 s"
    assert format_duration(185) == "3:05" and format_duration(3725) == "1:02:05"
    assert format_duration(None) == "—" and format_score(None) == "—" and format_score(41.234) == "41.23"
