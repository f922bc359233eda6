"""One module per system under test; each module's ``PEER`` describes how to install and
run it, and its ``client()`` is what the driver process uses inside that system's virtualenv."""
