"""A tiny application for the CLI tests: events, a projector, a reactor, a failing projector."""
