"""Holds the stand-in `sgl_kernel` package; this directory goes on sys.path on CPU only."""
