"""`python -m conveyor_sgl.launch_server [sglang server flags]`: see runtime/launcher.py."""

from __future__ import annotations

from conveyor_sgl.runtime.launcher import main

if __name__ == "__main__":
    main()
