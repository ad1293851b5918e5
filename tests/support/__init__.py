"""Helpers shared by test suites: speech recognition for audio round trips."""
