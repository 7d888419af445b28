"""The shared task board."""
