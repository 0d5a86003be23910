"""The daily ops cycle (top floor): ``govheal report daily``.

fetch (``fetch``, ``canary``, ``steps``: all I/O) → a frozen ``model.Snapshot`` → ``judge`` (the five success
criteria) → ``render`` (text + JSON twin) → ``output`` (atomic, volume-aware) → ``digest`` (the alert bridge's
outbox), planned by ``schedule`` (slots, catch-up) and claimed once per slot in ``govheal.slots``.
"""
