"""Side-by-side benchmark of Taskweb and other Python job queues (``python -m bench.compare``).

Kept free of imports: every peer's virtualenv imports this package with only its own
libraries installed.
"""
