"""Local fake servers (Discord, Telegram) for tests and benchmarks: never contact the real services."""
