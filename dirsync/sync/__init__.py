"""Turning what a source says into changes of the store: pure diffing and its application."""
