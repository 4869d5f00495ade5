"""Write services of the preferences app."""

from preferences.services.keys import field_keys_rotate
from preferences.services.layers import layer_check, layer_update
from preferences.services.transfer import preferences_export, preferences_import
from preferences.services.verify import config_verify
from preferences.services.voice import speech_synthesize, transcription_run, voices_list

__all__ = [
    "config_verify",
    "field_keys_rotate",
    "layer_check",
    "layer_update",
    "preferences_export",
    "preferences_import",
    "speech_synthesize",
    "transcription_run",
    "voices_list",
]
