"""Governance switches (mute, pause, maintenance): schedules, silence sync, audit. See docs/governance.md.

``recurrence`` and ``schedule`` are pure (no clock, no I/O); ``service`` applies a change to the store,
Alertmanager and the audit log.
"""
