"""Server mode: the wire contract, the SGLang plugin, its routes, policy and tool runs.

Kept empty: every SGLang process imports ``plugin``, which must stay cheap.
"""
