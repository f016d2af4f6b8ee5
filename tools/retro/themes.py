"""Recurring themes in free-text answers, by plain keyword counting: deterministic, explainable, no model.

A comment's terms are its lower-case words (letters, inner apostrophes and hyphens, at least three letters) that
are not stopwords, and the pairs of such words that stand next to each other in one clause of it. A term's
mentions are the number of comments that contain it (a comment repeating a word counts once). Terms with at least
`min_mentions` mentions are themes, most mentioned first (a pair before a single word on a tie, then
alphabetically); a term whose words all belong to a theme already chosen is skipped, so "report" does not repeat
"report generation". Redaction placeholders ([email], [phone]) are never terms.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

WORD = re.compile(r"\[[a-z]+\]|[a-z][a-z'-]*[a-z]|[a-z]")
CLAUSE_BREAK = re.compile(r"[.!?;:,()\n]+")  # a pair of words never spans a clause
MIN_WORD_LETTERS = 3
_STOPWORD_TEXT = """
a about above after again against all also am an and any are aren't as at be because been before being below
between both but by can can't cannot could couldn't did didn't do does doesn't doing don't down during each even
ever every few for from further get gets got had hadn't has hasn't have haven't having he her here hers herself
him himself his how i i'd i'll i'm i've if in into is isn't it it's its itself just let's like lot lots make
many me more most much must mustn't my myself need needs no nor not now of off on once one only or other ought
our ours ourselves out over own please quite really same she should shouldn't since so some still such than
thank thanks that that's the their theirs them themselves then there there's these they they'd they'll they're
they've thing things this those though through to too twice under until up upon us use used using very via was
wasn't we we'd we'll we're we've well were weren't what what's when where which while who whom why will with
within without won't would wouldn't yet you you'd you'll you're you've your yours yourself yourselves
always last week weeks day days time times bit etc ok okay yes
"""
STOPWORDS = frozenset(_STOPWORD_TEXT.split())


@dataclass(frozen=True, slots=True)
class Theme:
    term: str
    mentions: int
    comments: int  # how many comments were counted
    examples: tuple[str, ...]  # the first comments (in the order given) that mention the term


def terms_of(comment: str) -> set[str]:
    terms: set[str] = set()
    for clause in CLAUSE_BREAK.split(comment.lower()):
        kept = [word if _is_term(word) else None for word in WORD.findall(clause)]
        terms |= {word for word in kept if word is not None}
        terms |= {f"{a} {b}" for a, b in pairwise(kept) if a is not None and b is not None}
    return terms


def _is_term(word: str) -> bool:
    return (
        not word.startswith("[")
        and sum(c.isalpha() for c in word) >= MIN_WORD_LETTERS
        and word not in STOPWORDS
    )


def themes(
    comments: Sequence[str], *, min_mentions: int = 3, limit: int = 3, examples: int = 3
) -> list[Theme]:
    term_sets = [terms_of(comment) for comment in comments]
    counts = Counter(term for terms in term_sets for term in terms)
    ranked = sorted(
        (item for item in counts.items() if item[1] >= min_mentions),
        key=lambda item: (-item[1], -item[0].count(" "), item[0]),
    )
    chosen: list[Theme] = []
    covered: set[str] = set()
    for term, mentions in ranked:
        words = set(term.split())
        if words <= covered:
            continue
        shown = tuple(c for c, terms in zip(comments, term_sets, strict=True) if term in terms)[:examples]
        chosen.append(Theme(term, mentions, len(comments), shown))
        covered |= words
        if len(chosen) == limit:
            break
    return chosen
