"""MoDA: multi-modal diffusion for talking-head generation."""

__all__ = ["Pipeline", "GenerateOptions"]


def __getattr__(name: str):
    # Lazy: `import moda` stays light; the pipeline pulls in torch, PyAV and MediaPipe.
    if name in __all__:
        from .pipeline import generate

        return getattr(generate, name)
    raise AttributeError(f"module 'moda' has no attribute {name!r}")
