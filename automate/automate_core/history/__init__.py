"""Partitioned history: run records kept in one partition per day, dropped whole by retention."""
