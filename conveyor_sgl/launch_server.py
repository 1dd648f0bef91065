"""`python -m conveyor_sgl.launch_server [sglang server flags]`: runtime/embedded/launcher.py."""

from __future__ import annotations

from conveyor_sgl.runtime.embedded.launcher import main

if __name__ == "__main__":
    main()
