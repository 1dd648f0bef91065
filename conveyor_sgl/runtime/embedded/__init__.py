"""The embedded default: launcher, server process, model builder and CPU kernels."""
