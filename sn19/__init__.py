"""The `sn19` command: one CLI that starts every process (see ARCHITECTURE.md)."""
