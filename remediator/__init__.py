"""Verified, bounded, persisted and audited restarts of configured agents."""
