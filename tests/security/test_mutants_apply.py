"""The mutation list (tests/security/mutants.py) stays true to the code: each mistake's
text to change occurs once in its file, so `python -m tests.security.mutants` can make it
(a refactor that moves the text leaves the mutant "broken", a blind spot no one sees)."""

from __future__ import annotations

import pytest

from tests.security.mutants import MUTANTS, ROOT


@pytest.mark.parametrize("mutant", MUTANTS, ids=lambda mutant: mutant.name)
def test_each_mistake_can_be_made(mutant) -> None:
    for path, old, _ in ((mutant.path, mutant.old, mutant.new), *mutant.also):
        assert (ROOT / path).read_text().count(old) == 1, (mutant.name, path)
