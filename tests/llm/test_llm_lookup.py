"""Drafts looked up in the prompt (llm.lookup), without a model."""

from __future__ import annotations

from capstan.llm.lookup import DraftLength, accepted, propose


def test_the_draft_is_what_followed_the_latest_earlier_occurrence_of_the_last_four_tokens():
    # ... 3 4 5 6 7 8 ... 3 4 5 6 9 ... 3 4 5 6  -> the latest earlier "3 4 5 6" was followed by 9
    context = [1, 3, 4, 5, 6, 7, 8, 2, 3, 4, 5, 6, 9, 0, 3, 4, 5, 6]
    assert propose(context, max_draft=3) == [9, 0, 3]


def test_no_draft_without_an_earlier_occurrence_of_four_tokens():
    assert propose([1, 2, 3, 4], max_draft=4) == []
    assert propose([7, 1, 2, 3, 9, 1, 2, 3], max_draft=4) == []  # only "1 2 3" repeats: too little to go on
    assert propose([1, 2, 3, 4, 1, 2, 3, 4], max_draft=0) == []
    assert propose([], max_draft=4) == []


def test_the_draft_stops_at_the_end_of_the_context_and_at_its_limit():
    assert propose([1, 2, 3, 4, 5, 1, 2, 3, 4], max_draft=8) == [5, 1, 2, 3, 4]
    assert propose([1, 2, 3, 4, 5, 6, 1, 2, 3, 4], max_draft=2) == [5, 6]


def test_accepted_counts_the_leading_tokens_the_model_predicted_itself():
    assert accepted([3, 4, 5], [3, 4, 9, 1]) == 2
    assert accepted([3, 4, 5], [8, 4, 5, 1]) == 0
    assert accepted([3, 4, 5], [3, 4, 5, 1]) == 3
    assert accepted([], [6]) == 0


def test_the_draft_grows_while_kept_whole_and_pauses_after_a_miss():
    length = DraftLength(most=8)
    assert length.next() == 1
    length.update(drafted=1, kept=1)
    assert length.next() == 2
    length.update(drafted=2, kept=2)
    assert length.next() == 4
    length.update(drafted=4, kept=4)
    assert length.next() == 8
    length.update(drafted=8, kept=8)
    assert length.next() == 8  # never beyond `most`
    length.update(drafted=8, kept=3)
    assert length.next() == 3
    length.update(drafted=3, kept=0)
    assert length.next() == 0  # one step without a draft
    length.update(drafted=0, kept=0)
    assert length.next() == 1
    length.update(drafted=0, kept=0)  # no draft read (none found): nothing learnt
    assert length.next() == 1
