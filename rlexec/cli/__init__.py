"""The ``rlexec`` command line."""
