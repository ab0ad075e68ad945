"""The checker (SPEC §5): verifies miner results against reference engines and stores scores.

- ``checker.text`` / ``checker.image`` / ``checker.embedding``: the checks (pure rules over the
  reference engines' outputs), each returning a ``CheckOutcome``;
- ``checker.likelihood``: the text check's statistics;
- ``checker.worker``: the check-queue consumer; ``checker.store``: idempotent result writes;
- ``checker.app.run(settings)``: the composition root of ``sn19 checker``.
"""

from checker.outcome import CHECKER_VERSION, CheckOutcome

__all__ = ["CHECKER_VERSION", "CheckOutcome"]
