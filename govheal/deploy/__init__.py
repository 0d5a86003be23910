"""Deployment (top floor): the node's jobs as launchd user agents (macOS) or systemd user units (Linux).

``services.plan`` says what runs (absolute argv, logs, rendered Prometheus/Alertmanager configs);
``launchd`` and ``systemd`` render and (un)install the same plan. CLI: ``govheal launchd|systemd
render|install|uninstall``.
"""
