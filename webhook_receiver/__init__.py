"""The webhook receiver: Alertmanager → durable inbox → remediator and alert bridge.

Modules: ``models`` (the v4 payload), ``auth`` (bearer token), ``inbox`` (SQLite, idempotency),
``dispatch`` (worker pool, serialised per agent), ``deadman`` (Watchdog heartbeat), ``metrics``,
``app`` (Flask factory) and ``cli`` (``govheal receiver``). See docs/receiver.md.
"""
