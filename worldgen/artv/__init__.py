"""ART·V (Weng et al. 2023): masked-diffusion frame denoiser (``model``), text encoders (``text``), frame-by-frame
multi-prompt generation (``generate``) and the drift ablation (``evaluate``). Submodules are imported on demand."""
