"""Fakes for the remediator: a controllable clock and world, a reaper, a fake launchctl/systemctl."""
