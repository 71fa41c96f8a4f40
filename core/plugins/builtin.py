"""audio-core's own components, registered through the same hooks as any plugin.

Targets are ``"module:attribute"`` strings so that loading this module imports
nothing heavy.
"""

from __future__ import annotations

from pathlib import Path

from audio_core.plugins.hookspecs import hookimpl

PRESETS_DIR = Path(__file__).resolve().parent.parent / "presets"


@hookimpl
def audio_core_register_datasets(registry):
    registry.register("synthetic", "audio_core.data.synthetic:SyntheticDataset",
                      description="Procedural tones, chirps, noise bursts, hits and vowels")
    registry.register("folder", "audio_core.data.folders:FolderDataset",
                      description="Every audio file under a folder (recursive)")
    registry.register("class_folder", "audio_core.data.folders:ClassFolderDataset",
                      description="ImageNet-style ROOT/<class>/*.wav with integer labels")
    registry.register("split_folder", "audio_core.data.folders:SplitFolderDataset",
                      description="ROOT/<split>/... with train/val/test splits")
    registry.register("librispeech", "audio_core.data.speech:LibriSpeechDataset",
                      description="LibriSpeech subset/speaker/chapter/*.flac with transcripts")
    registry.register("common_voice", "audio_core.data.speech:CommonVoiceDataset",
                      description="Common Voice clips/ listed by <split>.tsv with sentences")
    registry.register("captioned", "audio_core.data.captioned:CaptionedDataset",
                      description="Audio files with captions from a CSV/JSONL list (text)")
    registry.register("musdb", "audio_core.data.musdb:MusdbDataset",
                      description="MUSDB18 (.stem.mp4) / MUSDB18-HQ (wav folders): mixtures or "
                                  "chosen stems in crops, train/valid/test")
    registry.register("shards", "audio_core.data.shards.dataset:ShardDataset",
                      description="Tar shards (`audio-core data pack`, WebDataset layout) from "
                                  "a folder or any fsspec URL (s3://, https://), exact resume")
    registry.register("manifest", "audio_core.data.manifest:ManifestDataset",
                      description="Files listed in a JSONL/.jsonl.gz manifest (path, duration, "
                                  "sample_rate; label, text, offset); no file stat at start-up")
    registry.register("latents", "audio_core.latents.dataset:LatentDataset",
                      description="Latents pre-encoded by `audio-core latents`, with the "
                                  "source items' labels and captions")


@hookimpl
def audio_core_register_models(registry):
    registry.register("autoencoder", "audio_core.models.autoencoder:AudioAutoencoder",
                      description="Encoder -> optional quantizer/bottleneck -> decoder "
                                  "(a codec with a discrete quantizer)")
    registry.register("frozen_encoder",
                      "audio_core.models.frozen_encoder:FrozenEncoderAutoencoder",
                      description="Frozen (pretrained or seeded) encoder + trained decoder, "
                                  "latent statistics")
    registry.register("latent_diffusion",
                      "audio_core.models.latent_diffusion:LatentDiffusion",
                      description="Denoiser on (stage-1) latents or audio with a conditioner, "
                                  "objective and sampler: generates audio")


@hookimpl
def audio_core_register_encoders(registry):
    registry.register("conv", "audio_core.components.conv:ConvEncoder")


@hookimpl
def audio_core_register_decoders(registry):
    registry.register("conv", "audio_core.components.conv:ConvDecoder")


@hookimpl
def audio_core_register_quantizers(registry):
    registry.register("identity", "audio_core.components.bottlenecks:IdentityBottleneck")
    registry.register("vae", "audio_core.components.bottlenecks:VAEBottleneck")
    registry.register("rvq", "audio_core.components.rvq:ResidualVQ",
                      description="Residual VQ: EMA codebooks, k-means init, dead-code "
                                  "replacement, quantizer dropout, optional SOM updates")


@hookimpl
def audio_core_register_embeddings(registry):
    registry.register("logmel", "audio_core.metrics.embeddings:LogMelEmbedding",
                      description="Log-mel band means and spread per window; no weights "
                                  "(the offline FAD default)")
    registry.register("torchscript", "audio_core.metrics.embeddings:TorchScriptEmbedding",
                      description="A TorchScript audio model (VGGish, PANNs, CLAP, ...) "
                                  "from a local path")
    registry.register("codec_latent", "audio_core.models.codec_embedding:CodecLatentEmbedding",
                      description="Encoder latents of an audio-core export from a local path")


@hookimpl
def audio_core_register_vocoders(registry):
    registry.register("griffin_lim", "audio_core.components.vocoders:GriffinLimVocoder",
                      description="Mel (dB or log) -> waveform by NNLS + Griffin-Lim (no weights)")


