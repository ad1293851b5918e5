"""Registers the addon with the TEN runtime; the extension module is imported per instance, lazily."""

from __future__ import annotations

from typing import Any

from ten_runtime import Addon, TenEnv, register_addon_as_extension


@register_addon_as_extension("deepgram_tts2_python")
class DeepgramTTS2ExtensionAddon(Addon):
    """Creates `DeepgramTTS2Extension` instances for graphs that name this addon."""

    def on_create_instance(self, ten_env: TenEnv, name: str, context: Any) -> None:
        from .extension import DeepgramTTS2Extension

        ten_env.log_info(f"creating deepgram_tts2_python instance {name}")
        ten_env.on_create_instance_done(DeepgramTTS2Extension(name), context)
