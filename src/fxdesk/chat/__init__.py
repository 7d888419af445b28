"""The general chat room."""
