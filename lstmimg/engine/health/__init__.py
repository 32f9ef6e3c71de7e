"""Data health (`lstmimg check`): duplicates, leaks, odd files and likely label errors, and their page."""
