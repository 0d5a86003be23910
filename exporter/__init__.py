"""The govheal exporter: agent/process health as Prometheus metrics (see docs/exporter.md)."""
