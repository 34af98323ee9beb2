"""ART·V (Weng et al. 2023): masked-diffusion frame denoiser (``model``), text encoders (``text``), frame-by-frame
multi-prompt generation (``generate``), the drift ablation (``evaluate``) and the optional per-frame autoencoder whose
latent space the denoiser can work in (``autoencoder``). Submodules are imported on demand."""
