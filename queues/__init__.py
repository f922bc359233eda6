"""Taskweb's reusable app: queues, jobs, workers and everything that moves them."""
