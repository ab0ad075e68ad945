"""Reading the scoreboard for people (``sn19 scores``, the dashboard): the board (``board.ScoreboardReader``), its queries and views, checks, and explanations in words (``explain``, ``advice``)."""
