"""Reading the scoreboard for people (``sn19 scores``, the dashboard): the board
(``board.ScoreboardReader``), its queries and views, checks, and the weight explained in
words (``explain``, ``advice``)."""