@hookimpl
def audio_core_register_losses(registry):
    registry.register("l1", "audio_core.components.losses:WaveformL1")
    registry.register("mse", "audio_core.components.losses:WaveformMSE")
    registry.register("mrstft", "audio_core.components.spectral_losses:MultiResolutionSTFTLoss",
                      description="Spectral convergence + log-magnitude L1 over STFT sizes")
    registry.register("mel", "audio_core.components.spectral_losses:MultiResolutionMelLoss",
                      description="Log-mel L1 over several resolutions")


@hookimpl
def audio_core_register_tasks(registry):
    registry.register("autoencoder", "audio_core.tasks.autoencoder:AutoencoderTask",
                      description="Encoder -> bottleneck/quantizer -> decoder with "
                                  "reconstruction losses")
    registry.register("adversarial", "audio_core.tasks.adversarial:AdversarialCodecTask",
                      description="GAN codec: autoencoder generator vs discriminators "
                                  "(two engines)")
    registry.register("frozen_encoder", "audio_core.tasks.frozen_encoder:FrozenEncoderTask",
                      description="Decoder trained on the latents of a frozen encoder")
    registry.register("diffusion", "audio_core.tasks.diffusion:DiffusionTask",
                      description="Latent diffusion / flow on pre-encoded or stage-1 latents "
                                  "(or audio), any conditioner, objective and sampler")


@hookimpl
def audio_core_register_discriminators(registry):
    registry.register("waveform", "audio_core.components.discriminators:WaveformDiscriminator",
                      description="Small strided Conv1d stack on the waveform")
    registry.register("msd", "audio_core.components.discriminators:MultiScaleDiscriminator",
                      description="Multi-scale waveform discriminator (MelGAN-style)")
    registry.register("mpd", "audio_core.components.discriminators:MultiPeriodDiscriminator",
                      description="Multi-period discriminator (HiFi-GAN-style, 2-D convs)")
    registry.register("msstft",
                      "audio_core.components.discriminators:MultiScaleSTFTDiscriminator",
                      description="Multi-scale complex STFT discriminator (EnCodec-style)")
    registry.register("mbd", "audio_core.components.band_discriminator:MultiBandDiscriminator",
                      description="Multi-band multi-resolution STFT discriminator (DAC-style): "
                                  "one conv stack per frequency band")


@hookimpl
def audio_core_register_samplers(registry):
    registry.register("ddim", "audio_core.diffusion.samplers:DDIMSampler",
                      description="DDIM on any objective (eta > 0: stochastic)")
    registry.register("euler", "audio_core.diffusion.samplers:EulerSampler",
                      description="Euler on the objective's probability-flow ODE")
    registry.register("heun", "audio_core.diffusion.samplers:HeunSampler",
                      description="Heun's 2nd-order method on the probability-flow ODE")
    registry.register("dpmpp_2m", "audio_core.diffusion.samplers:DPMSolverPP2MSampler",
                      description="DPM-Solver++(2M): 2nd-order multistep data prediction")


@hookimpl
def audio_core_register_objectives(registry):
    registry.register("edm", "audio_core.diffusion.objectives:EDMObjective",
                      description="Karras EDM: t = sigma, preconditioned denoiser")
    registry.register("v_diffusion", "audio_core.diffusion.objectives:VDiffusionObjective",
                      description="Cosine path, v prediction (Salimans & Ho)")
    registry.register("rectified_flow", "audio_core.diffusion.objectives:RectifiedFlowObjective",
                      description="Linear path, velocity prediction, optional time shift")


@hookimpl
def audio_core_register_conditioners(registry):
    registry.register("class_embedding", "audio_core.components.conditioners:ClassEmbedding",
                      description="Class labels -> one learned token (-1 = null)")
    registry.register("byte_text", "audio_core.components.conditioners:ByteTextEncoder",
                      description="Text -> UTF-8 bytes -> tiny transformer (offline)")
    registry.register("unconditional", "audio_core.components.conditioners:Unconditional",
                      description="Always the learned null embedding")
    registry.register("timing", "audio_core.components.conditioners:TimingConditioner",
                      description="seconds_start, seconds_total -> 2 Fourier-feature tokens")


@hookimpl
def audio_core_register_denoisers(registry):
    registry.register("conv_denoiser", "audio_core.components.denoisers:ConvDenoiser",
                      description="Residual dilated 1-D convs, FiLM time/condition, "
                                  "optional cross-attention")
    registry.register("frame_denoiser", "audio_core.components.denoisers:FrameDenoiser",
                      description="Tiny latent denoiser net(x, t, cond=None)")


@hookimpl
def audio_core_register_presets(registry):
    registry.register_folder(PRESETS_DIR)
