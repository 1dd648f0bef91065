"""The SGLang-facing layer: IR nodes for partial_tool / tool_result and the executor hook."""

from conveyor_sgl.primitives import hook

hook.install()
