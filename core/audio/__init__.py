"""Audio I/O and DSP in torch (no torchaudio).

Import from the submodules: ``audio_core.audio.io`` (load/save), ``.resample``,
``.transforms`` (channels, pad/trim, normalisation) and ``.dsp`` (STFT, mel, Griffin-Lim).
"""
