"""The operator console: HTMX pages, their actions, and the live updates pushed to them."""
